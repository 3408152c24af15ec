"""Helpers for the Python end-to-end suite: a real ticketwire process, a REST client, users,
a webhook receiver on 127.0.0.1, and a recording Socket.IO client."""
from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests
import socketio

ROOT = Path(__file__).resolve().parents[2]
BIN = os.environ.get("TICKETWIRE_BIN", str(ROOT / "target" / "debug" / "ticketwire"))
JWT_SECRET = "test-secret-0123456789abcdef0123456789"
ADMIN = {"email": "admin@example.com", "password": "admin-password", "name": "Ada Admin"}


class Server:
    def __init__(self, allow_cidrs: bool = True, database_url: str | None = None, extra_env: dict | None = None):
        self.data_dir = tempfile.mkdtemp(prefix="tw-py-")
        self.allow_cidrs = allow_cidrs
        self.extra_env = extra_env or {}
        # None: the SQLite file in the data dir (or whatever DATABASE_URL the caller exported).
        self.database_url = database_url
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None
        self.url: str | None = None
        subprocess.run(
            [BIN, "create-admin", "--email", ADMIN["email"], "--password", ADMIN["password"], "--name", ADMIN["name"]],
            env=self.env("127.0.0.1:0"), check=True, stdout=subprocess.DEVNULL, timeout=60,
        )
        self.launch("127.0.0.1:0")

    def env(self, listen: str) -> dict:
        env = dict(os.environ)
        env.update({
            "TICKETWIRE_DATA_DIR": self.data_dir,
            "TICKETWIRE_JWT_SECRET": JWT_SECRET,
            "TICKETWIRE_LISTEN": listen,
            "TICKETWIRE_WEBHOOK_RETRY_SCHEDULE_MS": "100,200,400",
            "TICKETWIRE_WEBHOOK_TIMEOUT_MS": "1500",
            "RUST_LOG": os.environ.get("RUST_LOG", "warn"),
        })
        if self.database_url:
            env["DATABASE_URL"] = self.database_url
        env.update(self.extra_env)
        if self.allow_cidrs:
            env["TICKETWIRE_WEBHOOK_ALLOW_CIDRS"] = "127.0.0.0/8"
        else:
            env.pop("TICKETWIRE_WEBHOOK_ALLOW_CIDRS", None)
        return env

    def launch(self, listen: str) -> None:
        log = None if os.environ.get("TW_SERVER_LOG") else subprocess.DEVNULL
        self.proc = subprocess.Popen([BIN, "serve"], env=self.env(listen), stdout=subprocess.PIPE, stderr=log, text=True)
        deadline = time.time() + 60
        line = ""
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            m = re.search(r"ticketwire listening on (http://[\d.]+:(\d+))", line)
            if m:
                self.url, self.port = m.group(1), int(m.group(2))
                threading.Thread(target=self._drain, args=(self.proc,), daemon=True).start()
                return
            if self.proc.poll() is not None:
                break
        raise RuntimeError(f"server did not start: {line!r}")

    @staticmethod
    def _drain(proc):
        for _ in proc.stdout:
            pass

    def kill9(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def restart(self) -> None:
        self.kill9()
        self.launch(f"127.0.0.1:{self.port}")

    def stop(self) -> None:
        self.kill9()
        shutil.rmtree(self.data_dir, ignore_errors=True)


class Api:
    def __init__(self, srv: Server, token: str | None = None):
        self.srv, self.token = srv, token
        self.http = requests.Session()

    def call(self, method: str, path: str, json_body=None, **kw) -> requests.Response:
        headers = kw.pop("headers", {})
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        return self.http.request(method, self.srv.url + path, json=json_body, headers=headers, timeout=30, **kw)

    def ok(self, method: str, path: str, json_body=None, expect: int | None = None, **kw):
        r = self.call(method, path, json_body, **kw)
        good = r.status_code == expect if expect else 200 <= r.status_code < 300
        assert good, f"{method} {path} -> {r.status_code} {r.text[:300]}"
        return r.json() if r.content else None

    def get(self, p):
        return self.ok("GET", p)

    def post(self, p, b=None, expect=None):
        return self.ok("POST", p, b if b is not None else {}, expect)

    def patch(self, p, b):
        return self.ok("PATCH", p, b)

    def put(self, p, b):
        return self.ok("PUT", p, b)

    def delete(self, p):
        return self.ok("DELETE", p)


class User:
    def __init__(self, srv: Server, email: str, password: str):
        r = requests.post(srv.url + "/api/auth/login", json={"email": email, "password": password}, timeout=30)
        assert r.status_code == 200, r.text
        body = r.json()
        self.token = body["access_token"]
        self.user = body["user"]
        self.id = self.user["id"]
        self.api = Api(srv, self.token)
        self.email, self.password, self.srv = email, password, srv

    def relogin(self):
        self.__init__(self.srv, self.email, self.password)


_seq = itertools.count(1)
_db_seq = itertools.count(1)


def create_postgres_database(base_url: str, prefix: str = "tw_py") -> str:
    """A new, empty database on the PostgreSQL server of `base_url` (a URL naming any existing
    database there); returns its URL. Names start with `prefix`: `tests/run.sh` drops leftover
    `tw_%` databases."""
    name = f"{prefix}_{os.getpid()}_{time.time_ns() % 10**9}_{next(_db_seq)}"
    subprocess.run(["psql", base_url, "-qc", f"CREATE DATABASE {name}"], check=True, timeout=60,
                   stdout=subprocess.DEVNULL)
    return re.sub(r"/[^/?]*(\?.*)?$", lambda m: f"/{name}{m.group(1) or ''}", base_url)


def drop_postgres_database(url: str, base_url: str) -> None:
    """Drops a database made by `create_postgres_database` (best effort), connected through
    `base_url`."""
    m = re.match(r".*/([^/?]+)(\?.*)?$", url)
    if m:
        subprocess.run(["psql", base_url, "-qc", f"DROP DATABASE IF EXISTS {m.group(1)} WITH (FORCE)"],
                       timeout=60, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def admin(srv: Server) -> User:
    return User(srv, ADMIN["email"], ADMIN["password"])


def make_user(srv: Server, admin_user: User, role: str, name: str | None = None) -> User:
    n = next(_seq)
    email = f"{role}{n}-{os.getpid()}-{time.time_ns()}@example.com"
    password = f"password-{n}-long-enough"
    admin_user.api.post("/api/users", {"email": email, "password": password, "name": name or f"{role} {n}", "role": role}, 201)
    return User(srv, email, password)


class Receiver:
    """An HTTP server on 127.0.0.1 recording every webhook request; per-path behaviour via `plan`.

    plan[path] is a callable(request_index) -> (status, sleep_seconds) or a fixed (status, sleep).
    """

    def __init__(self, port: int = 0):
        self.requests: list[dict] = []
        self.plan: dict = {}
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(n)
                path = self.path
                with outer.lock:
                    index = sum(1 for r in outer.requests if r["path"] == path)
                    entry = {"path": path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body,
                             "at": time.monotonic(), "index": index}
                    outer.requests.append(entry)
                    outer.cond.notify_all()
                rule = outer.plan.get(path, (204, 0))
                status, pause = rule(index) if callable(rule) else rule
                if pause:
                    time.sleep(pause)
                try:
                    self.send_response(status)
                    self.send_header("content-length", "0")
                    self.end_headers()
                except OSError:
                    pass

        class Quiet(ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # a sender killed mid-request is expected in crash tests

        self.httpd = Quiet(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def at(self, path: str) -> list[dict]:
        with self.lock:
            return [r for r in self.requests if r["path"] == path]

    def wait(self, path: str, n: int, timeout: float = 15, pred=None) -> list[dict]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                got = [r for r in self.requests if r["path"] == path and (pred is None or pred(r))]
                if len(got) >= n:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"receiver {path}: {len(got)} of {n} requests in {timeout}s")
                self.cond.wait(left)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Sock:
    """A python-socketio client that records every event."""

    def __init__(self, srv: Server, auth: dict):
        self.events: list[tuple[str, object]] = []
        self.cond = threading.Condition()
        self.sio = socketio.Client(reconnection=False)

        @self.sio.on("*")
        def any_event(name, data=None):
            with self.cond:
                self.events.append((name, data))
                self.cond.notify_all()

        self.sio.connect(srv.url, auth=auth, transports=["websocket"], wait_timeout=20)

    def of(self, name):
        with self.cond:
            return [d for n, d in self.events if n == name]

    def wait(self, pred, timeout=15, what="event"):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for n, d in self.events:
                    if pred(n, d):
                        return d
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for {what}; got {[n for n, _ in self.events]}")
                self.cond.wait(left)

    def close(self):
        self.sio.disconnect()


def body_json(req: dict) -> dict:
    return json.loads(req["body"])


def percentile(values, p):
    s = sorted(values)
    if not s:
        return float("nan")
    i = min(len(s) - 1, max(0, -(-p * len(s) // 100) - 1))
    return s[int(i)]
