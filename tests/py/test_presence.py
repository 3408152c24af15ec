"""Presence of a client that vanishes without a word: killed with SIGKILL (the kernel closes its
connection, no Socket.IO disconnect is sent) or frozen with SIGSTOP (the connection stays open,
nothing is confirmed any more). Either way its entry goes: at once for the first, within the
configured expiry for the second, and the watchers are told."""
import signal
import subprocess
import sys
import time

import pytest

import tw

EXPIRY_MS = 3000

# A python-socketio client in its own process: announces presence and typing, then waits.
CHILD = r"""
import sys, time, socketio
url, token, ticket = sys.argv[1:4]
sio = socketio.Client(reconnection=False)
sio.connect(url, auth={"token": token}, transports=["websocket"], wait_timeout=20)
print(sio.call("presence", {"ticket_id": ticket, "state": "noting"}, timeout=10), flush=True)
print(sio.call("typing", {"ticket_id": ticket, "kind": "internal"}, timeout=10), flush=True)
print("ready", flush=True)
while True:
    time.sleep(60)
"""


class PresenceServer(tw.Server):
    def env(self, listen: str) -> dict:
        env = super().env(listen)
        env.update({
            "TICKETWIRE_PRESENCE_EXPIRY_MS": str(EXPIRY_MS),
            # Engine.IO would drop a frozen client after ping interval + timeout; make that far
            # later than the presence expiry, so what ends the entry is the missing confirmation.
            "TICKETWIRE_SOCKETIO_PING_INTERVAL_MS": "60000",
            "TICKETWIRE_SOCKETIO_PING_TIMEOUT_MS": "60000",
        })
        return env


@pytest.fixture(scope="module")
def psrv():
    s = PresenceServer()
    yield s
    s.stop()


def viewers(sock: tw.Sock, ticket_id: str) -> dict:
    """The viewers `sock` shows for the ticket, from what it received."""
    shown: dict = {}
    for name, p in list(sock.events):
        if not isinstance(p, dict) or p.get("ticket_id") != ticket_id:
            continue
        if name == "presence.snapshot":
            shown = {v["user_id"]: v for v in p["viewers"]}
        elif name == "presence.update":
            for v in p["joined"] + p["changed"]:
                shown[v["user_id"]] = v
            for v in p["left"]:
                shown.pop(v["user_id"], None)
    return shown


def wait_until(pred, timeout: float, what: str) -> float:
    start = time.monotonic()
    while not pred():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
    return time.monotonic() - start


def spawn_child(srv, user, ticket_id):
    proc = subprocess.Popen([sys.executable, "-c", CHILD, srv.url, user.token, ticket_id],
                            stdout=subprocess.PIPE, text=True)
    lines = [proc.stdout.readline().strip() for _ in range(3)]
    assert lines[2] == "ready", lines
    assert "'ok': True" in lines[0] and "'ok': True" in lines[1], lines
    return proc


@pytest.mark.timeout(90)
@pytest.mark.parametrize("how", ["SIGKILL", "SIGSTOP"])
def test_a_vanished_client_leaves(psrv, how):
    admin = tw.admin(psrv)
    agent = tw.make_user(psrv, admin, "agent", "Vanishing Agent")
    cust = tw.make_user(psrv, admin, "customer")
    t = cust.api.post("/api/tickets", {"subject": f"Vanish {how}", "description": "x"}, expect=201)
    watcher = tw.Sock(psrv, {"token": admin.token, "rooms": [f"ticket:{t['id']}"]})
    proc = spawn_child(psrv, agent, t["id"])
    try:
        wait_until(lambda: viewers(watcher, t["id"]).get(agent.id, {}).get("state") == "noting", 5, "the child on the ticket")
        started = lambda: [s for p in watcher.of("presence.update") for s in p["typing_started"]]
        wait_until(lambda: any(s["user_id"] == agent.id and s["kind"] == "internal" for s in started()), 5, "its typing")
        proc.send_signal(getattr(signal, how))
        took = wait_until(lambda: agent.id not in viewers(watcher, t["id"]), EXPIRY_MS / 1000 + 5, "the child to leave")
        print(f"\n# {how}: the watcher saw the agent leave {took:.2f} s after the signal")
        if how == "SIGKILL":
            # The connection closed: no need to wait for the expiry.
            assert took < EXPIRY_MS / 1000, took
        else:
            # Nothing closed: the entry lapsed.
            assert EXPIRY_MS / 1000 - 1.0 <= took <= EXPIRY_MS / 1000 + 2.0, took
        # Its typing went with it, in the same batch.
        stopped = lambda: [s for p in watcher.of("presence.update") for s in p["typing_stopped"]]
        wait_until(lambda: {"user_id": agent.id, "kind": "internal"} in stopped(), 1, "its typing to stop")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        watcher.close()
