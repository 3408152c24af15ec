"""Runs seeded sequences: each on a fresh server, step by step, checking the invariant after each."""
from __future__ import annotations

import os
import random
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import tw

from .oracle import Checker, Leak
from .ops import Planned, choose
from .world import Item, World, compact, short


@dataclass
class Totals:
    sequences: int = 0
    steps: int = 0
    identities: int = 0
    items: Counter = field(default_factory=Counter)  # per channel
    leaks: list[Leak] = field(default_factory=list)
    unjudged: list[str] = field(default_factory=list)
    rest_errors: list[str] = field(default_factory=list)
    unquiet: int = 0  # steps after which quiescence was not reached within the bound
    blind: list[str] = field(default_factory=list)  # calibration items judged wrongly
    logs: dict[int, list[str]] = field(default_factory=dict)  # seed -> step log
    seconds: float = 0.0

    def merge(self, other: "Totals") -> None:
        self.sequences += other.sequences
        self.steps += other.steps
        self.identities = max(self.identities, other.identities)
        self.items.update(other.items)
        self.leaks += other.leaks
        self.unjudged += other.unjudged
        self.rest_errors += other.rest_errors
        self.unquiet += other.unquiet
        self.blind += other.blind
        self.logs.update(other.logs)

    def summary(self, backend: str) -> str:
        channels = " + ".join(f"{c} {n}" for c, n in sorted(self.items.items()))
        return (f"visibility model [{backend}]: {self.sequences} sequences, {self.steps} steps, "
                f"{self.identities} identities, 3 channels (socket, webhook, events), "
                f"{sum(self.items.values())} items checked ({channels}), {len(self.leaks)} leaks found, "
                f"{self.seconds:.1f}s")


def run_sequence(seed: int, steps: int, database_url: str | None = None) -> Totals:
    """One sequence on a fresh server: `steps` random steps, then two sweeps of the whole history
    (every identity reads `GET /api/events?after=0`, then every identity resumes from 0), so
    that what a step left behind is judged against the final state too."""
    totals = Totals()
    rng = random.Random(seed)
    # The sweep resumes from 0: a catch-up window wider than any sequence's log makes that a
    # full replay to judge, not a `recovered: false` with nothing in it.
    srv = tw.Server(allow_cidrs=True, database_url=database_url,
                    extra_env={"TICKETWIRE_CATCH_UP_MAX_EVENTS": "1000000", "TICKETWIRE_CATCH_UP_MAX_AGE_SECS": "864000"})
    world = None
    try:
        world = World(srv, quiet_s=float(os.environ.get("TW_MODEL_QUIET_MS", "300")) / 1000)
        checker = Checker(world)
        totals.identities = len(world.people)
        world.log.append(f"seed {seed}: step 0: six identities, webhooks and sockets")
        _check(world, checker, seed, "setup", totals)
        for step in range(1, steps + 3):
            world.step = step
            planned = choose(world, rng) if step <= steps else sweep(world, step - steps)
            checker.pre_probe(planned.touches)
            result = planned.run()
            unquiet = world.unquiet
            new = world.settle()
            if world.resume_dropped():
                new += world.settle()
            totals.unquiet += world.unquiet - unquiet
            events = ", ".join(f"#{e['event_id']} {e['kind']}/{e['action']} {short(e['entity_id'])}" for e in new)
            world.log.append(f"step {step}: {planned.desc} -> {result}" + (f" | events {events}" if events else ""))
            _check(world, checker, seed, planned.desc, totals)
            totals.steps += step <= steps
        totals.blind += [f"seed {seed}: {b}" for b in calibrate(world, checker)]
        totals.sequences += 1
        totals.rest_errors += [f"seed {seed} {e}" for e in world.rest_errors]
    finally:
        if world is not None:
            totals.logs[seed] = world.log
            world.close()
        srv.stop()
    return totals


