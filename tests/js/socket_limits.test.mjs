// Issue #8: one account cannot hold more than the configured number of sockets on a node.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, login, makeUser, connect, refusedMessage, ADMIN, sleep } from './lib/harness.mjs';

let srv, admin;
before(async () => {
  srv = await startServer({ extra: { TICKETWIRE_MAX_SOCKETS_PER_USER: '3' } });
  admin = await login(srv, ADMIN.email, ADMIN.password);
});
after(async () => { await srv?.stop(); });

test('sockets per user are capped, and a closed one frees its place', async () => {
  const cust = await makeUser(srv, admin.api, 'customer', 'Cleo');
  const open = [];
  for (let i = 0; i < 3; i++) open.push(await connect(srv, { token: cust.token }));
  assert.equal(await refusedMessage(srv, { token: cust.token }), 'too_many_connections');
  // Another user is not affected.
  const other = await makeUser(srv, admin.api, 'customer', 'Olga');
  const theirs = await connect(srv, { token: other.token });
  open[0].close();
  let again = null;
  for (let i = 0; i < 50 && !again; i++) {
    try { again = await connect(srv, { token: cust.token }); } catch { await sleep(50); }
  }
  assert.ok(again, 'a freed place can be taken again');
  for (const s of [...open.slice(1), theirs, again]) s.close();
});
