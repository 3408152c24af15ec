"""Issue #8: webhook receivers that misbehave. Complements test_webhooks.py (hang, 500-500-200, 410,
a gigabyte answer) with receivers that reset the connection, answer 429 + Retry-After, answer
slowly, and all of them at once while a healthy user's deliveries must stay prompt and the
server's memory bounded.

The harness server retries after 100, 200, 400 ms and times an attempt out after 1.5 s."""
import http
import re
import socket
import struct
import threading
import time
import uuid

import tw

RESET = ("reset",)


def answer(status, pause=0.0, headers=None):
    return ("answer", status, pause, headers or {})


class Faulty:
    """A raw-socket HTTP/1.1 receiver on 127.0.0.1, one request per connection.

    `plan(entry)` decides each request's fate from the recorded entry, whose `index` counts every
    request and `nth` counts earlier requests with the same webhook-id:
      RESET                          read the request, then close with SO_LINGER {1, 0} (an RST)
      answer(status, pause, headers) wait `pause` seconds, then answer (connection: close)
    """

    def __init__(self, plan):
        self.plan = plan
        self.requests: list[dict] = []
        self.cond = threading.Condition()
        self.stop = threading.Event()
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(128)
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, path="/hook"):
        return f"http://127.0.0.1:{self.port}{path}"

    def _accept(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    @staticmethod
    def _read_request(conn):
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            buf += chunk
        head, body = buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        n = int(headers.get("content-length", "0"))
        while len(body) < n:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            body += chunk
        return {"method": method, "path": path, "headers": headers, "body": body}

    def _serve(self, conn):
        conn.settimeout(10)
        try:
            req = self._read_request(conn)
            if req is None:
                return
            with self.cond:
                wid = req["headers"].get("webhook-id")
                req["nth"] = sum(1 for r in self.requests if r["headers"].get("webhook-id") == wid)
                req["index"] = len(self.requests)
                req["at"] = time.monotonic()
                self.requests.append(req)
                self.cond.notify_all()
            action = self.plan(req)
            if action[0] == "reset":
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return  # close() below sends the RST
            _, status, pause, headers = action
            if pause and self.stop.wait(pause):
                return
            out = [f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}", "content-length: 2", "connection: close"]
            out += [f"{k}: {v}" for k, v in headers.items()]
            conn.sendall(("\r\n".join(out) + "\r\n\r\nok").encode())
        except (OSError, ValueError):
            pass  # the server gave up on us (timeout): expected for the hanging receiver
        finally:
            conn.close()

    def wait(self, n, timeout=15, pred=None):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                got = [r for r in self.requests if pred is None or pred(r)]
                if len(got) >= n:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"receiver :{self.port}: {len(got)} of {n} requests in {timeout}s")
                self.cond.wait(left)

    def close(self):
        self.stop.set()
        self.listener.close()


def hook(user, url):
    return user.api.put("/api/users/me/webhook", {"webhook_url": url})


def final(user, delivery_id, timeout=15):
    """The delivery with its attempts once it is no longer pending."""
    deadline = time.monotonic() + timeout
    while True:
        d = user.api.get(f"/api/users/me/webhook/deliveries/{delivery_id}")
        if d["status"] != "pending":
            return d
        assert time.monotonic() < deadline, f"delivery still pending after {timeout}s: {tw.json.dumps(d)[:2000]}"
        time.sleep(0.05)


def all_final(user, n, timeout=20):
    """The user's `n` deliveries once none is pending."""
    deadline = time.monotonic() + timeout
    while True:
        items = user.api.get("/api/users/me/webhook/deliveries?limit=200")["items"]
        if len(items) >= n and all(d["status"] != "pending" for d in items):
            return [user.api.get(f"/api/users/me/webhook/deliveries/{d['id']}") for d in items]
        assert time.monotonic() < deadline, f"{sum(d['status'] == 'pending' for d in items)} of {len(items)} still pending after {timeout}s"
        time.sleep(0.1)


def attempts_json(d):
    return tw.json.dumps([{k: a[k] for k in ("status_code", "error", "latency_ms", "attempted_at")} for a in d.get("attempts") or []], indent=1)


def healthy(srv):
    assert srv.proc.poll() is None, "the server process died"
    r = tw.Api(srv).call("GET", "/healthz")
    assert r.status_code == 200, r.text


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


