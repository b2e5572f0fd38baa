#!/usr/bin/env bash
# Makes sure PostgreSQL's server binaries (initdb, postgres, pg_basebackup)
# are installed; the tests and the lab start their own servers with them.
set -euo pipefail

have_pg() {
  local d
  for d in "${FLYPG_PG_BIN:-}" "$(dirname "$(readlink -f "$(command -v initdb 2>/dev/null || echo /nonexistent)")")" /usr/lib/postgresql/*/bin; do
    [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/postgres" ] && [ -x "$d/pg_basebackup" ] && return 0
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
  echo "postgresql installed, but initdb/postgres/pg_basebackup still not found" >&2
  exit 1
fi

cat >&2 <<'MSG'
PostgreSQL server binaries (initdb, postgres, pg_basebackup) are needed. Install them with:

    sudo apt-get update && sudo apt-get install -y postgresql

or set FLYPG_PG_BIN to a directory that holds them.
MSG
exit 1
