#!/usr/bin/env bash
# The one command that runs pgark's whole test suite. It installs what is
# missing (PostgreSQL server binaries via apt when root), checks formatting
# and lints, then runs every test against a real PostgreSQL.
#
#   scripts/test.sh                      # everything
#   scripts/test.sh -p pgark-catalog     # extra arguments go to `cargo test`
#   scripts/test.sh -- learnapp          # (-p picks packages instead of the workspace)
#
# Environment:
#   PGARK_PG_VERSION=18        test against .pg/18 (fetched if missing)
#   PGARK_PG_BIN=/path/bin     test against any installation
#   PGARK_TEST_VERSIONS="14 18"  afterwards rerun the tests matching
#                              PGARK_MATRIX_FILTER (default: roundtrip) on
#                              each of these versions (default "14 18";
#                              set it empty to skip)
#   PGARK_SKIP_DENY=1          skip cargo deny (licenses, bans, sources)
#   PGARK_SKIP_BENCH=1         skip the benchmark smoke run
#   PGARK_SKIP_FUZZ=1          skip the minute of fuzzing (runs when nightly
#                              Rust and cargo-fuzz are installed)
#   PGARK_SKIP_LINT=1          skip cargo fmt --check and clippy
#   PGARK_SKIP_DOCTESTS=1      skip doc tests
#
# Plain `cargo test`, not nextest: nextest runs each test in its own process,
# which would start one PostgreSQL cluster per test instead of per binary.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

SCRIPT=test.sh
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
ensure_postgres

# TLS tests make their certificates with the openssl command.
if ! command -v openssl >/dev/null; then
    log "installing openssl"
    apt_install openssl || die "the openssl command is missing (Debian/Ubuntu: sudo apt-get install openssl)"
fi

ensure_component() {
    local name=$1 probe=$2
    cargo "$probe" --version >/dev/null 2>&1 && return 0
    command -v rustup >/dev/null || die "cargo $probe is missing and rustup is not available to install $name"
    log "installing the $name component"
    rustup component add "$name"
}

if [[ -z ${PGARK_SKIP_LINT:-} ]]; then
    ensure_component rustfmt fmt
    ensure_component clippy clippy
    log "cargo fmt --check"
    cargo fmt --all -- --check
    log "cargo clippy -D warnings"
    cargo clippy --workspace --all-targets -- -D warnings
fi

# The whole workspace unless the caller picked packages.
scope=(--workspace)
for arg in "$@"; do
    [[ $arg == -- ]] && break
    [[ $arg == -p || $arg == --package* || $arg == -p?* ]] && scope=()
done

# The other versions are fetched first: the upgrade test (14 -> 18) needs them.
for version in ${PGARK_TEST_VERSIONS-14 18}; do
    bash scripts/get-postgres.sh "$version" >/dev/null
done

log "cargo test ${scope[*]} --all-targets $*"
cargo test "${scope[@]}" --all-targets "$@"

if [[ -z ${PGARK_SKIP_DOCTESTS:-} ]]; then
    log "cargo test ${scope[*]} --doc $*"
    cargo test "${scope[@]}" --doc "$@"
fi

# The version matrix reuses the caller's cargo arguments; the name filter
# goes after their `--`, or after one of ours.
filter=${PGARK_MATRIX_FILTER:-roundtrip}
matrix_args=("$@" --)
for arg in "$@"; do
    if [[ $arg == -- ]]; then
        matrix_args=("$@")
        break
    fi
done
matrix_args+=("$filter")
for version in ${PGARK_TEST_VERSIONS-14 18}; do
    bash scripts/get-postgres.sh "$version" >/dev/null
    log "PostgreSQL $version: tests matching '$filter'"
    PGARK_PG_VERSION=$version cargo test "${scope[@]}" --all-targets "${matrix_args[@]}"
done

# The benchmark harness at a tiny scale, so it cannot rot (numbers go to
# target/, never to BENCHMARKS.md).
if [[ -z ${PGARK_SKIP_BENCH:-} ]]; then
    log "benchmark smoke run (scripts/bench.sh --smoke)"
    bash scripts/bench.sh --smoke
fi

# A minute of coverage-guided fuzzing of the archive readers, where nightly
# Rust and cargo-fuzz are available (the same bodies run in `cargo test` on the
# committed seeds either way).
if [[ -z ${PGARK_SKIP_FUZZ:-} ]] && cargo +nightly fuzz --version >/dev/null 2>&1; then
    fuzz_log=$(mktemp)
    for target in reader reader_resealed; do
        log "cargo fuzz run $target (30 s)"
        mkdir -p "crates/archive/fuzz/corpus/$target"
        (cd crates/archive && cargo +nightly fuzz run -O "$target" "fuzz/corpus/$target" fuzz/seeds \
            -- -max_total_time=30 -rss_limit_mb=2048 -print_final_stats=0 >/dev/null 2>"$fuzz_log") \
            || { tail -40 "$fuzz_log" >&2; die "fuzz target $target found a failure"; }
    done
    rm -f "$fuzz_log"
else
    log "fuzzing skipped (needs nightly Rust and cargo-fuzz); the fuzz bodies ran on the seeds in cargo test"
fi

if [[ -z ${PGARK_SKIP_DENY:-} ]]; then
    if ! cargo deny --version >/dev/null 2>&1; then
        log "installing cargo-deny (a few minutes, once)"
        cargo install --locked --quiet cargo-deny
    fi
    # Advisories need the RustSec database from GitHub, out of reach here.
    log "cargo deny check licenses bans sources"
    cargo deny --log-level error check licenses bans sources
fi

log "all tests passed"
