// Pure state merging for live updates. No DOM, no network: unit-tested in tests/merge.test.ts.
//
// Rules:
// - every entity carries a `version`; an event or response never replaces a newer version;
// - a deleted entity is remembered (tombstone with its version) so an older event cannot bring it
//   back, while a newer one (e.g. an article published again) can;
// - new entities go to the top (newest first lists) or are placed by a comparator;
// - events are deduplicated by (event name, event_id).

export interface Versioned {
  id: string;
  version: number;
}

export type Action = 'created' | 'updated' | 'deleted';

export interface EntityEvent<T> {
  event_id: number;
  action: Action;
  data: T;
}

export interface ListState<T extends Versioned> {
  items: T[];
  /** id -> version at which it was deleted (or left the view). */
  tombstones: Record<string, number>;
}

export function emptyList<T extends Versioned>(): ListState<T> {
  return { items: [], tombstones: {} };
}

export interface MergeOptions<T> {
  /** Whether the entity belongs in this view (filters). Default: always. */
  matches?: (item: T) => boolean;
  /** Whether an entity the view already shows stays after a change (default: `matches`). A
   * search's words are the server's to judge (it also reads comments): a listed ticket leaves
   * on a status change, not because its subject no longer holds the words. */
  stays?: (item: T) => boolean;
  /** Where a new entity goes: 'top' (default), 'bottom', or a comparator to keep the list sorted. */
  place?: 'top' | 'bottom' | ((a: T, b: T) => number);
}

function insert<T>(items: T[], item: T, place: MergeOptions<T>['place']): T[] {
  if (place === 'bottom') return [...items, item];
  if (typeof place === 'function') {
    const i = items.findIndex((x) => place(item, x) < 0);
    return i < 0 ? [...items, item] : [...items.slice(0, i), item, ...items.slice(i)];
  }
  return [item, ...items];
}

/** Merges one upsert (created/updated) into the list, honouring versions. */
export function upsert<T extends Versioned>(state: ListState<T>, item: T, opts: MergeOptions<T> = {}): ListState<T> {
  const dead = state.tombstones[item.id];
  if (dead !== undefined && item.version <= dead) return state;
  const idx = state.items.findIndex((x) => x.id === item.id);
  if (idx >= 0) {
    const current = state.items[idx];
    if (item.version <= current.version) return state; // older or same: keep what we have
    if (!(opts.stays ?? opts.matches ?? (() => true))(item)) {
      return { items: state.items.filter((_, i) => i !== idx), tombstones: state.tombstones };
    }
    const items = state.items.slice();
    items[idx] = item;
    return { items, tombstones: state.tombstones };
  }
  if (opts.matches && !opts.matches(item)) return state;
  let tombstones = state.tombstones;
  if (dead !== undefined) {
    tombstones = { ...state.tombstones };
    delete tombstones[item.id];
  }
  return { items: insert(state.items, item, opts.place), tombstones };
}

/** Removes an entity; `version` is the version it had when deleted. */
export function remove<T extends Versioned>(state: ListState<T>, id: string, version: number): ListState<T> {
  const dead = state.tombstones[id];
  const current = state.items.find((x) => x.id === id);
  if (current && current.version > version) return state; // we already hold a newer state
  const tombstones = { ...state.tombstones, [id]: Math.max(version, dead ?? -Infinity) };
  return { items: state.items.filter((x) => x.id !== id), tombstones };
}

/** Applies one entity event (`{action, data}`) to a list. */
export function applyEvent<T extends Versioned>(state: ListState<T>, ev: EntityEvent<T>, opts: MergeOptions<T> = {}): ListState<T> {
  if (!ev || !ev.data || typeof ev.data.id !== 'string') return state;
  if (ev.action === 'deleted') return remove(state, ev.data.id, ev.data.version ?? Number.MAX_SAFE_INTEGER);
  return upsert(state, ev.data, opts);
}

