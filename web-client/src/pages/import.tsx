import { useState } from 'preact/hooks';
import { api, errorText, type ImportResult } from '../api';
import { ErrorBox, PageTitle } from '../ui';

const EXAMPLE = 'subject,description,priority,category,customer_email,id\nPrinter on fire,It is on fire,urgent,hardware,pat@example.com,ext-1\n';

export function ImportPage() {
  const [csv, setCsv] = useState(EXAMPLE);
  const [result, setResult] = useState<ImportResult | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(e: Event) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setResult(null);
    try {
      setResult(await api.importCsv(csv));
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  }

  async function loadFile(e: Event) {
    const file = (e.currentTarget as HTMLInputElement).files?.[0];
    if (file) setCsv(await file.text());
  }

  return (
    <section>
      <PageTitle>Import tickets</PageTitle>
      <form class="card" onSubmit={submit}>
        <p class="muted">
          CSV with a header row: <code>subject,description,priority,category,customer_email,id</code>. Rows with a known <code>id</code> update
          their ticket.
        </p>
        <label>
          CSV file
          <input type="file" accept=".csv,text/csv" onChange={loadFile} />
        </label>
        <label>
          CSV content
          <textarea name="csv" rows={8} value={csv} onInput={(e) => setCsv(e.currentTarget.value)} class="mono" />
        </label>
        <ErrorBox error={error} />
        <button type="submit" class="primary" disabled={busy || !csv.trim()}>
          Import
        </button>
      </form>
      {result && (
        <section class="card" aria-labelledby="res-h" role="status">
          <h2 id="res-h">Result</h2>
          <p data-testid="import-summary">
            Created {result.created_count}, updated {result.updated_count}, failed {result.failed_count}.
          </p>
          <div class="table-wrap">
            <table class="import-results">
              <caption class="sr-only">Rows imported</caption>
              <thead>
                <tr>
                  <th scope="col">Line</th>
                  <th scope="col">External id</th>
                  <th scope="col">Result</th>
                  <th scope="col">Ticket or error</th>
                </tr>
              </thead>
              <tbody>
                {(result.results ?? []).map((r) => (
                  <tr key={r.index} class={r.status === 'failed' ? 'failed' : ''} data-line={r.line ?? ''}>
                    <td>{r.line ?? r.index + 1}</td>
                    <td>{r.external_id ?? '—'}</td>
                    <td>{r.status === 'failed' ? 'Failed' : r.status === 'created' ? 'Created' : 'Updated'}</td>
                    <td>
                      {r.ticket_id ? <a href={`/tickets/${r.ticket_id}`}>#{r.ticket_number}</a> : <span class="error-text">{r.error?.detail ?? 'failed'}</span>}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </section>
      )}
    </section>
  );
}
