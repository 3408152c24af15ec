// Issue #3: every notification type reaches exactly the right people (never the actor), every
// payload's `data` equals what GET returns, and nothing leaks across customers or from internal notes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, login, makeUser, connect, ADMIN, sleep } from './lib/harness.mjs';

let srv, admin, admin2, agent, agent2, c1, c2, people, socks, article;

before(async () => {
  srv = await startServer();
  admin = await login(srv, ADMIN.email, ADMIN.password);
  admin2 = await makeUser(srv, admin.api, 'admin', 'Second Admin');
  agent = await makeUser(srv, admin.api, 'agent', 'Agent Smith');
  agent2 = await makeUser(srv, admin.api, 'agent', 'Agent Jones');
  c1 = await makeUser(srv, admin.api, 'customer', 'Carol');
  c2 = await makeUser(srv, admin.api, 'customer', 'Dave');
  people = { admin, admin2, agent, agent2, c1, c2 };
  // A published article whose edits reach every socket in `kb`: the barrier after each step.
  article = await admin.api.post('/api/kb/articles', { title: 'Barrier', body: 'b', status: 'published' }, 201);
  socks = {};
  for (const [k, p] of Object.entries(people)) {
    const staff = p.user.role !== 'customer';
    socks[k] = await connect(srv, { token: p.token, rooms: staff ? ['kb', 'tickets', 'comments', 'attachments'] : ['kb'] });
  }
});
after(async () => {
  for (const s of Object.values(socks || {})) s.close();
  await srv?.stop();
});

let barrierN = 0;
/** Makes an event every socket receives, and waits until all did: everything before it has arrived. */
async function barrier() {
  barrierN += 1;
  const a = await admin.api.patch(`/api/kb/articles/${article.id}`, { title: `Barrier ${barrierN}` });
  await Promise.all(Object.values(socks).map((s) => s.waitFor((e) => e.name === 'kb.update' && e.payload.data.version === a.version, 10_000, 'barrier')));
}

const notesOf = (k, pred = () => true) => socks[k].of('notification').filter(pred);

/**
 * Runs `action`, then checks who got a notification of `type` for the event: exactly
 * `expected` (keys of `people`), each exactly once, each matching their inbox over REST.
 * Returns the notifications received, by person.
 */
async function expectNotified(type, expected, action) {
  const marks = Object.fromEntries(Object.keys(socks).map((k) => [k, socks[k].events.length]));
  const result = await action();
  await barrier();
  const got = {};
  for (const k of Object.keys(socks)) {
    const fresh = socks[k].events.slice(marks[k]).filter((e) => e.name === 'notification' && e.payload.notification.type === type).map((e) => e.payload);
    if (fresh.length) got[k] = fresh;
  }
  assert.deepEqual(Object.keys(got).sort(), [...expected].sort(), `${type} recipients`);
  for (const [k, list] of Object.entries(got)) {
    assert.equal(list.length, 1, `${k} got ${type} once`);
    const n = list[0];
    assert.equal(n.event, 'notification.created');
    assert.equal(n.notification.user_id, people[k].user.id);
    assert.equal(n.event_id, n.notification.event_id);
    const inbox = await people[k].api.get('/api/notifications?limit=100');
    const row = inbox.items.find((x) => x.id === n.notification.id);
    assert.deepEqual(row, n.notification, `${k}'s inbox row equals the pushed notification`);
  }
  return { got, result };
}

const one = (got) => Object.values(got)[0][0];

let ticket, comment;

test('new_ticket reaches admins only, not the customer who opened it', async () => {
  const { got, result } = await expectNotified('new_ticket', ['admin', 'admin2'], () =>
    c1.api.post('/api/tickets', { subject: 'Printer on fire', description: 'smoke' }, 201));
  ticket = result;
  assert.deepEqual(one(got).data, await admin.api.get(`/api/tickets/${ticket.id}`));
  // The customer's own socket still sees the ticket itself.
  const live = socks.c1.of('ticket.update').find((p) => p.data.id === ticket.id);
  assert.equal(live.action, 'created');
  assert.deepEqual(live.data, await c1.api.get(`/api/tickets/${ticket.id}`));
});

test('ticket_updated reaches requester and assignee, not the actor', async () => {
  const { got } = await expectNotified('ticket_updated', ['c1', 'agent'], () =>
    admin.api.patch(`/api/tickets/${ticket.id}`, { assignee_id: agent.user.id, status: 'in_progress' }));
  const fresh = await c1.api.get(`/api/tickets/${ticket.id}`);
  assert.deepEqual(got.c1[0].data, fresh);
  assert.deepEqual(got.agent[0].data, fresh);
  assert.match(got.c1[0].notification.message, /status: Open → In progress/, 'the change in words, not the raw value');
  // And the actor being the assignee means only the requester hears of it.
  await expectNotified('ticket_updated', ['c1'], () => agent.api.patch(`/api/tickets/${ticket.id}`, { priority: 'high' }));
});

