// Measurement (printed, not asserted): PATCH response -> ticket.update arrival on loopback.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, login, makeUser, connect, ADMIN, percentile } from './lib/harness.mjs';

let srv, admin, agent;
before(async () => {
  srv = await startServer();
  admin = await login(srv, ADMIN.email, ADMIN.password);
  agent = await makeUser(srv, admin.api, 'agent');
});
after(async () => { await srv?.stop(); });

test('measure realtime latency over 200 PATCHes', { timeout: 120_000 }, async () => {
  const t = await admin.api.post('/api/tickets', { subject: 'latency' }, 201);
  const s = await connect(srv, { token: agent.token, rooms: ['tickets'] });
  const prios = ['low', 'medium', 'high', 'urgent'];
  const lat = [];
  try {
    for (let i = 0; i < 200; i++) {
      const r = await admin.api.patch(`/api/tickets/${t.id}`, { priority: prios[i % 4] });
      const done = performance.now();
      const e = await s.waitFor((x) => x.name === 'ticket.update' && x.payload.data.version === r.version, 10_000);
      lat.push(Math.max(0, e.at - done));
    }
  } finally { s.close(); }
  lat.sort((a, b) => a - b);
  console.log(`# SOCKET latency (PATCH response -> ticket.update, n=${lat.length}): median ${percentile(lat, 50).toFixed(2)} ms, p99 ${percentile(lat, 99).toFixed(2)} ms, max ${lat.at(-1).toFixed(2)} ms`);
  assert.equal(lat.length, 200);
});
