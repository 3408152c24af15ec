// Catch-up with a contract: a reconnect inside the window is replayed everything it missed and
// told `catch_up {recovered: true, position}`; past it (too many events, too old a first one) it
// is replayed nothing, told `catch_up {recovered: false, position}` and is live from there. A list
// answer's `position` is a resume point: snapshot, then connect from it, and nothing is missed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, login, makeUser, connect, ADMIN, sleep, pool } from './lib/harness.mjs';

const WINDOW = 20;
let srv, admin, agent, cust, ticket;

before(async () => {
  srv = await startServer({ extra: { TICKETWIRE_CATCH_UP_MAX_EVENTS: String(WINDOW) } });
  admin = await login(srv, ADMIN.email, ADMIN.password);
  agent = await makeUser(srv, admin.api, 'agent');
  cust = await makeUser(srv, admin.api, 'customer');
  ticket = await cust.api.post('/api/tickets', { subject: 'Catch me up' }, 201);
});
after(async () => { await srv?.stop(); });

const PRIOS = ['low', 'medium', 'high', 'urgent'];
let flip = 0;
const bump = (api, id) => { flip += 1; return api.patch(`/api/tickets/${id}`, { priority: PRIOS[flip % 4], subject: `rev ${flip}` }); };

/** The newest event id in the log, once the dispatcher has handled it (what a list answer says). */
async function settledPosition(api = admin.api) {
  let last = -1;
  for (;;) {
    const { position } = await api.get('/api/tickets?limit=1');
    if (position === last) return position;
    last = position;
    await sleep(150);
  }
}

/** Connects, sees one live update of the ticket, and closes: returns its event_id. */
async function lastSeen(token) {
  const s = await connect(srv, { token, rooms: ['tickets'] });
  const v = (await bump(admin.api, ticket.id)).version;
  const got = await s.waitFor((e) => e.name === 'ticket.update' && e.payload.data.version === v);
  s.close();
  return got.payload.event_id;
}

const names = (rec) => rec.events.map((e) => e.name);

test('inside the window: every missed event, then catch_up {recovered: true}, then live', async () => {
  const last = await lastSeen(agent.token);
  const N = 10;
  for (let i = 0; i < N; i++) await bump(admin.api, ticket.id);
  const newest = await settledPosition();
  const r = await connect(srv, { token: agent.token, rooms: ['tickets'], last_event_id: last });
  const done = await r.waitFor((e) => e.name === 'catch_up', 10_000, 'catch_up');
  assert.deepEqual(done.payload, { recovered: true, position: newest });
  const replayed = r.of('ticket.update');
  assert.equal(replayed.length, N);
  assert.ok(replayed.every((p) => p.event_id > last && p.event_id <= newest));
  const v = (await bump(admin.api, ticket.id)).version;
  const live = await r.waitFor((e) => e.name === 'ticket.update' && e.payload.data.version === v);
  assert.ok(live.payload.event_id > newest);
  assert.deepEqual(names(r), [...Array(N).fill('ticket.update'), 'catch_up', 'ticket.update'], 'replay, the verdict, live');
  r.close();
});

test('past the window by count: nothing replayed, catch_up {recovered: false, position}, live from there', async () => {
  const last = await lastSeen(agent.token);
  for (let i = 0; i < WINDOW + 5; i++) await bump(admin.api, ticket.id);
  const newest = await settledPosition();
  const r = await connect(srv, { token: agent.token, rooms: ['tickets'], last_event_id: last });
  const verdict = await r.waitFor((e) => e.name === 'catch_up', 10_000, 'catch_up');
  assert.deepEqual(verdict.payload, { recovered: false, position: newest });
  const v = (await bump(admin.api, ticket.id)).version;
  const live = await r.waitFor((e) => e.name === 'ticket.update' && e.payload.data.version === v);
  assert.ok(live.payload.event_id > newest);
  await sleep(200);
  assert.deepEqual(names(r), ['catch_up', 'ticket.update'], 'no event at or before the position, then live ones');
  r.close();
});

