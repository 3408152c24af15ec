import { useEffect, useRef, useState } from 'preact/hooks';
import {
  ApiError,
  api,
  downloadAttachment,
  errorText,
  uploadAttachment,
  type Article,
  type Attachment,
  type CannedReply,
  type Comment,
  type Ticket,
  type TimelineEntry,
} from '../api';
import { live } from '../live';
import { Markdown, fillPlaceholders } from '../markdown';
import { applyEvent, buildThreads, byCreated, emptyList, mergePage, newer, type ListState, type ThreadNode } from '../merge';
import { useStaff, useStaffName } from '../people';
import { AlsoReplying, PresenceBar } from '../presence';
import { navigate } from '../router';
import { isStaff, markTicketRead, session, ticketOnScreen, toast, useStore } from '../store';
import { Badge, ErrorBox, PageTitle, PRIORITIES, STATUSES, Spinner, formatDate, formatSize, label } from '../ui';

export function TicketPage({ id }: { id: string }) {
  const s = useStore(session);
  const me = s?.user;
  const staff = isStaff(me);
  const [ticket, setTicket] = useState<Ticket | null>(null);
  const [deleted, setDeleted] = useState(false);
  const [comments, setComments] = useState<ListState<Comment>>(emptyList());
  const [attachments, setAttachments] = useState<ListState<Attachment>>(emptyList());
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [timelineTick, setTimelineTick] = useState(0);
  // The newest event of this thread on screen: a public reply says it has seen up to here.
  const seen = useRef(0);
  const assignees = useStaff(me);

  async function loadAll() {
    try {
      const [t, cs, as] = await Promise.all([api.ticket(id), loadAllComments(id), api.attachments(id)]);
      seen.current = Math.max(seen.current, cs.position);
      setTicket((cur) => newer(cur, t));
      setComments((cur) => mergePage(cur, cs.items, { place: byCreated }));
      setAttachments((cur) => mergePage(cur, as, { place: byCreated }));
    } catch (e) {
      setError(e instanceof ApiError && e.status === 404 ? 'This ticket does not exist or you cannot see it.' : errorText(e));
    }
  }

  useEffect(() => {
    let active = true;
    setTicket(null);
    setDeleted(false);
    setComments(emptyList());
    setAttachments(emptyList());
    setError(null);
    seen.current = 0;
    ticketOnScreen.set(id);
    void markTicketRead(id);
    const saw = (ev: any) => {
      if (typeof ev?.event_id === 'number') seen.current = Math.max(seen.current, ev.event_id);
    };
    const offs = [
      live.on('ticket.update', (ev) => {
        if (ev?.data?.id !== id) return;
        saw(ev);
        if (ev.action === 'deleted') setDeleted(true);
        else setTicket((cur) => newer(cur, ev.data));
        setTimelineTick((n) => n + 1);
      }),
      live.on('comment.update', (ev) => {
        if (ev?.data?.ticket_id !== id) return;
        saw(ev);
        setComments((cur) => applyEvent(cur, ev, { place: byCreated }));
      }),
      live.on('attachment.update', (ev) => {
        if (ev?.data?.ticket_id !== id) return;
        setAttachments((cur) => applyEvent(cur, ev, { place: byCreated }));
      }),
      live.onResync(() => void loadAll()),
    ];
    const room = `ticket:${id}`;
    // Join the ticket's room before reading, so nothing falls between the read and the live stream.
    void live.join(room).then(() => {
      if (active) void loadAll();
    });
    return () => {
      active = false;
      if (ticketOnScreen.get() === id) ticketOnScreen.set(null);
      offs.forEach((off) => off());
      live.leave(room);
    };
  }, [id]);

  async function patch(change: Record<string, unknown>) {
    if (!ticket) return;
    setNotice(null);
    try {
      const updated = await api.updateTicket(ticket.id, change, ticket.version);
      setTicket((cur) => newer(cur, updated));
    } catch (e) {
      if (e instanceof ApiError && e.status === 409) {
        setNotice('Someone else changed this ticket first; showing the latest version. Please try again.');
        const latest = await api.ticket(id).catch(() => null);
        if (latest) setTicket((cur) => newer(cur, latest));
      } else setNotice(errorText(e));
    }
  }

  async function remove() {
    if (!ticket || !confirm('Delete this ticket with its comments and attachments?')) return;
    try {
      await api.deleteTicket(ticket.id);
      toast('Ticket deleted');
      navigate('/tickets');
    } catch (e) {
      setNotice(errorText(e));
    }
  }

  if (error) return <ErrorBox error={error} />;
  if (!ticket) return <Spinner />;

  const visibleComments = staff ? comments.items : comments.items.filter((c) => !c.internal);

  return (
    <article class="ticket-page" data-version={ticket.version}>
      <p class="back">
        <a href="/tickets">← All tickets</a>
      </p>
      {deleted && (
        <p class="error" role="alert">
          This ticket was deleted.
        </p>
      )}
      <div class="page-head">
        <PageTitle>
          <span class="ticket-number" data-testid="ticket-number">
            #{ticket.number}
          </span>{' '}
          {ticket.subject}
        </PageTitle>
        <span class="meta">
          <span data-testid="ticket-status">
            <Badge kind="status" value={ticket.status} />
          </span>{' '}
          <Badge kind="priority" value={ticket.priority} />
        </span>
      </div>
      <p class="muted opened">
        Opened {formatDate(ticket.created_at)} by <span data-testid="requester">{requesterLabel(ticket)}</span> · updated{' '}
        {formatDate(ticket.updated_at)}
      </p>
      <PresenceBar ticketId={ticket.id} staff={staff} meId={me?.id} />
      <div class="ticket-layout">
        <div class="conversation">
          <Markdown text={ticket.description || '(no description)'} class="description card" />
          <section aria-labelledby="comments-h" class="comments">
            <h2 id="comments-h">Conversation ({visibleComments.length})</h2>
            <CommentThreads ticket={ticket} comments={visibleComments} me={me!} staff={staff} seen={seen} />
          </section>
        </div>
        <aside class="side" aria-label="Ticket details">
          {staff && (
            <section class="card controls" aria-labelledby="controls-h">
              <h2 id="controls-h">Properties</h2>
              <label>
                Status
                <select name="status" value={ticket.status} onChange={(e) => patch({ status: e.currentTarget.value })}>
                  {STATUSES.map((v) => (
                    <option value={v}>{label(v)}</option>
                  ))}
                </select>
              </label>
              <label>
                Priority
                <select name="priority" value={ticket.priority} onChange={(e) => patch({ priority: e.currentTarget.value })}>
                  {PRIORITIES.map((v) => (
                    <option value={v}>{label(v)}</option>
                  ))}
                </select>
              </label>
              <label>
                Assignee
                <select name="assignee_id" value={ticket.assignee_id ?? ''} onChange={(e) => patch({ assignee_id: e.currentTarget.value || null })}>
                  <option value="">Unassigned</option>
                  {ticket.assignee_id && !assignees.some((u) => u.id === ticket.assignee_id) && <option value={ticket.assignee_id}>Someone else</option>}
                  {assignees.map((u) => (
                    <option value={u.id}>{u.id === me?.id ? `Me (${u.name})` : u.name}</option>
                  ))}
                </select>
              </label>
              <p class="muted small">
                Source: {ticket.source}
                {ticket.category ? ` · ${ticket.category}` : ''}
              </p>
              <button type="button" class="danger small-button" onClick={remove}>
                Delete ticket
              </button>
              {notice && (
                <p class="notice" role="status">
                  {notice}
                </p>
              )}
            </section>
          )}
          {staff && <Requester ticket={ticket} />}
          <Attachments ticketId={ticket.id} list={attachments.items} meId={me?.id} staff={staff} />
          {staff && <Suggestions ticketId={ticket.id} />}
          {staff && <Timeline ticketId={ticket.id} tick={timelineTick} />}
        </aside>
      </div>
    </article>
  );
}

