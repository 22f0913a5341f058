# Shared by the project's scripts: find PostgreSQL server binaries, and
# install them (Debian's package, when root) if there are none.
# Source it from the repository root; the caller sets SCRIPT for messages.

log() { printf '==> %s\n' "$*" >&2; }
die() { printf '%s: %s\n' "${SCRIPT:-pgark}" "$*" >&2; exit 1; }

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

ensure_postgres() {
    if [[ -n ${PGARK_PG_VERSION:-} ]]; then
        bash scripts/get-postgres.sh "$PGARK_PG_VERSION" >/dev/null
    elif ! find_server; then
        log "PostgreSQL server not found: installing Debian's postgresql package"
        apt_install postgresql \
            || die "PostgreSQL server binaries not found. Install them (Debian/Ubuntu: sudo apt-get install postgresql), \
or run scripts/get-postgres.sh 18 and set PGARK_PG_VERSION=18, or set PGARK_PG_BIN to a bin directory"
        find_server || die "PostgreSQL is still not found after installing it"
    fi
}
