#!/usr/bin/env bash
# Makes sure PostgreSQL's server binaries (initdb and postgres; pg_basebackup
# is used when present) are installed; the tests and the lab start their own
# servers with them. With FLYPG_PG_BIN set, that directory is the one the
# tests use, so it must hold them (scripts/ensure-pg.sh VERSION makes one
# for any version); otherwise Debian's postgresql package is installed with
# apt-get when missing and we are root.
set -euo pipefail

ok_dir() { [ -n "$1" ] && [ -x "$1/initdb" ] && [ -x "$1/postgres" ]; }

if [ -n "${FLYPG_PG_BIN:-}" ]; then
  ok_dir "$FLYPG_PG_BIN" && exit 0
  echo "FLYPG_PG_BIN=$FLYPG_PG_BIN holds no initdb and postgres; scripts/ensure-pg.sh 17 prints a directory that does" >&2
  exit 1
fi

have_pg() {
  local d
  for d in "$(dirname "$(readlink -f "$(command -v initdb 2>/dev/null || echo /nonexistent)")")" /usr/lib/postgresql/*/bin; do
    ok_dir "$d" && return 0
  done
  return 1
}

if have_pg; then
  exit 0
fi

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "PostgreSQL server binaries not found; installing Debian's postgresql package..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql >/dev/null
  have_pg && exit 0
  echo "postgresql installed, but initdb/postgres still not found" >&2
  exit 1
fi

cat >&2 <<'MSG'
PostgreSQL server binaries (initdb, postgres) are needed. Install them with:

    sudo apt-get update && sudo apt-get install -y postgresql

or fetch a version with `scripts/ensure-pg.sh 17` and set FLYPG_PG_BIN to the directory it prints.
MSG
exit 1
