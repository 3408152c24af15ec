// Issue #8: one account cannot hold more than the configured number of sockets on a node.
// And no client may send a message larger than the `maxPayload` the server advertises, on
// WebSocket as on polling.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { io } from 'socket.io-client';
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

/** A raw Engine.IO v4 WebSocket in the default namespace: its open packet, and helpers. */
async function rawSocket(server, auth) {
  const ws = new WebSocket(server.url.replace('http', 'ws') + '/socket.io/?EIO=4&transport=websocket', { perMessageDeflate: false });
  ws.on('error', () => {}); // the server closing mid-send is what some tests expect
  const closed = new Promise((r) => ws.on('close', () => r(true)));
  const acks = new Map();
  const open = await new Promise((res, rej) => {
    let handshake = null;
    ws.on('message', (buf) => {
      const m = buf.toString();
      if (m[0] === '0') { handshake = JSON.parse(m.slice(1)); ws.send('40' + JSON.stringify(auth)); }
      else if (m.startsWith('40')) res(handshake);
      else if (m.startsWith('44')) rej(new Error('namespace refused: ' + m));
      else if (m === '2') ws.send('3');
      else {
        const ack = /^43(\d+)/.exec(m);
        if (ack) acks.get(Number(ack[1]))?.(m);
      }
    });
    ws.on('close', () => rej(new Error('closed before the namespace connected')));
  });
  let nextAck = 1;
  return {
    open,
    ws,
    /** Sends a join of exactly `size` bytes (JSON whitespace pads it); resolves true on its ack. */
    joinOfSize: async (size, ms = 5000) => {
      const id = nextAck++;
      const head = `42${id}["join",{"room":"tickets"}`;
      const frame = head + ' '.repeat(Math.max(0, size - head.length - 1)) + ']';
      assert.equal(frame.length, Math.max(size, head.length + 1));
      const got = new Promise((r) => acks.set(id, r));
      ws.send(frame);
      return Promise.race([got.then(() => true), closed.then(() => false), sleep(ms).then(() => false)]);
    },
    closedWithin: (ms) => Promise.race([closed, sleep(ms).then(() => false)]),
  };
}

test('a WebSocket message over the advertised maxPayload closes its connection; one at the limit is answered', async () => {
  const small = await startServer({ extra: { TICKETWIRE_SOCKETIO_MAX_PAYLOAD: '20000', TICKETWIRE_SOCKETIO_PING_INTERVAL_MS: '9000' } });
  try {
    const adm = await login(small, ADMIN.email, ADMIN.password);
    const agent = await makeUser(small, adm.api, 'agent', 'Wanda');
    const s = await rawSocket(small, { token: agent.token });
    assert.equal(s.open.maxPayload, 20000, 'the configured cap is advertised');
    assert.equal(s.open.pingInterval, 9000, 'the configured ping interval is advertised');
    assert.ok(await s.joinOfSize(100), 'a small message is answered');
    assert.ok(await s.joinOfSize(20000), 'a message of exactly maxPayload is answered');
    const over = await rawSocket(small, { token: agent.token });
    assert.equal(await over.joinOfSize(20001, 1500), false, 'one byte over is not answered');
    assert.ok(await over.closedWithin(3000), 'and its connection is closed');
    // The first connection is unaffected.
    assert.ok(await s.joinOfSize(1000), 'another connection keeps working');
    s.ws.terminate();

    // The same through the real client: an oversized emit ends in a transport-level disconnect.
    const client = io(small.url, { auth: { token: agent.token }, transports: ['websocket'], reconnection: false, forceNew: true });
    await new Promise((res, rej) => { client.once('connect', res); client.once('connect_error', rej); });
    const ack = await client.timeout(5000).emitWithAck('join', { room: 'tickets' });
    assert.ok(ack, 'a normal emit is acknowledged');
    const reason = new Promise((r) => client.once('disconnect', r));
    client.emit('join', { room: 'tickets', pad: 'x'.repeat(50_000) });
    const why = await Promise.race([reason, sleep(5000).then(() => 'still connected')]);
    assert.match(why, /^transport (close|error)$/, `disconnected because: ${why}`);
    client.close();
  } finally {
    await small.stop();
  }
});

test('the default cap refuses the 10 MB WebSocket message that used to go through', async () => {
  const s = await rawSocket(srv, { token: admin.token });
  assert.ok(s.open.maxPayload > 0 && s.open.maxPayload < 10_000_000, `maxPayload ${s.open.maxPayload}`);
  assert.equal(await s.joinOfSize(10_000_000, 5000), false, 'not answered');
  assert.ok(await s.closedWithin(5000), 'closed');
  const again = await rawSocket(srv, { token: admin.token });
  assert.ok(await again.joinOfSize(s.open.maxPayload), 'a message at the default cap still works');
  again.ws.terminate();
});
