// Issue #7: two nodes on PostgreSQL + Redis act as one service. Needs PostgreSQL (127.0.0.1:5432,
// database `test`) and Redis (127.0.0.1:6379); with CI=true their absence fails the run.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import { connect as netConnect } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Webhook } from 'standardwebhooks';
import { BIN, JWT_SECRET, ADMIN, login, makeUser, connect, sleep } from './lib/harness.mjs';

const PG = process.env.TEST_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';
const REDIS = process.env.TEST_REDIS_URL || 'redis://127.0.0.1:6379';
const dbName = `tw_cluster_${process.pid}_${Date.now()}`;
const dbUrl = PG.replace(/\/[^/]*$/, `/${dbName}`);
// Channels of this test's cluster only: other clusters (a bench, another test run) may share Redis.
const PREFIX = `tw-test-${process.pid}-${Date.now()}`;
const nodes = [];
let skip = null;

const reachable = (port) => new Promise((res) => {
  const s = netConnect(port, '127.0.0.1');
  s.once('connect', () => { s.destroy(); res(true); });
  s.once('error', () => res(false));
});

function env(dataDir, listen) {
  return {
    ...process.env,
    DATABASE_URL: dbUrl,
    REDIS_URL: REDIS,
    TICKETWIRE_REDIS_PREFIX: PREFIX,
    TICKETWIRE_DATA_DIR: dataDir,
    TICKETWIRE_JWT_SECRET: JWT_SECRET,
    TICKETWIRE_LISTEN: listen,
    TICKETWIRE_WEBHOOK_ALLOW_CIDRS: '127.0.0.0/8',
    TICKETWIRE_WEBHOOK_RETRY_SCHEDULE_MS: '100,200,400,800',
    TICKETWIRE_WEBHOOK_TIMEOUT_MS: '1500',
    RUST_LOG: process.env.RUST_LOG || 'warn',
  };
}

