// Who is on a ticket and who is typing, on the one Socket.IO connection: this tab announces
// itself (confirmed every 20 s; `replying` / `noting` while a composer has focus, `idle` when the
// tab is hidden or untouched) and shows the others from `presence.*`.
import { useEffect, useState } from 'preact/hooks';
import type { Socket } from 'socket.io-client';
import { live } from './live';

export type PresenceState = 'idle' | 'viewing' | 'replying' | 'noting';
export interface Viewer {
  user_id: string;
  name: string;
  role: string;
  state: PresenceState;
}
type Kind = 'public' | 'internal';

const HEARTBEAT_MS = 20_000; // the server forgets a tab 45 s after its last word
const IDLE_AFTER_MS = 120_000;
const TYPING_CONFIRM_MS = 2_500; // the server stops typing 5 s after its last confirmation
const TYPING_PAUSE_MS = 3_000;

/** The connection `live` holds: presence adds events to it, never a second connection. */
function currentSocket(): Socket | null {
  return (live as unknown as { socket: Socket | null }).socket ?? null;
}

class Board {
  private viewers = new Map<string, Map<string, Viewer>>();
  private typers = new Map<string, Map<string, Kind>>();
  private subs = new Set<() => void>();
  private bound: Socket | null = null;
  /** What this tab announced, by ticket. */
  private mine = new Map<string, PresenceState>();
  private typing = new Map<string, { kind: Kind; sent: number; stop: ReturnType<typeof setTimeout> }>();
  private alsoReplying = new Map<string, Viewer[]>();

  constructor() {
    live.onStatus(() => this.bind());
    setInterval(() => this.mine.forEach((state, id) => this.send(id, state)), HEARTBEAT_MS);
  }

  /** Follows the current connection (a new one after signing in again). */
  bind() {
    const s = currentSocket();
    if (!s || s === this.bound) return;
    this.bound = s;
    s.on('connect', () => {
      // A new connection starts from nobody: the server sends what there is to see.
      this.viewers.clear();
      this.typers.clear();
      this.notify();
      this.mine.forEach((state, id) => this.send(id, state));
    });
    s.on('presence.snapshot', (p: any) => {
      if (typeof p?.ticket_id !== 'string') return;
      this.viewers.set(p.ticket_id, new Map((p.viewers ?? []).map((v: Viewer) => [v.user_id, v])));
      this.typers.set(p.ticket_id, new Map((p.typing ?? []).map((t: any) => [t.user_id, t.kind])));
      this.notify();
    });
    s.on('presence.list', (p: any) => {
      const listed = new Set<string>();
      for (const t of p?.tickets ?? []) {
        listed.add(t.ticket_id);
        this.viewers.set(t.ticket_id, new Map((t.viewers ?? []).map((v: Viewer) => [v.user_id, v])));
      }
      for (const id of [...this.viewers.keys()]) if (!listed.has(id)) this.viewers.delete(id);
      this.notify();
    });
    s.on('presence.update', (p: any) => {
      if (typeof p?.ticket_id !== 'string') return;
      const m = this.viewers.get(p.ticket_id) ?? new Map<string, Viewer>();
      for (const v of [...(p.joined ?? []), ...(p.changed ?? [])]) m.set(v.user_id, v);
      for (const v of p.left ?? []) m.delete(v.user_id);
      this.viewers.set(p.ticket_id, m);
      // The same message says who started or stopped typing (always empty in the ticket list).
      const started = p.typing_started ?? [];
      const stopped = p.typing_stopped ?? [];
      if (started.length || stopped.length) {
        const t = this.typers.get(p.ticket_id) ?? new Map<string, Kind>();
        for (const x of stopped) if (t.get(x.user_id) === x.kind) t.delete(x.user_id);
        for (const x of started) t.set(x.user_id, x.kind);
        this.typers.set(p.ticket_id, t);
      }
      this.notify();
    });
  }

  private send(ticketId: string, state: PresenceState) {
    const s = currentSocket();
    if (!s?.connected) return;
    s.emit('presence', { ticket_id: ticketId, state }, (ack: { ok?: boolean; replying?: Viewer[] }) => {
      // Opening a composer is answered with who else is writing a public reply (advisory).
      const composing = state === 'replying' || state === 'noting';
      const replying = composing && ack?.ok && Array.isArray(ack.replying) ? ack.replying : [];
      if (this.mine.get(ticketId) !== state) return;
      if (replying.length || this.alsoReplying.has(ticketId)) {
        if (replying.length) this.alsoReplying.set(ticketId, replying);
        else this.alsoReplying.delete(ticketId);
        this.notify();
      }
    });
  }