function requesterLabel(t: Ticket): string {
  if (t.requester_name && t.requester_email) return `${t.requester_name} <${t.requester_email}>`;
  return t.requester_name || t.requester_email || 'an integration';
}

async function loadAllComments(ticketId: string): Promise<{ items: Comment[]; position: number }> {
  const out: Comment[] = [];
  let cursor: string | undefined;
  let position = 0;
  for (let i = 0; i < 20; i++) {
    const page = await api.comments(ticketId, cursor);
    if (i === 0) position = (page as any).position ?? 0;
    out.push(...page.items);
    if (!page.next_cursor) break;
    cursor = page.next_cursor;
  }
  return { items: out, position };
}

function Requester({ ticket }: { ticket: Ticket }) {
  const [others, setOthers] = useState<Ticket[] | null>(null);
  useEffect(() => {
    if (!ticket.requester_id) return setOthers([]);
    api
      .tickets({ requester_id: ticket.requester_id, limit: 6 })
      .then((p) => setOthers(p.items.filter((t) => t.id !== ticket.id).slice(0, 5)))
      .catch(() => setOthers([]));
  }, [ticket.id, ticket.requester_id]);
  return (
    <section class="card requester" aria-labelledby="req-h">
      <h2 id="req-h">Requester</h2>
      <p>
        <strong>{ticket.requester_name || 'No name'}</strong>
        <br />
        {ticket.requester_email ? <a href={`mailto:${ticket.requester_email}`}>{ticket.requester_email}</a> : <span class="muted">no email</span>}
      </p>
      {others && others.length > 0 && (
        <>
          <h3 class="h4">Their other tickets</h3>
          <ul class="plain">
            {others.map((t) => (
              <li key={t.id}>
                <a href={`/tickets/${t.id}`}>
                  #{t.number} {t.subject}
                </a>{' '}
                <Badge kind="status" value={t.status} />
              </li>
            ))}
          </ul>
        </>
      )}
    </section>
  );
}

