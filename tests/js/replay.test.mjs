// Issue #3: catch-up from the event log — reconnect with last_event_id, a SIGKILLed server in
// between, and a client that stops reading while far more than the send buffer goes out.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startServer, login, makeUser, connect, ADMIN, sleep, pool } from './lib/harness.mjs';

let srv, admin, agent, cust, ticket;

before(async () => {
  srv = await startServer();
  admin = await login(srv, ADMIN.email, ADMIN.password);
  agent = await makeUser(srv, admin.api, 'agent');
  cust = await makeUser(srv, admin.api, 'customer');
  ticket = await cust.api.post('/api/tickets', { subject: 'Replay me' }, 201);
});
after(async () => { await srv?.stop(); });

const PRIOS = ['low', 'medium', 'high', 'urgent'];
let flip = 0;
// Every write changes something (a no-op PATCH records no event).
const bump = (api, id, extra = {}) => { flip += 1; return api.patch(`/api/tickets/${id}`, { priority: PRIOS[flip % 4], subject: `rev ${flip}`, ...extra }); };

/** Ticket events after `after`, as the admin's event log lists them. */
async function ticketEventIds(after, id = ticket.id, action = null) {
  const out = [];
  for (;;) {
    const page = await admin.api.get(`/api/events?after=${after}&limit=500`);
    if (!page.length) return out;
    for (const e of page) if (e.kind === 'ticket' && e.entity_id === id && (!action || e.action === action)) out.push(e.event_id);
    after = page[page.length - 1].event_id;
  }
}

const idsOf = (rec, name = 'ticket.update') => rec.of(name).map((p) => p.event_id);

test('reconnect with last_event_id gets exactly the missed events, in order, then live ones', async () => {
  const s = await connect(srv, { token: agent.token, rooms: ['tickets'] });
  const v = (await bump(admin.api, ticket.id)).version;
  const first = await s.waitFor((e) => e.name === 'ticket.update' && e.payload.data.version === v);
  const last = first.payload.event_id;
  s.close();
  const N = 25;
  for (let i = 0; i < N; i++) await bump(admin.api, ticket.id);
  const missed = await ticketEventIds(last);
  assert.equal(missed.length, N);

  const r = await connect(srv, { token: agent.token, rooms: ['tickets'], last_event_id: last });
  // Live updates race the replay.
  for (let i = 0; i < 10; i++) await bump(admin.api, ticket.id);
  const all = await ticketEventIds(last);
  assert.equal(all.length, N + 10);
  await r.waitCount((e) => e.name === 'ticket.update', N + 10, 15_000);
  await sleep(300);
  assert.deepEqual(idsOf(r), all, 'replayed then live, in order, nothing missing or doubled');
  // data of the replayed events equals the event log's
  const log = await admin.api.get(`/api/events?after=${last}&limit=5`);
  for (const e of log) assert.deepEqual(r.of('ticket.update').find((p) => p.event_id === e.event_id).data, e.data);
  r.close();
});

test('a client that dropped between two emits of one event resumes inside it with last_event', async () => {
  // The requester gets each update of their ticket twice: `ticket.update` in their own room,
  // then its `notification`.
  const s = await connect(srv, { token: cust.token });
  const v = (await bump(agent.api, ticket.id)).version;
  const id = (await s.waitFor((e) => e.name === 'ticket.update' && e.payload.data.version === v)).payload.event_id;
  await s.waitFor((e) => e.name === 'notification' && e.payload.event_id === id);
  assert.deepEqual(s.events.filter((e) => e.payload.event_id === id).map((e) => e.name), ['ticket.update', 'notification']);
  s.close();
  const later = (await bump(agent.api, ticket.id)).version;
  // What the server owes, by what the client says it got last.
  const cases = [
    [{ last_event: 'ticket.update' }, ['notification']],
    [{ last_event: 'notification' }, []],
    [{}, []],
    // A name this client would not have got from that event: the whole event again, never a gap.
    [{ last_event: 'kb.update' }, ['ticket.update', 'notification']],
  ];
  for (const [extra, owed] of cases) {
    const r = await connect(srv, { token: cust.token, last_event_id: id, ...extra });
    try {
      await r.waitFor((e) => e.name === 'notification' && e.payload.data.version === later);
      await sleep(200);
      // The catch-up's verdict (`catch_up`) is no event of the log.
      const got = r.events.filter((e) => e.name !== 'catch_up').map((e) => [e.name, e.payload.event_id]);
      const next = r.events.find((e) => e.payload.data.version === later).payload.event_id;
      const want = [...owed.map((n) => [n, id]), ['ticket.update', next], ['notification', next]];
      assert.deepEqual(got, want, `resuming with ${JSON.stringify(extra)}`);
    } finally {
      r.close();
    }
  }
});

