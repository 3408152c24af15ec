// Shared presentational helpers. All user content is rendered as text nodes (JSX escapes it).
import type { ComponentChildren } from 'preact';
import { useEffect, useRef } from 'preact/hooks';

export const STATUSES = ['open', 'in_progress', 'pending', 'resolved', 'closed'];
export const PRIORITIES = ['low', 'medium', 'high', 'urgent'];

export function label(s: string): string {
  return s.replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase());
}

export function formatDate(iso: string | null | undefined): string {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

export function formatSize(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

export function Badge({ kind, value }: { kind: string; value: string }) {
  return <span class={`badge ${kind}-${value}`}>{label(value)}</span>;
}

export function ErrorBox({ error }: { error: string | null | undefined }) {
  if (!error) return null;
  return (
    <p class="error" role="alert">
      {error}
    </p>
  );
}

/** The page heading; takes focus when the page changes so screen readers announce it. */
export function PageTitle({ children }: { children: ComponentChildren }) {
  const ref = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    const text = ref.current?.textContent;
    if (text) document.title = `${text} · ticketwire`;
    const active = document.activeElement;
    if (!active || active === document.body || active.closest('nav') || active.closest('.drawer')) ref.current?.focus({ preventScroll: true });
  }, []);
  return (
    <h1 ref={ref} tabIndex={-1}>
      {children}
    </h1>
  );
}

export function Spinner({ text = 'Loading…' }: { text?: string }) {
  return (
    <p class="muted" role="status">
      {text}
    </p>
  );
}
