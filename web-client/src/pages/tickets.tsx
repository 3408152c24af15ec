import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, errorText, type Ticket, type User } from '../api';
import { live } from '../live';
import { InFlight, applyEvent, emptyList, mergePage, ticketMatches, ticketStays, type ListState, type TicketFilter } from '../merge';
import { navigate, usePath } from '../router';
import { isStaff, session, toast, useStore } from '../store';
import { Badge, ErrorBox, PageTitle, PRIORITIES, STATUSES, formatDate, label } from '../ui';
import { useStaff, useStaffName } from '../people';
import { PresenceDots } from '../presence';

const PAGE_SIZE = 25;

function filterFromUrl(search: string): TicketFilter {
  const p = new URLSearchParams(search);
  return { status: p.get('status') ?? '', priority: p.get('priority') ?? '', assignee_id: p.get('assignee_id') ?? '', q: p.get('q') ?? '', number: p.get('number') ?? '' };
}

function urlFor(f: TicketFilter): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(f)) if (v) p.set(k, v);
  const s = p.toString();
  return `/tickets${s ? `?${s}` : ''}`;
}

/** Staff who can be assigned: every active agent and admin. */
export function useAssignees(me: User | undefined) {
  return useStaff(me);
}

const VIEW_FILTERS = (meId: string): Record<string, Record<string, string>> => ({
  Mine: { assignee_id: meId },
  Unassigned: { assignee_id: 'none' },
  Open: { status: 'open' },
  All: {},
});

/** How many tickets each view holds (up to 200, then "200+"), kept current as tickets change. */
function useViewCounts(meId: string | undefined): Record<string, string> {
  const [counts, setCounts] = useState<Record<string, string>>({});
  useEffect(() => {
    if (!meId) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let on = true;
    const views = VIEW_FILTERS(meId);
    const count = async () => {
      const entries = await Promise.all(
        Object.entries(views).map(async ([name, f]) => {
          const page = await api.tickets({ ...f, limit: 200 }).catch(() => null);
          return [name, page ? `${page.items.length}${page.next_cursor ? '+' : ''}` : ''] as const;
        }),
      );
      if (on) setCounts(Object.fromEntries(entries));
    };
    void count();
    const later = () => {
      clearTimeout(timer);
      timer = setTimeout(() => void count(), 300);
    };
    const offs = [live.on('ticket.update', later), live.onResync(later)];
    return () => {
      on = false;
      clearTimeout(timer);
      offs.forEach((o) => o());
    };
  }, [meId]);
  return counts;
}

