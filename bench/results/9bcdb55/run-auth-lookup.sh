#!/bin/bash
# The auth lookup without LIMIT (tw-key) against the previous build (tw-new = 9bcdb55), interleaved.
set -x
cd /work/main
B=target/release/bench
OUT=bench/results/9bcdb55/auth-lookup
mkdir -p $OUT
for round in 1 2 3; do
  for bin in tw-new tw-key; do
    $B --server /tmp/bins/$bin --out $OUT rest --clients 1000 --writers 32 --duration 15 --rooms none
  done
done
