import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, api, downloadAttachment, errorText, uploadAttachment, type Attachment, type Comment, type Ticket } from '../api';
import { live } from '../live';
import { applyEvent, buildThreads, byCreated, emptyList, mergePage, newer, type ListState, type ThreadNode } from '../merge';
import { navigate } from '../router';
import { isStaff, session, toast, useStore } from '../store';
import { Badge, ErrorBox, PageTitle, PRIORITIES, STATUSES, Spinner, formatDate, formatSize, label } from '../ui';
import { useAssignees } from './tickets';

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
  const assignees = useAssignees(me);

  async function loadAll() {
    try {
      const [t, cs, as] = await Promise.all([api.ticket(id), loadAllComments(id), api.attachments(id)]);
      setTicket((cur) => newer(cur, t));
      setComments((cur) => mergePage(cur, cs, { place: byCreated }));
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
    const offs = [
      live.on('ticket.update', (ev) => {
        if (ev?.data?.id !== id) return;
        if (ev.action === 'deleted') setDeleted(true);
        else setTicket((cur) => newer(cur, ev.data));
      }),
      live.on('comment.update', (ev) => {
        if (ev?.data?.ticket_id !== id) return;
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
      <p>
        <a href="/tickets">← All tickets</a>
      </p>
      {deleted && (
        <p class="error" role="alert">
          This ticket was deleted.
        </p>
      )}
      <div class="page-head">
        <PageTitle>{ticket.subject}</PageTitle>
        <span class="meta">
          <span data-testid="ticket-status">
            <Badge kind="status" value={ticket.status} />
          </span>{' '}
          <Badge kind="priority" value={ticket.priority} />
        </span>
      </div>
      <p class="muted">
        Opened {formatDate(ticket.created_at)}
        {ticket.requester_email ? ` by ${ticket.requester_email}` : ''} · updated {formatDate(ticket.updated_at)}
        {ticket.category ? ` · ${ticket.category}` : ''}
      </p>
      <div class="description card">{ticket.description}</div>

      {staff && (
        <section class="card controls" aria-labelledby="controls-h">
          <h2 id="controls-h">Manage</h2>
          <div class="row">
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
            {me?.role === 'admin' || me?.role === 'agent' ? (
              <button type="button" class="danger" onClick={remove}>
                Delete ticket
              </button>
            ) : null}
          </div>
          {notice && (
            <p class="notice" role="status">
              {notice}
            </p>
          )}
        </section>
      )}

      <Attachments ticketId={ticket.id} list={attachments.items} meId={me?.id} staff={staff} />

      <section aria-labelledby="comments-h" class="comments">
        <h2 id="comments-h">Conversation ({visibleComments.length})</h2>
        <CommentThreads ticket={ticket} comments={visibleComments} meId={me?.id ?? ''} staff={staff} />
      </section>
    </article>
  );
}

async function loadAllComments(ticketId: string): Promise<Comment[]> {
  const out: Comment[] = [];
  let cursor: string | undefined;
  for (let i = 0; i < 20; i++) {
    const page = await api.comments(ticketId, cursor);
    out.push(...page.items);
    if (!page.next_cursor) break;
    cursor = page.next_cursor;
  }
  return out;
}

function CommentThreads({ ticket, comments, meId, staff }: { ticket: Ticket; comments: Comment[]; meId: string; staff: boolean }) {
  const [replyTo, setReplyTo] = useState<Comment | null>(null);
  const threads = buildThreads(comments);
  const who = (c: Comment) => (c.author_id === meId ? 'You' : c.author_id === ticket.requester_id ? 'Requester' : 'Support');

  const renderNode = (node: ThreadNode<Comment>) => {
    const c = node.item;
    return (
      <li key={c.id} class={`comment${c.internal ? ' internal' : ''}`} data-comment-id={c.id}>
        <div class="comment-head">
          <strong>{who(c)}</strong> <span class="muted">{formatDate(c.created_at)}</span>
          {c.internal && <span class="badge internal-note">Internal note</span>}
        </div>
        <div class="comment-body">{c.content}</div>
        <div class="comment-actions">
          <button type="button" class="link" onClick={() => setReplyTo(c)} aria-label={`Reply to ${who(c)}'s comment`}>
            Reply
          </button>
          {(c.author_id === meId || staff) && (
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
        {node.children.length > 0 && (
          <ul class="replies">
            {node.children.map((n) => (
              renderNode(n)
            ))}
          </ul>
        )}
      </li>
    );
  };

  return (
    <>
      {threads.length === 0 ? (
        <p class="empty">No comments yet.</p>
      ) : (
        <ul class="thread">
          {threads.map((n) => (
            renderNode(n)
          ))}
        </ul>
      )}
      <CommentForm ticketId={ticket.id} staff={staff} replyTo={replyTo} clearReply={() => setReplyTo(null)} who={who} />
    </>
  );
}

function CommentForm({ ticketId, staff, replyTo, clearReply, who }: { ticketId: string; staff: boolean; replyTo: Comment | null; clearReply: () => void; who: (c: Comment) => string }) {
  const [content, setContent] = useState('');
  const [internal, setInternal] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const ref = useRef<HTMLTextAreaElement>(null);

  useEffect(() => {
    if (replyTo) ref.current?.focus();
  }, [replyTo]);

  async function submit(e: Event) {
    e.preventDefault();
    if (!content.trim()) return;
    setBusy(true);
    setError(null);
    try {
      await api.addComment(ticketId, { content, parent_id: replyTo?.id ?? null, internal: staff && internal });
      setContent('');
      setInternal(false);
      clearReply();
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <form class="card comment-form" onSubmit={submit} aria-label="Add a comment">
      {replyTo && (
        <p class="replying">
          Replying to {who(replyTo)}: <q>{replyTo.content.slice(0, 80)}</q>{' '}
          <button type="button" class="link" onClick={clearReply}>
            Cancel reply
          </button>
        </p>
      )}
      <label>
        {replyTo ? 'Your reply' : 'Comment'}
        <textarea ref={ref} name="content" rows={3} required value={content} onInput={(e) => setContent(e.currentTarget.value)} />
      </label>
      {staff && (
        <label class="check">
          <input type="checkbox" name="internal" checked={internal} onChange={(e) => setInternal(e.currentTarget.checked)} />
          Internal note (visible to staff only)
        </label>
      )}
      <ErrorBox error={error} />
      <button type="submit" class="primary" disabled={busy}>
        {internal ? 'Add internal note' : replyTo ? 'Reply' : 'Comment'}
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
