#!/bin/bash
# Session 6: base = 6444aa8 (session 5's last commit); planned = planned transactions only (c2f4685
# without the signed-in users' memory); c2f4685 = both. Release builds copied to /tmp/bins. Same
# commands as in BENCHMARKS.md "Commands", with --server set to each binary in turn, interleaved.
# Each build writes to a directory of its own; merge.py labels every row with its build.
set -x
cd /work/main
B=/tmp/bins/bench
OUT=/tmp/bo6
for round in 1 2 3; do
  for bin in base planned c2f4685; do
    $B --server /tmp/bins/$bin --out $OUT/$bin rest --clients 1000 --writers 32 --duration 15 --rooms none
  done
done
for bin in base c2f4685; do
  $B --server /tmp/bins/$bin --out $OUT/$bin rest --clients 1000 --writers 32 --duration 15 --rooms tickets
done
for bin in base c2f4685; do
  $B --server /tmp/bins/$bin --out $OUT/$bin webhooks --users 1000 --publishes 10 --rate 5 --drain 60
done
for bin in base c2f4685; do
  $B --server /tmp/bins/$bin --out $OUT/$bin webhooks --users 50 --publishes 1 --rate 2 --drain 20
done
$B --server /tmp/bins/c2f4685 --out $OUT/c2f4685 matrix --targets ticketwire,peer --runs 1000:20 --duration 15
$B --server /tmp/bins/base --out $OUT/base matrix --targets ticketwire --runs 1000:20 --duration 15
python3 bench/results/c2f4685/merge.py $OUT bench/results/c2f4685/results.jsonl