  /** Who else was writing a public reply when this tab opened its composer on the ticket. */
  othersReplying(ticketId: string): Viewer[] {
    return this.alsoReplying.get(ticketId) ?? [];
  }

  announce(ticketId: string, state: PresenceState) {
    this.bind();
    if (this.mine.get(ticketId) === state) return;
    this.mine.set(ticketId, state);
    this.send(ticketId, state);
  }

  leave(ticketId: string, forget: boolean) {
    this.mine.delete(ticketId);
    this.alsoReplying.delete(ticketId);
    this.stopTyping(ticketId);
    const s = currentSocket();
    if (s?.connected) s.emit('presence.leave', { ticket_id: ticketId }, () => {});
    if (forget) {
      this.viewers.delete(ticketId);
      this.typers.delete(ticketId);
      this.notify();
    }
  }

  /** A keystroke in a composer: typing starts, is confirmed now and then, stops after a pause. */
  typed(ticketId: string, kind: Kind) {
    const s = currentSocket();
    if (!s?.connected) return;
    const cur = this.typing.get(ticketId);
    if (cur && cur.kind !== kind) this.stopTyping(ticketId);
    const now = Date.now();
    const t = this.typing.get(ticketId);
    if (!t || now - t.sent > TYPING_CONFIRM_MS) s.emit('typing', { ticket_id: ticketId, kind, active: true }, () => {});
    if (t) clearTimeout(t.stop);
    this.typing.set(ticketId, {
      kind,
      sent: !t || now - t.sent > TYPING_CONFIRM_MS ? now : t.sent,
      stop: setTimeout(() => this.stopTyping(ticketId), TYPING_PAUSE_MS),
    });
  }

  stopTyping(ticketId: string) {
    const t = this.typing.get(ticketId);
    if (!t) return;
    clearTimeout(t.stop);
    this.typing.delete(ticketId);
    const s = currentSocket();
    if (s?.connected) s.emit('typing', { ticket_id: ticketId, kind: t.kind, active: false }, () => {});
  }

  of(ticketId: string): { viewers: Viewer[]; typing: { user_id: string; kind: Kind }[] } {
    return {
      viewers: [...(this.viewers.get(ticketId)?.values() ?? [])],
      typing: [...(this.typers.get(ticketId)?.entries() ?? [])].map(([user_id, kind]) => ({ user_id, kind })),
    };
  }

  subscribe(fn: () => void): () => void {
    this.subs.add(fn);
    return () => this.subs.delete(fn);
  }

  /** Counts the changes, so a view can tell whether it rendered the latest. */
  version = 0;

  private notify() {
    this.version++;
    this.subs.forEach((fn) => fn());
  }
}

export const presence = new Board();

export function usePresence(ticketId: string) {
  const [, setTick] = useState(0);
  const renderedAt = presence.version;
  useEffect(() => {
    const off = presence.subscribe(() => setTick((n) => n + 1));
    // Effects run after paint: a snapshot that came between the render and this subscription
    // would otherwise stay unseen until the next change.
    if (presence.version !== renderedAt) setTick((n) => n + 1);
    return off;
  }, [ticketId]);
  return presence.of(ticketId);
}

const DOING: Record<PresenceState, string> = {
  idle: 'away',
  viewing: 'viewing',
  replying: 'writing a reply',
  noting: 'writing an internal note',
};

/** A person's initials in a badge: the name beside it is what assistive technology reads. */
function Avatar({ v }: { v: Viewer }) {
  const initials = v.name
    .split(/\s+/)
    .filter(Boolean)
    .slice(0, 2)
    .map((w) => w[0]!.toUpperCase())
    .join('');
  return (
    <span class={`avatar avatar-${v.state}`} aria-hidden="true">
      {initials || '?'}
    </span>
  );
}

function roleText(v: Viewer, staff: boolean): string {
  if (!staff) return 'support';
  return v.role === 'customer' ? 'requester' : v.role;
}

/**
 * The ticket page's line of who else is here, and this tab's own presence: `viewing`, the
 * composer's mode while it has focus, `idle` when hidden or untouched for two minutes.
 */
/**
 * Said in the composer when someone else was already writing a public reply as this tab opened
 * it; stays while they still are. Advisory: sending is never blocked (the server's version check
 * is what stops a reply written over newer messages).
 */
export function AlsoReplying({ ticketId }: { ticketId: string }) {
  const { viewers } = usePresence(ticketId);
  const still = presence
    .othersReplying(ticketId)
    .filter((o) => viewers.some((v) => v.user_id === o.user_id && v.state === 'replying'));
  if (!still.length) return null;
  const names = still.map((v) => v.name).join(', ');
  return (
    <p class="notice small" role="status" data-testid="also-replying">
      {names} {still.length > 1 ? 'are' : 'is'} already writing a reply to this ticket.
    </p>
  );
}

