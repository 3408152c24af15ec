import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, api, errorText, type Article } from '../api';
import { live } from '../live';
import { InFlight, applyEvent, emptyList, mergePage, newer, textMatches, type ListState } from '../merge';
import { navigate } from '../router';
import { isStaff, session, toast, useStore } from '../store';
import { Badge, ErrorBox, PageTitle, Spinner, formatDate } from '../ui';

function articleMatches(a: Article, q: string, status: string): boolean {
  if (status && a.status !== status) return false;
  return !q.trim() || textMatches(`${a.title}\n${a.body}\n${a.category}\n${a.tags.join(' ')}`, q);
}

export function KbListPage() {
  const s = useStore(session);
  const staff = isStaff(s?.user);
  const [q, setQ] = useState('');
  const [applied, setApplied] = useState({ q: '', status: '' });
  const [list, setList] = useState<ListState<Article>>(emptyList());
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string | null>(null);
  const ref = useRef(applied);
  ref.current = applied;
  const inFlight = useRef(new InFlight<Article>()).current;
  const matches = (a: Article) => articleMatches(a, ref.current.q, ref.current.status);
  const stays = (a: Article) => articleMatches(a, '', ref.current.status);

  async function load() {
    setLoading(true);
    setError(null);
    const f = ref.current;
    inFlight.start();
    try {
      const page = await api.articles({ q: f.q || undefined, status: f.status || undefined, limit: '100' });
      if (f !== ref.current) return;
      setList((cur) => mergePage(inFlight.take(cur.tombstones), page.items, { matches, stays }));
    } catch (e) {
      inFlight.take({});
      setError(errorText(e));
    } finally {
      setLoading(false);
    }
  }

  useEffect(() => {
    const offs = [
      live.on('kb.update', (ev) => {
        if (ev?.action !== 'deleted') inFlight.saw(ev?.data);
        setList((cur) => applyEvent(cur, ev, { matches, stays, place: 'top' }));
      }),
      live.onResync(() => void load()),
    ];
    return () => offs.forEach((o) => o());
  }, []);

  useEffect(() => {
    void load();
  }, [applied, s?.user.id]);

  return (
    <section>
      <div class="page-head">
        <PageTitle>Knowledge base</PageTitle>
        {staff && (
          <a class="button primary" href="/kb/new">
            Write an article
          </a>
        )}
      </div>
      <form
        class="filters"
        role="search"
        aria-label="Article search"
        onSubmit={(e) => {
          e.preventDefault();
          setApplied({ ...applied, q: q.trim() });
        }}
      >
        <label class="grow">
          Search articles
          <input type="search" name="q" value={q} onInput={(e) => setQ(e.currentTarget.value)} />
        </label>
        {staff && (
          <label>
            Status
            <select name="status" value={applied.status} onChange={(e) => setApplied({ ...applied, status: e.currentTarget.value })}>
              <option value="">Any</option>
              <option value="draft">Draft</option>
              <option value="published">Published</option>
            </select>
          </label>
        )}
        <button type="submit">Search</button>
      </form>
      <ErrorBox error={error} />
      {list.items.length === 0 && !loading ? (
        <p class="empty">No articles found.</p>
      ) : (
        <ul class="article-list" aria-busy={loading}>
          {list.items.map((a) => (
            <li key={a.id} class="card">
              <a href={`/kb/${a.id}`} class="article-title">
                {a.title}
              </a>{' '}
              {staff && <Badge kind="kb" value={a.status} />}
              <p class="muted excerpt">{a.body.slice(0, 180)}</p>
            </li>
          ))}
        </ul>
      )}
      {loading && <Spinner />}
    </section>
  );
}

