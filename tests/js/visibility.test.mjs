// The visibility policy on every channel, tried as a hostile customer and across each
// transition it covers: role change, requester move, internal toggle, unpublish.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, login, makeUser, connect, ADMIN, sleep } from './lib/harness.mjs';

let srv, admin, agent, cust, other;

before(async () => {
  srv = await startServer({ extra: { TICKETWIRE_MAX_SOCKETS_PER_USER: '1000' } });
  admin = await login(srv, ADMIN.email, ADMIN.password);
  agent = await makeUser(srv, admin.api, 'agent');
  cust = await makeUser(srv, admin.api, 'customer');
  other = await makeUser(srv, admin.api, 'customer');
});
after(async () => { await srv?.stop(); });

const CONTENT_KEYS = ['content', 'body', 'subject', 'description', 'title'];
/** Whether `payload` carries any content of the entity (a redaction carries ids only). */
const hasContent = (data) => data && CONTENT_KEYS.some((k) => k in data);
const mentions = (rec, id) => rec.events.filter((e) => JSON.stringify(e.payload ?? null).includes(id));

/** Waits until an admin watcher got `n` emits matching `pred`: the event went out everywhere. */
async function settled(watcher, pred, n = 1) {
  await watcher.waitCount(pred, n, 10_000, 'the watcher to see the event');
  await sleep(150);
}

test('the server\'s own rooms can be neither joined nor left', async () => {
  const s = await connect(srv, { token: cust.token });
  try {
    for (const room of ['role:customer', 'role:staff', `user:${cust.user.id}`, `user:${other.user.id}`, 'kb:public', 'tw:behind']) {
      const answer = await s.leave(room);
      assert.equal(answer.ok, false, `leave ${room}: ${JSON.stringify(answer)}`);
    }
    for (const room of ['role:customer', 'role:staff', 'tw:behind', `user:${other.user.id}`]) {
      assert.equal((await s.join(room)).ok, false, `join ${room}`);
    }
  } finally { s.close(); }
});

test('a customer that leaves role:customer still never gets an internal note', async () => {
  const t = await cust.api.post('/api/tickets', { subject: 'Printer', description: 'jammed' }, 201);
  const s = await connect(srv, { token: cust.token, rooms: [`ticket:${t.id}`] });
  const watcher = await connect(srv, { token: admin.token, rooms: ['comments'] });
  try {
    await s.leave('role:customer');
    const note = await agent.api.post(`/api/tickets/${t.id}/comments`, { content: 'secret: refund denied', internal: true }, 201);
    await agent.api.patch(`/api/comments/${note.id}`, { content: 'secret: refund denied, edited' });
    await settled(watcher, (e) => e.name === 'comment.update' && e.payload.data.id === note.id, 2);
    assert.deepEqual(mentions(s, note.id), [], 'the customer heard of the internal note');
    // Control: a public reply on the same ticket does arrive.
    const reply = await agent.api.post(`/api/tickets/${t.id}/comments`, { content: 'on it' }, 201);
    const got = await s.waitFor((e) => e.name === 'comment.update' && e.payload.data.id === reply.id);
    assert.equal(got.payload.data.content, 'on it');
    assert.ok(!JSON.stringify(s.events).includes('secret'));
  } finally { s.close(); watcher.close(); }
});