test('exactly the window is still replayed; one more is not', async () => {
  for (const [missed, recovered] of [[WINDOW, true], [WINDOW + 1, false]]) {
    const last = await lastSeen(agent.token);
    for (let i = 0; i < missed; i++) await bump(admin.api, ticket.id);
    await settledPosition();
    const r = await connect(srv, { token: agent.token, rooms: ['tickets'], last_event_id: last });
    const verdict = await r.waitFor((e) => e.name === 'catch_up', 10_000, 'catch_up');
    assert.equal(verdict.payload.recovered, recovered, `${missed} missed`);
    assert.equal(r.of('ticket.update').length, recovered ? missed : 0);
    r.close();
  }
});

test('any user asking for the whole log (last_event_id 0) gets the verdict, not the log', async () => {
  for (const who of [cust, agent]) {
    const r = await connect(srv, { token: who.token, rooms: who === agent ? ['tickets'] : [], last_event_id: 0 });
    const verdict = await r.waitFor((e) => e.name === 'catch_up', 10_000, 'catch_up');
    assert.equal(verdict.payload.recovered, false);
    assert.equal(verdict.payload.position, await settledPosition());
    await sleep(200);
    assert.deepEqual(names(r), ['catch_up']);
    r.close();
  }
  // A connection without last_event_id asked for no catch-up and hears no verdict.
  const fresh = await connect(srv, { token: cust.token });
  await sleep(300);
  assert.deepEqual(names(fresh), []);
  fresh.close();
});

test('past the window by age: a first missed event older than the window is not replayed', async () => {
  const young = await startServer({ extra: { TICKETWIRE_CATCH_UP_MAX_AGE_SECS: '2' } });
  try {
    const adm = await login(young, ADMIN.email, ADMIN.password);
    const ag = await makeUser(young, adm.api, 'agent');
    const t = await adm.api.post('/api/tickets', { subject: 'aging' }, 201);
    const seen = async () => {
      const s = await connect(young, { token: ag.token, rooms: ['tickets'] });
      const v = (await bump(adm.api, t.id)).version;
      const got = await s.waitFor((e) => e.name === 'ticket.update' && e.payload.data.version === v);
      s.close();
      return got.payload.event_id;
    };
    let last = await seen();
    await bump(adm.api, t.id);
    let r = await connect(young, { token: ag.token, rooms: ['tickets'], last_event_id: last });
    assert.equal((await r.waitFor((e) => e.name === 'catch_up')).payload.recovered, true);
    assert.equal(r.of('ticket.update').length, 1);
    r.close();
    last = await seen();
    await bump(adm.api, t.id);
    await sleep(2500);
    r = await connect(young, { token: ag.token, rooms: ['tickets'], last_event_id: last });
    assert.equal((await r.waitFor((e) => e.name === 'catch_up')).payload.recovered, false);
    assert.equal(r.of('ticket.update').length, 0);
    r.close();
  } finally {
    await young.stop();
  }
});

