// Issue #3: Socket.IO connect-time auth, room permissions, and many clients joining at once.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { io } from 'socket.io-client';
import { startServer, login, makeUser, connect, refusedMessage, signJwt, ADMIN, sleep } from './lib/harness.mjs';

let srv, admin, agent, cust, other, ticketA, ticketB;

before(async () => {
  srv = await startServer({ extra: { TICKETWIRE_MAX_SOCKETS_PER_USER: '1000' } });
  admin = await login(srv, ADMIN.email, ADMIN.password);
  agent = await makeUser(srv, admin.api, 'agent');
  cust = await makeUser(srv, admin.api, 'customer');
  other = await makeUser(srv, admin.api, 'customer');
  ticketA = await cust.api.post('/api/tickets', { subject: 'A printer', description: 'jammed' }, 201);
  ticketB = await other.api.post('/api/tickets', { subject: 'B router', description: 'blinking' }, 201);
});
after(async () => { await srv?.stop(); });

test('connections without a valid token are refused with "unauthorized"', async () => {
  const now = Math.floor(Date.now() / 1000);
  // Every token the server issues has its own id and the account's tokens-valid-after mark.
  const base = { sub: cust.user.id, role: 'customer', jti: '0190f2a0-0000-7000-8000-00000000abcd', tva: 0 };
  const cases = {
    'no auth': undefined,
    'no token': {},
    'garbage token': { token: 'not-a-jwt' },
    'expired token': { token: signJwt({ ...base, iat: now - 7200, exp: now - 3600 }) },
    'other key': { token: signJwt({ ...base, iat: now, exp: now + 3600 }, 'another-secret-0123456789abcdef012345') },
    'no token id': { token: signJwt({ sub: cust.user.id, role: 'customer', iat: now, exp: now + 3600 }) },
    'alg none': { token: Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url') + '.' + Buffer.from(JSON.stringify({ sub: admin.user.id, role: 'admin', iat: now, exp: now + 3600 })).toString('base64url') + '.' },
  };
  for (const [name, auth] of Object.entries(cases)) {
    assert.equal(await refusedMessage(srv, auth), 'unauthorized', name);
  }
  // Positive control: the same forging code with the right key is accepted.
  const good = await connect(srv, { token: signJwt({ ...base, iat: now, exp: now + 3600 }) });
  good.close();
});

test('a malformed auth object is refused with "invalid_auth", not taken for a bad token', async () => {
  const cases = {
    'rooms not a list': { token: cust.token, rooms: 'tickets' },
    'last_event_id not a number': { token: cust.token, last_event_id: 'abc' },
    'last_event not a string': { token: cust.token, last_event_id: 1, last_event: 5 },
    'token not a string': { token: 42 },
  };
  for (const [name, auth] of Object.entries(cases)) {
    assert.equal(await refusedMessage(srv, auth), 'invalid_auth', name);
  }
  // Positive control: the same fields, well typed, connect.
  const good = await connect(srv, { token: cust.token, rooms: ['kb'], last_event_id: 1, last_event: 'kb.update' });
  good.close();
});

test('a deactivated user cannot connect', async () => {
  const u = await makeUser(srv, admin.api, 'customer');
  const rec = await connect(srv, { token: u.token });
  rec.close();
  await admin.api.del(`/api/users/${u.user.id}`);
  assert.equal(await refusedMessage(srv, { token: u.token }), 'unauthorized');
});

test('room permissions per role', async () => {
  const uuid = '0190f2a0-0000-7000-8000-000000000000';
  const expectations = [
    [cust, 'tickets', { ok: false, error: 'forbidden' }],
    [cust, 'comments', { ok: false, error: 'forbidden' }],
    [cust, 'attachments', { ok: false, error: 'forbidden' }],
    [cust, 'users', { ok: false, error: 'forbidden' }],
    [cust, 'kb', { ok: true }],
    [cust, `ticket:${ticketA.id}`, { ok: true }],
    [cust, `ticket:${ticketB.id}`, { ok: false, error: 'forbidden' }],
    [cust, `ticket:${uuid}`, { ok: false, error: 'forbidden' }],
    [cust, 'ticket:not-a-uuid', { ok: false, error: 'unknown_room' }],
    [cust, `user:${other.user.id}`, { ok: false, error: 'forbidden' }],
    [cust, 'role:staff', { ok: false, error: 'unknown_room' }],
    [cust, 'kb:public', { ok: false, error: 'unknown_room' }],
    [cust, 'bogus', { ok: false, error: 'unknown_room' }],
    [agent, 'tickets', { ok: true }],
    [agent, 'comments', { ok: true }],
    [agent, 'attachments', { ok: true }],
    [agent, 'users', { ok: false, error: 'forbidden' }],
    [agent, 'kb', { ok: true }],
    [agent, `ticket:${ticketB.id}`, { ok: true }],
    [admin, 'users', { ok: true }],
    [admin, 'tickets', { ok: true }],
  ];
  const socks = new Map();
  for (const who of [cust, agent, admin]) socks.set(who, await connect(srv, { token: who.token }));
  try {
    for (const [who, room, want] of expectations) {
      const got = await socks.get(who).join(room);
      assert.deepEqual(got, want, `${who.user.role} join ${room}`);
    }
    // Malformed join payload.
    const bad = await socks.get(cust).socket.timeout(5000).emitWithAck('join', 'tickets');
    assert.equal(bad.ok, false);
  } finally {
    for (const s of socks.values()) s.close();
  }
});

test('refused rooms in connect auth are silently dropped, permitted ones joined', async () => {
  const c = await connect(srv, { token: cust.token, rooms: ['tickets', 'users', `ticket:${ticketB.id}`, `ticket:${ticketA.id}`] });
  const b = await connect(srv, { token: other.token, rooms: ['tickets'] });
  const s = await connect(srv, { token: agent.token, rooms: ['tickets'] });
  try {
    await agent.api.patch(`/api/tickets/${ticketB.id}`, { priority: 'high' });
    const t = await agent.api.patch(`/api/tickets/${ticketA.id}`, { priority: 'high' });
    await s.waitCount((e) => e.name === 'ticket.update', 2);
    const got = await c.waitFor((e) => e.name === 'ticket.update');
    assert.equal(got.payload.data.id, ticketA.id);
    assert.deepEqual(got.payload.data, t);
    await sleep(200);
    assert.ok(!c.events.some((e) => e.payload?.data?.id === ticketB.id), 'customer A saw customer B ticket');
    assert.ok(!b.events.some((e) => e.payload?.data?.id === ticketA.id), 'customer B saw customer A ticket');
  } finally { c.close(); b.close(); s.close(); }
});

test('leave stops delivery for that room', async () => {
  const s = await connect(srv, { token: agent.token, rooms: ['tickets'] });
  const watcher = await connect(srv, { token: admin.token, rooms: ['tickets'] });
  try {
    assert.deepEqual(await s.leave('tickets'), { ok: true });
    const low = await admin.api.patch(`/api/tickets/${ticketB.id}`, { priority: 'low' });
    // Live emits follow the HTTP response asynchronously: wait until it went out to a watcher.
    await watcher.waitFor((e) => e.name === 'ticket.update' && e.payload.data.version === low.version);
    // Then join again and see a later update arrive; the earlier one must not have.
    assert.deepEqual(await s.join('tickets'), { ok: true });
    const t = await admin.api.patch(`/api/tickets/${ticketB.id}`, { priority: 'urgent' });
    const got = await s.waitFor((e) => e.name === 'ticket.update');
    assert.equal(got.payload.data.version, t.version, JSON.stringify(s.events.map((e) => [e.name, e.payload.event_id, e.payload.data?.id, e.payload.data?.version])));
    assert.equal(s.of('ticket.update').length, 1);
  } finally { s.close(); watcher.close(); }
});

test('300 clients connecting and immediately joining all get their ack', { timeout: 120_000 }, async () => {
  const N = 300;
  const sockets = [];
  const acks = [];
  const who = [agent, cust];
  for (let i = 0; i < N; i++) {
    const u = who[i % 2];
    const s = io(srv.url, { auth: { token: u.token }, transports: ['websocket'], reconnection: false, forceNew: true, timeout: 60_000 });
    sockets.push(s);
    // Emitted before the connection is even open: the client buffers it, and it goes out as
    // soon as the connect packet is answered.
    const room = u === agent ? 'tickets' : `ticket:${ticketA.id}`;
    acks.push(s.timeout(60_000).emitWithAck('join', { room }).then((a) => a, (e) => ({ err: e.message })));
  }
  try {
    const results = await Promise.all(acks);
    const bad = results.filter((r) => !r || r.ok !== true);
    assert.equal(bad.length, 0, `${bad.length} of ${N} joins failed: ${JSON.stringify(bad.slice(0, 3))}`);
    // And the joins took effect: every socket gets the next update of ticket A.
    let got = 0;
    const all = new Promise((res) => sockets.forEach((s) => s.on('ticket.update', (p) => { if (p.data.id === ticketA.id && ++got === N) res(); })));
    await admin.api.patch(`/api/tickets/${ticketA.id}`, { status: 'in_progress' });
    let timer;
    await Promise.race([all, new Promise((r) => { timer = setTimeout(r, 30_000); })]);
    clearTimeout(timer);
    assert.equal(got, N, 'every joined socket receives the update');
  } finally {
    sockets.forEach((s) => s.disconnect());
  }
});