CONN_ERROR = re.compile(r"reset|connection|closed|broken pipe|incomplete", re.I)


def test_connection_reset_twice_then_200_is_three_attempts_under_one_id(srv, admin):
    c = tw.make_user(srv, admin, "customer")
    rx = Faulty(lambda r: RESET if r["index"] < 2 else answer(200))
    try:
        hook(c, rx.url("/reset"))
        did = c.api.post("/api/users/me/webhook/test", expect=202)["delivery_id"]
        rx.wait(3, timeout=10)
        d = final(c, did)
        time.sleep(0.8)  # longer than the rest of the schedule: no fourth attempt
        got = rx.requests
        assert len(got) == 3, f"{len(got)} requests; attempts: {attempts_json(d)}"
        assert {r["headers"]["webhook-id"] for r in got} == {did}
        assert len({r["body"] for r in got}) == 1, "every retry carries the same body"
        assert d["status"] == "succeeded" and d["attempt_count"] == 3, attempts_json(d)
        assert [a["status_code"] for a in d["attempts"]] == [None, None, 200], attempts_json(d)
        for a in d["attempts"][:2]:
            assert a["error"] and CONN_ERROR.search(a["error"]), f"a reset is recorded as a connection failure: {attempts_json(d)}"
            assert not re.search(r"answered 5\d\d|timed out", a["error"]), attempts_json(d)
        assert d["attempts"][2]["error"] is None and d["last_error"] is None, attempts_json(d)
        # Retried on the schedule (100, 200 ms, -10 % jitter), not at once.
        gaps = [b["at"] - a["at"] for a, b in zip(got, got[1:])]
        assert gaps[0] >= 0.085 and gaps[1] >= 0.17, f"retry gaps {gaps}"
        print(f"\nreset: errors recorded {[a['error'] for a in d['attempts'][:2]]}; gaps {[round(g, 3) for g in gaps]} s")
        healthy(srv)
    finally:
        rx.close()
        c.api.delete("/api/users/me/webhook")


def test_429_with_retry_after_is_honoured_over_the_schedule(srv, admin):
    c = tw.make_user(srv, admin, "customer")
    rx = Faulty(lambda r: answer(429, 0, {"Retry-After": "2"}) if r["index"] == 0 else answer(200))
    try:
        hook(c, rx.url("/busy"))
        did = c.api.post("/api/users/me/webhook/test", expect=202)["delivery_id"]
        got = rx.wait(2, timeout=10)
        d = final(c, did)
        gap = got[1]["at"] - got[0]["at"]
        print(f"\n429: second attempt {gap:.3f} s after the first (Retry-After: 2, schedule 100 ms)")
        assert gap >= 1.8, f"Retry-After: 2 not honoured: second attempt after {gap:.3f}s; attempts: {attempts_json(d)}"
        assert gap < 4.0, f"the retry came far later than Retry-After asked: {gap:.3f}s"
        assert {r["headers"]["webhook-id"] for r in got} == {did}
        assert d["status"] == "succeeded" and d["attempt_count"] == 2, attempts_json(d)
        assert [a["status_code"] for a in d["attempts"]] == [429, 200], attempts_json(d)
        time.sleep(0.3)
        assert len(rx.requests) == 2
        healthy(srv)
    finally:
        rx.close()
        c.api.delete("/api/users/me/webhook")


def test_slow_receiver_under_the_timeout_is_one_attempt(srv, admin):
    c = tw.make_user(srv, admin, "customer")
    rx = Faulty(lambda r: answer(200, 1.0))
    try:
        hook(c, rx.url("/slow"))
        did = c.api.post("/api/users/me/webhook/test", expect=202)["delivery_id"]
        rx.wait(1, timeout=10)
        d = final(c, did)
        time.sleep(0.5)
        assert len(rx.requests) == 1, f"a slow but timely answer is not retried: {attempts_json(d)}"
        assert d["status"] == "succeeded" and d["attempt_count"] == 1, attempts_json(d)
        (a,) = d["attempts"]
        assert a["status_code"] == 200 and a["error"] is None, attempts_json(d)
        assert 900 <= a["latency_ms"] < 1500, attempts_json(d)
        print(f"\nslow: one attempt, latency {a['latency_ms']} ms")
    finally:
        rx.close()
        c.api.delete("/api/users/me/webhook")


