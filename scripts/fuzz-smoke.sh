#!/usr/bin/env bash
# Usage: scripts/fuzz-smoke.sh [FUZZTIME]   (default 3s)
#
# Runs every Fuzz* target in the repository (every Go module in it) for
# FUZZTIME each: a smoke test that the targets and their seed corpora work
# and that a few seconds of new inputs find nothing. `go test -fuzz` takes
# one package and one target at a time, hence the loop. A failure leaves the
# input that broke it under the package's testdata/fuzz/ and stops.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${1:-3s}
found=0
while IFS= read -r file; do
  dir=$(dirname "$file")
  # The module the package belongs to: the nearest go.mod above it.
  mod=$dir
  while [ ! -f "$mod/go.mod" ]; do mod=$(dirname "$mod"); done
  pkg=./${dir#"$mod"}
  pkg=${pkg/#.\/\//./}
  for target in $(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$file"); do
    found=$((found + 1))
    echo "--- $target ($pkg in $mod, $fuzztime)"
    (cd "$mod" && go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg")
  done
done < <(grep -rl --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]*\(' . | grep -v -e '/testdata/' -e '/vendor/' -e '/node_modules/' | sort)
[ "$found" -gt 0 ] || { echo "fuzz-smoke: no Fuzz targets found" >&2; exit 1; }
echo "fuzz-smoke: $found target(s), $fuzztime each, found nothing"
