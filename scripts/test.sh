#!/usr/bin/env bash
# The one command that runs pgark's whole test suite. It installs what is
# missing (PostgreSQL server binaries via apt when root), checks formatting
# and lints, then runs every test against a real PostgreSQL.
#
#   scripts/test.sh                      # everything
#   scripts/test.sh -p pgark-catalog     # extra arguments go to `cargo test`
#
# Environment:
#   PGARK_PG_VERSION=18        test against .pg/18 (fetched if missing)
#   PGARK_PG_BIN=/path/bin     test against any installation
#   PGARK_TEST_VERSIONS="14 18"  afterwards rerun the tests matching
#                              PGARK_MATRIX_FILTER (default: roundtrip) on
#                              each of these versions
#   PGARK_SKIP_LINT=1          skip cargo fmt --check and clippy
#   PGARK_SKIP_DOCTESTS=1      skip doc tests
#
# Plain `cargo test`, not nextest: nextest runs each test in its own process,
# which would start one PostgreSQL cluster per test instead of per binary.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'test.sh: %s\n' "$*" >&2; exit 1; }

command -v cargo >/dev/null || die "cargo not found; install Rust (https://rustup.rs)"

has_server() { [[ -x $1/initdb && -x $1/postgres ]]; }

# Mirrors the harness's own search (crates/sandbox/src/bins.rs).
find_server() {
    if [[ -n ${PGARK_PG_BIN:-} ]]; then
        has_server "$PGARK_PG_BIN" && return 0
        die "PGARK_PG_BIN=$PGARK_PG_BIN lacks initdb or postgres"
    fi
    local dir
    if dir=$(pg_config --bindir 2>/dev/null) && has_server "$dir"; then return 0; fi
    for dir in /usr/lib/postgresql/*/bin; do
        has_server "$dir" && return 0
    done
    dir=$(command -v initdb 2>/dev/null) && has_server "$(dirname "$dir")" && return 0
    return 1
}

install_postgres() {
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
        log "PostgreSQL server not found: installing Debian's postgresql package"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q
        apt-get install -y -q --no-install-recommends postgresql
    else
        die "PostgreSQL server binaries not found. Install them (Debian/Ubuntu: sudo apt-get install postgresql), \
or run scripts/get-postgres.sh 18 and set PGARK_PG_VERSION=18, or set PGARK_PG_BIN to a bin directory"
    fi
}

if [[ -n ${PGARK_PG_VERSION:-} ]]; then
    bash scripts/get-postgres.sh "$PGARK_PG_VERSION" >/dev/null
elif ! find_server; then
    install_postgres
    find_server || die "PostgreSQL is still not found after installing it"
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

log "cargo test --workspace --all-targets $*"
cargo test --workspace --all-targets "$@"

if [[ -z ${PGARK_SKIP_DOCTESTS:-} ]]; then
    log "cargo test --workspace --doc"
    cargo test --workspace --doc
fi

filter=${PGARK_MATRIX_FILTER:-roundtrip}
for version in ${PGARK_TEST_VERSIONS:-}; do
    bash scripts/get-postgres.sh "$version" >/dev/null
    log "PostgreSQL $version: tests matching '$filter'"
    PGARK_PG_VERSION=$version cargo test --workspace --all-targets -- "$filter"
done

log "all tests passed"