def calibrate(world: World, checker: Checker) -> list[str]:
    """The check is not blind and not trigger-happy: items made up from what the admin reads
    are judged as if a customer had received them. Another customer's ticket, an internal note
    and a draft must be leaks; the customer's own ticket and a bare redaction must not."""
    cust = next((p for p in world.customers()), None)
    if cust is None:
        return []
    admin = world.admin()

    def entity(kind, eid):
        path = {"ticket": "/api/tickets/{}", "comment": "/api/comments/{}", "kb_article": "/api/kb/articles/{}"}[kind]
        return admin.api.get(path.format(eid))

    cases = []
    for tid, t in sorted(world.tickets.items()):
        mine = t["requester"] == cust.name
        if not any(c[2] == mine for c in cases if c[0] == "ticket"):
            cases.append(("ticket", tid, mine))
    for cid, c in sorted(world.comments.items()):
        if c["internal"]:
            cases.append(("comment", cid, False))
            break
    for aid, a in sorted(world.articles.items()):
        if a["status"] == "draft":
            cases.append(("kb_article", aid, False))
            break
    problems = []
    for kind, eid, allowed in cases:
        data = entity(kind, eid)
        for item, ok in [(Item(cust.name, "socket", "calibration", kind, "updated", eid, data, None), allowed),
                         (Item(cust.name, "socket", "calibration", kind, "deleted", eid,
                               {"id": eid, "deleted": True, "version": data.get("version")}, None), True)]:
            leaks, _ = checker.check([item], 0, "calibration")
            if bool(leaks) == ok:
                problems.append(f"{cust.name} given {kind} {short(eid)} ({item.action}) was judged "
                                f"{'a leak' if leaks else 'fine'}: {leaks[0].reason if leaks else compact(data)}")
    return problems


def sweep(world: World, which: int) -> Planned:
    """The final sweeps: the event log as each identity lists it, then a replay from 0 for each."""
    people = world.active()
    if which == 1:
        return Planned("sweep: everyone reads GET /api/events?after=0",
                       lambda: ", ".join(f"{p.name} {world.read_events(p, 0)}" for p in people))

    def replay():
        out = []
        for p in people:
            world.drop_socket(p)
            out.append(f"{p.name} {'resumed' if world.connect(p, 0) else 'refused'}")
        return ", ".join(out)

    return Planned("sweep: everyone disconnects and resumes from last_event_id 0", replay)


def _check(world: World, checker: Checker, seed: int, op: str, totals: Totals) -> None:
    items = world.collect()
    for it in items:
        totals.items[it.channel] += 1
    leaks, unjudged = checker.check(items, seed, op)
    for leak in leaks:
        world.log.append(f"    LEAK {leak.line()}")
    totals.leaks += leaks
    totals.unjudged += [f"seed {seed} step {world.step}: {u}" for u in unjudged]


def run_all(base_seed: int, sequences: int, steps: int, pg_base: str | None = None, parallel: int = 3) -> Totals:
    """Sequences `base_seed`, `base_seed + 1`, …, up to `parallel` at a time (each on its own
    server, and on PostgreSQL its own database)."""
    def one(seed: int) -> Totals:
        url = tw.create_postgres_database(pg_base, "tw_model") if pg_base else None
        try:
            return run_sequence(seed, steps, url)
        finally:
            if url:
                tw.drop_postgres_database(url, pg_base)

    started = time.monotonic()
    totals = Totals()
    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        for result in pool.map(one, [base_seed + i for i in range(sequences)]):
            totals.merge(result)
    totals.seconds = time.monotonic() - started
    return totals


def report(totals: Totals, backend: str, steps: int, limit: int = 40) -> str:
    """The failure text: leaks by kind, the first of each, and the step logs of the seeds that leaked."""
    lines = [totals.summary(backend)]
    by_hint = Counter((l.item.channel, l.hint or "-") for l in totals.leaks)
    lines.append("leaks by channel and circumstance:")
    lines += [f"  {n:4d}  {ch}: {h}" for (ch, h), n in by_hint.most_common()]
    first: dict[tuple, Leak] = {}
    for l in sorted(totals.leaks, key=lambda l: (l.seed, l.step)):
        first.setdefault((l.item.channel, l.hint, l.item.label.split()[0]), l)
    lines.append(f"first leak of each kind ({len(first)}):")
    lines += [f"  {l.line()}" for l in list(first.values())[:limit]]
    if totals.unjudged:
        lines.append("items no rule covers:")
        lines += [f"  {u}" for u in totals.unjudged[:limit]]
    for seed in sorted({l.seed for l in totals.leaks} | {int(u.split()[1]) for u in totals.unjudged}):
        lines.append(f"--- step log of seed {seed} (replay: TW_MODEL_SEED={seed} TW_MODEL_SEQUENCES=1 "
                     f"TW_MODEL_STEPS={steps} bash tests/py/run.sh test_visibility_model.py) ---")
        lines += totals.logs.get(seed, [])
    return "\n".join(lines)