test('replay to a customer skips internal notes and other customers\' tickets', async () => {
  const other = await makeUser(srv, admin.api, 'customer');
  const theirs = await other.api.post('/api/tickets', { subject: 'Not yours' }, 201);
  const s = await connect(srv, { token: cust.token, rooms: [`ticket:${ticket.id}`] });
  const v = (await bump(admin.api, ticket.id)).version;
  const last = (await s.waitFor((e) => e.name === 'ticket.update' && e.payload.data.version === v)).payload.event_id;
  s.close();
  const secret = await agent.api.post(`/api/tickets/${ticket.id}/comments`, { content: 'SECRET note', internal: true }, 201);
  await agent.api.patch(`/api/comments/${secret.id}`, { content: 'SECRET edited' });
  await bump(admin.api, theirs.id);
  const pub = await agent.api.post(`/api/tickets/${ticket.id}/comments`, { content: 'public reply' }, 201);
  const r = await connect(srv, { token: cust.token, rooms: [`ticket:${ticket.id}`], last_event_id: last });
  try {
    await r.waitFor((e) => e.name === 'comment.update' && e.payload.data.id === pub.id);
    await r.waitFor((e) => e.name === 'notification' && e.payload.data.id === pub.id);
    await sleep(300);
    const text = JSON.stringify(r.events);
    assert.ok(!text.includes('SECRET'), 'internal note replayed to customer');
    assert.ok(!text.includes(theirs.id), 'another customer\'s ticket replayed');
  } finally { r.close(); }
});

test('a SIGKILLed server between and during events skips nothing on reconnect', { timeout: 120_000 }, async () => {
  const s = await connect(srv, { token: agent.token, rooms: ['tickets'] });
  const v = (await bump(admin.api, ticket.id)).version;
  const last = (await s.waitFor((e) => e.name === 'ticket.update' && e.payload.data.version === v)).payload.event_id;
  s.close();
  for (let i = 0; i < 5; i++) await bump(admin.api, ticket.id);
  // Kill in the middle of a burst of concurrent writers (some requests fail; that is fine).
  const burst = pool(Array.from({ length: 30 }), 3, async () => {
    try { await bump(admin.api, ticket.id); return 1; } catch { return 0; }
  });
  await sleep(150);
  await srv.restart({ hard: true });
  const done = (await burst).reduce((a, b) => a + b, 0);
  // A new token after restart is not needed (same secret), but re-login proves the DB survived.
  const again = await login(srv, ADMIN.email, ADMIN.password);
  admin.api = again.api;
  for (let i = 0; i < 5; i++) await bump(admin.api, ticket.id);
  const all = await ticketEventIds(last);
  assert.ok(all.length >= 10 + done, `${all.length} events for ${10 + done} successful writes`);
  const r = await connect(srv, { token: agent.token, rooms: ['tickets'], last_event_id: last });
  try {
    await r.waitCount((e) => e.name === 'ticket.update', all.length, 20_000);
    await bump(admin.api, ticket.id);
    await r.waitCount((e) => e.name === 'ticket.update', all.length + 1, 10_000);
    await sleep(200);
    const got = idsOf(r);
    assert.deepEqual(got.slice(0, all.length), all, 'replay after restart');
    assert.equal(got.length, all.length + 1, 'then exactly one live event');
    assert.ok(got[all.length] > all[all.length - 1]);
  } finally { r.close(); }
});

