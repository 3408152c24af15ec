import { useEffect, useState } from 'preact/hooks';
import { ApiError, api, errorText, type Delivery, type Endpoint, type Preferences } from '../api';
import { live } from '../live';
import { isStaff, session, toast, useStore } from '../store';
import { ErrorBox, PageTitle, Spinner, formatDate } from '../ui';

export const BUILTIN_RECEIVER = '/api/notifications/webhooks/notifications';

interface Received {
  key: string;
  at: string;
  message: string;
  type: string;
}

export function WebhookPage() {
  const [endpoint, setEndpoint] = useState<Endpoint | null | undefined>(undefined);
  const [url, setUrl] = useState(BUILTIN_RECEIVER);
  const [secret, setSecret] = useState<string | null>(null);
  const [deliveries, setDeliveries] = useState<Delivery[]>([]);
  const [open, setOpen] = useState<Record<string, Delivery | 'loading'>>({});
  const [received, setReceived] = useState<Received[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function loadDeliveries() {
    try {
      setDeliveries((await api.deliveries()).items);
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 404)) setError(errorText(e));
    }
  }

  useEffect(() => {
    api
      .webhook()
      .then((ep) => {
        setEndpoint(ep);
        setUrl(ep.webhook_url);
      })
      .catch((e) => {
        if (e instanceof ApiError && e.status === 404) setEndpoint(null);
        else setError(errorText(e));
      });
    void loadDeliveries();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const off = live.on('webhook', (payload) => {
      const n = payload?.notification ?? {};
      setReceived((cur) => [
        {
          key: `${payload?.event_id ?? ''}:${n.id ?? Math.random()}`,
          at: new Date().toISOString(),
          message: String(n.message ?? payload?.event ?? 'webhook received'),
          type: String(payload?.event ?? n.kind ?? 'webhook'),
        },
        ...cur.slice(0, 49),
      ]);
      reload();
    });
    // A new notification means a new delivery; a received webhook means one succeeded. Re-read
    // the log once per such event (event-driven, never polling).
    const reload = () => {
      clearTimeout(timer);
      timer = setTimeout(() => void loadDeliveries(), 400);
    };
    const offNote = live.on('notification', reload);
    return () => {
      off();
      offNote();
      clearTimeout(timer);
    };
  }, []);

  async function save(e: Event) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const ep = await api.setWebhook(url.trim());
      const first = !endpoint;
      setEndpoint(ep);
      if (first || ep.secret !== endpoint?.secret) setSecret(ep.secret);
      toast('Webhook saved');
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  }

  async function test() {
    setError(null);
    try {
      await api.testWebhook();
      // The delivery row is written by the dispatcher a moment later; its `webhook` event (or the
      // notification) refreshes the log.
      toast('Test delivery queued');
    } catch (err) {
      setError(errorText(err));
    }
  }

  async function remove() {
    if (!confirm('Remove your webhook?')) return;
    try {
      await api.deleteWebhook();
      setEndpoint(null);
      setSecret(null);
      setUrl(BUILTIN_RECEIVER);
      toast('Webhook removed');
    } catch (err) {
      setError(errorText(err));
    }
  }

  async function toggle(d: Delivery) {
    if (open[d.id]) {
      const { [d.id]: _, ...rest } = open;
      setOpen(rest);
      return;
    }
    setOpen({ ...open, [d.id]: 'loading' });
    try {
      const full = await api.delivery(d.id);
      setOpen((o) => ({ ...o, [d.id]: full }));
    } catch (err) {
      setError(errorText(err));
    }
  }

  if (endpoint === undefined && !error) return <Spinner />;

  return (
    <section>
      <PageTitle>Settings</PageTitle>
      <NotificationPreferences />
      <form class="card" onSubmit={save} aria-labelledby="wh-h">
        <h2 id="wh-h">Webhook endpoint</h2>
        <p class="muted">
          {endpoint ? (
            <>
              Status: <strong>{endpoint.enabled ? 'enabled' : 'disabled'}</strong>
              {endpoint.disabled_reason ? ` (${endpoint.disabled_reason})` : ''}
            </>
          ) : (
            'No webhook set.'
          )}
        </p>
        <label>
          Webhook URL
          <input name="webhook_url" required value={url} onInput={(e) => setUrl(e.currentTarget.value)} aria-describedby="wh-hint" />
        </label>
        <p id="wh-hint" class="muted small">
          An https URL of yours, or <code>{BUILTIN_RECEIVER}</code> for the built-in receiver (its deliveries show up live below).
        </p>
        {secret && (
          <div class="secret" role="status">
            <p>
              <strong>Signing secret</strong> (shown once; copy it now):
            </p>
            <code data-testid="webhook-secret">{secret}</code>
          </div>
        )}
        <ErrorBox error={error} />
        <div class="actions">
          <button type="submit" class="primary" disabled={busy}>
            Save
          </button>
          <button type="button" onClick={test} disabled={!endpoint}>
            Send test
          </button>
          <button type="button" class="danger" onClick={remove} disabled={!endpoint}>
            Delete
          </button>
        </div>
      </form>

      <section class="card" aria-labelledby="recv-h">
        <h2 id="recv-h">Received live by the built-in receiver</h2>
        {received.length === 0 ? (
          <p class="muted">Nothing received yet.</p>
        ) : (
          <ul class="received" aria-live="polite">
            {received.map((r) => (
              <li key={r.key}>
                <span class="muted">{formatDate(r.at)}</span> <strong>{r.type}</strong> {r.message}
              </li>
            ))}
          </ul>
        )}
      </section>

      <section class="card" aria-labelledby="dl-h">
        <div class="page-head">
          <h2 id="dl-h">Delivery log</h2>
          <button type="button" onClick={loadDeliveries}>
            Refresh
          </button>
        </div>
        {deliveries.length === 0 ? (
          <p class="muted">No deliveries yet.</p>
        ) : (
          <ul class="deliveries">
            {deliveries.map((d) => {
              const detail = open[d.id];
              return (
                <li key={d.id} data-delivery-id={d.id}>
                  <button type="button" class="link" aria-expanded={!!detail} onClick={() => toggle(d)}>
                    {formatDate(d.created_at)} · {d.status} · {d.attempt_count} attempt{d.attempt_count === 1 ? '' : 's'}
                    {d.last_status_code ? ` · HTTP ${d.last_status_code}` : ''}
                  </button>
                  {d.last_error && <span class="error small"> {d.last_error}</span>}
                  {detail === 'loading' && <Spinner />}
                  {detail && detail !== 'loading' && (
                    <table class="attempts">
                      <caption class="sr-only">Attempts</caption>
                      <thead>
                        <tr>
                          <th scope="col">When</th>
                          <th scope="col">Status</th>
                          <th scope="col">Latency</th>
                          <th scope="col">Error</th>
                        </tr>
                      </thead>
                      <tbody>
                        {(detail.attempts ?? []).map((a, i) => (
                          <tr key={i}>
                            <td>{formatDate(a.attempted_at)}</td>
                            <td>{a.status_code ?? '—'}</td>
                            <td>{a.latency_ms} ms</td>
                            <td>{a.error ?? ''}</td>
                          </tr>
                        ))}
                        {(detail.attempts ?? []).length === 0 && (
                          <tr>
                            <td colSpan={4}>No attempts yet{detail.next_attempt_at ? `; next at ${formatDate(detail.next_attempt_at)}` : ''}.</td>
                          </tr>
                        )}
                      </tbody>
                    </table>
                  )}
                </li>
              );
            })}
          </ul>
        )}
      </section>
    </section>
  );
}

function NotificationPreferences() {
  const me = useStore(session)?.user;
  const [prefs, setPrefs] = useState<Preferences | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    api.preferences().then(setPrefs, (e) => setError(errorText(e)));
  }, []);
  if (!isStaff(me)) return null;
  return (
    <section class="card" aria-labelledby="prefs-h">
      <h2 id="prefs-h">Notifications</h2>
      <label class="check">
        <input
          type="checkbox"
          name="new_unassigned_tickets"
          checked={!!prefs?.new_unassigned_tickets}
          disabled={!prefs}
          onChange={(e) => {
            const on = e.currentTarget.checked;
            api.setPreferences({ new_unassigned_tickets: on }).then(
              (p) => {
                setPrefs(p);
                toast(on ? 'You will be told of new unassigned tickets' : 'No more notices of unassigned tickets');
              },
              (err) => setError(errorText(err)),
            );
          }}
        />
        Tell me about every new ticket nobody is assigned to
      </label>
      <ErrorBox error={error} />
    </section>
  );
}