test('comment_on_ticket reaches requester and assignee except the author', async () => {
  const { got, result } = await expectNotified('comment_on_ticket', ['c1'], () =>
    agent.api.post(`/api/tickets/${ticket.id}/comments`, { content: 'Looking into it' }, 201));
  comment = result;
  assert.deepEqual(one(got).data, await c1.api.get(`/api/comments/${comment.id}`));
  await expectNotified('comment_on_ticket', ['agent'], () =>
    c1.api.post(`/api/tickets/${ticket.id}/comments`, { content: 'Thanks' }, 201));
});

test('reply_to_comment takes precedence over comment_on_ticket', async () => {
  const marks = socks.agent.events.length;
  const { got, result } = await expectNotified('reply_to_comment', ['agent'], () =>
    c1.api.post(`/api/tickets/${ticket.id}/comments`, { content: 'Any news?', parent_id: comment.id }, 201));
  assert.deepEqual(one(got).data, await agent.api.get(`/api/comments/${result.id}`));
  const agentNotes = socks.agent.events.slice(marks).filter((e) => e.name === 'notification');
  assert.equal(agentNotes.length, 1, 'the assignee gets one notification, the reply');
  // A third party replying to the customer's comment: reply for the customer, comment for the agent.
  const { got: got2 } = await expectNotified('reply_to_comment', ['c1'], () =>
    admin2.api.post(`/api/tickets/${ticket.id}/comments`, { content: 'Admin here', parent_id: result.id }, 201));
  assert.equal(notesOf('c1', (n) => n.event_id === one(got2).event_id).length, 1);
  assert.equal(notesOf('agent', (n) => n.event_id === one(got2).event_id && n.notification.type === 'comment_on_ticket').length, 1);
});

test('comment_updated and comment_deleted reach requester and assignee except the actor', async () => {
  const { got } = await expectNotified('comment_updated', ['c1'], () =>
    agent.api.patch(`/api/comments/${comment.id}`, { content: 'Looking into it (edited)' }));
  assert.deepEqual(one(got).data, await c1.api.get(`/api/comments/${comment.id}`));
  const before = await c1.api.get(`/api/comments/${comment.id}`);
  const { got: gone } = await expectNotified('comment_deleted', ['c1'], () => agent.api.del(`/api/comments/${comment.id}`));
  assert.deepEqual(one(gone).data, before, 'a delete carries the entity as it was');
  assert.equal((await c1.api.call('GET', `/api/comments/${comment.id}`)).status, 404);
});

test('an internal note never reaches a customer sitting in the ticket room', async () => {
  const room = await connect(srv, { token: c1.token, rooms: [`ticket:${ticket.id}`] });
  try {
    assert.deepEqual(await room.join(`ticket:${ticket.id}`), { ok: true });
    const { got, result } = await expectNotified('comment_on_ticket', ['agent'], () =>
      admin.api.post(`/api/tickets/${ticket.id}/comments`, { content: 'SECRET internal note', internal: true }, 201));
    assert.equal(one(got).data.internal, true);
    // Edit and delete of the note: staff hear of it, the customer does not.
    await expectNotified('comment_updated', ['agent'], () => admin.api.patch(`/api/comments/${result.id}`, { content: 'SECRET still' }));
    await expectNotified('comment_deleted', ['agent'], () => admin.api.del(`/api/comments/${result.id}`));
    // A public comment in the same room does reach it (so the room works).
    const pub = await admin.api.post(`/api/tickets/${ticket.id}/comments`, { content: 'public words' }, 201);
    await room.waitFor((e) => e.name === 'comment.update' && e.payload.data.id === pub.id);
    await barrier();
    for (const r of [room, socks.c1]) {
      const leaked = r.events.filter((e) => JSON.stringify(e.payload).includes('SECRET') || e.payload?.data?.id === result.id);
      assert.deepEqual(leaked, [], 'customer received the internal note');
    }
    const inbox = await c1.api.get('/api/notifications?limit=100');
    assert.ok(!inbox.items.some((n) => n.related_id === result.id), 'customer has a notification about the internal note');
    // A staff socket in `comments` did get it, live.
    assert.ok(socks.agent2.of('comment.update').some((p) => p.data.id === result.id && p.action === 'created'));
  } finally { room.close(); }
});