function Suggestions({ ticketId }: { ticketId: string }) {
  const [list, setList] = useState<Article[] | null>(null);
  useEffect(() => {
    api.suggestedArticles(ticketId).then(setList, () => setList([]));
  }, [ticketId]);
  if (!list || list.length === 0) return null;
  return (
    <section class="card" aria-labelledby="kb-h">
      <h2 id="kb-h">Suggested articles</h2>
      <ul class="plain">
        {list.slice(0, 5).map((a) => (
          <li key={a.id}>
            <a href={`/kb/${a.id}`}>{a.title}</a>
          </li>
        ))}
      </ul>
    </section>
  );
}

function changeText(c: TimelineEntry['changes'][number]): string {
  const v = (x: string | null, name: string | null) => (c.field === 'assignee' || c.field === 'requester' ? name ?? (x ? 'someone' : 'nobody') : x ? label(x) : 'none');
  return `${label(c.field)}: ${v(c.from, c.from_name)} → ${v(c.to, c.to_name)}`;
}

function Timeline({ ticketId, tick }: { ticketId: string; tick: number }) {
  const [list, setList] = useState<TimelineEntry[] | null>(null);
  useEffect(() => {
    const t = setTimeout(() => api.timeline(ticketId).then(setList, () => setList([])), tick ? 150 : 0);
    return () => clearTimeout(t);
  }, [ticketId, tick]);
  return (
    <section class="card timeline" aria-labelledby="tl-h">
      <h2 id="tl-h">Timeline</h2>
      {list === null ? (
        <Spinner />
      ) : (
        <ol class="plain" data-testid="timeline">
          {list
            .slice()
            .reverse()
            .map((e) => (
              <li key={e.event_id}>
                <span class="muted small">{formatDate(e.at)}</span>
                <br />
                <strong>{e.actor_name ?? 'An integration'}</strong>{' '}
                {e.action === 'created' ? 'opened the ticket' : e.changes.map(changeText).join('; ')}
              </li>
            ))}
        </ol>
      )}
    </section>
  );
}

function CommentThreads({ ticket, comments, me, staff, seen }: { ticket: Ticket; comments: Comment[]; me: { id: string; name: string }; staff: boolean; seen: { current: number } }) {
  const [replyTo, setReplyTo] = useState<Comment | null>(null);
  const threads = buildThreads(comments);
  const staffName = useStaffName();
  const who = (c: Comment) =>
    c.author_id === me.id ? 'You' : c.author_id === ticket.requester_id ? ticket.requester_name || 'Requester' : staff ? staffName(c.author_id) ?? 'Support' : 'Support';

  const renderNode = (node: ThreadNode<Comment>) => {
    const c = node.item;
    return (
      <li key={c.id} class={`comment${c.internal ? ' internal' : ''}`} data-comment-id={c.id}>
        <div class="comment-head">
          <strong>{who(c)}</strong> <span class="muted">{formatDate(c.created_at)}</span>
          {c.internal && <span class="badge internal-note">Internal note</span>}
        </div>
        <Markdown text={c.content} class="comment-body" />
        <div class="comment-actions">
          <button type="button" class="link" onClick={() => setReplyTo(c)} aria-label={`Reply to ${who(c)}'s comment`}>
            Reply
          </button>
          {(c.author_id === me.id || staff) && (
            <button
              type="button"
              class="link danger"
              onClick={() => {
                if (confirm('Delete this comment?')) api.deleteComment(c.id).catch((e) => toast(errorText(e)));
              }}
            >
              Delete
            </button>
          )}
        </div>
        {node.children.length > 0 && <ul class="replies">{node.children.map((n) => renderNode(n))}</ul>}
      </li>
    );
  };

  return (
    <>
      <Composer ticket={ticket} staff={staff} me={me} replyTo={replyTo} clearReply={() => setReplyTo(null)} who={who} seen={seen} />
      {threads.length === 0 ? <p class="empty">No comments yet.</p> : <ul class="thread">{threads.map((n) => renderNode(n))}</ul>}
    </>
  );
}

