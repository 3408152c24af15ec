// Presence and typing on a ticket, from real socket.io clients: one person per user however many
// tabs, the strongest state shown, what customers may see of staff (never a note being written),
// the ticket list's summaries, expiry without confirmations, rate limits and refusals.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, login, makeUser, connect, ADMIN, sleep } from './lib/harness.mjs';

let srv, admin, agent, cust, other;

before(async () => {
  // Presence and typing keep their defaults (45 s, ~5 s).
  srv = await startServer({ extra: { TICKETWIRE_MAX_SOCKETS_PER_USER: '1000' } });
  admin = await login(srv, ADMIN.email, ADMIN.password);
  agent = await makeUser(srv, admin.api, 'agent', 'Agnes Agent');
  cust = await makeUser(srv, admin.api, 'customer', 'Cleo Customer');
  other = await makeUser(srv, admin.api, 'customer', 'Otto Other');
});
after(async () => { await srv?.stop(); });

const ack = (rec, event, payload) => rec.socket.timeout(5000).emitWithAck(event, payload);
const present = (rec, ticket_id, state) => ack(rec, 'presence', { ticket_id, state });
const typing = (rec, ticket_id, kind, active = true) => ack(rec, 'typing', { ticket_id, kind, active });

/** What a client shows of one ticket, built only from what it received, as a client would. */
function board(rec, ticketId) {
  const viewers = new Map();
  const typers = new Set();
  let snapshots = 0;
  for (const { name, payload: p } of rec.events) {
    if (p?.ticket_id !== ticketId && name !== 'presence.list') continue;
    if (name === 'presence.snapshot') {
      snapshots += 1;
      viewers.clear(); typers.clear();
      for (const v of p.viewers) viewers.set(v.user_id, v);
      for (const t of p.typing) typers.add(`${t.user_id}:${t.kind}`);
    } else if (name === 'presence.list') {
      const entry = p.tickets.find((t) => t.ticket_id === ticketId);
      viewers.clear();
      for (const v of entry?.viewers ?? []) viewers.set(v.user_id, v);
    } else if (name === 'presence.update') {
      for (const v of [...p.joined, ...p.changed]) viewers.set(v.user_id, v);
      for (const v of p.left) viewers.delete(v.user_id);
      for (const t of p.typing_started) typers.add(`${t.user_id}:${t.kind}`);
      for (const t of p.typing_stopped) typers.delete(`${t.user_id}:${t.kind}`);
    }
  }
  return { viewers, typers, snapshots };
}

