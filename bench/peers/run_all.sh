#!/usr/bin/env bash
# Run the standard peer measurements (throughput c1 and c16 over JOBS jobs,
# wake-up latency over 500 jobs) for both peers, one after the other, and print
# one JSON line per measurement on stdout.
#   usage: bench/peers/run_all.sh postgresql://user@host:port/db [JOBS]
# The database is disposable: both benches drop and re-create their schema.
set -euo pipefail
cd "$(dirname "$0")"
DSN="${1:?usage: run_all.sh DSN [JOBS]}"
JOBS="${2:-20000}"
./setup.sh >&2
for c in 1 16; do
  .venv/bin/python procrastinate_bench.py --dsn "$DSN" --mode throughput --jobs "$JOBS" --concurrency "$c"
done
.venv/bin/python procrastinate_bench.py --dsn "$DSN" --mode latency --jobs 500
for c in 1 16; do
  node graphile_bench.js --dsn "$DSN" --mode throughput --jobs "$JOBS" --concurrency "$c"
done
node graphile_bench.js --dsn "$DSN" --mode latency --jobs 500
