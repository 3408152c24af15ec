import { useEffect, useRef, useState } from 'preact/hooks';
import { errorText } from './api';
import { match, navigate, onLinkClick, usePath } from './router';
import { dismissToast, isStaff, liveStatus, markAllRead, markRead, notifications, session, signOut, toasts, unreadCount, unreadMore, useStore } from './store';
import { AuthPage, SetupPage } from './pages/auth';
import { CannedRepliesPage } from './pages/canned';
import { ImportPage } from './pages/import';
import { KbArticlePage, KbEditorPage, KbListPage } from './pages/kb';
import { TicketPage } from './pages/ticket';
import { NewTicketPage, TicketsPage } from './pages/tickets';
import { UsersPage } from './pages/users';
import { WebhookPage } from './pages/webhook';
import { PageTitle, formatDate } from './ui';

export function App({ ready }: { ready: boolean }) {
  const s = useStore(session);
  const full = usePath();
  const pathname = full.split('?')[0];
  const [drawer, setDrawer] = useState(false);

  const publicPage = pathname === '/login' || pathname === '/register' || pathname === '/setup' || pathname.startsWith('/kb') && !pathname.endsWith('/edit') && pathname !== '/kb/new';
  useEffect(() => {
    if (!ready) return;
    if (!s && !publicPage) navigate(`/login${pathname !== '/' ? `?next=${encodeURIComponent(full)}` : ''}`, true);
    else if (s && (pathname === '/' || pathname === '/login' || pathname === '/register')) navigate('/tickets', true);
  }, [ready, s, pathname]);

  return (
    <div class="shell" onClick={onLinkClick}>
      <a class="skip" href="#main" onClick={(e) => { e.preventDefault(); document.querySelector<HTMLElement>('main h1')?.focus(); }}>
        Skip to content
      </a>
      <Header onBell={() => setDrawer(true)} />
      <main id="main">{ready ? <Route pathname={pathname} /> : <p role="status">Loading…</p>}</main>
      {drawer && s && <Drawer onClose={() => setDrawer(false)} />}
      {!drawer && <Toasts />}
    </div>
  );
}

function Route({ pathname }: { pathname: string }) {
  const s = useStore(session);
  const user = s?.user;
  let m: Record<string, string> | null;
  if (pathname === '/login') return <AuthPage mode="login" />;
  if (pathname === '/register') return <AuthPage mode="register" />;
  if (pathname === '/setup') return <SetupPage />;
  if (pathname === '/kb') return <KbListPage />;
  if (pathname === '/kb/new') return user && isStaff(user) ? <KbEditorPage /> : <Forbidden />;
  if ((m = match('/kb/:id/edit', pathname))) return user && isStaff(user) ? <KbEditorPage id={m.id} key={m.id} /> : <Forbidden />;
  if ((m = match('/kb/:id', pathname))) return <KbArticlePage id={m.id} key={m.id} />;
  if (!user) return null;
  if (pathname === '/tickets') return <TicketsPage />;
  if (pathname === '/tickets/new') return <NewTicketPage />;
  if ((m = match('/tickets/:id', pathname))) return <TicketPage id={m.id} key={m.id} />;
  if (pathname === '/users') return user.role === 'admin' ? <UsersPage /> : <Forbidden />;
  if (pathname === '/settings/webhook') return <WebhookPage />;
  if (pathname === '/import') return isStaff(user) ? <ImportPage /> : <Forbidden />;
  if (pathname === '/canned-replies') return isStaff(user) ? <CannedRepliesPage /> : <Forbidden />;
  if (pathname === '/') return null;
  return (
    <section>
      <PageTitle>Not found</PageTitle>
      <p>
        There is nothing at this address. <a href="/tickets">Go to tickets</a>.
      </p>
    </section>
  );
}

function Forbidden() {
  return (
    <section>
      <PageTitle>Not allowed</PageTitle>
      <p>Your account cannot open this page.</p>
    </section>
  );
}