def test_all_faults_at_once_leave_a_healthy_receiver_prompt_and_memory_bounded(srv, admin):
    bad = {
        "hang": Faulty(lambda r: answer(200, 4.0)),  # beyond the 1.5 s timeout
        "reset": Faulty(lambda r: RESET if r["nth"] < 2 else answer(200)),
        "busy": Faulty(lambda r: answer(429, 0, {"Retry-After": "2"}) if r["nth"] == 0 else answer(200)),
        "slow": Faulty(lambda r: answer(200, 1.0)),
    }
    good = tw.Receiver()
    users = {}
    samples = []
    stop_sampling = threading.Event()
    try:
        for name, rx in bad.items():
            u = tw.make_user(srv, admin, "customer")
            hook(u, rx.url(f"/{name}"))
            users[name] = (u, u.api.post("/api/tickets", {"subject": f"{name} receiver"}, 201))
        h = tw.make_user(srv, admin, "customer")
        hpath = f"/healthy-{uuid.uuid4().hex}"
        hook(h, good.url(hpath))
        ht = h.api.post("/api/tickets", {"subject": "healthy receiver"}, 201)

        pid = srv.proc.pid
        before = rss_kib(pid)

        def sample():
            while not stop_sampling.wait(0.05):
                samples.append(rss_kib(pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()

        rounds = 10
        sent = {}
        for i in range(rounds):
            for name, (u, t) in users.items():
                admin.api.patch(f"/api/tickets/{t['id']}", {"subject": f"{name} rev {i}"})
            v = admin.api.patch(f"/api/tickets/{ht['id']}", {"subject": f"healthy rev {i}"})
            sent[v["version"]] = time.monotonic()
            time.sleep(0.1)
        got = good.wait(hpath, rounds, timeout=10)
        lags = sorted(r["at"] - sent[tw.body_json(r)["data"]["version"]] for r in got)
        assert len(got) == rounds
        # Every misbehaving receiver was really being hit while the healthy one was served.
        for name, rx in bad.items():
            assert rx.requests, f"the {name} receiver was never reached"

        # Schedules honoured under load: every delivery ends as its receiver dictates.
        reset_d = all_final(users["reset"][0], rounds)
        busy_d = all_final(users["busy"][0], rounds)
        slow_d = all_final(users["slow"][0], rounds)
        hang_d = all_final(users["hang"][0], rounds, timeout=30)
        stop_sampling.set()
        sampler.join()
        after = rss_kib(pid)
        peak = max(samples + [after])
        print(f"\nall at once: healthy receiver lag median {tw.percentile(lags, 50) * 1000:.0f} ms, "
              f"max {lags[-1] * 1000:.0f} ms over {rounds} deliveries; "
              f"server RSS {before} KiB before, peak +{peak - before} KiB, end +{after - before} KiB")
        assert lags[-1] < 1.0, f"the healthy receiver was held up: lags {[round(x, 3) for x in lags]}"

        for d in reset_d:
            assert d["status"] == "succeeded" and [a["status_code"] for a in d["attempts"]] == [None, None, 200], attempts_json(d)
            assert all(CONN_ERROR.search(a["error"] or "") for a in d["attempts"][:2]), attempts_json(d)
        for d in busy_d:
            assert d["status"] == "succeeded" and [a["status_code"] for a in d["attempts"]] == [429, 200], attempts_json(d)
        by_id = {}
        for r in bad["busy"].requests:
            by_id.setdefault(r["headers"]["webhook-id"], []).append(r["at"])
        busy_gaps = sorted(ts[1] - ts[0] for ts in by_id.values())
        assert busy_gaps[0] >= 1.8, f"Retry-After: 2 not honoured under load: gaps {[round(g, 3) for g in busy_gaps]}"
        for d in slow_d:
            assert d["status"] == "succeeded" and d["attempt_count"] == 1, attempts_json(d)
        for d in hang_d:
            assert d["status"] == "failed" and d["attempt_count"] == 4, attempts_json(d)
            assert all(a["status_code"] is None and a["error"] == "timed out" for a in d["attempts"]), attempts_json(d)
        assert len(bad["hang"].requests) == 4 * len(hang_d)

        healthy(srv)
        assert peak - before < 32 * 1024, f"server RSS grew by {peak - before} KiB"
    finally:
        stop_sampling.set()
        for u, _ in users.values():
            u.api.delete("/api/users/me/webhook")
        for rx in bad.values():
            rx.close()
        good.close()
