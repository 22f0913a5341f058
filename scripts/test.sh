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

apt_updated=
apt_install() {
    if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
        return 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    if [[ -z $apt_updated ]]; then
        apt-get update -q
        apt_updated=1
    fi
    apt-get install -y -q --no-install-recommends "$@"
}

if [[ -n ${PGARK_PG_VERSION:-} ]]; then
    bash scripts/get-postgres.sh "$PGARK_PG_VERSION" >/dev/null
elif ! find_server; then
    log "PostgreSQL server not found: installing Debian's postgresql package"
    apt_install postgresql \
        || die "PostgreSQL server binaries not found. Install them (Debian/Ubuntu: sudo apt-get install postgresql), \
or run scripts/get-postgres.sh 18 and set PGARK_PG_VERSION=18, or set PGARK_PG_BIN to a bin directory"
    find_server || die "PostgreSQL is still not found after installing it"
fi

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
for version in ${PGARK_TEST_VERSIONS:-}; do
    bash scripts/get-postgres.sh "$version" >/dev/null
    log "PostgreSQL $version: tests matching '$filter'"
    PGARK_PG_VERSION=$version cargo test "${scope[@]}" --all-targets "${matrix_args[@]}"
done

log "all tests passed"
