#!/bin/bash
# Session 4 comparison: base (5711ef5) and new, back to back, same commands.
set -x
cd /work/main
B=target/release/bench
OUT=bench/results/9bcdb55
mkdir -p $OUT
for round in 1 2; do
  for bin in tw-base tw-new; do
    $B --server /tmp/bins/$bin --out $OUT rest --clients 1000 --writers 32 --duration 15 --rooms none
  done
done
for bin in tw-base tw-new; do
  $B --server /tmp/bins/$bin --out $OUT webhooks --users 1000 --publishes 10 --rate 5 --drain 60
done
for bin in tw-base tw-new; do
  $B --server /tmp/bins/$bin --out $OUT webhooks --users 50 --publishes 1 --rate 2 --drain 20
done
$B --server /tmp/bins/tw-new --out $OUT matrix --targets ticketwire,peer --runs 1000:20,10000:10 --duration 15
$B --server /tmp/bins/tw-base --out $OUT matrix --targets ticketwire --runs 1000:20,10000:10 --duration 15