export function TicketsPage() {
  const s = useStore(session);
  const me = s?.user;
  const staff = isStaff(me);
  const fullPath = usePath();
  const search = fullPath.includes('?') ? fullPath.slice(fullPath.indexOf('?')) : '';
  const filter = useMemo(() => filterFromUrl(search), [search]);
  const [list, setList] = useState<ListState<Ticket>>(emptyList());
  const [cursor, setCursor] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string | null>(null);
  const [qInput, setQInput] = useState(filter.q ?? '');
  const filterRef = useRef(filter);
  filterRef.current = filter;
  const assignees = useAssignees(me);
  const staffName = useStaffName();

  const matches = (t: Ticket) => ticketMatches(t, filterRef.current);
  const stays = (t: Ticket) => ticketStays(t, filterRef.current);
  const inFlight = useRef(new InFlight<Ticket>()).current;
  const counts = useViewCounts(staff ? me?.id : undefined);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [cursorAt, setCursorAt] = useState(-1);
  // Tickets changed by someone else since this list showed them.
  const [fresh, setFresh] = useState<Set<string>>(new Set());
  const itemsRef = useRef<Ticket[]>([]);
  const bulkIds = useRef<Set<string>>(new Set());
  itemsRef.current = list.items;
  const toggle = (id: string) =>
    setSelected((cur) => {
      const next = new Set(cur);
      if (next.has(id)) next.delete(id);
      else next.add(id);
      return next;
    });
  const seenTicket = (id: string) =>
    setFresh((cur) => {
      const next = new Set(cur);
      next.delete(id);
      return next;
    });

  async function bulk(change: Record<string, unknown>) {
    const chosen = itemsRef.current.filter((t) => selected.has(t.id));
    chosen.forEach((t) => bulkIds.current.add(t.id));
    const results = await Promise.allSettled(chosen.map((t) => api.updateTicket(t.id, change, t.version)));
    const failed = results.filter((r) => r.status === 'rejected').length;
    toast(failed ? `${chosen.length - failed} updated, ${failed} changed meanwhile: try those again` : `${chosen.length} tickets updated`);
    if (!failed) setSelected(new Set());
  }

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const t = e.target as HTMLElement | null;
      if (e.ctrlKey || e.metaKey || e.altKey || (t && /^(INPUT|SELECT|TEXTAREA)$/.test(t.tagName))) return;
      const items = itemsRef.current;
      if (!items.length) return;
      if (e.key === 'j' || e.key === 'k') {
        e.preventDefault();
        setCursorAt((i) => {
          const next = Math.max(0, Math.min(items.length - 1, i + (e.key === 'j' ? 1 : -1)));
          document.querySelectorAll<HTMLElement>('.ticket-row .ticket-link')[next]?.focus();
          return next;
        });
      } else if (e.key === 'x' && staff) {
        setCursorAt((i) => {
          if (items[i]) toggle(items[i].id);
          return i;
        });
      }
    };
    document.addEventListener('keydown', onKey);
    return () => document.removeEventListener('keydown', onKey);
  }, [staff]);

  async function load(append: boolean, from?: string | null) {
    setLoading(true);
    setError(null);
    const f = filterRef.current;
    if (!append) inFlight.start();
    try {
      const page = await api.tickets({ ...f, limit: PAGE_SIZE, cursor: append ? (from ?? undefined) : undefined });
      if (f !== filterRef.current) return;
      setList((cur) => mergePage(append ? cur : inFlight.take(cur.tombstones), page.items, { append, matches, stays }));
      setCursor(page.next_cursor);
    } catch (e) {
      if (!append) inFlight.take({});
      setError(errorText(e));
    } finally {
      setLoading(false);
    }
  }

  // Live: every ticket event is merged from its data, no refetch.
  useEffect(() => {
    const off = live.on('ticket.update', (ev) => {
      if (ev?.action !== 'deleted') inFlight.saw(ev?.data);
      setList((cur) => applyEvent(cur, ev, { matches, stays, place: 'top' }));
      const id = ev?.data?.id;
      if (id && ev.action === 'updated' && !bulkIds.current.delete(id)) setFresh((cur) => new Set(cur).add(id));
    });
    const offResync = live.onResync(() => void load(false));
    return () => {
      off();
      offResync();
    };
  }, []);

  useEffect(() => {
    void load(false);
  }, [search]);
  // The box follows the URL's words only when they change: effects run after paint, and
  // resetting it on every filter change would wipe words typed in between.
  useEffect(() => setQInput(filter.q ?? ''), [filter.q]);

  function setFilter(patch: Partial<TicketFilter>) {
    // The URL as it is now, not as the last render saw it: two changes in one frame both count.
    navigate(urlFor({ ...filterFromUrl(location.search), ...patch }), true);
  }

  return (
    <section>
      <div class="page-head">
        <PageTitle>Tickets</PageTitle>
        <a class="button primary" href="/tickets/new">
          New ticket
        </a>
      </div>
      {staff && me && (
        <nav class="views" aria-label="Views">
          {[
            ['Mine', `/tickets?assignee_id=${me.id}`],
            ['Unassigned', '/tickets?assignee_id=none'],
            ['Open', '/tickets?status=open'],
            ['All', '/tickets'],
          ].map(([name, href]) => (
            <a key={name} href={href} class="view" aria-current={fullPath === href ? 'page' : undefined} data-view={name}>
              {name} <span class="view-count" data-testid={`count-${name.toLowerCase()}`}>{counts[name] ?? ''}</span>
            </a>
          ))}
        </nav>
      )}
      <details class="filters-fold" open={typeof matchMedia === 'undefined' || matchMedia('(min-width: 700px)').matches}>
      <summary>Filters and search</summary>
      <form
        class="filters"
        role="search"
        aria-label="Ticket filters"
        onSubmit={(e) => {
          e.preventDefault();
          const text = String(new FormData(e.currentTarget).get('q') ?? '').trim();
          // "#1042" is a ticket number.
          const n = /^#(\d+)$/.exec(text);
          setFilter(n ? { q: '', number: n[1] } : { q: text, number: '' });
        }}
      >
        <label>
          Status
          <select name="status" value={filter.status} onChange={(e) => setFilter({ status: e.currentTarget.value })}>
            <option value="">Any</option>
            {STATUSES.map((v) => (
              <option value={v}>{label(v)}</option>
            ))}
          </select>
        </label>
        <label>
          Priority
          <select name="priority" value={filter.priority} onChange={(e) => setFilter({ priority: e.currentTarget.value })}>
            <option value="">Any</option>
            {PRIORITIES.map((v) => (
              <option value={v}>{label(v)}</option>
            ))}
          </select>
        </label>
        {staff && (
          <label>
            Assignee
            <select name="assignee_id" value={filter.assignee_id} onChange={(e) => setFilter({ assignee_id: e.currentTarget.value })}>
              <option value="">Anyone</option>
              <option value="none">Unassigned</option>
              {assignees.map((u) => (
                <option value={u.id}>{u.id === me?.id ? `Me (${u.name})` : u.name}</option>
              ))}
            </select>
          </label>
        )}
        <label class="grow">
          Search
          <input name="q" type="search" placeholder="Subject, description or #number" value={qInput} onInput={(e) => setQInput(e.currentTarget.value)} />
        </label>
        <button type="submit">Search</button>
      </form>
      </details>
      <ErrorBox error={error} />
      {staff && selected.size > 0 && (
        <div class="bulk card" role="region" aria-label="Bulk actions">
          <strong>{selected.size} selected</strong>
          <label>
            Set status
            <select value="" onChange={(e) => bulk({ status: e.currentTarget.value })}>
              <option value="">Choose…</option>
              {STATUSES.map((v) => (
                <option value={v}>{label(v)}</option>
              ))}
            </select>
          </label>
          <label>
            Set priority
            <select value="" onChange={(e) => bulk({ priority: e.currentTarget.value })}>
              <option value="">Choose…</option>
              {PRIORITIES.map((v) => (
                <option value={v}>{label(v)}</option>
              ))}
            </select>
          </label>
          <label>
            Assign to
            <select value="" onChange={(e) => e.currentTarget.value && bulk({ assignee_id: e.currentTarget.value === 'none' ? null : e.currentTarget.value })}>
              <option value="">Choose…</option>
              <option value="none">Nobody</option>
              {assignees.map((u) => (
                <option value={u.id}>{u.name}</option>
              ))}
            </select>
          </label>
          <button type="button" class="link" onClick={() => setSelected(new Set())}>
            Clear selection
          </button>
        </div>
      )}
      {staff && <p class="muted small keys">Keys: j/k move, Enter opens, x selects.</p>}
      {list.items.length === 0 && !loading ? (
        <p class="empty">No tickets match.</p>
      ) : (
        <ul class="ticket-list" aria-label="Tickets" aria-busy={loading}>
          {list.items.map((t, i) => (
            <li
              key={t.id}
              class={`ticket-row${i === cursorAt ? ' at' : ''}${selected.has(t.id) ? ' selected' : ''}${fresh.has(t.id) ? ' fresh' : ''}`}
              data-ticket-id={t.id}
            >
              {staff && (
                <input
                  type="checkbox"
                  class="select"
                  aria-label={`Select #${t.number}`}
                  checked={selected.has(t.id)}
                  onChange={() => toggle(t.id)}
                />
              )}
              <a href={`/tickets/${t.id}`} class="ticket-link" onClick={() => seenTicket(t.id)}>
                <span class="subject">
                  <span class="ticket-number">#{t.number}</span> {t.subject}
                  {fresh.has(t.id) && <span class="badge new-activity">New activity</span>}
                </span>
                <span class="meta">
                  <Badge kind="status" value={t.status} /> <Badge kind="priority" value={t.priority} />
                  <span class="muted">
                    {' '}
                    {t.requester_name || t.requester_email || t.source} · {staff ? `${staffName(t.assignee_id) ?? (t.assignee_id ? 'assigned' : 'unassigned')} · ` : ''}
                    {formatDate(t.updated_at)}
                  </span>
                  {staff && <PresenceDots ticketId={t.id} meId={me?.id} />}
                </span>
              </a>
            </li>
          ))}
        </ul>
      )}
      <div class="pager">
        {cursor && (
          <button type="button" onClick={() => load(true, cursor)} disabled={loading}>
            Load more
          </button>
        )}
        {loading && <span role="status">Loading…</span>}
      </div>
    </section>
  );
}