export function KbArticlePage({ id }: { id: string }) {
  const s = useStore(session);
  const staff = isStaff(s?.user);
  const [article, setArticle] = useState<Article | null>(null);
  const [gone, setGone] = useState(false);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    setArticle(null);
    setGone(false);
    const off = live.on('kb.update', (ev) => {
      if (ev?.data?.id !== id) return;
      if (ev.action === 'deleted') setGone(true);
      else {
        setGone(false);
        setArticle((cur) => newer(cur, ev.data));
      }
    });
    api
      .article(id)
      .then((a) => setArticle((cur) => newer(cur, a)))
      .catch((e) => setError(e instanceof ApiError && e.status === 404 ? 'This article does not exist or is not published.' : errorText(e)));
    return off;
  }, [id]);

  if (error) return <ErrorBox error={error} />;
  if (!article) return <Spinner />;
  return (
    <article class="kb-article">
      <p>
        <a href="/kb">← Knowledge base</a>
      </p>
      {gone && (
        <p class="notice" role="status">
          This article was removed or unpublished.
        </p>
      )}
      <div class="page-head">
        <PageTitle>{article.title}</PageTitle>
        {staff && (
          <a class="button" href={`/kb/${article.id}/edit`}>
            Edit
          </a>
        )}
      </div>
      <p class="muted">
        {staff && <Badge kind="kb" value={article.status} />} {article.category}
        {article.published_at ? ` · published ${formatDate(article.published_at)}` : ''}
        {article.tags.length ? ` · ${article.tags.join(', ')}` : ''}
      </p>
      <div class="article-body">{article.body}</div>
    </article>
  );
}

export function KbEditorPage({ id }: { id?: string }) {
  const [article, setArticle] = useState<Article | null>(null);
  const [title, setTitle] = useState('');
  const [body, setBody] = useState('');
  const [category, setCategory] = useState('');
  const [tags, setTags] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    if (!id) return;
    api
      .article(id)
      .then((a) => {
        setArticle(a);
        setTitle(a.title);
        setBody(a.body);
        setCategory(a.category);
        setTags(a.tags.join(', '));
      })
      .catch((e) => setError(errorText(e)));
  }, [id]);

  async function save(status: 'draft' | 'published') {
    setBusy(true);
    setError(null);
    const fields = {
      title: title.trim(),
      body,
      category: category.trim() || undefined,
      tags: tags
        .split(',')
        .map((t) => t.trim())
        .filter(Boolean),
      status,
    };
    try {
      const saved = article ? await api.updateArticle(article.id, fields, article.version) : await api.createArticle(fields);
      setArticle(saved);
      toast(status === 'published' ? 'Article published' : 'Draft saved');
      if (!article || status === 'published') navigate(`/kb/${saved.id}`, !article);
    } catch (e) {
      setError(e instanceof ApiError && e.status === 409 ? 'Someone else changed this article meanwhile. Reload to see their version.' : errorText(e));
    } finally {
      setBusy(false);
    }
  }

  async function remove() {
    if (!article || !confirm('Delete this article?')) return;
    try {
      await api.deleteArticle(article.id);
      navigate('/kb');
    } catch (e) {
      setError(errorText(e));
    }
  }

  if (id && !article && !error) return <Spinner />;
  return (
    <section class="card">
      <PageTitle>{article ? 'Edit article' : 'New article'}</PageTitle>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void save('draft');
        }}
      >
        <label>
          Title
          <input name="title" required value={title} onInput={(e) => setTitle(e.currentTarget.value)} />
        </label>
        <div class="row">
          <label>
            Category
            <input name="category" value={category} onInput={(e) => setCategory(e.currentTarget.value)} />
          </label>
          <label class="grow">
            Tags (comma separated)
            <input name="tags" value={tags} onInput={(e) => setTags(e.currentTarget.value)} />
          </label>
        </div>
        <label>
          Body
          <textarea name="body" rows={14} required value={body} onInput={(e) => setBody(e.currentTarget.value)} />
        </label>
        {article && <p class="muted">Currently: {article.status}</p>}
        <ErrorBox error={error} />
        <div class="actions">
          <button type="submit" disabled={busy}>
            {article?.status === 'published' ? 'Unpublish (save as draft)' : 'Save draft'}
          </button>
          <button
            type="button"
            class="primary"
            disabled={busy}
            onClick={(e) => {
              const form = (e.currentTarget as HTMLButtonElement).form;
              if (form && !form.reportValidity()) return;
              void save('published');
            }}
          >
            Publish
          </button>
          {article && (
            <button type="button" class="danger" onClick={remove}>
              Delete
            </button>
          )}
        </div>
      </form>
    </section>
  );
}