test('an agent demoted to customer stops hearing of the tickets assigned to it', async () => {
  const demoted = await makeUser(srv, admin.api, 'agent');
  const t = await cust.api.post('/api/tickets', { subject: 'Router', description: 'blinking' }, 201);
  await admin.api.patch(`/api/tickets/${t.id}`, { assignee_id: demoted.user.id });
  const s = await connect(srv, { token: demoted.token, rooms: ['tickets'] });
  const watcher = await connect(srv, { token: admin.token, rooms: ['tickets', 'users'] });
  try {
    await admin.api.patch(`/api/users/${demoted.user.id}`, { role: 'customer' });
    await settled(watcher, (e) => e.name === 'user.update' && e.payload.data.id === demoted.user.id && e.payload.data.role === 'customer');
    const before = s.events.length;
    const changed = await admin.api.patch(`/api/tickets/${t.id}`, { priority: 'urgent', subject: 'Router (escalated)' });
    await settled(watcher, (e) => e.name === 'ticket.update' && e.payload.data.version === changed.version);
    const late = s.events.slice(before);
    assert.deepEqual(late.filter((e) => JSON.stringify(e.payload).includes(t.id)), [], 'the demoted agent still heard of the ticket');
    assert.equal((await demoted.api.call('GET', `/api/tickets/${t.id}`)).status, 404);
    const notes = await demoted.api.get('/api/notifications');
    assert.ok(!notes.items.some((n) => n.ticket_id === t.id), 'notifications about the ticket are still listed');
  } finally { s.close(); watcher.close(); }
});

test('a former requester hears nothing of a ticket moved to another customer', async () => {
  const t = await cust.api.post('/api/tickets', { subject: 'Moving ticket', description: 'x' }, 201);
  const mine = await cust.api.post(`/api/tickets/${t.id}/comments`, { content: 'my question' }, 201);
  const s = await connect(srv, { token: cust.token, rooms: [`ticket:${t.id}`] });
  const watcher = await connect(srv, { token: admin.token, rooms: ['comments', 'tickets'] });
  try {
    const moved = await agent.api.patch(`/api/tickets/${t.id}`, { requester_id: other.user.id });
    const gone = await s.waitFor((e) => e.name === 'ticket.update' && e.payload.data.id === t.id && e.payload.action === 'deleted');
    assert.ok(!hasContent(gone.payload.data), `the move carried content: ${JSON.stringify(gone.payload)}`);
    await settled(watcher, (e) => e.name === 'ticket.update' && e.payload.data.version === moved.version);
    const before = s.events.length;
    const reply = await agent.api.post(`/api/tickets/${t.id}/comments`, { content: 'answer for the new requester', parent_id: mine.id }, 201);
    await agent.api.patch(`/api/tickets/${t.id}`, { subject: 'New subject' });
    await settled(watcher, (e) => e.name === 'comment.update' && e.payload.data.id === reply.id);
    await sleep(200);
    assert.deepEqual(s.events.slice(before), [], 'the former requester heard of the ticket');
    const notes = await cust.api.get('/api/notifications');
    assert.ok(!notes.items.some((n) => n.ticket_id === t.id && n.event_id > gone.payload.event_id));
    // The log follows the present: nothing of the ticket's content, old or new.
    const events = await cust.api.get('/api/events?after=0&limit=500');
    for (const e of events.filter((e) => e.ticket_id === t.id)) {
      assert.ok(!hasContent(e.data), `GET /api/events served ${JSON.stringify(e)}`);
    }
  } finally { s.close(); watcher.close(); }
});

test('an article unpublished in the same PATCH as an edit never shows its draft', async () => {
  const a = await agent.api.post('/api/kb/articles', { title: 'Reset the VPN', body: 'public steps', status: 'published' }, 201);
  const s = await connect(srv, { token: cust.token, rooms: ['kb'] });
  const watcher = await connect(srv, { token: admin.token, rooms: ['kb'] });
  try {
    const draft = await agent.api.patch(`/api/kb/articles/${a.id}`, { body: 'DRAFT: internal only', status: 'draft' });
    const gone = await s.waitFor((e) => e.name === 'kb.update' && e.payload.data.id === a.id && e.payload.action === 'deleted');
    assert.ok(!JSON.stringify(gone.payload).includes('DRAFT'));
    await settled(watcher, (e) => e.name === 'kb.update' && e.payload.data.version === draft.version);
    assert.ok(!JSON.stringify(s.events).includes('DRAFT'));
    const events = await cust.api.get('/api/events?after=0&limit=500');
    assert.ok(!JSON.stringify(events).includes('DRAFT'), 'GET /api/events leaked the draft');
    // Anonymous and customer REST reads agree.
    assert.equal((await cust.api.call('GET', `/api/kb/articles/${a.id}`)).status, 404);
  } finally { s.close(); watcher.close(); }
});

