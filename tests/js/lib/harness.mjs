// Shared helpers for the end-to-end suites: a real ticketwire process, a REST client, Socket.IO
// clients that record everything they receive, and small waiting utilities.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHmac } from 'node:crypto';
import { io } from 'socket.io-client';

const here = dirname(fileURLToPath(import.meta.url));
export const ROOT = resolve(here, '../../..');
export const BIN = process.env.TICKETWIRE_BIN || join(ROOT, 'target/debug/ticketwire');
export const JWT_SECRET = 'test-secret-0123456789abcdef0123456789';
export const ADMIN = { email: 'admin@example.com', password: 'admin-password', name: 'Ada Admin' };

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function baseEnv(dataDir, { allowCidrs = true, listen = '127.0.0.1:0', extra = {} } = {}) {
  const env = {
    ...process.env,
    TICKETWIRE_DATA_DIR: dataDir,
    TICKETWIRE_JWT_SECRET: JWT_SECRET,
    TICKETWIRE_LISTEN: listen,
    TICKETWIRE_WEBHOOK_RETRY_SCHEDULE_MS: '100,200,400',
    TICKETWIRE_WEBHOOK_TIMEOUT_MS: '1500',
    RUST_LOG: process.env.RUST_LOG || 'warn',
    ...extra,
  };
  if (allowCidrs) env.TICKETWIRE_WEBHOOK_ALLOW_CIDRS = '127.0.0.0/8';
  else delete env.TICKETWIRE_WEBHOOK_ALLOW_CIDRS;
  return env;
}

/** Starts a fresh server (new data dir, admin created). Call `stop()` when done. */
export async function startServer(opts = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), 'tw-js-'));
  execFileSync(BIN, ['create-admin', '--email', ADMIN.email, '--password', ADMIN.password, '--name', ADMIN.name], {
    env: baseEnv(dataDir, opts),
    stdio: ['ignore', 'ignore', 'inherit'],
    timeout: 60_000,
  });
  const srv = { dataDir, opts, proc: null, port: null, url: null };
  await launch(srv, '127.0.0.1:0');
  srv.kill9 = async () => {
    const p = srv.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await exited;
  };
  srv.restart = async ({ hard = true } = {}) => {
    if (hard) await srv.kill9();
    await launch(srv, `127.0.0.1:${srv.port}`);
  };
  srv.stop = async () => {
    await srv.kill9();
    rmSync(dataDir, { recursive: true, force: true });
  };
  return srv;
}

async function launch(srv, listen) {
  const proc = spawn(BIN, ['serve'], { env: baseEnv(srv.dataDir, { ...srv.opts, listen }), stdio: ['ignore', 'pipe', 'pipe'] });
  srv.proc = proc;
  proc.stderr.on('data', (d) => { if (process.env.TW_SERVER_LOG) process.stderr.write(d); });
  const url = await new Promise((res, rej) => {
    let buf = '';
    const timer = setTimeout(() => rej(new Error('server did not start in 60 s: ' + buf)), 60_000);
    proc.stdout.on('data', (d) => {
      buf += d.toString();
      const m = buf.match(/ticketwire listening on (http:\/\/[\d.]+:(\d+))/);
      if (m) { clearTimeout(timer); res(m[1]); }
    });
    proc.once('exit', (code) => { clearTimeout(timer); rej(new Error(`server exited (${code}): ${buf}`)); });
  });
  proc.stdout.resume();
  srv.url = url;
  srv.port = Number(new URL(url).port);
}