test('a list snapshot and a catch-up from its position miss nothing while writes go on', async () => {
  const s2 = await startServer();
  try {
    const adm = await login(s2, ADMIN.email, ADMIN.password);
    const writer = await makeUser(s2, adm.api, 'customer');
    let stop = false;
    let written = 0;
    const writing = (async () => {
      while (!stop && written < 150) {
        written += 1;
        await writer.api.post('/api/tickets', { subject: `while listing ${written}` }, 201);
      }
    })();
    await sleep(300);
    // Snapshot: each list with the position read before it; resume from the older one.
    const tickets = await adm.api.get('/api/tickets?limit=200');
    const notes = await adm.api.get('/api/notifications?limit=200');
    assert.ok(Number.isInteger(tickets.position) && Number.isInteger(notes.position));
    const from = Math.min(tickets.position, notes.position);
    const r = await connect(s2, { token: adm.token, rooms: ['tickets'], last_event_id: from });
    await sleep(300);
    stop = true;
    await writing;
    assert.equal((await r.waitFor((e) => e.name === 'catch_up')).payload.recovered, true);
    const finalTickets = (await adm.api.get('/api/tickets?limit=200')).items.map((t) => t.id);
    const finalNotes = (await adm.api.get('/api/notifications?limit=200')).items.map((n) => n.id);
    assert.ok(written > 10 && finalTickets.length === written, `${written} written, ${finalTickets.length} listed`);
    const have = new Set(tickets.items.map((t) => t.id));
    const heard = new Set(notes.items.map((n) => n.id));
    const deadline = Date.now() + 10_000;
    for (;;) {
      for (const p of r.of('ticket.update')) have.add(p.data.id);
      for (const p of r.of('notification')) heard.add(p.notification.id);
      const missing = finalTickets.filter((id) => !have.has(id)).length + finalNotes.filter((id) => !heard.has(id)).length;
      if (!missing || Date.now() > deadline) break;
      await sleep(100);
    }
    assert.deepEqual(finalTickets.filter((id) => !have.has(id)), [], 'every ticket: in the snapshot or after it');
    assert.deepEqual(finalNotes.filter((id) => !heard.has(id)), [], 'every notification: in the snapshot or after it');
    r.close();
  } finally {
    await s2.stop();
  }
});

// How long 1,000 missed events take to replay over a realistic log: customers' tickets with
// comments and updates; an agent in the staff rooms misses 1,000 events of it. Log size:
// CATCH_UP_LOG_TICKETS (default 300 tickets, ~5 events each); TW_DATABASE_URL runs it on PostgreSQL.
test('1,000 missed events replay quickly', async () => {
  const extra = process.env.TW_DATABASE_URL ? { DATABASE_URL: process.env.TW_DATABASE_URL } : {};
  const s3 = await startServer({ extra });
  try {
    const adm = await login(s3, ADMIN.email, ADMIN.password);
    const ag = await makeUser(s3, adm.api, 'agent');
    const customers = await pool([...Array(20).keys()], 4, () => makeUser(s3, adm.api, 'customer'));
    const activity = async (n, offset) => pool([...Array(n).keys()], 8, async (i) => {
      const c = customers[(i + offset) % customers.length];
      const t = await c.api.post('/api/tickets', { subject: `Ticket ${offset + i}`, description: 'The printer on floor 3 prints blank pages since this morning. '.repeat(4) }, 201);
      await ag.api.post(`/api/tickets/${t.id}/comments`, { content: 'Looking into it: which tray do you use? '.repeat(3) }, 201);
      await c.api.post(`/api/tickets/${t.id}/comments`, { content: 'Tray 2, and it happens with every document.' }, 201);
      await ag.api.patch(`/api/tickets/${t.id}`, { status: 'pending', priority: 'high' });
      return t;
    });
    const logTickets = Number(process.env.CATCH_UP_LOG_TICKETS || 300);
    const started = performance.now();
    await activity(logTickets, 0);
    const last = await settledPosition(adm.api);
    const built = performance.now() - started;
    // 250 tickets x 4 events = the 1,000 the agent misses.
    await activity(250, logTickets);
    await settledPosition(adm.api);
    const t0 = performance.now();
    const r = await connect(s3, { token: ag.token, rooms: ['tickets', 'comments'], last_event_id: last });
    const verdict = await r.waitFor((e) => e.name === 'catch_up', 60_000, 'catch_up');
    const ms = performance.now() - t0;
    assert.equal(verdict.payload.recovered, true);
    const replayed = r.events.filter((e) => e.name === 'ticket.update' || e.name === 'comment.update').length;
    assert.equal(replayed, 1000);
    console.log(`# replay of 1000 missed events over a log of ${last} events (built in ${Math.round(built)} ms): ${Math.round(ms)} ms from connect to catch_up (${r.events.length} emits)`);
    assert.ok(ms < 10_000, `${ms} ms`);
    r.close();
  } finally {
    await s3.stop();
  }
});