function Header({ onBell }: { onBell: () => void }) {
  const s = useStore(session);
  const count = useStore(unreadCount);
  const more = useStore(unreadMore);
  const shown = more ? `${count.toLocaleString('en')}+` : String(count);
  const status = useStore(liveStatus);
  const pathname = usePath().split('?')[0];
  const [menu, setMenu] = useState(false);
  const user = s?.user;
  const link = (href: string, text: string) => (
    <li>
      <a href={href} aria-current={pathname === href || pathname.startsWith(`${href}/`) ? 'page' : undefined} onClick={() => setMenu(false)}>
        {text}
      </a>
    </li>
  );
  return (
    <header class="topbar">
      <a class="brand" href={user ? '/tickets' : '/login'}>
        ticketwire
      </a>
      <button type="button" class="menu-toggle" aria-expanded={menu} aria-controls="primary-nav" onClick={() => setMenu(!menu)}>
        Menu
      </button>
      <nav id="primary-nav" aria-label="Main" class={menu ? 'open' : ''}>
        <ul>
          {user && link('/tickets', 'Tickets')}
          {link('/kb', 'Knowledge base')}
          {user?.role === 'admin' && link('/users', 'Users')}
          {user && isStaff(user) && link('/canned-replies', 'Canned replies')}
          {user && isStaff(user) && link('/import', 'Import')}
          {user && link('/settings/webhook', 'Settings')}
        </ul>
      </nav>
      <div class="right">
        {user && (
          <span class={`conn conn-${status}`} role="status" aria-live="polite" data-testid="connection" data-status={status}>
            <span class="dot" aria-hidden="true" />
            {status === 'online' ? 'Online' : status === 'offline' ? 'Offline' : status === 'connecting' ? 'Connecting…' : 'Reconnecting…'}
          </span>
        )}
        {user && (
          <button type="button" class="bell" onClick={onBell} aria-label={count > 0 ? `Notifications, ${shown} unread` : 'Notifications, none unread'} data-testid="bell">
            <svg aria-hidden="true" focusable="false" width="16" height="16" viewBox="0 0 24 24" fill="currentColor">
              <path d="M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22Zm7-6V11a7 7 0 0 0-5.5-6.84V3.5a1.5 1.5 0 0 0-3 0v.66A7 7 0 0 0 5 11v5l-2 2v1h18v-1l-2-2Z" />
            </svg>
            <span class={count > 0 ? 'count' : 'count none'} data-testid="unread-count" aria-hidden="true">
              {count > 0 ? shown : ''}
            </span>
          </button>
        )}
        {user ? (
          <span class="who">
            <span class="name">
              {user.name} <span class="muted">({user.role})</span>
            </span>{' '}
            <button
              type="button"
              class="link"
              onClick={() => {
                signOut();
                navigate('/login');
              }}
            >
              Sign out
            </button>
          </span>
        ) : (
          <a href="/login">Sign in</a>
        )}
      </div>
    </header>
  );
}

function Drawer({ onClose }: { onClose: () => void }) {
  const items = useStore(notifications);
  const count = useStore(unreadCount);
  const ref = useRef<HTMLDivElement>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    const opener = document.activeElement as HTMLElement | null;
    ref.current?.querySelector<HTMLElement>('button')?.focus();
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') onClose();
      if (e.key === 'Tab' && ref.current) {
        // Keep focus inside the drawer while it is open.
        const f = [...ref.current.querySelectorAll<HTMLElement>('button, a[href]')];
        if (!f.length) return;
        const first = f[0];
        const last = f[f.length - 1];
        if (e.shiftKey && document.activeElement === first) {
          e.preventDefault();
          last.focus();
        } else if (!e.shiftKey && document.activeElement === last) {
          e.preventDefault();
          first.focus();
        }
      }
    };
    document.addEventListener('keydown', onKey);
    return () => {
      document.removeEventListener('keydown', onKey);
      opener?.focus?.();
    };
  }, []);

  return (
    <div class="drawer-backdrop" onClick={(e) => e.target === e.currentTarget && onClose()}>
      <div class="drawer" role="dialog" aria-modal="true" aria-labelledby="drawer-h" ref={ref}>
        <div class="drawer-head">
          <h2 id="drawer-h">Notifications ({count} unread)</h2>
          <button type="button" onClick={onClose} aria-label="Close notifications">
            ✕
          </button>
        </div>
        <button type="button" disabled={count === 0} onClick={() => markAllRead().catch((e) => setError(errorText(e)))}>
          Mark all read
        </button>
        {error && <p class="error">{error}</p>}
        {items.length === 0 ? (
          <p class="muted">No notifications.</p>
        ) : (
          <ul class="notes">
            {items.map((n) => (
              <li key={n.id} class={n.read ? 'read' : 'unread'} data-notification-id={n.id}>
                <p>
                  {!n.read && <span class="sr-only">Unread: </span>}
                  {n.ticket_id ? (
                    <a href={`/tickets/${n.ticket_id}`} onClick={() => { void markRead(n).catch(() => {}); onClose(); }}>
                      {n.message}
                    </a>
                  ) : (
                    n.message
                  )}
                </p>
                <p class="muted small">
                  {formatDate(n.created_at)}{' '}
                  {!n.read && (
                    <button type="button" class="link" onClick={() => markRead(n).catch((e) => setError(errorText(e)))}>
                      Mark read
                    </button>
                  )}
                </p>
              </li>
            ))}
          </ul>
        )}
      </div>
    </div>
  );
}

function Toasts() {
  const list = useStore(toasts);
  return (
    <div class="toasts" role="region" aria-label="Alerts" aria-live="polite">
      {list.map((t) => (
        <div class="toast" key={t.id} data-testid="toast">
          {t.href ? (
            <a href={t.href} onClick={() => dismissToast(t.id)}>
              {t.text}
            </a>
          ) : (
            <span>{t.text}</span>
          )}
          <button type="button" class="link" aria-label="Dismiss" onClick={() => dismissToast(t.id)}>
            ✕
          </button>
        </div>
      ))}
    </div>
  );
}