test('a comment made internal is gone from the log and from replay', async () => {
  const t = await cust.api.post('/api/tickets', { subject: 'Toggle', description: 'x' }, 201);
  const c = await agent.api.post(`/api/tickets/${t.id}/comments`, { content: 'was public once' }, 201);
  const s = await connect(srv, { token: cust.token, rooms: [`ticket:${t.id}`] });
  try {
    await agent.api.patch(`/api/comments/${c.id}`, { internal: true });
    const gone = await s.waitFor((e) => e.name === 'comment.update' && e.payload.data.id === c.id && e.payload.action === 'deleted');
    assert.ok(!hasContent(gone.payload.data));
    const events = await cust.api.get('/api/events?after=0&limit=500');
    const about = events.filter((e) => e.entity_id === c.id);
    assert.ok(about.length >= 1, 'the customer should learn the comment is gone');
    for (const e of about) assert.ok(!hasContent(e.data), `GET /api/events served ${JSON.stringify(e)}`);
    const replay = await connect(srv, { token: cust.token, rooms: [`ticket:${t.id}`], last_event_id: 0 });
    try {
      await replay.waitFor((e) => e.name === 'comment.update' && e.payload.data.id === c.id && e.payload.action === 'deleted');
      await sleep(300);
      assert.ok(!JSON.stringify(replay.events).includes('was public once'), 'replay served the old content');
    } finally { replay.close(); }
  } finally { s.close(); }
});

test('customers never get what an integration sent (metadata.raw)', async () => {
  const t = await admin.api.post('/api/tickets', { subject: 'From ops', requester_id: cust.user.id, metadata: { raw: { token: 'sender-secret' }, host: 'db1' } }, 201);
  assert.equal(t.metadata.raw.token, 'sender-secret');
  const s = await connect(srv, { token: cust.token, rooms: [`ticket:${t.id}`] });
  try {
    const seen = await cust.api.get(`/api/tickets/${t.id}`);
    assert.equal(seen.metadata.host, 'db1');
    assert.equal(seen.metadata.raw, undefined);
    await admin.api.patch(`/api/tickets/${t.id}`, { priority: 'high' });
    const got = await s.waitFor((e) => e.name === 'ticket.update' && e.payload.data.id === t.id);
    assert.equal(got.payload.data.metadata.raw, undefined);
    const list = await cust.api.get('/api/tickets');
    assert.ok(!JSON.stringify(list).includes('sender-secret'));
    assert.ok(!JSON.stringify(await cust.api.get('/api/events?after=0&limit=500')).includes('sender-secret'));
  } finally { s.close(); }
});

test('join then leave sent back to back always leave the socket out of the room', async () => {
  const t = await cust.api.post('/api/tickets', { subject: 'Order of joins', description: 'x' }, 201);
  const s = await connect(srv, { token: agent.token });
  const watcher = await connect(srv, { token: admin.token, rooms: ['tickets'] });
  try {
    for (let i = 0; i < 20; i++) {
      const acks = [s.join('tickets'), s.leave('tickets')];
      assert.deepEqual(await Promise.all(acks), [{ ok: true }, { ok: true }]);
    }
    const changed = await admin.api.patch(`/api/tickets/${t.id}`, { priority: 'low' });
    await settled(watcher, (e) => e.name === 'ticket.update' && e.payload.data.version === changed.version);
    assert.deepEqual(s.of('ticket.update'), [], 'the socket stayed in the room');
  } finally { s.close(); watcher.close(); }
});
