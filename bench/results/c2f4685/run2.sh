#!/bin/bash
# Session 6, second part: the whole matrix and the two-node runs with c2f4685 only (the bars'
# current figures), same commands as in BENCHMARKS.md "Commands".
set -x
cd /work/main
B=/tmp/bins/bench
OUT=/tmp/bo6b/c2f4685
$B --server /tmp/bins/c2f4685 --out $OUT matrix --targets ticketwire,peer,node --runs 1000:20,10000:2,10000:5,10000:10 --duration 15
$B --server /tmp/bins/c2f4685 --out $OUT two-nodes --clients 1000 --rate 20 --duration 15
$B --server /tmp/bins/c2f4685 --out $OUT two-nodes --clients 10000 --rate 5 --duration 15
python3 bench/results/c2f4685/merge.py /tmp/bo6b bench/results/c2f4685/results-matrix.jsonl
