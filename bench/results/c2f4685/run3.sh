#!/bin/bash
# Session 6, third part: 10k fan-out, session 5's last commit (6444aa8, "base") against c2f4685,
# interleaved, ticketwire only (the dispatcher's transaction changed: two hand-offs instead of four).
set -x
cd /work/main
B=/tmp/bins/bench
OUT=/tmp/bo6c
for rate in 5 10; do
  for bin in base c2f4685; do
    $B --server /tmp/bins/$bin --out $OUT/$bin fanout --target ticketwire --clients 10000 --rate $rate --duration 15
  done
done
python3 bench/results/c2f4685/merge.py $OUT bench/results/c2f4685/results-10k.jsonl