/** Waits until `fn(board)` holds for what `rec` received about `ticketId`. */
async function until(rec, ticketId, fn, what, ms = 8000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const b = board(rec, ticketId);
    if (fn(b)) return b;
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}; viewers ${JSON.stringify([...b.viewers.values()])} typing ${JSON.stringify([...b.typers])}`);
    }
    await sleep(25);
  }
}

const everything = (rec) => JSON.stringify(rec.events.filter((e) => e.name.startsWith('presence') || e.name.startsWith('typing')));

test('two tabs of one agent are one viewer with the stronger state; closing one keeps them', async () => {
  const t = await cust.api.post('/api/tickets', { subject: 'Two tabs', description: 'x' }, 201);
  const watcher = await connect(srv, { token: admin.token });
  assert.deepEqual(await watcher.join(`ticket:${t.id}`), { ok: true });
  const tab1 = await connect(srv, { token: agent.token, rooms: [`ticket:${t.id}`] });
  const tab2 = await connect(srv, { token: agent.token, rooms: [`ticket:${t.id}`] });
  try {
    assert.deepEqual(await present(tab1, t.id, 'viewing'), { ok: true });
    assert.deepEqual(await present(tab2, t.id, 'replying'), { ok: true });
    let b = await until(watcher, t.id, (b) => b.viewers.get(agent.user.id)?.state === 'replying', 'the stronger state');
    assert.equal(b.viewers.size, 1, 'one person, not one per tab');
    assert.deepEqual(b.viewers.get(agent.user.id), { user_id: agent.user.id, name: 'Agnes Agent', role: 'agent', state: 'replying' });
    // The tab itself sees the same, from its own snapshot on (it is in the room).
    await until(tab1, t.id, (b) => b.viewers.get(agent.user.id)?.state === 'replying', 'the tab sees itself');

    tab2.close();
    b = await until(watcher, t.id, (b) => b.viewers.get(agent.user.id)?.state === 'viewing', 'the remaining tab');
    assert.equal(b.viewers.size, 1);
    assert.ok(!watcher.of('presence.update').some((p) => p.left.some((l) => l.user_id === agent.user.id)), 'never left while a tab remained');

    // presence.leave ends it without closing the socket.
    assert.deepEqual(await ack(tab1, 'presence.leave', { ticket_id: t.id }), { ok: true });
    await until(watcher, t.id, (b) => b.viewers.size === 0, 'the agent gone');
  } finally { tab1.close(); tab2.close(); watcher.close(); }
});

test('joining a quiet ticket says nothing; joining a busy one sends its snapshot', async () => {
  const t = await cust.api.post('/api/tickets', { subject: 'Quiet', description: 'x' }, 201);
  const early = await connect(srv, { token: admin.token });
  const ag = await connect(srv, { token: agent.token });
  try {
    assert.deepEqual(await early.join(`ticket:${t.id}`), { ok: true });
    await sleep(400);
    assert.equal(everything(early), '[]');
    assert.deepEqual(await present(ag, t.id, 'viewing'), { ok: true });
    await until(early, t.id, (b) => b.viewers.has(agent.user.id), 'the join diff');
    assert.equal(board(early, t.id).snapshots, 0, 'diffs from nobody, no snapshot needed');
    const late = await connect(srv, { token: admin.token });
    try {
      assert.deepEqual(await late.join(`ticket:${t.id}`), { ok: true });
      const snap = await late.waitFor((e) => e.name === 'presence.snapshot', 5000, 'the snapshot on join');
      assert.deepEqual(snap.payload, {
        ticket_id: t.id,
        viewers: [{ user_id: agent.user.id, name: 'Agnes Agent', role: 'agent', state: 'viewing' }],
        typing: [],
      });
    } finally { late.close(); }
    // A client resuming from a position enters its rooms only once the replay met the live
    // stream: the snapshot comes then, though nothing on the ticket changes meanwhile.
    const resuming = await connect(srv, { token: cust.token, rooms: [`ticket:${t.id}`], last_event_id: 0 });
    try {
      await resuming.waitFor((e) => e.name === 'catch_up', 5000, 'the catch-up');
      const snap = await resuming.waitFor((e) => e.name === 'presence.snapshot', 5000, 'the snapshot after catch-up');
      assert.deepEqual(snap.payload.viewers, [{ user_id: agent.user.id, name: 'Agnes Agent', role: 'agent', state: 'viewing' }]);
    } finally { resuming.close(); }
  } finally { early.close(); ag.close(); }
});

test('a customer sees support on it and replying, never a note being written nor internal typing', async () => {
  const t = await cust.api.post('/api/tickets', { subject: 'Notes', description: 'x' }, 201);
  const mine = await connect(srv, { token: cust.token, rooms: [`ticket:${t.id}`] });
  const staffWatch = await connect(srv, { token: admin.token, rooms: [`ticket:${t.id}`] });
  const ag = await connect(srv, { token: agent.token, rooms: [`ticket:${t.id}`] });
  const adm = await connect(srv, { token: admin.token });
  try {
    assert.deepEqual(await present(mine, t.id, 'viewing'), { ok: true });
    assert.deepEqual(await present(ag, t.id, 'noting'), { ok: true });
    assert.deepEqual(await typing(ag, t.id, 'internal'), { ok: true });
    assert.deepEqual(await present(adm, t.id, 'viewing'), { ok: true });
    // Staff see it all, the customer included.
    await until(staffWatch, t.id, (b) => b.viewers.get(agent.user.id)?.state === 'noting'
      && b.typers.has(`${agent.user.id}:internal`) && b.viewers.get(cust.user.id)?.state === 'viewing', 'staff view');
    // The customer: support is there (the admin shown as an agent), the note is viewing.
    let b = await until(mine, t.id, (b) => b.viewers.size === 2, 'two staff for the customer');
    assert.deepEqual(b.viewers.get(agent.user.id), { user_id: agent.user.id, name: 'Agnes Agent', role: 'agent', state: 'viewing' });
    assert.equal(b.viewers.get(admin.user.id).role, 'agent');
    assert.ok(!b.viewers.has(cust.user.id), 'a customer is not shown to customers, themselves included');
    assert.equal(b.typers.size, 0);

    // Public reply typing does reach them.
    assert.deepEqual(await present(ag, t.id, 'replying'), { ok: true });
    assert.deepEqual(await typing(ag, t.id, 'public'), { ok: true });
    b = await until(mine, t.id, (b) => b.viewers.get(agent.user.id)?.state === 'replying' && b.typers.has(`${agent.user.id}:public`), 'public typing');
    const started = mine.of('presence.update').flatMap((p) => p.typing_started);
    assert.deepEqual(started.at(-1), { user_id: agent.user.id, name: 'Agnes Agent', role: 'agent', kind: 'public' });

    // Opening a composer while someone writes a public reply tells who (advisory: it lands).
    // The customer is told support is; staff are told with the role; nobody is told of itself.
    const agnesReplying = { user_id: agent.user.id, name: 'Agnes Agent', role: 'agent', state: 'replying' };
    assert.deepEqual(await present(mine, t.id, 'replying'), { ok: true, replying: [agnesReplying] });
    const both = await present(adm, t.id, 'noting');
    const byId = (a, b) => a.user_id.localeCompare(b.user_id);
    assert.deepEqual(both.replying.sort(byId), [agnesReplying, { user_id: cust.user.id, name: 'Cleo Customer', role: 'customer', state: 'replying' }].sort(byId));
    assert.deepEqual(await present(ag, t.id, 'replying'), {
      ok: true,
      replying: [{ user_id: cust.user.id, name: 'Cleo Customer', role: 'customer', state: 'replying' }],
    });
    assert.deepEqual(await present(adm, t.id, 'viewing'), { ok: true }, 'only opening a composer is answered so');
    assert.deepEqual(await present(mine, t.id, 'viewing'), { ok: true });
    assert.deepEqual(await present(adm, t.id, 'replying'), { ok: true, replying: [agnesReplying] });
    assert.deepEqual(await present(adm, t.id, 'viewing'), { ok: true });

    // Back to the note, and its typing stops by itself after ~5 s without confirmation.
    assert.deepEqual(await present(ag, t.id, 'noting'), { ok: true });
    assert.deepEqual(await typing(ag, t.id, 'public', false), { ok: true });
    const t0 = Date.now();
    await until(staffWatch, t.id, (b) => !b.typers.has(`${agent.user.id}:internal`), 'internal typing to stop', 9000);
    const took = Date.now() - t0;
    assert.ok(took > 2500 && took < 7500, `internal typing stopped after ${took} ms`);
    await until(mine, t.id, (b) => b.viewers.get(agent.user.id)?.state === 'viewing' && b.typers.size === 0, 'noting shown as viewing');

    const all = everything(mine);
    assert.ok(!all.includes('noting'), 'noting reached the customer');
    assert.ok(!all.includes('internal'), 'internal typing reached the customer');
    assert.ok(!all.includes('"admin"'), 'the admin role reached the customer');
    assert.ok(!all.includes(cust.user.id), 'the customer saw a customer');

    // A customer may not announce a note, and may not join or announce on someone else's ticket.
    assert.deepEqual(await present(mine, t.id, 'noting'), { ok: false, error: 'forbidden' });
    assert.deepEqual(await typing(mine, t.id, 'internal'), { ok: false, error: 'forbidden' });
    const stranger = await connect(srv, { token: other.token });
    try {
      assert.deepEqual(await present(stranger, t.id, 'viewing'), { ok: false, error: 'forbidden' });
      assert.deepEqual(await typing(stranger, t.id, 'public'), { ok: false, error: 'forbidden' });
      await sleep(400);
      assert.equal(everything(stranger), '[]', 'a stranger heard presence');
      assert.ok(!everything(staffWatch).includes(other.user.id), 'a refused presence was shown');
    } finally { stranger.close(); }
  } finally { mine.close(); staffWatch.close(); ag.close(); adm.close(); }
});

test('one presence.update per batch carries people and typing, each audience its own view of it', async () => {
  const t = await cust.api.post('/api/tickets', { subject: 'One message', description: 'x' }, 201);
  const mine = await connect(srv, { token: cust.token, rooms: [`ticket:${t.id}`] });
  const staffWatch = await connect(srv, { token: admin.token, rooms: [`ticket:${t.id}`] });
  const ag = await connect(srv, { token: agent.token });
  const updates = (rec) => rec.of('presence.update').filter((p) => p.ticket_id === t.id);
  const about = (rec, userId) => updates(rec).filter((p) => JSON.stringify(p).includes(userId));
  const agnes = { user_id: agent.user.id, name: 'Agnes Agent', role: 'agent' };
  const byKind = (a, b) => a.kind.localeCompare(b.kind);
  try {
    assert.deepEqual(await present(mine, t.id, 'viewing'), { ok: true });
    await until(staffWatch, t.id, (b) => b.viewers.has(cust.user.id), 'the customer on it');
    // Typing a note without a presence opens it: one change of the people and one of the
    // typing, made by one request, so in one batch and one message per socket.
    assert.deepEqual(await typing(ag, t.id, 'internal'), { ok: true });
    await staffWatch.waitFor((e) => e.name === 'presence.update' && JSON.stringify(e.payload).includes(agent.user.id), 5000, 'staff told');
    await mine.waitFor((e) => e.name === 'presence.update' && JSON.stringify(e.payload).includes(agent.user.id), 5000, 'customer told');
    assert.deepEqual(about(staffWatch, agent.user.id), [{
      ticket_id: t.id, joined: [{ ...agnes, state: 'noting' }], left: [], changed: [],
      typing_started: [{ ...agnes, kind: 'internal' }], typing_stopped: [],
    }]);
    // The customer's message of the same batch: support viewing, nothing of the note's typing.
    assert.deepEqual(about(mine, agent.user.id), [{
      ticket_id: t.id, joined: [{ ...agnes, state: 'viewing' }], left: [], changed: [], typing_started: [], typing_stopped: [],
    }]);

    // Public typing besides: staff and the customer are told of it alone.
    assert.deepEqual(await typing(ag, t.id, 'public'), { ok: true });
    await until(mine, t.id, (b) => b.typers.has(`${agent.user.id}:public`), 'public typing for the customer');
    await until(staffWatch, t.id, (b) => b.typers.has(`${agent.user.id}:public`), 'public typing for staff');
    const onlyPublic = { ticket_id: t.id, joined: [], left: [], changed: [], typing_started: [{ ...agnes, kind: 'public' }], typing_stopped: [] };
    assert.deepEqual(about(staffWatch, agent.user.id).at(-1), onlyPublic);
    assert.deepEqual(about(mine, agent.user.id).at(-1), onlyPublic);

    // Leaving ends the entry and its typing in one message; the customer hears of public typing only.
    assert.deepEqual(await ack(ag, 'presence.leave', { ticket_id: t.id }), { ok: true });
    await until(mine, t.id, (b) => !b.viewers.has(agent.user.id), 'the customer to see the agent go');
    await until(staffWatch, t.id, (b) => !b.viewers.has(agent.user.id), 'staff to see the agent go');
    const gone = (p) => ({ ...p, typing_stopped: [...p.typing_stopped].sort(byKind) });
    assert.deepEqual(gone(about(staffWatch, agent.user.id).at(-1)), {
      ticket_id: t.id, joined: [], left: [{ user_id: agent.user.id }], changed: [], typing_started: [],
      typing_stopped: [{ user_id: agent.user.id, kind: 'internal' }, { user_id: agent.user.id, kind: 'public' }],
    });
    assert.deepEqual(about(mine, agent.user.id).at(-1), {
      ticket_id: t.id, joined: [], left: [{ user_id: agent.user.id }], changed: [], typing_started: [],
      typing_stopped: [{ user_id: agent.user.id, kind: 'public' }],
    });
    for (const rec of [mine, staffWatch]) {
      assert.equal(rec.of('typing.update').length, 0, 'typing travels in presence.update only');
      assert.equal(about(rec, agent.user.id).length, 3, 'one message per change, never one per kind');
    }
    const all = everything(mine);
    assert.ok(!all.includes('noting') && !all.includes('internal'), 'a note reached the customer');
  } finally { mine.close(); staffWatch.close(); ag.close(); }
});

test('staff in the ticket list get presence summaries; customers never do', async () => {
  const t = await cust.api.post('/api/tickets', { subject: 'List', description: 'x' }, 201);
  const ag = await connect(srv, { token: agent.token });
  assert.deepEqual(await present(ag, t.id, 'replying'), { ok: true });
  await sleep(400);
  const list = await connect(srv, { token: admin.token, rooms: ['tickets'] });
  const custList = await connect(srv, { token: cust.token, rooms: ['tickets'] });
  try {
    const first = await list.waitFor((e) => e.name === 'presence.list', 5000, 'the list on connect');
    assert.equal(first.payload.tickets.find((x) => x.ticket_id === t.id)?.viewers[0]?.state, 'replying');
    assert.deepEqual(await present(ag, t.id, 'noting'), { ok: true });
    await until(list, t.id, (b) => b.viewers.get(agent.user.id)?.state === 'noting', 'the summary to change');
    // Only the list room: no typing there, and no snapshot per ticket.
    assert.deepEqual(await typing(ag, t.id, 'internal'), { ok: true });
    await sleep(500);
    assert.ok(list.of('presence.update').every((p) => p.typing_started.length === 0 && p.typing_stopped.length === 0));
    assert.equal(everything(custList), '[]');
    // Joining the list later sends it again.
    assert.deepEqual(await list.leave('tickets'), { ok: true });
    const before = list.of('presence.list').length;
    assert.deepEqual(await list.join('tickets'), { ok: true });
    await list.waitFor(() => list.of('presence.list').length > before, 5000, 'the list on join');
  } finally { ag.close(); list.close(); custList.close(); }
});

test('an entry that stops being confirmed expires; confirmations keep it', async () => {
  // Short enough to watch an entry expire.
  const srv = await startServer({ extra: { TICKETWIRE_PRESENCE_EXPIRY_MS: '2500' } });
  const admin = await login(srv, ADMIN.email, ADMIN.password);
  const agent = await makeUser(srv, admin.api, 'agent');
  const cust = await makeUser(srv, admin.api, 'customer');
  const t = await cust.api.post('/api/tickets', { subject: 'Expiry', description: 'x' }, 201);
  const watcher = await connect(srv, { token: admin.token, rooms: [`ticket:${t.id}`] });
  const kept = await connect(srv, { token: agent.token });
  const lapsed = await connect(srv, { token: cust.token });
  try {
    assert.deepEqual(await present(kept, t.id, 'viewing'), { ok: true });
    assert.deepEqual(await present(lapsed, t.id, 'replying'), { ok: true });
    await until(watcher, t.id, (b) => b.viewers.size === 2, 'both');
    const t0 = Date.now();
    // The agent confirms every second (the server's expiry is 2.5 s here), the customer never.
    const beat = setInterval(() => present(kept, t.id, 'viewing').catch(() => {}), 1000);
    try {
      await until(watcher, t.id, (b) => !b.viewers.has(cust.user.id), 'the lapsed entry to expire', 6000);
      const took = Date.now() - t0;
      assert.ok(took >= 2000, `expired after ${took} ms`);
      await sleep(3000);
      assert.ok(board(watcher, t.id).viewers.has(agent.user.id), 'a confirmed entry expired');
    } finally { clearInterval(beat); }
    // The socket is still open: it was the missing confirmation that ended it.
    assert.ok(lapsed.socket.connected);
  } finally { watcher.close(); kept.close(); lapsed.close(); await srv.stop(); }
});

test('typing sent every 10 ms costs a few messages a second; floods are refused', async () => {
  const t = await cust.api.post('/api/tickets', { subject: 'Flood', description: 'x' }, 201);
  const watcher = await connect(srv, { token: admin.token, rooms: [`ticket:${t.id}`] });
  const typer = await connect(srv, { token: agent.token });
  try {
    const acks = [];
    const t0 = Date.now();
    let on = false;
    while (Date.now() - t0 < 2000) {
      on = !on;
      acks.push(typing(typer, t.id, 'public', on));
      await sleep(10);
    }
    const answers = await Promise.all(acks);
    const limited = answers.filter((a) => a.error === 'rate_limited').length;
    const ok = answers.filter((a) => a.ok).length;
    console.log(`# ${answers.length} typing messages in 2 s: ${ok} accepted, ${limited} rate_limited`);
    assert.ok(limited > answers.length / 2, 'most of the flood refused');
    assert.ok(ok >= 20 && ok <= 45, `accepted ${ok}: the burst and ~10/s`);
    assert.ok(answers.every((a) => a.ok || a.error === 'rate_limited'));
    await sleep(500);
    const msgs = watcher.events.filter((e) => e.name === 'presence.update');
    console.log(`# the watcher got ${msgs.length} presence/typing messages for it`);
    assert.ok(msgs.length <= 2.5 * 8, `${msgs.length} messages in ~2.5 s`);
    // The allowance comes back.
    await sleep(1500);
    assert.deepEqual(await present(typer, t.id, 'viewing'), { ok: true });
  } finally { watcher.close(); typer.close(); }
});