/**
 * Merges a page fetched over HTTP into what the list already holds (which may include live
 * events received while the request was in flight). `append` adds a later page at the end.
 * The page is the server's answer and is not filtered again; what the list held besides it is
 * judged by `stays` (when the page has it too, or for a later page) or `matches` (when only a
 * live event brought it).
 */
export function mergePage<T extends Versioned>(state: ListState<T>, page: T[], opts: MergeOptions<T> & { append?: boolean } = {}): ListState<T> {
  const byId = new Map(state.items.map((x) => [x.id, x] as const));
  const fresh: T[] = [];
  for (const item of page) {
    const dead = state.tombstones[item.id];
    if (dead !== undefined && item.version <= dead) continue;
    const have = byId.get(item.id);
    if (have) {
      if (item.version > have.version) byId.set(item.id, item);
    } else {
      fresh.push(item);
      byId.set(item.id, item);
    }
  }
  const kept = state.items.map((x) => byId.get(x.id)!);
  let items: T[];
  if (opts.append) items = [...kept, ...fresh];
  else if (typeof opts.place === 'function') items = [...kept, ...fresh].sort(opts.place);
  else {
    // A first page: the server's order, with live-only items (not in the page) kept on top.
    const inPage = new Set(page.map((p) => p.id));
    const liveOnly = kept.filter((x) => !inPage.has(x.id));
    const seen = new Set<string>();
    const fromPage = page.filter((p) => byId.has(p.id) && !seen.has(p.id) && seen.add(p.id)).map((p) => byId.get(p.id)!);
    items = [...liveOnly, ...fromPage];
  }
  const fromServer = new Set<T>(page);
  const inPage = new Set(page.map((p) => p.id));
  const matches = opts.matches ?? (() => true);
  const stays = opts.stays ?? matches;
  items = items.filter((x) => fromServer.has(x) || (inPage.has(x.id) || opts.append ? stays(x) : matches(x)));
  return { items, tombstones: state.tombstones };
}

/**
 * What live events brought while a fresh first page was in flight. The server read the page at
 * some moment of the request, so a change that arrived meanwhile may be newer than the page: it
 * is merged into the page instead of being dropped with the list the page replaces.
 */
export class InFlight<T extends Versioned> {
  private live: Map<string, T> | null = null;

  /** A fresh load starts: what comes live from now on is kept. */
  start() {
    this.live = new Map();
  }

  /** A live upsert. */
  saw(item: T | undefined) {
    if (!this.live || !item || typeof item.id !== 'string') return;
    const had = this.live.get(item.id);
    if (!had || item.version > had.version) this.live.set(item.id, item);
  }

  /** The page arrived: the list to merge it into (what was deleted meanwhile stays deleted). */
  take(tombstones: Record<string, number>): ListState<T> {
    const items = [...(this.live?.values() ?? [])].filter((x) => !(tombstones[x.id] >= x.version));
    this.live = null;
    return { items, tombstones };
  }
}

/** Merges a single entity (a detail view): newer version wins. Returns the one to keep. */
export function newer<T extends Versioned>(current: T | null | undefined, incoming: T): T {
  if (!current || current.id !== incoming.id) return incoming;
  return incoming.version > current.version ? incoming : current;
}

/** Remembers which events were already handled; bounded. */
export class EventDeduper {
  private seen = new Set<string>();
  private order: string[] = [];
  /** The highest event_id seen, to resume from after a reconnect. */
  lastEventId: number | null = null;
  /** The last emit seen of event `lastEventId`: one event can arrive as several emits
   * (`ticket.update`, then `notification`), and a connection can drop between them. */
  lastEventName: string | null = null;

  constructor(private capacity = 5000) {}

  /** True the first time (name, event_id) is offered; false for a duplicate. */
  accept(name: string, eventId: number | undefined | null): boolean {
    if (typeof eventId !== 'number' || !Number.isFinite(eventId)) return true;
    const key = `${name}:${eventId}`;
    if (this.seen.has(key)) return false;
    this.seen.add(key);
    this.order.push(key);
    if (this.order.length > this.capacity) {
      const old = this.order.shift()!;
      this.seen.delete(old);
    }
    if (this.lastEventId === null || eventId >= this.lastEventId) {
      this.lastEventId = eventId;
      this.lastEventName = name;
    }
    return true;
  }
}