export function PresenceBar({ ticketId, staff, meId }: { ticketId: string; staff: boolean; meId?: string }) {
  const { viewers, typing } = usePresence(ticketId);

  useEffect(() => {
    let composing: PresenceState | null = null;
    let lastInput = Date.now();
    const composerMode = (el: EventTarget | null): Kind | null => {
      const form = el instanceof Element ? el.closest('form.composer') : null;
      if (!form) return null;
      return form.classList.contains('composer-internal') ? 'internal' : 'public';
    };
    const state = (): PresenceState =>
      document.hidden || Date.now() - lastInput > IDLE_AFTER_MS ? 'idle' : (composing ?? 'viewing');
    const update = () => presence.announce(ticketId, state());
    const touched = () => {
      lastInput = Date.now();
      update();
    };
    const focusIn = (e: FocusEvent) => {
      const mode = composerMode(e.target);
      if (mode) composing = mode === 'internal' ? 'noting' : 'replying';
      touched();
    };
    const focusOut = (e: FocusEvent) => {
      if (composerMode(e.target) && !composerMode(e.relatedTarget)) {
        composing = null;
        presence.stopTyping(ticketId);
      }
      update();
    };
    const input = (e: Event) => {
      const mode = composerMode(e.target);
      if (mode && e.target instanceof HTMLTextAreaElement) {
        composing = mode === 'internal' ? 'noting' : 'replying';
        presence.typed(ticketId, mode);
      }
      touched();
    };
    // The composer's public/internal switch: the form's class follows only after a render.
    const change = (e: Event) => {
      const el = e.target;
      const switched = el instanceof HTMLInputElement && el.name === 'visibility';
      const mode = switched ? (el.value === 'internal' ? 'internal' : 'public') : composerMode(el);
      if (mode && composing) {
        composing = mode === 'internal' ? 'noting' : 'replying';
        update();
      }
    };
    update();
    document.addEventListener('visibilitychange', update);
    document.addEventListener('focusin', focusIn);
    document.addEventListener('focusout', focusOut);
    document.addEventListener('input', input);
    document.addEventListener('change', change);
    document.addEventListener('pointerdown', touched);
    const idle = setInterval(update, 15_000);
    return () => {
      document.removeEventListener('visibilitychange', update);
      document.removeEventListener('focusin', focusIn);
      document.removeEventListener('focusout', focusOut);
      document.removeEventListener('input', input);
      document.removeEventListener('change', change);
      document.removeEventListener('pointerdown', touched);
      clearInterval(idle);
      // Staff keep the ticket list's view of it; a customer's stops with the page.
      presence.leave(ticketId, !staff);
    };
  }, [ticketId, staff]);

  const others = viewers.filter((v) => v.user_id !== meId);
  const typers = typing.filter((t) => t.user_id !== meId);
  if (!others.length && !typers.length) return null;
  const nameOf = (id: string) => viewers.find((v) => v.user_id === id)?.name ?? 'Someone';
  return (
    <p class="muted small presence" role="status" aria-live="polite" data-testid="presence">
      {others.map((v, i) => (
        <span key={v.user_id} class={`presence-viewer presence-${v.state}`} data-user-id={v.user_id}>
          {i > 0 ? ' · ' : ''}
          <Avatar v={v} />
          {v.name} ({roleText(v, staff)}) is {DOING[v.state]}
        </span>
      ))}
      {typers.map((t) => (
        <span key={`${t.user_id}:${t.kind}`} class="presence-typing">
          {' · '}
          {nameOf(t.user_id)} is typing{t.kind === 'internal' ? ' an internal note' : ''}…
        </span>
      ))}
    </p>
  );
}

/** Who is on a ticket, for its row in the ticket list (staff get these summaries). */
export function PresenceDots({ ticketId, meId }: { ticketId: string; meId?: string }) {
  const { viewers } = usePresence(ticketId);
  const others = viewers.filter((v) => v.user_id !== meId && v.state !== 'idle');
  if (!others.length) return null;
  const text = others.map((v) => (v.state === 'viewing' ? v.name : `${v.name} (${DOING[v.state]})`)).join(', ');
  return (
    <span class="muted presence-dots" data-testid="presence-dots" title={text}>
      {' · '}
      {others.map((v) => (
        <Avatar key={v.user_id} v={v} />
      ))}
      {text}
    </span>
  );
}
