// Issue #8: a garbage or truncated Engine.IO / Socket.IO frame closes that one connection and
// nothing else; a well-behaved client beside it keeps receiving.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startServer, login, makeUser, connect, ADMIN, sleep } from './lib/harness.mjs';

let srv, admin;
before(async () => { srv = await startServer(); admin = await login(srv, ADMIN.email, ADMIN.password); });
after(async () => { await srv?.stop(); });

/** Opens a raw Engine.IO v4 websocket, connects the namespace with `auth`, then sends `frames`. */
async function hostile(auth, frames) {
  const ws = new WebSocket(srv.url.replace('http', 'ws') + '/socket.io/?EIO=4&transport=websocket', { perMessageDeflate: false });
  const closed = new Promise((r) => ws.on('close', () => r(true)));
  ws.on('error', () => {});
  await new Promise((res) => ws.on('message', (buf) => {
    const m = buf.toString();
    if (m[0] === '0') ws.send('40' + JSON.stringify(auth));
    else if (m.startsWith('40')) res();
  }));
  for (const f of frames) ws.send(f);
  const gone = await Promise.race([closed, sleep(5000).then(() => false)]);
  ws.terminate();
  return gone;
}

test('garbage frames close only their own connection', async () => {
  const agent = await makeUser(srv, admin.api, 'agent', 'Agnes');
  const good = await connect(srv, { token: agent.token, rooms: ['tickets'] });
  const auth = { token: agent.token };
  const cases = [
    ['not engine.io at all'],
    ['42["join",{"room":'],            // truncated JSON
    ['4999999999999999999999["x"]'],    // absurd ack id
    ['42/unknown-nsp,["join",{}]'],     // unknown namespace
    ['451-["join",{"_placeholder":true,"num":0}]'], // binary placeholder without an attachment
    [Buffer.from([0xff, 0xfe, 0x00, 0x01])], // binary garbage
  ];
  let closedCount = 0;
  for (const frames of cases) {
    if (await hostile(auth, frames)) closedCount++;
  }
  // The server stays up and the good client keeps receiving.
  const t = await agent.api.post('/api/tickets', { subject: 'still alive' }, 201);
  const seen = await good.waitFor((e) => e.name === 'ticket.update' && e.payload.data.id === t.id, 5000, 'live update after garbage');
  assert.equal(seen.payload.data.subject, 'still alive');
  assert.ok(closedCount >= 3, `most garbage connections were closed (${closedCount} of ${cases.length})`);
  console.log(`# garbage frames: ${closedCount} of ${cases.length} hostile connections closed by the server; the good client unaffected`);
  good.close();
});
