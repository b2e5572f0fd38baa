#!/usr/bin/env bash
# Usage: scripts/timed.sh NAME COMMAND [ARG...]
#
# Runs COMMAND, then prints how long it took and how it ended:
#   ==> NAME
#   <== NAME: ok in 1m23.4s
# and, when $FLYPG_TIMINGS names a file, appends that line to it (make test
# prints the file as its summary). Exits with COMMAND's status.
set -uo pipefail
name=$1
shift
echo "==> $name"
start=$(date +%s%N)
"$@"
rc=$?
ms=$((($(date +%s%N) - start) / 1000000))
took=$(printf '%dm%02d.%ds' $((ms / 60000)) $((ms / 1000 % 60)) $((ms / 100 % 10)))
if [ $rc -eq 0 ]; then line="$name: ok in $took"; else line="$name: FAILED (exit $rc) after $took"; fi
echo "<== $line"
if [ -n "${FLYPG_TIMINGS:-}" ]; then echo "$line" >>"$FLYPG_TIMINGS"; fi
exit $rc
