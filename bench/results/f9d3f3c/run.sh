#!/bin/bash
# Session 5: base = 7b2cdfa (session 4's last commit), new = f9d3f3c (group commit, turn first,
# statements together). Release builds of each copied to /tmp/bins. Same commands as in
# BENCHMARKS.md "Commands", with --server set to each binary in turn, pairs interleaved.
set -x
cd /work/main
B=target/release/bench
OUT=bench/results/f9d3f3c
for round in 1 2 3; do
  for bin in tw-base tw-final; do
    $B --server /tmp/bins/$bin --out $OUT rest --clients 1000 --writers 32 --duration 15 --rooms none
  done
done
for bin in tw-base tw-final; do
  $B --server /tmp/bins/$bin --out $OUT rest --clients 1000 --writers 32 --duration 15 --rooms tickets
done
for bin in tw-base tw-final; do
  $B --server /tmp/bins/$bin --out $OUT webhooks --users 1000 --publishes 10 --rate 5 --drain 60
done
for bin in tw-base tw-final; do
  $B --server /tmp/bins/$bin --out $OUT webhooks --users 50 --publishes 1 --rate 2 --drain 20
done
$B --server /tmp/bins/tw-final --out $OUT matrix --targets ticketwire,peer --runs 1000:20 --duration 15
$B --server /tmp/bins/tw-base --out $OUT matrix --targets ticketwire --runs 1000:20 --duration 15
# Afterwards, because the first webhook pair differed (6,723 vs 5,254/s): two more pairs.
for round in 1 2; do
  for bin in tw-final tw-base; do
    $B --server /tmp/bins/$bin --out $OUT webhooks --users 1000 --publishes 10 --rate 5 --drain 60
  done
done
