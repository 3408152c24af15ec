import { describe, expect, it } from 'vitest';
import { EventDeduper, InFlight, applyEvent, buildThreads, byCreated, emptyList, mergePage, newer, textMatches, ticketMatches, ticketStays, upsert, type ListState } from '../src/merge';

interface T {
  id: string;
  version: number;
  name?: string;
  created_at?: string;
}

const ev = (action: 'created' | 'updated' | 'deleted', data: T, event_id = 1) => ({ event_id, action, data });
const ids = (s: ListState<T>) => s.items.map((x) => x.id);

describe('version ordering', () => {
  it('a newer version replaces, an older or equal one never does', () => {
    let s = upsert(emptyList<T>(), { id: 'a', version: 2, name: 'two' });
    s = applyEvent(s, ev('updated', { id: 'a', version: 1, name: 'one' }));
    expect(s.items[0].name).toBe('two');
    s = applyEvent(s, ev('updated', { id: 'a', version: 2, name: 'two again' }));
    expect(s.items[0].name).toBe('two');
    s = applyEvent(s, ev('updated', { id: 'a', version: 3, name: 'three' }));
    expect(s.items[0].name).toBe('three');
  });

  it('out-of-order events converge on the newest state', () => {
    let s = emptyList<T>();
    for (const v of [3, 1, 5, 2, 4]) s = applyEvent(s, ev('updated', { id: 'x', version: v, name: `v${v}` }));
    expect(s.items).toEqual([{ id: 'x', version: 5, name: 'v5' }]);
  });

  it('newer() keeps the higher version for a detail view', () => {
    const a = { id: 'a', version: 4 };
    expect(newer(a, { id: 'a', version: 3 })).toBe(a);
    expect(newer(a, { id: 'a', version: 5 }).version).toBe(5);
    expect(newer(null, a)).toBe(a);
  });
});

describe('insert at top', () => {
  it('new items go to the top; updates keep their position', () => {
    let s = mergePage(emptyList<T>(), [
      { id: 'b', version: 1 },
      { id: 'a', version: 1 },
    ]);
    s = applyEvent(s, ev('created', { id: 'c', version: 1 }), { place: 'top' });
    expect(ids(s)).toEqual(['c', 'b', 'a']);
    s = applyEvent(s, ev('updated', { id: 'a', version: 2 }), { place: 'top' });
    expect(ids(s)).toEqual(['c', 'b', 'a']);
  });

  it('keeps a comparator order (comments oldest first)', () => {
    let s = emptyList<T & { created_at: string }>();
    const opts = { place: byCreated as any };
    s = applyEvent(s, ev('created', { id: '2', version: 1, created_at: '2024-01-02' }) as any, opts) as any;
    s = applyEvent(s, ev('created', { id: '3', version: 1, created_at: '2024-01-03' }) as any, opts) as any;
    s = applyEvent(s, ev('created', { id: '1', version: 1, created_at: '2024-01-01' }) as any, opts) as any;
    expect(s.items.map((x) => x.id)).toEqual(['1', '2', '3']);
  });

  it('respects filters: non-matching items are not inserted, and leave when they stop matching', () => {
    const matches = (t: T) => t.name !== 'hidden';
    let s = applyEvent(emptyList<T>(), ev('created', { id: 'a', version: 1, name: 'hidden' }), { matches });
    expect(ids(s)).toEqual([]);
    s = applyEvent(s, ev('created', { id: 'b', version: 1, name: 'shown' }), { matches });
    s = applyEvent(s, ev('updated', { id: 'b', version: 2, name: 'hidden' }), { matches });
    expect(ids(s)).toEqual([]);
  });
});

describe('delete', () => {
  it('removes the item and an older late event cannot bring it back', () => {
    let s = mergePage(emptyList<T>(), [{ id: 'a', version: 1 }, { id: 'b', version: 1 }]);
    s = applyEvent(s, ev('deleted', { id: 'a', version: 2 }));
    expect(ids(s)).toEqual(['b']);
    s = applyEvent(s, ev('updated', { id: 'a', version: 2 }));
    s = applyEvent(s, ev('updated', { id: 'a', version: 1 }));
    expect(ids(s)).toEqual(['b']);
    // A page fetched before the delete does not resurrect it either.
    s = mergePage(s, [{ id: 'a', version: 2 }, { id: 'b', version: 1 }]);
    expect(ids(s)).toEqual(['b']);
  });

  it('a newer version after a delete (e.g. republished article) comes back', () => {
    let s = applyEvent(emptyList<T>(), ev('created', { id: 'a', version: 1 }));
    s = applyEvent(s, ev('deleted', { id: 'a', version: 1 }));
    s = applyEvent(s, ev('updated', { id: 'a', version: 2 }));
    expect(ids(s)).toEqual(['a']);
  });

  it('a stale delete does not remove a newer state', () => {
    let s = applyEvent(emptyList<T>(), ev('created', { id: 'a', version: 5 }));
    s = applyEvent(s, ev('deleted', { id: 'a', version: 3 }));
    expect(ids(s)).toEqual(['a']);
  });
});