test('bad input is refused and changes nothing', async () => {
  const t = await cust.api.post('/api/tickets', { subject: 'Bad', description: 'x' }, 201);
  const s = await connect(srv, { token: agent.token });
  const c = await connect(srv, { token: cust.token });
  try {
    const missing = '00000000-0000-7000-8000-00000000beef';
    assert.deepEqual(await present(s, missing, 'viewing'), { ok: false, error: 'forbidden' });
    assert.deepEqual(await present(s, 'not-a-uuid', 'viewing'), { ok: false, error: 'invalid' });
    assert.deepEqual(await present(s, t.id, 'dancing'), { ok: false, error: 'invalid' });
    assert.deepEqual(await ack(s, 'presence', { ticket_id: 7, state: 'viewing' }), { ok: false, error: 'invalid' });
    assert.deepEqual(await ack(s, 'presence', 'viewing'), { ok: false, error: 'invalid' });
    assert.deepEqual(await ack(s, 'typing', { ticket_id: t.id, kind: 'shouting' }), { ok: false, error: 'invalid' });
    assert.deepEqual(await ack(s, 'presence.leave', { ticket_id: 5 }), { ok: false, error: 'invalid' });
    // Someone else's ticket and a missing one answer alike.
    const othersTicket = await other.api.post('/api/tickets', { subject: 'Mine', description: 'x' }, 201);
    assert.deepEqual(await present(c, othersTicket.id, 'viewing'), { ok: false, error: 'forbidden' });
    assert.deepEqual(await present(c, missing, 'viewing'), { ok: false, error: 'forbidden' });
    // Leaving what one never announced is fine.
    assert.deepEqual(await ack(s, 'presence.leave', { ticket_id: t.id }), { ok: true });
    assert.deepEqual(await ack(s, 'presence.leave', {}), { ok: true });
    // Still a healthy connection.
    assert.deepEqual(await present(s, t.id, 'viewing'), { ok: true });
  } finally { s.close(); c.close(); }
});

