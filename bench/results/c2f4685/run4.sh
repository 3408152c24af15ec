#!/bin/bash
# Session 6, experiment: c2f4685 against the same tree with mimalloc as the global allocator
# ("mimalloc", branch exp-mimalloc, not merged unless it pays), interleaved.
set -x
cd /work/main
B=/tmp/bins/bench
OUT=/tmp/bo6d
for round in 1 2; do
  for bin in c2f4685 mimalloc; do
    $B --server /tmp/bins/$bin --out $OUT/$bin rest --clients 1000 --writers 32 --duration 15 --rooms none
  done
done
for run in 1000:20 10000:2 10000:5; do
  for bin in c2f4685 mimalloc; do
    $B --server /tmp/bins/$bin --out $OUT/$bin fanout --target ticketwire --clients ${run%:*} --rate ${run#*:} --duration 15
  done
done
python3 bench/results/c2f4685/merge.py $OUT bench/results/c2f4685/results-mimalloc.jsonl
# Then, because the mimalloc server's RSS before any client was 116-133 MB (27-28 MB with glibc),
# which makes "RSS per connection" meaningless (negative at 1k): the same fan-out runs with freed
# memory returned at once (rows labelled "mimalloc, MIMALLOC_PURGE_DELAY=0", appended by hand).
for run in 1000:20 10000:2; do
  MIMALLOC_PURGE_DELAY=0 $B --server /tmp/bins/mimalloc --out /tmp/bo6e fanout --target ticketwire --clients ${run%:*} --rate ${run#*:} --duration 15
done
# Last, glibc's own tunables instead of another allocator: /tmp/bins/tw-mxfast was a wrapper
# `GLIBC_TUNABLES=… exec /tmp/bins/c2f4685 "$@"`, first with glibc.malloc.mxfast=0, then with
# glibc.malloc.tcache_count=128; two interleaved REST pairs each (results-glibc-tunables.jsonl).
for round in 1 2; do
  for bin in c2f4685 tw-mxfast; do
    $B --server /tmp/bins/$bin --out /tmp/bo6f/$bin rest --clients 1000 --writers 32 --duration 15 --rooms none
  done
done