describe('mergePage', () => {
  it('keeps newer live versions and live-only items over a page fetched earlier', () => {
    let s = applyEvent(emptyList<T>(), ev('created', { id: 'new', version: 1 }));
    s = applyEvent(s, ev('updated', { id: 'a', version: 3, name: 'live' }));
    s = mergePage(s, [{ id: 'a', version: 2, name: 'page' }, { id: 'b', version: 1 }]);
    expect(ids(s)).toEqual(['new', 'a', 'b']);
    expect(s.items[1].name).toBe('live');
  });

  it("never filters the server's page again; what only a live event brought is judged by the filter", () => {
    // The search matched "a" by a comment the client never sees: the page is the answer.
    const named = (x: T) => (x.name ?? '').includes('match');
    const s = mergePage({ items: [{ id: 'live-in', version: 1, name: 'match' }, { id: 'live-out', version: 1, name: 'other' }], tombstones: {} }, [{ id: 'a', version: 1, name: 'no word here' }], {
      matches: named,
    });
    expect(ids(s)).toEqual(['live-in', 'a']);
  });

  it('a listed item changed live is judged by `stays`, not by the search words', () => {
    const open = (x: T) => x.name !== 'closed';
    const words = (x: T) => (x.name ?? '').includes('printer');
    let s = mergePage(emptyList<T>(), [{ id: 'a', version: 1, name: 'printer' }, { id: 'b', version: 1, name: 'printer' }], { matches: words, stays: open });
    s = applyEvent(s, ev('updated', { id: 'a', version: 2, name: 'renamed' }), { matches: words, stays: open });
    s = applyEvent(s, ev('updated', { id: 'b', version: 2, name: 'closed' }), { matches: words, stays: open });
    expect(ids(s)).toEqual(['a']);
    s = applyEvent(s, ev('created', { id: 'c', version: 1, name: 'renamed' }), { matches: words, stays: open });
    expect(ids(s)).toEqual(['a']);
  });

  it('appends later pages without duplicates', () => {
    let s = mergePage(emptyList<T>(), [{ id: 'c', version: 1 }, { id: 'b', version: 1 }]);
    s = mergePage(s, [{ id: 'b', version: 1 }, { id: 'a', version: 1 }], { append: true });
    expect(ids(s)).toEqual(['c', 'b', 'a']);
  });
});

describe('a fresh page in flight', () => {
  it('keeps what arrived live meanwhile over the older copy the page holds', () => {
    const flight = new InFlight<T>();
    flight.saw({ id: 'a', version: 9, name: 'before' }); // before the load: not kept
    flight.start();
    flight.saw({ id: 'a', version: 3, name: 'live' });
    flight.saw({ id: 'a', version: 2, name: 'older live' });
    flight.saw({ id: 'new', version: 1 });
    flight.saw({ id: 'gone', version: 1 });
    const s = mergePage(flight.take({ gone: 1 }), [{ id: 'a', version: 2, name: 'page' }, { id: 'b', version: 1 }]);
    expect(ids(s)).toEqual(['new', 'a', 'b']);
    expect(s.items[1].name).toBe('live');
    expect(flight.take({}).items).toEqual([]);
  });
});