/** Client-side mirror of the ticket list filters, to decide whether a live ticket belongs. */
export interface TicketFilter {
  status?: string;
  priority?: string;
  assignee_id?: string; // '' = any, 'none' = unassigned
  q?: string;
  number?: string;
}

export function ticketMatches(
  t: { status: string; priority: string; assignee_id: string | null; subject: string; description: string; number?: number },
  f: TicketFilter,
): boolean {
  if (f.number && String(t.number) !== f.number) return false;
  if (f.status && t.status !== f.status) return false;
  if (f.priority && t.priority !== f.priority) return false;
  if (f.assignee_id === 'none' && t.assignee_id) return false;
  if (f.assignee_id && f.assignee_id !== 'none' && t.assignee_id !== f.assignee_id) return false;
  return !f.q?.trim() || textMatches(`${t.subject}\n${t.description}`, f.q);
}

/** The list filters but the words of a search: whether a listed ticket stays after a change. */
export function ticketStays(t: Parameters<typeof ticketMatches>[0], f: TicketFilter): boolean {
  return ticketMatches(t, { ...f, q: '' });
}

const WORD = /[\p{L}\p{N}]+/gu;

/** The words of a text, lower-cased: runs of letters and digits, as the server reads them. */
function wordsOf(text: string): string[] {
  return text.toLowerCase().match(WORD) ?? [];
}

/** Whether `words` holds `seq` in a row, its last word as a prefix when `prefix`. */
function holds(words: string[], seq: string[], prefix: boolean): boolean {
  const last = seq.length - 1;
  for (let i = 0; i + last < words.length; i++) {
    let j = 0;
    while (j < last && words[i + j] === seq[j]) j++;
    if (j === last && (prefix ? words[i + j].startsWith(seq[j]) : words[i + j] === seq[j])) return true;
  }
  return false;
}

/**
 * Whether `text` answers the search `q` in the server's query language (README, "Searching"):
 * words ANDed, any case, `"a phrase"` in a row, `-word` or `-"a phrase"` left out, `word*` (or
 * `"a phr"*`) a prefix of two letters at least; a term of several words (`foo-bar`) is a phrase. The client's
 * judgement of a live ticket; the server's answer is the page.
 */
export function textMatches(text: string, q: string): boolean {
  const words = wordsOf(text);
  for (const m of q.matchAll(/(-?)"([^"]*)"?(\*?)|(-?)([^\s"]+)/g)) {
    const negated = (m[1] ?? m[4]) === '-';
    const term = m[2] ?? m[5] ?? '';
    const seq = wordsOf(term);
    if (!seq.length) continue;
    const starred = m[3] === '*' || (m[5] ?? '').endsWith('*');
    const prefix = starred && seq[seq.length - 1].length >= 2;
    if (holds(words, seq, prefix) === negated) return false;
  }
  return true;
}

/** Oldest first, by creation time then id (for comments). */
export function byCreated(a: { created_at: string; id: string }, b: { created_at: string; id: string }): number {
  return a.created_at < b.created_at ? -1 : a.created_at > b.created_at ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

export interface ThreadNode<T> {
  item: T;
  children: ThreadNode<T>[];
}

/** Builds reply threads; replies whose parent is gone are shown at the top level. */
export function buildThreads<T extends { id: string; parent_id: string | null }>(items: T[]): ThreadNode<T>[] {
  const nodes = new Map<string, ThreadNode<T>>();
  for (const item of items) nodes.set(item.id, { item, children: [] });
  const roots: ThreadNode<T>[] = [];
  for (const item of items) {
    const node = nodes.get(item.id)!;
    const parent = item.parent_id ? nodes.get(item.parent_id) : undefined;
    if (parent && parent !== node) parent.children.push(node);
    else roots.push(node);
  }
  return roots;
}
