#!/usr/bin/env python3
"""Fails when the server's top-level modules import each other in a cycle, or when a lower
layer reaches up.

Data flows one way (api -> domain -> policy/entity/db; hooks -> realtime/webhooks, with `state`
and `lib` composing them); a cycle between top-level modules, or a lower layer naming a module or
crate of the layers above it, is a back-edge that lets that order decay. The graph is read
from the source: every `crate::<module>` path, in `use` declarations (including nested
`use crate::{a::..., b::...}` groups) and in expressions. Prints the graph with --graph.

Usage: python3 tests/layering.py server/src [--graph]
"""
import pathlib
import re
import sys

# The lower layers, and what they must never reach: the HTTP layer, the composition root, the
# hooks pipeline and its sinks, ingestion. They may be used from above; a reference the other
# way is a back-edge even where it closes no cycle yet.
LOWER = {"domain", "policy", "entity", "db", "auth", "storage", "config", "error", "cluster", "telemetry"}
UPPER = {"api", "state", "hooks", "realtime", "webhooks", "ingest", "cli", "retention"}
# Crates of the layers above (HTTP, Socket.IO, outbound HTTP) the lower layers must not name.
# `error` is the one exception: it turns every error into its HTTP answer.
UPPER_CRATES = re.compile(r"\b(axum|socketioxide|socketioxide_redis|reqwest|tower_http)::")


def top_module(src: pathlib.Path, path: pathlib.Path) -> str:
    rel = path.relative_to(src)
    name = rel.parts[0]
    return name[:-3] if name.endswith(".rs") else name


def strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def cfg_test_free(text: str) -> str:
    """Drops `#[cfg(test)] mod ... { ... }` blocks: tests may reach anywhere."""
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*(?:#\[[^\]]*\]\s*)*mod\s+\w+\s*\{", text):
        if m.start() < i:
            continue
        out.append(text[i:m.start()])
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        i = j
    out.append(text[i:])
    return "".join(out)


def references(text: str) -> set[str]:
    refs = set(re.findall(r"\bcrate::([a-z_][a-z0-9_]*)", text))
    # `use crate::{a::x, b, c::{...}}`: the first segment of each top-level item of the group.
    for group in re.finditer(r"\bcrate::\{", text):
        depth, j, start, items = 1, group.end(), group.end(), []
        while j < len(text) and depth:
            c = text[j]
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
            elif c == "," and depth == 1:
                items.append(text[start:j])
                start = j + 1
            j += 1
        items.append(text[start:j - 1])
        for item in items:
            m = re.match(r"\s*([a-z_][a-z0-9_]*)", item)
            if m and m.group(1) != "self":
                refs.add(m.group(1))
    return refs


def graph(src: pathlib.Path) -> dict[str, set[str]]:
    modules = {top_module(src, p) for p in src.rglob("*.rs")}
    edges: dict[str, set[str]] = {m: set() for m in modules}
    for path in src.rglob("*.rs"):
        if path.name in ("fuzz.rs",) or "tests" in path.parts:
            continue
        here = top_module(src, path)
        text = cfg_test_free(strip_comments(path.read_text()))
        for ref in references(text):
            if ref in modules and ref != here:
                edges[here].add(ref)
    for root in ("lib", "main"):
        edges.pop(root, None)  # the composition root may use everything
    for deps in edges.values():
        deps.discard("lib")
        deps.discard("main")
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def layer_violations(src: pathlib.Path, edges: dict[str, set[str]]) -> list[str]:
    out = [f"{m} (a lower layer) uses {u}" for m in sorted(LOWER) for u in sorted(edges.get(m, set()) & UPPER)]
    for path in sorted(src.rglob("*.rs")):
        here = top_module(src, path)
        if here in LOWER and here != "error":
            text = cfg_test_free(strip_comments(path.read_text()))
            for crate in sorted(set(UPPER_CRATES.findall(text))):
                out.append(f"{path.relative_to(src)} (a lower layer) uses the {crate} crate")
    return out


def main() -> int:
    src = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "server/src")
    edges = graph(src)
    if "--graph" in sys.argv:
        for m in sorted(edges):
            print(f"{m} -> {', '.join(sorted(edges[m])) or '-'}")
    found = cycles(edges)
    for comp in found:
        inner = [f"{a} -> {b}" for a in comp for b in sorted(edges[a]) if b in comp]
        print(f"module cycle among {', '.join(comp)}: {'; '.join(inner)}")
    violations = layer_violations(src, edges)
    for v in violations:
        print(f"layering: {v}")
    if found or violations:
        return 1
    print(f"{len(edges)} top-level modules, no import cycle, no lower layer reaching up")
    return 0


if __name__ == "__main__":
    sys.exit(main())