describe('dedupe by event_id', () => {
  it('accepts each (event, id) once and tracks the highest id', () => {
    const d = new EventDeduper();
    expect(d.accept('ticket.update', 5)).toBe(true);
    expect(d.accept('ticket.update', 5)).toBe(false);
    expect(d.accept('notification', 5)).toBe(true); // same event, different emit
    expect(d.accept('ticket.update', 3)).toBe(true);
    expect(d.lastEventId).toBe(5);
    expect(d.accept('ticket.update', 9)).toBe(true);
    expect(d.lastEventId).toBe(9);
  });

  it('remembers the last emit of the newest event, to resume inside it', () => {
    const d = new EventDeduper();
    d.accept('ticket.update', 7);
    expect([d.lastEventId, d.lastEventName]).toEqual([7, 'ticket.update']);
    d.accept('notification', 7);
    expect([d.lastEventId, d.lastEventName]).toEqual([7, 'notification']);
    d.accept('ticket.update', 4); // an older event arriving late moves nothing
    expect([d.lastEventId, d.lastEventName]).toEqual([7, 'notification']);
    d.accept('notification', 7); // a duplicate moves nothing either
    d.accept('kb.update', 8);
    expect([d.lastEventId, d.lastEventName]).toEqual([8, 'kb.update']);
  });

  it('is bounded', () => {
    const d = new EventDeduper(3);
    for (const i of [1, 2, 3, 4]) d.accept('x', i);
    expect(d.accept('x', 1)).toBe(true); // forgotten
    expect(d.accept('x', 4)).toBe(false);
  });

  it('replaying a stream twice leaves the same state', () => {
    const d = new EventDeduper();
    const stream = [ev('created', { id: 'a', version: 1 }, 1), ev('updated', { id: 'a', version: 2 }, 2), ev('created', { id: 'b', version: 1 }, 3)];
    let s = emptyList<T>();
    for (const e of [...stream, ...stream]) if (d.accept('ticket.update', e.event_id)) s = applyEvent(s, e, { place: 'top' });
    expect(ids(s)).toEqual(['b', 'a']);
    expect(s.items[1].version).toBe(2);
  });
});

describe('helpers', () => {
  it('ticketMatches mirrors the list filters', () => {
    const t = { status: 'open', priority: 'high', assignee_id: null, subject: 'Printer jam', description: 'paper' };
    expect(ticketMatches(t, {})).toBe(true);
    expect(ticketMatches(t, { status: 'closed' })).toBe(false);
    expect(ticketMatches(t, { priority: 'high', q: 'PRINTER' })).toBe(true);
    expect(ticketMatches(t, { assignee_id: 'none' })).toBe(true);
    expect(ticketMatches(t, { assignee_id: 'u1' })).toBe(false);
    expect(ticketMatches({ ...t, assignee_id: 'u1' }, { assignee_id: 'none' })).toBe(false);
    expect(ticketMatches(t, { q: 'jam printer' })).toBe(true);
    expect(ticketMatches(t, { q: '"jam printer"' })).toBe(false);
    expect(ticketStays(t, { priority: 'high', q: 'nowhere' })).toBe(true);
    expect(ticketStays(t, { priority: 'low', q: 'printer' })).toBe(false);
  });

  it('textMatches reads the search language as the server does', () => {
    const text = 'My Printer is on fire: the paper-tray smokes (since 09:30)';
    expect(textMatches(text, 'fire printer')).toBe(true); // words ANDed, any order, any case
    expect(textMatches(text, 'fire toner')).toBe(false);
    expect(textMatches(text, 'print')).toBe(false); // whole words, no stemming
    expect(textMatches(text, 'print*')).toBe(true);
    expect(textMatches(text, 'p*')).toBe(false); // a prefix has two letters at least
    expect(textMatches(text, '"printer is on fire"')).toBe(true);
    expect(textMatches(text, '"fire on printer"')).toBe(false);
    expect(textMatches(text, 'printer -smokes')).toBe(false);
    expect(textMatches(text, 'printer -"on water"')).toBe(true);
    expect(textMatches(text, 'paper-tray')).toBe(true); // several words in one term: a phrase
    expect(textMatches(text, 'tray-paper')).toBe(false);
    expect(textMatches(text, '"printer on')).toBe(false); // an unclosed quote runs to the end
    expect(textMatches(text, '"printer is on fi"*')).toBe(true);
    expect(textMatches(text, 'fire"printer is"')).toBe(true); // a quote starts a term of its own
    expect(textMatches(text, '( ) - ""')).toBe(true); // nothing to look for
  });

  it('buildThreads nests replies and keeps orphans at the top', () => {
    const roots = buildThreads([
      { id: '1', parent_id: null },
      { id: '2', parent_id: '1' },
      { id: '3', parent_id: 'gone' },
      { id: '4', parent_id: '2' },
    ]);
    expect(roots.map((r) => r.item.id)).toEqual(['1', '3']);
    expect(roots[0].children[0].item.id).toBe('2');
    expect(roots[0].children[0].children[0].item.id).toBe('4');
  });
});