async function startNode(listen = '127.0.0.1:0') {
  const dataDir = mkdtempSync(join(tmpdir(), 'tw-node-'));
  const proc = spawn(BIN, ['serve'], { env: env(dataDir, listen), stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stderr.on('data', (d) => { if (process.env.TW_SERVER_LOG) process.stderr.write(d); });
  const url = await new Promise((res, rej) => {
    let buf = '';
    const t = setTimeout(() => rej(new Error('node did not start: ' + buf)), 60_000);
    proc.stdout.on('data', (d) => {
      buf += d;
      const m = buf.match(/listening on (http:\/\/[\d.:]+)/);
      if (m) { clearTimeout(t); res(m[1]); }
    });
    proc.once('exit', (c) => { clearTimeout(t); rej(new Error(`node exited ${c}: ${buf}`)); });
  });
  proc.stdout.resume();
  const node = { url, proc, dataDir };
  node.kill9 = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return; // already gone (a signal sets signalCode, not exitCode)
    const done = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGKILL');
    await done;
  };
  nodes.push(node);
  return node;
}

before(async () => {
  const [pg, redis] = [await reachable(5432), await reachable(6379)];
  if (!pg || !redis) {
    if (process.env.CI === 'true') throw new Error(`CI=true but PostgreSQL (${pg}) or Redis (${redis}) is unreachable`);
    skip = 'PostgreSQL or Redis not reachable';
    return;
  }
  execFileSync('psql', [PG, '-qc', `CREATE DATABASE ${dbName}`], { stdio: 'inherit' });
  const dataDir = mkdtempSync(join(tmpdir(), 'tw-node-'));
  execFileSync(BIN, ['create-admin', '--email', ADMIN.email, '--password', ADMIN.password], { env: env(dataDir, '127.0.0.1:0'), stdio: 'inherit' });
  rmSync(dataDir, { recursive: true, force: true });
});

after(async () => {
  for (const n of nodes) { await n.kill9(); rmSync(n.dataDir, { recursive: true, force: true }); }
  if (!skip) { try { execFileSync('psql', [PG, '-qc', `DROP DATABASE IF EXISTS ${dbName}`]); } catch { /* best effort */ } }
});

test('a client on node A sees what is done through node B, and catches up on either node', async (t) => {
  if (skip) return t.skip(skip);
  const a = await startNode();
  const b = await startNode();
  const adminB = await login(b, ADMIN.email, ADMIN.password);
  const agent = await makeUser(b, adminB.api, 'agent', 'Agnes');
  const customer = await makeUser(b, adminB.api, 'customer', 'Cleo');
  const onA = await connect(a, { token: agent.token, rooms: ['tickets'] });

  const ticket = await customer.api.post('/api/tickets', { subject: 'Through B', description: 'x' }, 201);
  const seen = await onA.waitFor((e) => e.name === 'ticket.update' && e.payload.data.id === ticket.id, 10_000, 'ticket via node B');
  assert.deepEqual(seen.payload.data, ticket);
  // Room rules are the same on either node: the customer may join their ticket on A, not `tickets`.
  const custOnA = await connect(a, { token: customer.token });
  assert.deepEqual(await custOnA.join(`ticket:${ticket.id}`), { ok: true });
  assert.deepEqual(await custOnA.join('tickets'), { ok: false, error: 'forbidden' });

  // Miss five events, then resume on the *other* node from the last event_id seen.
  const last = seen.payload.event_id;
  onA.close();
  for (let i = 0; i < 5; i++) await agent.api.patch(`/api/tickets/${ticket.id}`, { priority: i % 2 ? 'high' : 'low' });
  const onB = await connect(b, { token: agent.token, rooms: ['tickets'], last_event_id: last });
  const replayed = await onB.waitCount((e) => e.name === 'ticket.update', 5, 10_000, 'replayed updates');
  const ids = replayed.map((e) => e.payload.event_id);
  assert.deepEqual(ids, [...ids].sort((x, y) => x - y));
  assert.equal(new Set(ids).size, 5);
  assert.equal(replayed.at(-1).payload.data.version, 6);
  onB.close();
  custOnA.close();
});

/** PUBLISH over Redis's inline protocol: no client library needed for one command. */
function redisPublish(channel, message) {
  const port = Number(new URL(REDIS).port || 6379);
  return new Promise((res, rej) => {
    const s = netConnect(port, new URL(REDIS).hostname);
    s.once('error', rej);
    s.once('connect', () => s.write(`PUBLISH ${channel} ${message}\r\n`));
    s.once('data', (d) => { s.destroy(); res(d.toString()); });
  });
}

test('a stray or forged "dispatched up to N" on Redis skips nothing', async (t) => {
  if (skip) return t.skip(skip);
  const a = await startNode();
  const b = await startNode();
  const adminB = await login(b, ADMIN.email, ADMIN.password);
  const agent = await makeUser(b, adminB.api, 'agent', 'Stray');
  const onA = await connect(a, { token: agent.token, rooms: ['tickets'] });
  // Another cluster on the same Redis announcing its own, far higher, event ids; then the same on
  // this cluster's channel. Neither may move a node past events it has not emitted.
  await redisPublish('ticketwire:dispatched', 1_000_000_000);
  const heard = await redisPublish(`${PREFIX}:dispatched`, 1_000_000_000);
  assert.match(heard, /^:[1-9]/, `both nodes subscribe to ${PREFIX}:dispatched`);
  await sleep(300);
  for (let i = 0; i < 3; i++) {
    const ticket = await agent.api.post('/api/tickets', { subject: `after the forged announcement ${i}` }, 201);
    await onA.waitFor((e) => e.name === 'ticket.update' && e.payload.data.id === ticket.id, 10_000, `ticket ${i} via node B`);
  }
  onA.close();
});

test('kill -9 of one node during a webhook burst loses nothing', async (t) => {
  if (skip) return t.skip(skip);
  const hits = [];
  const recv = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => { hits.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') }); res.statusCode = 204; res.end(); });
  });
  await new Promise((r) => recv.listen(0, '127.0.0.1', r));
  try {
    const a = nodes[0];
    const b = nodes[1];
    const adminA = await login(a, ADMIN.email, ADMIN.password);
    const watcher = await makeUser(a, adminA.api, 'admin', 'Watcher');
    const ep = await watcher.api.put('/api/users/me/webhook', { webhook_url: `http://127.0.0.1:${recv.address().port}/hook` });
    const writer = await makeUser(b, adminA.api, 'customer', 'Writer');
    // Subjects of acknowledged creations, and of those that got no answer: the kill can land after
    // a creation committed and before its response left, so it may or may not have happened.
    const acked = new Set();
    const unanswered = new Set();
    const burst = (async () => {
      for (let i = 0; i < 60; i++) {
        const node = i % 2 ? a : b;
        const subject = `burst ${i}`;
        try {
          const r = await fetch(`${node.url}/api/tickets`, {
            method: 'POST',
            headers: { authorization: `Bearer ${writer.token}`, 'content-type': 'application/json' },
            body: JSON.stringify({ subject }),
          });
          if (r.status === 201) acked.add(subject);
        } catch { unanswered.add(subject); /* node A is gone */ }
      }
    })();
    await sleep(300);
    await a.kill9();
    await burst;
    // Every acknowledged ticket made one new_ticket notification for the watcher (an admin).
    const deadline = Date.now() + 25_000;
    let notes = [];
    while (Date.now() < deadline) {
      // Node A is dead: ask B.
      const r = await fetch(`${b.url}/api/notifications?limit=200`, { headers: { authorization: `Bearer ${watcher.token}` } });
      notes = (await r.json()).items.filter((n) => n.type === 'new_ticket');
      const delivered = new Set(hits.map((h) => JSON.parse(h.body).notification.id));
      if (notes.length >= acked.size && notes.every((n) => delivered.has(n.id))) break;
      await sleep(200);
    }
    assert.ok(acked.size > 0, 'some writes went through');
    const notified = notes.map((n) => /^New ticket '(burst \d+)'/.exec(n.message)[1]);
    assert.equal(new Set(notified).size, notified.length, 'no creation notified twice');
    for (const subject of acked) assert.ok(notified.includes(subject), `acknowledged ${subject} notified`);
    for (const subject of notified) assert.ok(acked.has(subject) || unanswered.has(subject), `${subject} was written`);
    const wh = new Webhook(ep.secret);
    const ids = new Map();
    for (const h of hits) {
      const payload = wh.verify(h.body, h.headers);
      const set = ids.get(payload.notification.id) || new Set();
      set.add(h.headers['webhook-id']);
      ids.set(payload.notification.id, set);
    }
    for (const n of notes) {
      assert.ok(ids.has(n.id), `notification ${n.id} delivered`);
      assert.equal(ids.get(n.id).size, 1, 'duplicates only with the same webhook-id');
    }
    console.log(`# cluster burst: ${acked.size} acknowledged, ${unanswered.size} unanswered, ${hits.length} requests, ${hits.length - ids.size} repeats`);
  } finally {
    recv.close();
    recv.closeAllConnections?.();
  }
});
