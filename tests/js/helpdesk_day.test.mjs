// Issue #8: the cross-channel "helpdesk day". One server, one day of work (tickets, replies,
// internal notes, an attachment, a KB draft and its publication, a user deactivated mid-day), and
// every identity watching on every channel it can: REST reads, Socket.IO (joined to every room it
// may join) and its own signed webhook. Afterwards each identity's haul is checked: it received
// what it may see (positive checks, so nothing passes vacuously) and nothing else (zero leaks).
//
// Identities: anonymous, customer A, customer B, agent, admin, deactivated user D, an expired
// token, a token signed with another key and an `alg: none` token (the last three claim to be the
// admin).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { randomBytes } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { Webhook } from 'standardwebhooks';
import { startServer, login, makeUser, connect, refusedMessage, client, signJwt, ADMIN, sleep } from './lib/harness.mjs';

const rnd = randomBytes(5).toString('hex');
// Unique strings whose presence in a payload proves where it came from.
const MARK = {
  subjA: `SUBJ-A-${rnd}`,
  subjB: `SUBJ-B-${rnd}`,
  subjD: `SUBJ-D-${rnd}`,
  note: `NOTE-${rnd}`,
  attA: `ATTBYTES-A-${rnd}`,
  draft: `DRAFT-${rnd}`,
  pub: `PUBLISHED-${rnd}`,
};

const REAL = ['A', 'B', 'agent', 'admin', 'D'];
const FORGED = ['expired', 'otherKey', 'algNone'];
const ALL = ['anonymous', 'A', 'B', 'agent', 'admin', 'D', ...FORGED];
const LABEL = { anonymous: 'anonymous', A: 'customer A', B: 'customer B', agent: 'agent', admin: 'admin', D: 'deactivated D', expired: 'expired token', otherKey: 'other key', algNone: 'alg none' };

let srv, t0;
/** Per identity: token, user, REST log, socket recorder, webhook receiver and deliveries, join acks. */
const who = Object.fromEntries(ALL.map((k) => [k, { key: k, token: null, user: null, rest: [], sock: null, hooks: [], joins: {}, refused: null }]));
const ids = {}; // what the day creates
let barrierArticle, dayStart = 0, deactEventId = null, dDisconnectReason = null;
const draftPhase = {}; // REST reads of the draft while it was one, per identity

// ---------------------------------------------------------------------------------------------
// Recording helpers

