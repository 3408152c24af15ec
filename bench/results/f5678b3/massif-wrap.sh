#!/bin/sh
exec valgrind --tool=massif --vgdb=yes --vgdb-error=1000000 --massif-out-file=/tmp/massif7.%p.out --detailed-freq=1 --max-snapshots=200 --threshold=0.5 /work/main/target/release/ticketwire "$@"