export function NewTicketPage() {
  const [subject, setSubject] = useState('');
  const [description, setDescription] = useState('');
  const [priority, setPriority] = useState('medium');
  const [category, setCategory] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(e: Event) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const t = await api.createTicket({ subject: subject.trim(), description, priority, ...(category.trim() ? { category: category.trim() } : {}) });
      navigate(`/tickets/${t.id}`);
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <section class="card narrow">
      <PageTitle>New ticket</PageTitle>
      <form onSubmit={submit}>
        <label>
          Subject
          <input name="subject" required maxLength={300} value={subject} onInput={(e) => setSubject(e.currentTarget.value)} />
        </label>
        <label>
          Description
          <textarea name="description" rows={6} required value={description} onInput={(e) => setDescription(e.currentTarget.value)} />
        </label>
        <div class="row">
          <label>
            Priority
            <select name="priority" value={priority} onChange={(e) => setPriority(e.currentTarget.value)}>
              {PRIORITIES.map((v) => (
                <option value={v}>{label(v)}</option>
              ))}
            </select>
          </label>
          <label>
            Category (optional)
            <input name="category" value={category} onInput={(e) => setCategory(e.currentTarget.value)} />
          </label>
        </div>
        <ErrorBox error={error} />
        <div class="actions">
          <button type="submit" class="primary" disabled={busy}>
            Open ticket
          </button>
          <a href="/tickets">Cancel</a>
        </div>
      </form>
    </section>
  );
}
