import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, errorText, type Ticket, type User } from '../api';
import { live } from '../live';
import { applyEvent, emptyList, mergePage, ticketMatches, type ListState, type TicketFilter } from '../merge';
import { navigate, usePath } from '../router';
import { isStaff, session, useStore } from '../store';
import { Badge, ErrorBox, PageTitle, PRIORITIES, STATUSES, formatDate, label } from '../ui';

const PAGE_SIZE = 25;

function filterFromUrl(search: string): TicketFilter {
  const p = new URLSearchParams(search);
  return { status: p.get('status') ?? '', priority: p.get('priority') ?? '', assignee_id: p.get('assignee_id') ?? '', q: p.get('q') ?? '' };
}

function urlFor(f: TicketFilter): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(f)) if (v) p.set(k, v);
  const s = p.toString();
  return `/tickets${s ? `?${s}` : ''}`;
}

/** Staff who can be assigned (admins can list users; agents see only themselves). */
export function useAssignees(me: User | undefined): User[] {
  const [staff, setStaff] = useState<User[]>(me && isStaff(me) ? [me] : []);
  useEffect(() => {
    if (me?.role !== 'admin') return;
    api
      .users({ is_active: 'true' })
      .then((p) => setStaff(p.items.filter((u) => u.role !== 'customer')))
      .catch(() => {});
  }, [me?.id, me?.role]);
  return staff;
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

  const matches = (t: Ticket) => ticketMatches(t, filterRef.current);

  async function load(append: boolean, from?: string | null) {
    setLoading(true);
    setError(null);
    const f = filterRef.current;
    try {
      const page = await api.tickets({ ...f, limit: PAGE_SIZE, cursor: append ? (from ?? undefined) : undefined });
      if (f !== filterRef.current) return;
      setList((cur) => mergePage(append ? cur : { items: [], tombstones: cur.tombstones }, page.items, { append, matches }));
      setCursor(page.next_cursor);
    } catch (e) {
      setError(errorText(e));
    } finally {
      setLoading(false);
    }
  }

  // Live: every ticket event is merged from its data, no refetch.
  useEffect(() => {
    const off = live.on('ticket.update', (ev) => setList((cur) => applyEvent(cur, ev, { matches: (t) => ticketMatches(t, filterRef.current), place: 'top' })));
    const offResync = live.onResync(() => void load(false));
    return () => {
      off();
      offResync();
    };
  }, []);

  useEffect(() => {
    setQInput(filter.q ?? '');
    void load(false);
  }, [search]);

  function setFilter(patch: Partial<TicketFilter>) {
    navigate(urlFor({ ...filter, ...patch }), true);
  }

  return (
    <section>
      <div class="page-head">
        <PageTitle>Tickets</PageTitle>
        <a class="button primary" href="/tickets/new">
          New ticket
        </a>
      </div>
      <form
        class="filters"
        role="search"
        aria-label="Ticket filters"
        onSubmit={(e) => {
          e.preventDefault();
          setFilter({ q: qInput.trim() });
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
          <input name="q" type="search" placeholder="Subject or description" value={qInput} onInput={(e) => setQInput(e.currentTarget.value)} />
        </label>
        <button type="submit">Search</button>
      </form>
      <ErrorBox error={error} />
      {list.items.length === 0 && !loading ? (
        <p class="empty">No tickets match.</p>
      ) : (
        <ul class="ticket-list" aria-label="Tickets" aria-busy={loading}>
          {list.items.map((t) => (
            <li key={t.id} class="ticket-row" data-ticket-id={t.id}>
              <a href={`/tickets/${t.id}`} class="ticket-link">
                <span class="subject">{t.subject}</span>
                <span class="meta">
                  <Badge kind="status" value={t.status} /> <Badge kind="priority" value={t.priority} />
                  <span class="muted">
                    {' '}
                    {t.requester_email ?? ''} · {formatDate(t.created_at)}
                  </span>
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
