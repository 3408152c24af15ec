// Starts and stops a real ticketwire server for the browser tests.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const webClientDir = path.resolve(here, '..');
export const repoRoot = path.resolve(webClientDir, '..');

export class Server {
  constructor() {
    this.bin = path.resolve(webClientDir, process.env.TICKETWIRE_BIN || '../target/debug/ticketwire');
    this.dataDir = mkdtempSync(path.join(os.tmpdir(), 'ticketwire-e2e-'));
    this.port = 0;
    this.proc = null;
    this.log = [];
  }

  env(listen) {
    const env = { ...process.env };
    delete env.DATABASE_URL;
    delete env.REDIS_URL;
    return {
      ...env,
      RUST_LOG: env.RUST_LOG || 'warn',
      TICKETWIRE_LISTEN: listen,
      TICKETWIRE_DATA_DIR: this.dataDir,
      TICKETWIRE_JWT_SECRET: 'e2e-secret-0123456789-abcdefghijklmnop',
      TICKETWIRE_WEB_DIR: path.join(webClientDir, 'dist'),
      TICKETWIRE_WEBHOOK_ALLOW_CIDRS: '127.0.0.0/8',
      TICKETWIRE_ALLOW_REGISTRATION: 'true',
      TICKETWIRE_LOGIN_PER_MINUTE: '1000',
      TICKETWIRE_LOGIN_PER_MINUTE_PER_IP: '1000',
    };
  }

  checkBuilt() {
    if (!existsSync(this.bin)) throw new Error(`server binary not found at ${this.bin}: run \`cargo build -p ticketwire\` at the repo root or set TICKETWIRE_BIN`);
    if (!existsSync(path.join(webClientDir, 'dist', 'index.html'))) throw new Error('web-client/dist is missing: run `npm run build` first');
  }

  createAdmin(email, password, name) {
    const r = spawnSync(this.bin, ['create-admin', '--email', email, '--password', password, '--name', name], {
      env: this.env('127.0.0.1:0'),
      encoding: 'utf8',
      timeout: 60_000,
    });
    if (r.status !== 0) throw new Error(`create-admin failed (${r.status}): ${r.stdout}\n${r.stderr}`);
  }

  /** Starts the server (on its previous port when restarting); resolves with the base URL. */
  async start() {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.startOnce();
      } catch (e) {
        if (attempt >= 20 || !this.port) throw e;
        await new Promise((r) => setTimeout(r, 250)); // the port may still be held briefly
      }
    }
  }

  startOnce() {
    const listen = `127.0.0.1:${this.port || 0}`;
    const proc = spawn(this.bin, ['serve'], { env: this.env(listen), stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    return new Promise((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => {
        proc.kill('SIGKILL');
        reject(new Error(`server did not start in time:\n${out}\n${this.log.slice(-20).join('')}`));
      }, 60_000);
      proc.stdout.on('data', (chunk) => {
        out += chunk;
        const setup = out.match(/open (http:\/\/\S+\/setup\?token=\S+)/);
        if (setup) this.setupLink = setup[1];
        const m = out.match(/listening on http:\/\/([\d.]+):(\d+)/);
        if (m && !this.url) {
          clearTimeout(timer);
          this.port = Number(m[2]);
          this.url = `http://127.0.0.1:${this.port}`;
          resolve(this.url);
        }
      });
      proc.stderr.on('data', (chunk) => {
        this.log.push(String(chunk));
        if (this.log.length > 200) this.log.shift();
      });
      proc.on('exit', (code, sig) => {
        clearTimeout(timer);
        if (!this.url) reject(new Error(`server exited (${code ?? sig}) before listening:\n${this.log.slice(-20).join('')}`));
      });
    }).then((url) => url, (e) => {
      this.url = undefined;
      throw e;
    });
  }

  /** Kills the process (as a crash would) and waits for it to be gone. */
  async kill() {
    const proc = this.proc;
    this.url = undefined;
    if (!proc || proc.exitCode !== null || proc.signalCode) return;
    const gone = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGKILL');
    await gone;
  }

  async restart() {
    const port = this.port;
    await this.kill();
    this.port = port;
    return this.start();
  }

  async stop() {
    await this.kill();
    try {
      rmSync(this.dataDir, { recursive: true, force: true });
    } catch {
      /* best effort */
    }
  }
}

/** A JSON API client for test setup. */
export function apiClient(base, token) {
  return async function call(method, p, body, extra = {}) {
    const headers = { Accept: 'application/json', ...extra };
    if (token) headers.Authorization = `Bearer ${token}`;
    let payload;
    if (typeof body === 'string') payload = body;
    else if (body !== undefined) {
      payload = JSON.stringify(body);
      headers['Content-Type'] = 'application/json';
    }
    const res = await fetch(base + p, { method, headers, body: payload });
    const text = await res.text();
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = text;
    }
    return { status: res.status, body: json };
  };
}

export async function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/**
 * A TCP proxy in front of the server for the browsers: `hold()` refuses new connections (the
 * pages stay disconnected while the test makes changes they must catch up on), `release()` lets
 * them through again. Existing connections are unaffected; the server's own restart closes them.
 */
export class Gate {
  constructor(targetPort) {
    this.targetPort = targetPort;
    this.held = false;
    this.sockets = new Set();
  }

  async listen() {
    this.server = net.createServer((client) => {
      if (this.held) {
        client.destroy();
        return;
      }
      const upstream = net.connect(this.targetPort, '127.0.0.1');
      this.sockets.add(client).add(upstream);
      const drop = () => {
        client.destroy();
        upstream.destroy();
        this.sockets.delete(client);
        this.sockets.delete(upstream);
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${this.server.address().port}`;
    return this.url;
  }

  hold() {
    this.held = true;
  }

  release() {
    this.held = false;
  }

  async close() {
    for (const s of this.sockets) s.destroy();
    await new Promise((r) => this.server?.close(r) ?? r());
  }
}
