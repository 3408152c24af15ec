// Issue #4 from Node: a real receiver verifying deliveries with the npm `standardwebhooks` package.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { Webhook } from 'standardwebhooks';
import { startServer, login, makeUser, connect, ADMIN, sleep } from './lib/harness.mjs';

let srv, admin, recv, hits;
const plan = new Map();

before(async () => {
  srv = await startServer();
  admin = await login(srv, ADMIN.email, ADMIN.password);
  hits = [];
  recv = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const index = hits.filter((h) => h.path === req.url).length;
      hits.push({ path: req.url, headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), index });
      const rule = plan.get(req.url);
      res.statusCode = rule ? rule(index) : 204;
      res.end();
    });
  });
  await new Promise((r) => recv.listen(0, '127.0.0.1', r));
});
after(async () => { recv?.close(); recv?.closeAllConnections?.(); await srv?.stop(); });

const urlOf = (path) => `http://127.0.0.1:${recv.address().port}${path}`;
async function waitHits(path, n, ms = 10_000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const got = hits.filter((h) => h.path === path);
    if (got.length >= n) return got;
    await sleep(20);
  }
  throw new Error(`${path}: ${hits.filter((h) => h.path === path).length} of ${n} requests`);
}

test('deliveries verify with standardwebhooks and carry exactly the Socket.IO notification', async () => {
  const c = await makeUser(srv, admin.api, 'customer');
  const t = await c.api.post('/api/tickets', { subject: 'node receiver' }, 201);
  const path = `/n-${c.user.id}`;
  const ep = await c.api.put('/api/users/me/webhook', { webhook_url: urlOf(path) });
  const sock = await connect(srv, { token: c.token });
  try {
    const updated = await admin.api.patch(`/api/tickets/${t.id}`, { status: 'pending' });
    const [req] = await waitHits(path, 1);
    const payload = new Webhook(ep.secret).verify(req.body, req.headers);
    const pushed = await sock.waitFor((e) => e.name === 'notification');
    assert.deepEqual(payload, pushed.payload, 'webhook body equals the Socket.IO notification payload');
    assert.deepEqual(payload.data, updated);
    assert.deepEqual(payload.data, await c.api.get(`/api/tickets/${t.id}`));
    assert.throws(() => new Webhook(ep.secret).verify(req.body.replace('pending', 'closed'), req.headers));
    await sleep(400);
    assert.equal(hits.filter((h) => h.path === path).length, 1, 'one delivery');
  } finally { sock.close(); }
});

test('rotation: old and new secrets both verify during the overlap', async () => {
  const c = await makeUser(srv, admin.api, 'customer');
  const path = `/r-${c.user.id}`;
  const ep = await c.api.put('/api/users/me/webhook', { webhook_url: urlOf(path) });
  const rot = await c.api.post('/api/users/me/webhook/rotate-secret');
  assert.notEqual(rot.secret, ep.secret);
  await c.api.post('/api/users/me/webhook/test', {}, 202);
  const [req] = await waitHits(path, 1);
  assert.equal(new Webhook(ep.secret).verify(req.body, req.headers).notification.type, 'webhook_test');
  assert.equal(new Webhook(rot.secret).verify(req.body, req.headers).notification.type, 'webhook_test');
});

test('500, 500, 200: three attempts under one webhook-id', async () => {
  const c = await makeUser(srv, admin.api, 'customer');
  const path = `/f-${c.user.id}`;
  plan.set(path, (i) => (i < 2 ? 500 : 200));
  const ep = await c.api.put('/api/users/me/webhook', { webhook_url: urlOf(path) });
  const { delivery_id } = await c.api.post('/api/users/me/webhook/test', {}, 202);
  await waitHits(path, 3);
  await sleep(800);
  const got = hits.filter((h) => h.path === path);
  assert.equal(got.length, 3);
  assert.deepEqual([...new Set(got.map((h) => h.headers['webhook-id']))], [delivery_id]);
  for (const h of got) new Webhook(ep.secret).verify(h.body, h.headers);
});