const draftKey = (ticketId: string) => `ticketwire.draft.${ticketId}`;

function Composer({
  ticket,
  staff,
  me,
  replyTo,
  clearReply,
  who,
  seen,
}: {
  ticket: Ticket;
  staff: boolean;
  me: { id: string; name: string };
  replyTo: Comment | null;
  clearReply: () => void;
  who: (c: Comment) => string;
  seen: { current: number };
}) {
  const [content, setContent] = useState(() => localStorage.getItem(draftKey(ticket.id)) ?? '');
  const [internal, setInternal] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [missed, setMissed] = useState<Comment[] | null>(null);
  const [canned, setCanned] = useState<CannedReply[] | null>(null);
  const [files, setFiles] = useState<File[]>([]);
  const ref = useRef<HTMLTextAreaElement>(null);
  const fileRef = useRef<HTMLInputElement>(null);

  useEffect(() => {
    if (!replyTo) return;
    // Replying to an internal note starts as an internal note; the choice stays visible.
    if (staff) setInternal(replyTo.internal);
    ref.current?.focus();
  }, [replyTo]);

  useEffect(() => {
    if (staff) api.cannedReplies().then(setCanned, () => setCanned([]));
  }, [staff]);

  function setDraft(text: string) {
    setContent(text);
    try {
      if (text.trim()) localStorage.setItem(draftKey(ticket.id), text);
      else localStorage.removeItem(draftKey(ticket.id));
    } catch {
      /* storage off */
    }
  }

  function insertCanned(id: string) {
    const r = canned?.find((x) => x.id === id);
    if (!r) return;
    const text = fillPlaceholders(r.body, {
      'requester.name': ticket.requester_name,
      'requester.email': ticket.requester_email,
      'ticket.number': ticket.number,
      'ticket.subject': ticket.subject,
      'agent.name': me.name,
    });
    setDraft(content.trim() ? `${content.trimEnd()}\n\n${text}` : text);
    ref.current?.focus();
  }

  async function send() {
    if (!content.trim() || busy) return;
    setBusy(true);
    setError(null);
    const asInternal = staff && internal;
    try {
      await api.addComment(ticket.id, {
        content,
        parent_id: replyTo?.id ?? null,
        internal: asInternal,
        ...(asInternal || !seen.current ? {} : { seen_event_id: seen.current }),
      });
      for (const f of files) await uploadAttachment(ticket.id, f, () => {}).promise;
      setDraft('');
      setFiles([]);
      if (fileRef.current) fileRef.current.value = '';
      setMissed(null);
      setInternal(false);
      clearReply();
    } catch (err) {
      if (err instanceof ApiError && err.code === 'new_activity') {
        const body = err.body ?? {};
        seen.current = Math.max(seen.current, Number(body.position) || 0);
        setMissed((body.missed ?? []).filter((e: any) => e?.kind === 'comment' && e?.data?.content).map((e: any) => e.data as Comment));
      } else setError(errorText(err));
    } finally {
      setBusy(false);
    }
  }

  const mode = staff && internal ? 'internal' : 'public';
  return (
    <form
      class={`card composer composer-${mode}`}
      onSubmit={(e) => {
        e.preventDefault();
        void send();
      }}
      aria-label="Write a reply"
    >
      <AlsoReplying ticketId={ticket.id} />
      {missed && (
        <div class="notice" role="alert" data-testid="new-activity">
          <p>
            <strong>New messages arrived: review them, then send.</strong> Your draft is kept.
          </p>
          {missed.length > 0 && (
            <ul class="plain missed">
              {missed.map((c) => (
                <li key={c.id}>
                  <Markdown text={c.content} />
                </li>
              ))}
            </ul>
          )}
        </div>
      )}
      {replyTo && (
        <p class="replying">
          Replying to {who(replyTo)}: <q>{replyTo.content.slice(0, 80)}</q>{' '}
          <button type="button" class="link" onClick={clearReply}>
            Cancel reply
          </button>
        </p>
      )}
      {staff && (
        <fieldset class="visibility">
          <legend>Who sees it</legend>
          <label class="check">
            <input type="radio" name="visibility" value="public" checked={!internal} onChange={() => setInternal(false)} />
            Public reply (the requester sees it)
          </label>
          <label class="check">
            <input type="radio" name="visibility" value="internal" checked={internal} onChange={() => setInternal(true)} />
            Internal note (staff only)
          </label>
        </fieldset>
      )}
      {mode === 'internal' && (
        <p class="internal-warning" data-testid="internal-warning">
          This will be an internal note: the requester will not see it.
        </p>
      )}
      <label>
        Message
        <textarea
          ref={ref}
          name="content"
          rows={4}
          required
          value={content}
          onInput={(e) => setDraft(e.currentTarget.value)}
          onKeyDown={(e) => {
            if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
              e.preventDefault();
              void send();
            }
          }}
          aria-describedby="composer-hint"
        />
      </label>
      <p id="composer-hint" class="muted small">
        Markdown: **bold**, *italic*, `code`, lists, [links](https://…). Ctrl+Enter sends.
      </p>
      <div class="composer-tools">
        {staff && canned && canned.length > 0 && (
          <label>
            Canned reply
            <select
              name="canned"
              value=""
              onChange={(e) => {
                insertCanned(e.currentTarget.value);
                e.currentTarget.value = '';
              }}
            >
              <option value="">Insert…</option>
              {canned.map((r) => (
                <option value={r.id}>{r.title}</option>
              ))}
            </select>
          </label>
        )}
        <label>
          Attach files
          <input ref={fileRef} type="file" name="files" multiple onChange={(e) => setFiles([...(e.currentTarget.files ?? [])])} />
        </label>
      </div>
      <ErrorBox error={error} />
      <button type="submit" class={mode === 'internal' ? 'internal-button' : 'primary'} disabled={busy}>
        {mode === 'internal' ? 'Add internal note' : staff ? 'Send public reply' : 'Send'}
      </button>
    </form>
  );
}