/** A REST client bound to a server and (optionally) a token. */
export function client(srv, token) {
  const call = async (method, path, body, headers = {}) => {
    const init = { method, headers: { ...headers } };
    if (token) init.headers.authorization = `Bearer ${token}`;
    if (body instanceof FormData) init.body = body;
    else if (body !== undefined) {
      init.headers['content-type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let r;
    for (let attempt = 1; ; attempt++) {
      try {
        r = await fetch(srv.url + path, init);
        break;
      } catch (e) {
        // A pooled keep-alive connection can be reset under load; report it and retry once.
        if (attempt >= 2) throw e;
        console.log(`# fetch ${method} ${path} failed (${e.cause?.code || e.cause?.message || e.message}); retrying`);
        await sleep(100);
      }
    }
    const text = await r.text();
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch { json = text; }
    return { status: r.status, body: json };
  };
  const ok = async (method, path, body, expect) => {
    const r = await call(method, path, body);
    const good = expect ? r.status === expect : r.status >= 200 && r.status < 300;
    if (!good) throw new Error(`${method} ${path} -> ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  };
  return {
    call,
    get: (p) => ok('GET', p),
    post: (p, b, e) => ok('POST', p, b ?? {}, e),
    patch: (p, b) => ok('PATCH', p, b),
    put: (p, b) => ok('PUT', p, b),
    del: (p) => ok('DELETE', p),
  };
}

export async function login(srv, email, password) {
  const r = await client(srv).call('POST', '/api/auth/login', { email, password });
  if (r.status !== 200) throw new Error(`login ${email} -> ${r.status} ${JSON.stringify(r.body)}`);
  return { token: r.body.access_token, user: r.body.user, api: client(srv, r.body.access_token) };
}

let seq = 0;
/** Creates a user with `role` through the admin API and logs in as them. */
export async function makeUser(srv, adminApi, role, name) {
  seq += 1;
  const email = `${role}${seq}-${process.pid}-${Date.now()}@example.com`;
  const password = 'password-' + seq + '-long-enough';
  await adminApi.post('/api/users', { email, password, name: name || `${role} ${seq}`, role }, 201);
  return login(srv, email, password);
}

/** HS256 JWT, to forge expired or foreign-key tokens. */
export function signJwt(claims, secret = JWT_SECRET) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const head = b64({ alg: 'HS256', typ: 'JWT' });
  const body = b64(claims);
  const sig = createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

/**
 * Connects a Socket.IO client that records every event. Resolves when connected, rejects with
 * the connect_error. `rec.events` is [{name, payload, at}] in arrival order.
 */
export function connect(srv, auth, { reconnection = false } = {}) {
  const socket = io(srv.url, { auth, transports: ['websocket'], reconnection, forceNew: true, timeout: 20_000 });
  const rec = { socket, events: [], waiters: new Set() };
  socket.onAny((name, payload) => {
    rec.events.push({ name, payload, at: performance.now() });
    for (const w of [...rec.waiters]) w();
  });
  rec.of = (name) => rec.events.filter((e) => e.name === name).map((e) => e.payload);
  rec.waitFor = (pred, ms = 10_000, what = 'event') => new Promise((res, rej) => {
    const check = () => {
      const hit = rec.events.find((e) => pred(e));
      if (hit) { clearTimeout(t); rec.waiters.delete(check); res(hit); return true; }
      return false;
    };
    const t = setTimeout(() => { rec.waiters.delete(check); rej(new Error(`timed out waiting for ${what}`)); }, ms);
    if (!check()) rec.waiters.add(check);
  });
  rec.waitCount = (pred, n, ms = 15_000, what = 'events') => new Promise((res, rej) => {
    const check = () => {
      const hits = rec.events.filter((e) => pred(e));
      if (hits.length >= n) { clearTimeout(t); rec.waiters.delete(check); res(hits); return true; }
      return false;
    };
    const t = setTimeout(() => {
      rec.waiters.delete(check);
      rej(new Error(`timed out waiting for ${n} ${what}; got ${rec.events.filter((e) => pred(e)).length}`));
    }, ms);
    if (!check()) rec.waiters.add(check);
  });
  rec.join = (room) => socket.timeout(10_000).emitWithAck('join', { room });
  rec.leave = (room) => socket.timeout(10_000).emitWithAck('leave', { room });
  rec.close = () => socket.disconnect();
  rec.ready = new Promise((res, rej) => {
    socket.once('connect', () => res(rec));
    socket.once('connect_error', (err) => rej(err));
  });
  return rec.ready;
}

/** Expects the connection to be refused; returns the connect_error message. */
export async function refusedMessage(srv, auth) {
  try {
    const rec = await connect(srv, auth);
    rec.close();
    return null;
  } catch (e) {
    return e.message;
  }
}

export function percentile(sorted, p) {
  if (!sorted.length) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

/** Runs `fn` over `items` with at most `limit` at a time. */
export async function pool(items, limit, fn) {
  const out = new Array(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  });
  await Promise.all(workers);
  return out;
}
