#!/usr/bin/env bash
# The main job on an embedded default: installs PostgreSQL server binaries if
# there are none (Debian's package, when root), then runs `pgark demo` — a
# throwaway local cluster with the sample learning app, backed up, verified,
# broken by the TIMESTAMP -> TIMESTAMPTZ migration, rolled back and proved.
#
#   scripts/demo.sh                 # default scale
#   scripts/demo.sh --scale 50      # more data; other flags: pgark demo --help
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SCRIPT=demo.sh
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
ensure_postgres
exec cargo run --release --quiet -p pgark -- demo "$@"
