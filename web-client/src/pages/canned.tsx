import { useEffect, useState } from 'preact/hooks';
import { api, errorText, type CannedReply } from '../api';
import { Markdown } from '../markdown';
import { toast } from '../store';
import { ErrorBox, PageTitle, Spinner } from '../ui';

export const PLACEHOLDERS = ['{{requester.name}}', '{{requester.email}}', '{{ticket.number}}', '{{ticket.subject}}', '{{agent.name}}'];

/** Staff write the answers they give again and again. */
export function CannedRepliesPage() {
  const [list, setList] = useState<CannedReply[] | null>(null);
  const [editing, setEditing] = useState<CannedReply | null>(null);
  const [title, setTitle] = useState('');
  const [body, setBody] = useState('');
  const [error, setError] = useState<string | null>(null);

  const load = () => api.cannedReplies().then(setList, (e) => setError(errorText(e)));
  useEffect(() => void load(), []);

  function edit(r: CannedReply | null) {
    setEditing(r);
    setTitle(r?.title ?? '');
    setBody(r?.body ?? '');
  }

  async function save(e: Event) {
    e.preventDefault();
    setError(null);
    try {
      if (editing) await api.updateCannedReply(editing.id, { title: title.trim(), body }, editing.version);
      else await api.createCannedReply({ title: title.trim(), body });
      toast(editing ? 'Canned reply saved' : 'Canned reply added');
      edit(null);
      await load();
    } catch (err) {
      setError(errorText(err));
    }
  }

  async function remove(r: CannedReply) {
    if (!confirm(`Delete the canned reply "${r.title}"?`)) return;
    try {
      await api.deleteCannedReply(r.id);
      await load();
    } catch (err) {
      setError(errorText(err));
    }
  }

  return (
    <section>
      <PageTitle>Canned replies</PageTitle>
      <form class="card" onSubmit={save} aria-labelledby="canned-form-h">
        <h2 id="canned-form-h">{editing ? `Edit “${editing.title}”` : 'New canned reply'}</h2>
        <label>
          Title
          <input name="title" required maxLength={200} value={title} onInput={(e) => setTitle(e.currentTarget.value)} />
        </label>
        <label>
          Text (Markdown)
          <textarea name="body" rows={5} required value={body} onInput={(e) => setBody(e.currentTarget.value)} aria-describedby="canned-hint" />
        </label>
        <p id="canned-hint" class="muted small">
          Filled in when used: {PLACEHOLDERS.map((p) => <code key={p}>{p} </code>)}
        </p>
        <ErrorBox error={error} />
        <div class="actions">
          <button type="submit" class="primary">
            {editing ? 'Save' : 'Add canned reply'}
          </button>
          {editing && (
            <button type="button" onClick={() => edit(null)}>
              Cancel
            </button>
          )}
        </div>
      </form>
      {list === null ? (
        <Spinner />
      ) : list.length === 0 ? (
        <p class="empty">No canned replies yet.</p>
      ) : (
        <ul class="canned-list">
          {list.map((r) => (
            <li key={r.id} class="card" data-canned-id={r.id}>
              <div class="page-head">
                <h2 class="h3">{r.title}</h2>
                <span class="actions">
                  <button type="button" class="link" onClick={() => edit(r)}>
                    Edit <span class="sr-only">{r.title}</span>
                  </button>
                  <button type="button" class="link danger" onClick={() => remove(r)}>
                    Delete <span class="sr-only">{r.title}</span>
                  </button>
                </span>
              </div>
              <Markdown text={r.body} />
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