function Attachments({ ticketId, list, meId, staff }: { ticketId: string; list: Attachment[]; meId?: string; staff: boolean }) {
  const [progress, setProgress] = useState<number | null>(null);
  const [error, setError] = useState<string | null>(null);
  const fileRef = useRef<HTMLInputElement>(null);

  async function upload(e: Event) {
    e.preventDefault();
    const file = fileRef.current?.files?.[0];
    if (!file) {
      setError('Choose a file first.');
      return;
    }
    setError(null);
    setProgress(0);
    try {
      await uploadAttachment(ticketId, file, setProgress).promise;
      if (fileRef.current) fileRef.current.value = '';
      toast(`Uploaded ${file.name}`);
    } catch (err) {
      setError(errorText(err));
    } finally {
      setProgress(null);
    }
  }

  return (
    <section class="card attachments" aria-labelledby="att-h">
      <h2 id="att-h">Attachments ({list.length})</h2>
      {list.length > 0 && (
        <ul>
          {list.map((a) => (
            <li key={a.id} data-attachment-id={a.id}>
              <span class="filename">{a.filename}</span> <span class="muted">{formatSize(a.size_bytes)}</span>{' '}
              <button type="button" class="link" onClick={() => downloadAttachment(a).catch((e) => setError(errorText(e)))}>
                Download <span class="sr-only">{a.filename}</span>
              </button>
              {(staff || a.uploader_id === meId) && (
                <button
                  type="button"
                  class="link danger"
                  onClick={() => {
                    if (confirm(`Delete ${a.filename}?`)) api.deleteAttachment(a.id).catch((err) => setError(errorText(err)));
                  }}
                >
                  Delete <span class="sr-only">{a.filename}</span>
                </button>
              )}
            </li>
          ))}
        </ul>
      )}
      <form class="row" onSubmit={upload}>
        <label>
          Attach a file
          <input ref={fileRef} type="file" name="file" />
        </label>
        <button type="submit" disabled={progress !== null}>
          Upload
        </button>
        {progress !== null && (
          <progress max={1} value={progress} aria-label="Upload progress">
            {Math.round(progress * 100)}%
          </progress>
        )}
      </form>
      <ErrorBox error={error} />
    </section>
  );
}