test('a requester moved off the ticket leaves its presence; nothing of it is in the event log', async () => {
  const t = await cust.api.post('/api/tickets', { subject: 'Moved', description: 'x' }, 201);
  const watcher = await connect(srv, { token: admin.token, rooms: [`ticket:${t.id}`] });
  const c = await connect(srv, { token: cust.token, rooms: [`ticket:${t.id}`] });
  try {
    assert.deepEqual(await present(c, t.id, 'replying'), { ok: true });
    await until(watcher, t.id, (b) => b.viewers.has(cust.user.id), 'the customer');
    const before = await admin.api.get('/api/events?limit=200');
    await admin.api.patch(`/api/tickets/${t.id}`, { requester_id: other.user.id });
    await until(watcher, t.id, (b) => !b.viewers.has(cust.user.id), 'the former requester gone');
    assert.deepEqual(await present(c, t.id, 'viewing'), { ok: false, error: 'forbidden' });
    const events = await admin.api.get('/api/events?limit=200');
    const text = JSON.stringify(events);
    assert.ok(!/presence|typing|replying/.test(text), 'presence reached the event log');
    assert.equal(JSON.stringify(before).includes('presence'), false);
  } finally { watcher.close(); c.close(); }
});

// ---- Across nodes: two (then three) nodes on PostgreSQL + Redis, one of them killed -9. ----
import { spawn, execFileSync } from 'node:child_process';
import { connect as netConnect } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, JWT_SECRET } from './lib/harness.mjs';