test('attachment_added, attachment_updated, attachment_deleted', async () => {
  const upload = async () => {
    const fd = new FormData();
    fd.append('file', new Blob(['hello attachment'], { type: 'text/plain' }), 'log.txt');
    return c1.api.post(`/api/tickets/${ticket.id}/attachments`, fd, 201);
  };
  const { got, result: att } = await expectNotified('attachment_added', ['agent'], upload);
  assert.deepEqual(one(got).data, await agent.api.get(`/api/attachments/${att.id}`));
  assert.ok(socks.agent2.of('attachment.update').some((p) => p.data.id === att.id), 'staff in attachments room get it');
  const { got: upd } = await expectNotified('attachment_updated', ['c1'], () => agent.api.patch(`/api/attachments/${att.id}`, { filename: 'renamed.txt' }));
  assert.deepEqual(one(upd).data, await c1.api.get(`/api/attachments/${att.id}`));
  const before = await c1.api.get(`/api/attachments/${att.id}`);
  const { got: del } = await expectNotified('attachment_deleted', ['agent'], () => c1.api.del(`/api/attachments/${att.id}`));
  assert.deepEqual(one(del).data, before);
});

test('kb_article_created on publish reaches every active user but the author', async () => {
  let draft;
  // A draft notifies nobody and is not pushed to customers.
  await expectNotified('kb_article_created', [], async () => {
    draft = await agent.api.post('/api/kb/articles', { title: 'How to reboot', body: 'unplug it' }, 201);
  });
  assert.ok(!socks.c1.of('kb.update').some((p) => p.data.id === draft.id), 'customer saw a draft');
  assert.ok(socks.admin.of('kb.update').some((p) => p.data.id === draft.id), 'staff see drafts');
  const { got } = await expectNotified('kb_article_created', ['admin', 'admin2', 'agent2', 'c1', 'c2'], () =>
    agent.api.patch(`/api/kb/articles/${draft.id}`, { status: 'published' }));
  assert.deepEqual(got.c2[0].data, await c2.api.get(`/api/kb/articles/${draft.id}`));
  // Editing a published article does not notify again.
  await expectNotified('kb_article_created', [], () => agent.api.patch(`/api/kb/articles/${draft.id}`, { body: 'unplug it, wait' }));
});

test('ticket_deleted reaches requester and assignee', async () => {
  const t = await c1.api.post('/api/tickets', { subject: 'Short-lived' }, 201);
  const assigned = await admin.api.patch(`/api/tickets/${t.id}`, { assignee_id: agent2.user.id });
  const { got } = await expectNotified('ticket_deleted', ['c1', 'agent2'], () => admin.api.del(`/api/tickets/${t.id}`));
  assert.deepEqual(got.c1[0].data, assigned);
});

test('user_created and user_deactivated reach admins but the actor; the deactivated socket is closed', async () => {
  let u;
  const { got } = await expectNotified('user_created', ['admin2'], async () => {
    u = await makeUser(srv, admin.api, 'customer', 'Eve');
  });
  assert.deepEqual(one(got).data, await admin.api.get(`/api/users/${u.user.id}`));
  const s = await connect(srv, { token: u.token });
  const closed = new Promise((r) => s.socket.once('disconnect', (reason) => r(reason)));
  const { got: gone } = await expectNotified('user_deactivated', ['admin2'], () => admin.api.del(`/api/users/${u.user.id}`));
  assert.equal(one(gone).data.is_active, false);
  assert.deepEqual(one(gone).data, await admin.api.get(`/api/users/${u.user.id}`));
  const reason = await Promise.race([closed, sleep(5000).then(() => 'still connected')]);
  assert.equal(reason, 'io server disconnect');
});

test('customer B never receives anything about customer A', async () => {
  await barrier();
  const mine = new Set();
  const inbox = await c2.api.get('/api/events?limit=500');
  for (const e of inbox) mine.add(e.event_id);
  for (const e of socks.c2.events) {
    const p = e.payload;
    if (e.name === 'kb.update') continue;
    if (e.name === 'notification' && p.notification.type === 'kb_article_created') continue;
    assert.fail(`customer B received ${e.name}: ${JSON.stringify(p).slice(0, 200)}`);
  }
  assert.ok(!JSON.stringify(socks.c2.events).includes(ticket.id), 'ticket id leaked');
  assert.ok(!JSON.stringify(socks.c2.events).includes('Printer on fire'));
  // And what B did get is visible to B over REST.
  for (const e of socks.c2.of('kb.update')) assert.ok(mine.has(e.event_id), `event ${e.event_id} not in B's /api/events`);
});