/** A REST call as identity `k`, recorded in its log. */
async function rest(k, method, path, body, phase = 'day') {
  const r = await client(srv, who[k].token).call(method, path, body);
  who[k].rest.push({ method, path, reqBody: body instanceof FormData ? '[form]' : body, status: r.status, body: r.body, phase, afterDeactivation: deactEventId !== null });
  return r;
}
/** Like `rest`, but the status must be `expect` (or any 2xx). */
async function restOk(k, method, path, body, expect) {
  const r = await rest(k, method, path, body);
  const good = expect ? r.status === expect : r.status >= 200 && r.status < 300;
  if (!good) throw new Error(`${k}: ${method} ${path} -> ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

/** A webhook receiver on 127.0.0.1 that keeps every request (and answers 204). */
async function receiver(k) {
  const hooks = who[k].hooks;
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      hooks.push({ path: req.url, headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), at: Date.now() });
      res.statusCode = 204;
      res.end();
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  who[k].receiver = server;
  return `http://127.0.0.1:${server.address().port}/hooks/${k}`;
}

const connected = () => REAL.map((k) => who[k].sock).filter((s) => s && s.socket.connected);

/** Every connected socket tries to join `room`; the acks are recorded. */
async function joinAll(room) {
  for (const k of REAL) {
    const s = who[k].sock;
    if (!s || !s.socket.connected) continue;
    who[k].joins[room] = await s.join(room);
  }
}

let barrierN = 0;
/** An edit of a published article reaches every connected socket: once all have it, everything emitted before has arrived. */
async function barrier() {
  barrierN += 1;
  const a = await client(srv, who.admin.token).patch(`/api/kb/articles/${barrierArticle.id}`, { title: `Barrier ${barrierN}` });
  await Promise.all(connected().map((s) => s.waitFor((e) => e.name === 'kb.update' && e.payload.data.id === a.id && e.payload.data.version === a.version, 10_000, `barrier ${barrierN}`)));
}

function forgedTokens(adminId) {
  const now = Math.floor(Date.now() / 1000);
  // Shaped like the server's own tokens, so each is refused for the one flaw it has.
  const claims = { sub: adminId, role: 'admin', iat: now, exp: now + 3600, jti: '0190f2a0-0000-7000-8000-00000000beef', tva: 0 };
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return {
    expired: signJwt({ ...claims, iat: now - 7200, exp: now - 60 }),
    otherKey: signJwt(claims, 'another-secret-0123456789abcdef0123456789'),
    algNone: `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`,
  };
}

// ---------------------------------------------------------------------------------------------
// The day

before(async () => {
  t0 = performance.now();
  srv = await startServer();
  const admin = await login(srv, ADMIN.email, ADMIN.password);
  Object.assign(who.admin, { token: admin.token, user: admin.user });
  const made = {
    agent: await makeUser(srv, admin.api, 'agent', 'Agent Smith'),
    A: await makeUser(srv, admin.api, 'customer', 'Alice A'),
    B: await makeUser(srv, admin.api, 'customer', 'Bob B'),
    D: await makeUser(srv, admin.api, 'customer', 'Dora D'),
  };
  for (const [k, u] of Object.entries(made)) Object.assign(who[k], { token: u.token, user: u.user });
  Object.entries(forgedTokens(admin.user.id)).forEach(([k, tok]) => { who[k].token = tok; });

  // The barrier article (published before anyone listens, so its creation notifies nobody live).
  barrierArticle = await admin.api.post('/api/kb/articles', { title: 'Barrier', body: 'b', status: 'published' }, 201);

  // Each real user: a webhook to its own receiver, and a socket joined to every room it may join.
  for (const k of REAL) {
    const url = await receiver(k);
    const ep = await restOk(k, 'PUT', '/api/users/me/webhook', { webhook_url: url });
    assert.equal(ep.enabled, true);
    who[k].secret = ep.secret;
  }
  for (const k of REAL) {
    who[k].sock = await connect(srv, { token: who[k].token });
    who[k].sock.socket.on('disconnect', (reason) => { who[k].disconnect = reason; });
  }
  for (const room of ['tickets', 'comments', 'attachments', 'users', 'kb']) await joinAll(room);
  for (const k of REAL) await joinAll(`user:${who[k].user.id}`);
  // Forged and anonymous identities cannot even connect.
  for (const k of ['anonymous', ...FORGED]) who[k].refused = await refusedMessage(srv, who[k].token ? { token: who[k].token } : {});

  const events = await client(srv, admin.token).get('/api/events?limit=500');
  dayStart = events.length ? events[events.length - 1].event_id : 0;
  await barrier();

  // 1. A opens a ticket with an attachment.
  ids.tA = await restOk('A', 'POST', '/api/tickets', { subject: `Printer on fire ${MARK.subjA}`, description: 'smoke from tray 2', priority: 'high' }, 201);
  await joinAll(`ticket:${ids.tA.id}`);
  const fd = new FormData();
  fd.append('file', new Blob([`printer log ${MARK.attA}`], { type: 'text/plain' }), 'printer.log');
  ids.att = await restOk('A', 'POST', `/api/tickets/${ids.tA.id}/attachments`, fd, 201);

  // 2. B opens a ticket.
  ids.tB = await restOk('B', 'POST', '/api/tickets', { subject: `Router blinking ${MARK.subjB}`, description: 'orange light' }, 201);
  await joinAll(`ticket:${ids.tB.id}`);

  // 3. The agent takes both tickets.
  await restOk('agent', 'PATCH', `/api/tickets/${ids.tA.id}`, { assignee_id: who.agent.user.id, status: 'in_progress' });
  await restOk('agent', 'PATCH', `/api/tickets/${ids.tB.id}`, { assignee_id: who.agent.user.id, priority: 'low' });

  // 4. A public reply, an internal note, and the admin's reply in the note's thread (internal too).
  ids.reply = await restOk('agent', 'POST', `/api/tickets/${ids.tA.id}/comments`, { content: 'We are on it, please unplug the printer.' }, 201);
  ids.note = await restOk('agent', 'POST', `/api/tickets/${ids.tA.id}/comments`, { content: `Customer printed 40k pages; bill them ${MARK.note}`, internal: true }, 201);
  ids.noteReply = await restOk('admin', 'POST', `/api/tickets/${ids.tA.id}/comments`, { content: `Agreed, invoice ${MARK.note}`, parent_id: ids.note.id }, 201);
  assert.equal(ids.note.internal, true);
  assert.equal(ids.noteReply.internal, true, 'a reply in an internal thread stays internal');
  await barrier();

  // 5. A KB draft: only staff may see it.
  ids.draft = await restOk('admin', 'POST', '/api/kb/articles', { title: `Resetting printers`, body: `unfinished ${MARK.draft}` }, 201);
  assert.equal(ids.draft.status, 'draft');
  await barrier();
  for (const k of ALL) {
    const one = await rest(k, 'GET', `/api/kb/articles/${ids.draft.id}`, undefined, 'draft');
    const list = await rest(k, 'GET', '/api/kb/articles?limit=200', undefined, 'draft');
    draftPhase[k] = { one: one.status, list: list.status, listed: list.status === 200 && list.body.items.some((a) => a.id === ids.draft.id) };
  }

  // 6. Published, with its final text.
  ids.article = await restOk('admin', 'PATCH', `/api/kb/articles/${ids.draft.id}`, { status: 'published', body: `Hold the reset button for 10 s. ${MARK.pub}` });
  assert.equal(ids.article.status, 'published');
  await barrier();

  // 7. A answers the agent's reply.
  ids.aReply = await restOk('A', 'POST', `/api/tickets/${ids.tA.id}/comments`, { content: 'Unplugged, still smoking', parent_id: ids.reply.id }, 201);

  // 8. D opens a ticket; D's last reads before deactivation.
  ids.tD = await restOk('D', 'POST', '/api/tickets', { subject: `Lost badge ${MARK.subjD}`, description: 'cannot enter' }, 201);
  await joinAll(`ticket:${ids.tD.id}`);
  await barrier();
  for (const [path, want] of [[`/api/tickets/${ids.tD.id}`, 200], [`/api/attachments/${ids.att.id}/content`, 404], [`/api/tickets/${ids.tA.id}`, 404]]) {
    const r = await rest('D', 'GET', path, undefined, 'before-deactivation');
    assert.equal(r.status, want, `D before deactivation: GET ${path}`);
  }

  // 9. The admin deactivates D: D's socket closes; everything after must not reach D.
  const dSock = who.D.sock;
  const closed = new Promise((r) => dSock.socket.once('disconnect', r));
  await restOk('admin', 'DELETE', `/api/users/${who.D.user.id}`);
  const deact = await who.admin.sock.waitFor((e) => e.name === 'user.update' && e.payload.data.id === who.D.user.id && e.payload.data.is_active === false, 10_000, 'user.update for D');
  deactEventId = deact.payload.event_id;
  dDisconnectReason = await Promise.race([closed, sleep(5000).then(() => 'still connected')]);

  // 10. The agent works on D's ticket anyway.
  await restOk('agent', 'PATCH', `/api/tickets/${ids.tD.id}`, { assignee_id: who.agent.user.id, status: 'pending' });
  ids.dComment = await restOk('agent', 'POST', `/api/tickets/${ids.tD.id}/comments`, { content: 'We will call you about the badge' }, 201);

  // 11. Last change of the day, for A: when A's webhook has it, earlier deliveries have had their turn.
  ids.tAFinal = await restOk('admin', 'PATCH', `/api/tickets/${ids.tA.id}`, { status: 'resolved' });
  await barrier();

  // 12. The forged identities, and D, try to write.
  for (const k of ['anonymous', 'D', ...FORGED]) {
    await rest(k, 'POST', '/api/tickets', { subject: 'forged' }, 'write');
    await rest(k, 'POST', `/api/tickets/${ids.tA.id}/comments`, { content: 'forged note', internal: true }, 'write');
    await rest(k, 'PUT', '/api/users/me/webhook', { webhook_url: 'http://127.0.0.1:9/x' }, 'write');
  }
  // D tries to come back.
  who.D.reconnect = await refusedMessage(srv, { token: who.D.token });

  // 13. End-of-day reads, every identity, the same list.
  for (const k of ALL) for (const [, path] of probes()) await rest(k, 'GET', path, undefined, 'probe');

  // 14. Wait for the webhooks: every active user's inbox of the day, delivered.
  const deadline = Date.now() + 20_000;
  for (const k of ['A', 'B', 'agent', 'admin']) {
    const inbox = (await client(srv, who[k].token).get('/api/notifications?limit=200')).items.filter((n) => n.event_id > dayStart);
    who[k].inbox = inbox;
    while (Date.now() < deadline && new Set(who[k].hooks.map((h) => h.headers['webhook-id'])).size < inbox.length) await sleep(50);
  }
  await sleep(1500); // room for anything late (D's in particular) to arrive
}, { timeout: 120_000 });

after(async () => {
  for (const k of REAL) {
    who[k].sock?.close();
    who[k].receiver?.close();
    who[k].receiver?.closeAllConnections?.();
  }
  await srv?.stop();
});

// ---------------------------------------------------------------------------------------------
// What each identity may see

const STAFF = new Set(['agent', 'admin']);
const DEAD = new Set(['D', ...FORGED]); // no valid session at the end of the day

/** End-of-day probes: [name, path]. */
function probes() {
  return [
    ['me', '/api/users/me'],
    ['ticket list', '/api/tickets?limit=200'],
    ['ticket A', `/api/tickets/${ids.tA.id}`],
    ['ticket B', `/api/tickets/${ids.tB.id}`],
    ['ticket D', `/api/tickets/${ids.tD.id}`],
    ['comments of A', `/api/tickets/${ids.tA.id}/comments?limit=200`],
    ['public reply', `/api/comments/${ids.reply.id}`],
    ['internal note', `/api/comments/${ids.note.id}`],
    ['internal reply', `/api/comments/${ids.noteReply.id}`],
    ['attachments of A', `/api/tickets/${ids.tA.id}/attachments`],
    ['attachment', `/api/attachments/${ids.att.id}`],
    ['attachment content', `/api/attachments/${ids.att.id}/content`],
    ['comments of D', `/api/tickets/${ids.tD.id}/comments?limit=200`],
    ['kb list', '/api/kb/articles?limit=200'],
    ['kb article', `/api/kb/articles/${ids.article.id}`],
    ['notifications', '/api/notifications?limit=200'],
    ['events', '/api/events?limit=500'],
  ];
}

/** The documented status of probe `name` for identity `k`: 401 without a valid session, 404 for what is not yours. */
function expectedStatus(k, name) {
  if (DEAD.has(k)) return 401;
  if (k === 'anonymous') return name.startsWith('kb ') ? 200 : 401;
  if (STAFF.has(k)) return 200;
  const own = { A: 'A', B: 'B' }[k];
  switch (name) {
    case 'me': case 'ticket list': case 'kb list': case 'kb article': case 'notifications': case 'events': return 200;
    case 'ticket A': case 'comments of A': case 'public reply': case 'attachments of A': case 'attachment': case 'attachment content':
      return own === 'A' ? 200 : 404;
    case 'ticket B': return own === 'B' ? 200 : 404;
    case 'ticket D': case 'comments of D': return 404;
    case 'internal note': case 'internal reply': return 404;
    default: throw new Error(`no expectation for ${name}`);
  }
}

/** Strings identity `k` must never receive, on any channel: [what, needle]. */
function forbidden(k) {
  const out = [['a password hash', '$argon2']];
  for (const o of REAL) if (o !== k) out.push([`${o}'s webhook secret`, who[o].secret]);
  const customerish = !STAFF.has(k);
  if (customerish) {
    out.push(['the internal note marker', MARK.note], ['the internal note id', ids.note.id], ['the internal reply id', ids.noteReply.id], ['the KB draft text', MARK.draft]);
  }
  const aboutA = [['ticket A id', ids.tA.id], ['ticket A subject', MARK.subjA], ['A\'s attachment id', ids.att.id], ['A\'s attachment bytes', MARK.attA],
    ['the reply on A\'s ticket', ids.reply.id], ['A\'s comment', ids.aReply.id], ['A\'s email', who.A.user.email], ['A\'s user id', who.A.user.id]];
  const aboutB = [['ticket B id', ids.tB.id], ['ticket B subject', MARK.subjB], ['B\'s email', who.B.user.email], ['B\'s user id', who.B.user.id]];
  const aboutD = [['ticket D id', ids.tD.id], ['ticket D subject', MARK.subjD], ['the comment on D\'s ticket', ids.dComment.id], ['D\'s email', who.D.user.email], ['D\'s user id', who.D.user.id]];
  if (customerish && k !== 'A') out.push(...aboutA);
  if (customerish && k !== 'B') out.push(...aboutB);
  if (customerish && k !== 'D') out.push(...aboutD);
  return out;
}

/** Everything `k` received, per channel, as [{where, text, eventId, request}] to scan. */
function received(k) {
  const w = who[k];
  return {
    rest: w.rest.map((r) => ({ where: `${r.method} ${r.path} -> ${r.status}`, text: typeof r.body === 'string' ? r.body : JSON.stringify(r.body ?? ''), request: `${r.path} ${JSON.stringify(r.reqBody ?? '')}`, ok: r.status >= 200 && r.status < 300, phase: r.phase, afterDeactivation: r.afterDeactivation })),
    sio: (w.sock?.events || []).map((e) => ({ where: `socket ${e.name} #${e.payload?.event_id}`, text: JSON.stringify(e.payload), eventId: e.payload?.event_id, name: e.name, payload: e.payload })),
    hook: w.hooks.map((h) => {
      const p = safeJson(h.body);
      return { where: `webhook ${h.headers['webhook-id']} (${p?.notification?.type} about ${p?.notification?.related_type} ${p?.notification?.related_id}: "${p?.notification?.message}")`, text: h.body, eventId: p?.event_id, raw: h };
    }),
  };
}
const safeJson = (s) => { try { return JSON.parse(s); } catch { return null; } };

/** The leaks of identity `k` on each channel. */
function leaksOf(k) {
  const got = received(k);
  const needles = forbidden(k);
  const out = { rest: [], sio: [], hook: [] };
  for (const [ch, items] of Object.entries(got)) {
    for (const it of items) {
      for (const [what, needle] of needles) {
        if (!needle) continue;
        // An error body may echo the id its caller sent; that is not a leak.
        if (it.request && it.request.includes(needle)) continue;
        if (it.text.includes(needle)) out[ch].push(`${it.where}: ${what}`);
      }
      // No valid session: any success at all is a leak.
      if ((FORGED.includes(k)) && ch === 'rest' && it.ok) out[ch].push(`${it.where}: answered to a forged token`);
      if (k === 'D' && ch === 'rest' && it.ok && it.afterDeactivation) out[ch].push(`${it.where}: answered after deactivation`);
      if (k === 'D' && ch !== 'rest' && !(it.eventId <= deactEventId)) out[ch].push(`${it.where}: reached D after the deactivation (event ${deactEventId})`);
    }
  }
  if (FORGED.includes(k) || k === 'anonymous') {
    if (who[k].refused !== 'unauthorized') out.sio.push(`socket connect answered ${who[k].refused ?? 'connected'}`);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The checks

test('the table: identity x channel -> received / leaks', () => {
  const rows = [];
  const pad = (s, n) => String(s).padEnd(n);
  rows.push(`# helpdesk day (${((performance.now() - t0) / 1000).toFixed(1)} s so far): identity x channel -> received / leaks`);
  rows.push(`# ${pad('identity', 14)} | ${pad('REST 2xx/requests', 17)} | ${pad('Socket.IO events', 22)} | ${pad('joins ok/refused', 16)} | ${pad('webhooks', 8)} | leaks REST/SIO/webhook`);
  let total = 0;
  for (const k of ALL) {
    const got = received(k);
    const l = leaksOf(k);
    const joins = Object.values(who[k].joins);
    const okJoins = joins.filter((a) => a.ok).length;
    const sio = who[k].sock ? got.sio.length : `refused (${who[k].refused})`;
    rows.push(`# ${pad(LABEL[k], 14)} | ${pad(`${got.rest.filter((r) => r.ok).length}/${got.rest.length}`, 17)} | ${pad(sio, 22)} | ${pad(who[k].sock ? `${okJoins}/${joins.length - okJoins}` : '-', 16)} | ${pad(got.hook.length, 8)} | ${l.rest.length}/${l.sio.length}/${l.hook.length}`);
    total += l.rest.length + l.sio.length + l.hook.length;
  }
  rows.push(`# total leaks: ${total}`);
  for (const r of rows) console.log(r);
});

test('zero leaks on every channel, for every identity', () => {
  const all = {};
  for (const k of ALL) {
    const l = leaksOf(k);
    const list = [...l.rest, ...l.sio, ...l.hook];
    if (list.length) all[LABEL[k]] = list;
  }
  assert.deepEqual(all, {}, 'leaks');
});

test('the scan is not blind: the same needles find the secrets where they legitimately are', () => {
  const hits = (k, needles) => {
    const got = received(k);
    return Object.fromEntries(Object.entries(got).map(([ch, items]) => [ch, items.filter((it) => needles.some(([, n]) => it.text.includes(n))).length]));
  };
  // A's forbidden list against the agent's haul: the internal note is there on all three channels.
  const note = forbidden('A').filter(([what]) => what.startsWith('the internal'));
  for (const [ch, n] of Object.entries(hits('agent', note))) assert.ok(n > 0, `agent ${ch} holds the note`);
  // B's forbidden list against A's haul: A's ticket is there on all three channels.
  const aboutA = forbidden('B').filter(([what]) => what.includes('A'));
  for (const [ch, n] of Object.entries(hits('A', aboutA))) assert.ok(n > 0, `A ${ch} holds A's ticket`);
  // And the draft text against the admin's haul.
  assert.ok(hits('admin', [['draft', MARK.draft]]).sio > 0);
});

test('forged tokens and anonymous: refused at Socket.IO connect, 401 on REST, no webhook', () => {
  for (const k of ['anonymous', ...FORGED]) {
    assert.equal(who[k].refused, 'unauthorized', `${k} socket`);
    assert.equal(who[k].hooks.length, 0);
  }
  for (const k of ['anonymous', 'D', ...FORGED]) {
    const writes = who[k].rest.filter((r) => r.phase === 'write');
    assert.equal(writes.length, 3);
    for (const r of writes) assert.equal(r.status, 401, `${k} ${r.method} ${r.path}`);
  }
  for (const k of FORGED) {
    const statuses = [...new Set(who[k].rest.map((r) => r.status))];
    assert.deepEqual(statuses, [401], `${k} REST statuses`);
  }
  // Anonymous reads only published KB articles.
  const anonOk = who.anonymous.rest.filter((r) => r.status === 200).map((r) => r.path);
  assert.ok(anonOk.every((p) => p.startsWith('/api/kb/articles')), JSON.stringify(anonOk));
});

test('end-of-day REST reads answer the documented status for each identity', () => {
  const wrong = [];
  for (const k of ALL) {
    for (const [name, path] of probes()) {
      const r = who[k].rest.find((x) => x.phase === 'probe' && x.path === path);
      const want = expectedStatus(k, name);
      if (r.status !== want) wrong.push(`${LABEL[k]} GET ${path} (${name}): ${r.status}, expected ${want}`);
    }
  }
  assert.deepEqual(wrong, []);
});

test('attachments download only for those who may read the ticket', () => {
  const path = `/api/attachments/${ids.att.id}/content`;
  const statusOf = (k) => who[k].rest.filter((r) => r.path === path).map((r) => r.status);
  for (const k of ['A', 'agent', 'admin']) {
    const r = who[k].rest.find((x) => x.phase === 'probe' && x.path === path);
    assert.equal(r.status, 200, k);
    assert.equal(r.body, `printer log ${MARK.attA}`, `${k} gets the exact bytes`);
  }
  assert.deepEqual(statusOf('B'), [404]);
  assert.deepEqual(statusOf('D'), [404, 401], 'D: 404 before deactivation (not D\'s ticket), 401 after');
  for (const k of ['anonymous', ...FORGED]) assert.deepEqual(statusOf(k), [401], k);
});

test('the KB draft is for staff; the published article for everyone', () => {
  for (const k of ALL) {
    const d = draftPhase[k];
    if (STAFF.has(k)) assert.deepEqual(d, { one: 200, list: 200, listed: true }, k);
    else if (k === 'A' || k === 'B' || k === 'D' || k === 'anonymous') assert.deepEqual(d, { one: 404, list: 200, listed: false }, k);
    else assert.deepEqual(d, { one: 401, list: 401, listed: false }, k);
  }
  // Staff sockets saw the draft; customer sockets only the published article.
  for (const k of ['agent', 'admin']) {
    assert.ok(who[k].sock.of('kb.update').some((p) => p.data.id === ids.draft.id && p.data.status === 'draft' && p.data.body.includes(MARK.draft)), `${k} saw the draft live`);
  }
  for (const k of ['A', 'B', 'D']) {
    const seen = who[k].sock.of('kb.update').filter((p) => p.data.id === ids.draft.id);
    assert.deepEqual(seen.map((p) => [p.action, p.data.status]), [['updated', 'published']], `${k} sees the article once, published`);
    assert.ok(seen[0].data.body.includes(MARK.pub));
  }
  for (const k of ['A', 'B', 'D', 'agent']) {
    const n = who[k].sock.of('notification').filter((p) => p.notification.type === 'kb_article_created' && p.data.id === ids.article.id);
    assert.equal(n.length, 1, `${k} notified of the publication`);
  }
  for (const k of ['A', 'B', 'agent', 'admin', 'anonymous']) {
    const r = who[k].rest.find((x) => x.phase === 'probe' && x.path === `/api/kb/articles/${ids.article.id}`);
    assert.equal(r.status, 200, k);
    assert.ok(r.body.body.includes(MARK.pub));
  }
});

test('each identity received what it should (positive checks)', () => {
  const sio = (k, name, pred) => who[k].sock.of(name).filter(pred);
  const notes = (k, type, pred = () => true) => who[k].sock.of('notification').filter((p) => p.notification.type === type && pred(p));
  // Customer A: their ticket live, the public reply, the attachment, the updates; no note.
  assert.ok(sio('A', 'ticket.update', (p) => p.data.id === ids.tA.id && p.action === 'created').length === 1);
  assert.ok(sio('A', 'comment.update', (p) => p.data.id === ids.reply.id).length === 1, 'A sees the public reply live');
  assert.ok(sio('A', 'attachment.update', (p) => p.data.id === ids.att.id).length === 1);
  assert.ok(notes('A', 'ticket_updated', (p) => p.data.id === ids.tA.id).length >= 2);
  assert.ok(notes('A', 'comment_on_ticket', (p) => p.data.id === ids.reply.id).length === 1);
  const commentsA = who.A.rest.find((x) => x.phase === 'probe' && x.path.startsWith(`/api/tickets/${ids.tA.id}/comments`)).body.items.map((c) => c.id);
  assert.deepEqual(commentsA, [ids.reply.id, ids.aReply.id], 'A reads the two public comments');
  const commentsStaff = who.agent.rest.find((x) => x.phase === 'probe' && x.path.startsWith(`/api/tickets/${ids.tA.id}/comments`)).body.items.map((c) => c.id);
  assert.deepEqual(commentsStaff, [ids.reply.id, ids.note.id, ids.noteReply.id, ids.aReply.id], 'staff read all four');
  // Customer B: their ticket and its update.
  assert.ok(sio('B', 'ticket.update', (p) => p.data.id === ids.tB.id).length >= 2);
  assert.ok(notes('B', 'ticket_updated', (p) => p.data.id === ids.tB.id).length === 1);
  const listB = who.B.rest.find((x) => x.phase === 'probe' && x.path.startsWith('/api/tickets?')).body.items.map((t) => t.id);
  assert.deepEqual(listB, [ids.tB.id]);
  const listA = who.A.rest.find((x) => x.phase === 'probe' && x.path.startsWith('/api/tickets?')).body.items.map((t) => t.id);
  assert.deepEqual(listA, [ids.tA.id]);
  // Staff: everything, the internal note included, live and by notification.
  for (const k of ['agent', 'admin']) {
    assert.ok(sio(k, 'comment.update', (p) => p.data.id === ids.note.id && p.data.content.includes(MARK.note)).length === 1, `${k} sees the note live`);
    assert.ok(sio(k, 'attachment.update', (p) => p.data.id === ids.att.id).length === 1);
    for (const t of [ids.tA, ids.tB, ids.tD]) assert.ok(sio(k, 'ticket.update', (p) => p.data.id === t.id).length >= 1, `${k} sees ticket ${t.subject}`);
    const list = who[k].rest.find((x) => x.phase === 'probe' && x.path.startsWith('/api/tickets?')).body.items.map((t) => t.id);
    for (const t of [ids.tA, ids.tB, ids.tD]) assert.ok(list.includes(t.id));
  }
  assert.equal(notes('agent', 'reply_to_comment', (p) => p.data.id === ids.noteReply.id).length, 1, 'the agent is told of the reply to their note');
  assert.ok(who.agent.hooks.some((h) => h.body.includes(MARK.note)), 'the internal reply reached the agent by webhook');
  assert.equal(notes('agent', 'reply_to_comment', (p) => p.data.id === ids.aReply.id).length, 1, 'the agent is told of A\'s answer');
  assert.equal(notes('admin', 'new_ticket').length, 3, 'admin: a new_ticket for each of A, B, D');
  assert.ok(sio('admin', 'user.update', (p) => p.data.id === who.D.user.id && p.data.is_active === false).length === 1);
  // D: their own ticket and the publication while active, then the socket is closed.
  assert.ok(sio('D', 'ticket.update', (p) => p.data.id === ids.tD.id && p.action === 'created').length === 1);
  assert.ok(sio('D', 'user.update', (p) => p.data.id === who.D.user.id && p.data.is_active === false).length === 1, 'D hears of the deactivation, last');
  assert.equal(dDisconnectReason, 'io server disconnect');
  for (const k of ['A', 'B', 'agent', 'admin']) assert.equal(who[k].disconnect, undefined, `${k}'s socket stayed up all day`);
  assert.equal(who.D.reconnect, 'unauthorized');
  // Anonymous: the published article, not the draft.
  const anonList = who.anonymous.rest.find((x) => x.phase === 'probe' && x.path.startsWith('/api/kb/articles?')).body.items.map((a) => a.id);
  assert.ok(anonList.includes(ids.article.id));
});

test('room joins: exactly the permitted rooms', () => {
  const wrong = [];
  for (const k of REAL) {
    const staff = STAFF.has(k);
    for (const [room, ack] of Object.entries(who[k].joins)) {
      let ok;
      if (['tickets', 'comments', 'attachments'].includes(room)) ok = staff;
      else if (room === 'users') ok = k === 'admin';
      else if (room === 'kb') ok = true;
      else if (room.startsWith('user:')) ok = room === `user:${who[k].user.id}`;
      else if (room.startsWith('ticket:')) ok = staff || room === `ticket:${ids[`t${k}`]?.id}`;
      const want = ok ? { ok: true } : { ok: false, error: 'forbidden' };
      if (!isDeepStrictEqual(ack, want)) wrong.push(`${k} join ${room}: ${JSON.stringify(ack)}`);
    }
  }
  assert.deepEqual(wrong, []);
  assert.equal(Object.keys(who.D.joins).filter((r) => r.startsWith('ticket:')).length, 3, 'D tried all three ticket rooms');
});

test('webhooks verify with their owner\'s secret, carry {event, notification, data}, and equal the Socket.IO notifications', () => {
  for (const k of REAL) {
    const w = who[k];
    const byId = new Map();
    for (const h of w.hooks) {
      const payload = new Webhook(w.secret).verify(h.body, h.headers);
      for (const o of REAL) if (o !== k) assert.throws(() => new Webhook(who[o].secret).verify(h.body, h.headers), `${k}'s delivery must not verify with ${o}'s secret`);
      assert.deepEqual(Object.keys(payload).sort(), ['data', 'event', 'event_id', 'notification']);
      assert.equal(payload.event, 'notification.created');
      assert.equal(payload.notification.user_id, w.user.id);
      assert.equal(h.headers['webhook-id'], `msg_${String(payload.event_id).padStart(12, '0')}_${w.user.id.replaceAll('-', '')}`);
      if (!byId.has(payload.notification.id)) byId.set(payload.notification.id, payload); // retries repeat under one webhook-id
    }
    // The day starts at dayStart: a notification about something earlier (the barrier article's
    // creation, dispatched after the webhook was set but before the socket connected) is not part of it.
    const live = new Map(w.sock.of('notification').filter((p) => p.event_id > dayStart).map((p) => [p.notification.id, p]));
    // D's socket was closed at the deactivation: compare up to it (anything later is a leak, counted above).
    const hooked = new Map([...byId].filter(([, p]) => p.event_id > dayStart && (k !== 'D' || p.event_id <= deactEventId)));
    assert.deepEqual([...hooked.keys()].sort(), [...live.keys()].sort(), `${k}: webhook notifications = Socket.IO notifications`);
    for (const [id, p] of hooked) assert.deepEqual(p, live.get(id), `${k}: delivery ${id} equals the socket payload`);
    if (w.inbox) assert.deepEqual([...live.keys()].sort(), w.inbox.map((n) => n.id).sort(), `${k}: Socket.IO notifications = REST inbox of the day`);
    assert.ok(byId.size > 0, `${k} received webhooks`);
  }
});