const PG = process.env.TEST_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';
const REDIS = process.env.TEST_REDIS_URL || 'redis://127.0.0.1:6379';
const reachable = (port) => new Promise((res) => {
  const s = netConnect(port, '127.0.0.1');
  s.once('connect', () => { s.destroy(); res(true); });
  s.once('error', () => res(false));
});

test('presence across nodes, a node joining late, and a node killed -9', async (t) => {
  const [pg, redis] = [await reachable(5432), await reachable(6379)];
  if (!pg || !redis) {
    if (process.env.CI === 'true') throw new Error('CI=true but PostgreSQL or Redis is unreachable');
    return t.skip('PostgreSQL or Redis not reachable');
  }
  const dbName = `tw_presence_${process.pid}_${Date.now()}`;
  const prefix = `tw-presence-${process.pid}-${Date.now()}`;
  const EXPIRY = 3000;
  const env = (dataDir) => ({
    ...process.env,
    DATABASE_URL: PG.replace(/\/[^/]*$/, `/${dbName}`),
    REDIS_URL: REDIS,
    TICKETWIRE_REDIS_PREFIX: prefix,
    TICKETWIRE_DATA_DIR: dataDir,
    TICKETWIRE_JWT_SECRET: JWT_SECRET,
    TICKETWIRE_LISTEN: '127.0.0.1:0',
    TICKETWIRE_PRESENCE_EXPIRY_MS: String(EXPIRY),
    RUST_LOG: process.env.RUST_LOG || 'warn',
  });
  const nodes = [];
  const startNode = async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'tw-node-'));
    const proc = spawn(BIN, ['serve'], { env: env(dataDir), stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stderr.on('data', (d) => { if (process.env.TW_SERVER_LOG) process.stderr.write(d); });
    const url = await new Promise((res, rej) => {
      let buf = '';
      const timer = setTimeout(() => rej(new Error('node did not start: ' + buf)), 60_000);
      proc.stdout.on('data', (d) => {
        buf += d;
        const m = buf.match(/listening on (http:\/\/[\d.:]+)/);
        if (m) { clearTimeout(timer); res(m[1]); }
      });
      proc.once('exit', (c) => { clearTimeout(timer); rej(new Error(`node exited ${c}: ${buf}`)); });
    });
    proc.stdout.resume();
    const node = { url, proc, dataDir };
    node.kill9 = async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const done = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGKILL');
      await done;
    };
    nodes.push(node);
    return node;
  };
  execFileSync('psql', [PG, '-qc', `CREATE DATABASE ${dbName}`], { stdio: 'inherit' });
  const socks = [];
  let beat;
  try {
    const setupDir = mkdtempSync(join(tmpdir(), 'tw-node-'));
    execFileSync(BIN, ['create-admin', '--email', ADMIN.email, '--password', ADMIN.password], { env: env(setupDir), stdio: 'inherit' });
    rmSync(setupDir, { recursive: true, force: true });
    const a = await startNode();
    const b = await startNode();
    const adminA = await login(a, ADMIN.email, ADMIN.password);
    const ag = await makeUser(a, adminA.api, 'agent', 'Bea on B');
    const cu = await makeUser(a, adminA.api, 'customer', 'Cy on A');
    const tk = await cu.api.post('/api/tickets', { subject: 'Two nodes', description: 'x' }, 201);
    const open = async (node, token, rooms) => { const s = await connect(node, { token, rooms }); socks.push(s); return s; };

    const staffOnA = await open(a, adminA.token, [`ticket:${tk.id}`, 'tickets']);
    const custOnA = await open(a, cu.token, [`ticket:${tk.id}`]);
    const agentOnB = await open(b, ag.token, [`ticket:${tk.id}`]);
    assert.deepEqual(await present(custOnA, tk.id, 'replying'), { ok: true });
    assert.deepEqual(await present(agentOnB, tk.id, 'noting'), { ok: true });
    assert.deepEqual(await typing(agentOnB, tk.id, 'internal'), { ok: true });
    // The agent keeps confirming (node B relays it), as a client does every ~20 s.
    beat = setInterval(() => {
      present(agentOnB, tk.id, 'noting').catch(() => {});
      typing(agentOnB, tk.id, 'internal').catch(() => {});
    }, 1000);

    // Staff on A see the agent on B exactly; the agent on B sees the customer on A.
    await until(staffOnA, tk.id, (x) => x.viewers.get(ag.user.id)?.state === 'noting' && x.typers.has(`${ag.user.id}:internal`)
      && x.viewers.get(cu.user.id)?.state === 'replying', 'staff on A to see both nodes');
    await until(agentOnB, tk.id, (x) => x.viewers.get(cu.user.id)?.state === 'replying', 'the agent on B to see the customer on A');
    // The customer on A: support is on it, nothing of the note.
    await until(custOnA, tk.id, (x) => x.viewers.get(ag.user.id)?.state === 'viewing', 'the customer to see support');

    // A node started now learns what the others hold without waiting for a refresh.
    const c = await startNode();
    const staffOnC = await open(c, adminA.token, [`ticket:${tk.id}`]);
    await until(staffOnC, tk.id, (x) => x.viewers.get(ag.user.id)?.state === 'noting' && x.viewers.has(cu.user.id), 'node C to catch up', 5000);

    // Node B dies without a word: the others drop its entries within the expiry.
    await sleep(500);
    clearInterval(beat);
    const killedAt = Date.now();
    await b.kill9();
    await until(staffOnA, tk.id, (x) => !x.viewers.has(ag.user.id) && !x.typers.has(`${ag.user.id}:internal`), 'B\'s agent to go', EXPIRY + 3000);
    const took = Date.now() - killedAt;
    console.log(`# node B killed: its agent left node A's view after ${took} ms (expiry ${EXPIRY} ms)`);
    assert.ok(took <= EXPIRY + 1500, `took ${took} ms`);
    await until(staffOnC, tk.id, (x) => !x.viewers.has(ag.user.id), 'and node C\'s');
    await until(custOnA, tk.id, (x) => !x.viewers.has(ag.user.id), 'and the customer\'s');
    // The list room followed too.
    assert.ok(staffOnA.of('presence.update').some((p) => p.ticket_id === tk.id && p.left.some((l) => l.user_id === ag.user.id)));

    const all = everything(custOnA);
    assert.ok(!all.includes('noting') && !all.includes('internal'), 'a note reached the customer across nodes');
    assert.ok(!all.includes(cu.user.id), 'the customer saw a customer');
  } finally {
    clearInterval(beat);
    for (const s of socks) s.close();
    for (const n of nodes) { await n.kill9(); rmSync(n.dataDir, { recursive: true, force: true }); }
    try { execFileSync('psql', [PG, '-qc', `DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`]); } catch { /* best effort */ }
  }
});
