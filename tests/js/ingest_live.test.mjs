// Issue #5 from the client side: a ticket ingested from another system reaches a socket.io-client
// (the browser library) sitting in room `tickets`, like any other change.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, login, makeUser, connect, ADMIN } from './lib/harness.mjs';

let srv, admin;
before(async () => { srv = await startServer(); admin = await login(srv, ADMIN.email, ADMIN.password); });
after(async () => { await srv?.stop(); });

test('an Alertmanager alert becomes a live ticket, then resolves live', async () => {
  const integration = await admin.api.post('/api/integrations', { source: 'prometheus', name: 'prod alerts' }, 201);
  const agent = await makeUser(srv, admin.api, 'agent', 'Agnes');
  const rec = await connect(srv, { token: agent.token, rooms: ['tickets'] });
  const alert = (status) => ({
    version: '4', status, receiver: 'ticketwire', groupKey: '{}:{alertname="DiskFull"}',
    alerts: [{
      status,
      labels: { alertname: 'DiskFull', severity: 'critical', instance: 'db-1' },
      annotations: { summary: 'Disk full on db-1', description: '/var is at 99%' },
      startsAt: '2026-11-22T06:00:00Z',
      endsAt: status === 'firing' ? '0001-01-01T00:00:00Z' : '2026-11-22T06:30:00Z',
      fingerprint: 'a1b2c3d4e5f60718',
      generatorURL: 'http://prometheus.local/graph',
    }],
  });
  const send = (body) => fetch(`${srv.url}/api/v1/tickets/webhook/prometheus`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': integration.secret },
    body: JSON.stringify(body),
  });
  const created = await send(alert('firing'));
  assert.equal(created.status, 201);
  const ticket = await created.json();
  assert.equal(ticket.priority, 'urgent');
  const live = await rec.waitFor((e) => e.name === 'ticket.update' && e.payload.data.id === ticket.id, 5000, 'ingested ticket');
  assert.equal(live.payload.action, 'created');
  assert.deepEqual(live.payload.data, ticket);

  const resolved = await send(alert('resolved'));
  assert.equal(resolved.status, 200);
  const upd = await rec.waitFor((e) => e.name === 'ticket.update' && e.payload.data.id === ticket.id && e.payload.data.status === 'resolved', 5000, 'resolution');
  assert.equal(upd.payload.action, 'updated');
  assert.equal(upd.payload.data.version, 2);

  const bad = await fetch(`${srv.url}/api/v1/tickets/webhook/prometheus`, {
    method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': 'wrong' }, body: JSON.stringify(alert('firing')),
  });
  assert.equal(bad.status, 401);
  rec.close();
});
