// Ending tokens reaches open sockets: signing out closes that token's sockets, a new password
// closes the sockets of every older token, on every node (through the adapter and the log).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, login, connect, refusedMessage, ADMIN } from './lib/harness.mjs';

let srv, admin;

before(async () => {
  srv = await startServer();
  admin = await login(srv, ADMIN.email, ADMIN.password);
});
after(async () => { await srv?.stop(); });

const closed = (rec) => new Promise((res) => {
  if (!rec.socket.connected) return res('already');
  rec.socket.once('disconnect', (reason) => res(reason));
});

async function twoSessions(role) {
  const email = `${role}-${process.pid}-${Date.now()}@example.com`;
  const password = 'first-password-long-enough';
  await admin.api.post('/api/users', { email, password, name: 'Pat', role }, 201);
  return { password, one: await login(srv, email, password), two: await login(srv, email, password) };
}

test('signing out closes the sockets of that token only', async () => {
  const { one, two } = await twoSessions('agent');
  const a = await connect(srv, { token: one.token });
  const b = await connect(srv, { token: two.token });
  try {
    const gone = closed(a);
    assert.equal((await one.api.call('POST', '/api/auth/logout')).status, 204);
    assert.equal(await gone, 'io server disconnect');
    assert.ok(b.socket.connected, 'another token of the same user was closed too');
    assert.equal(await refusedMessage(srv, { token: one.token }), 'unauthorized');
  } finally { b.close(); }
});

test('a new password closes the sockets of older tokens; the fresh token connects', async () => {
  const { password, one: u, two: other } = await twoSessions('customer');
  const a = await connect(srv, { token: u.token });
  const b = await connect(srv, { token: other.token });
  const [goneA, goneB] = [closed(a), closed(b)];
  const changed = await u.api.patch('/api/users/me', { current_password: password, password: 'second-password-long-enough' });
  assert.equal(await goneA, 'io server disconnect');
  assert.equal(await goneB, 'io server disconnect');
  assert.equal(await refusedMessage(srv, { token: other.token }), 'unauthorized');
  const fresh = await connect(srv, { token: changed.access_token });
  fresh.close();
});