/** A bare Engine.IO/Socket.IO v4 client over `ws` whose reading can be paused at the TCP level. */
function rawClient(url, auth) {
  const ws = new WebSocket(url.replace('http', 'ws') + '/socket.io/?EIO=4&transport=websocket', { perMessageDeflate: false });
  const c = { ws, events: [], connected: false, errors: [] };
  c.ready = new Promise((res, rej) => {
    ws.on('message', (buf) => {
      const m = buf.toString();
      if (m[0] === '0') ws.send('40' + JSON.stringify(auth));
      else if (m === '2') ws.send('3');
      else if (m.startsWith('40')) { c.connected = true; res(c); }
      else if (m.startsWith('44')) rej(new Error(m));
      else if (m.startsWith('42')) {
        const [name, payload] = JSON.parse(m.slice(2));
        c.events.push({ name, payload });
      }
    });
    ws.on('error', (e) => { c.errors.push(e); rej(e); });
  });
  c.closed = new Promise((r) => ws.on('close', () => r(true)));
  c.pause = () => ws._socket.pause();
  c.resume = () => ws._socket.resume();
  return c;
}

async function slowReaderCatchUps() {
  const r = await fetch(srv.url + '/metrics');
  const text = await r.text();
  const m = text.match(/ticketwire_socket_catch_ups_total\{reason="slow_reader"\} (\d+)/);
  return m ? Number(m[1]) : 0;
}

test('a client that stops reading while hundreds of events go out still gets all of them', { timeout: 180_000 }, async () => {
  // Big events so the kernel's socket buffers hold few of them and the server's 1024-packet
  // send buffer really fills.
  const big = 'x'.repeat(90_000);
  // Assigned to the reader: every update reaches it twice (`ticket.update`, then its
  // `notification`), so the buffer can fill between the two emits of one event.
  const t = await admin.api.post('/api/tickets', { subject: 'Firehose', description: big, requester_id: cust.user.id, assignee_id: admin.user.id }, 201);
  const c = await rawClient(srv.url, { token: admin.token, rooms: ['tickets'] });
  await c.ready;
  const baseline = await slowReaderCatchUps();
  c.pause();
  // Write until the server has had to pause this socket, then 200 more; bounded in count and time.
  const writer = agent;
  let sent = 0;
  const t0 = Date.now();
  let tripped = false;
  while (sent < 3000 && Date.now() - t0 < 20_000) {
    await pool(Array.from({ length: 40 }), 4, () => bump(writer.api, t.id));
    sent += 40;
    if (!tripped && (await slowReaderCatchUps()) > baseline) { tripped = true; break; }
  }
  for (let i = 0; i < 200; i += 40) { await pool(Array.from({ length: 40 }), 4, () => bump(writer.api, t.id)); sent += 40; }
  const pausedFor = Date.now() - t0;
  c.resume();
  const expected = await ticketEventIds(0, t.id, 'updated');
  assert.ok(expected.length >= sent, `${expected.length} events logged for ${sent} writes`);
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const got = c.events.filter((e) => e.name === 'ticket.update' && e.payload.data.id === t.id && e.payload.action === 'updated').length;
    if (got >= expected.length) break;
    await sleep(100);
  }
  await sleep(300);
  const got = c.events.filter((e) => e.name === 'ticket.update' && e.payload.data.id === t.id && e.payload.action === 'updated').map((e) => e.payload.event_id);
  console.log(`# slow reader: ${sent} events while paused ${pausedFor} ms; server paused the socket: ${tripped}; received ${got.length}`);
  const seen = new Set(); const dups = [];
  got.forEach((id, i) => { if (seen.has(id)) dups.push([i, id, got.slice(Math.max(0, i - 3), i + 2)]); seen.add(id); });
  if (dups.length) console.log('# duplicates:', JSON.stringify(dups.slice(0, 5)), 'missing:', JSON.stringify(expected.filter((x) => !seen.has(x)).slice(0, 5)));
  assert.ok(tripped, 'the server never hit a full send buffer: the test did not exercise back-pressure');
  assert.equal(got.length, expected.length, 'events lost or doubled for a slow reader');
  assert.deepEqual(got, expected, 'in order');
  const notes = c.events.filter((e) => e.name === 'notification' && e.payload.data.id === t.id && e.payload.notification.type === 'ticket_updated').map((e) => e.payload.event_id);
  assert.deepEqual(notes, expected, 'each update\'s notification exactly once, in order');
  assert.equal(c.connected && c.ws.readyState, WebSocket.OPEN, 'still connected');
  c.ws.close();
});
