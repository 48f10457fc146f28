#!/usr/bin/env bash
# Fails when go.mod or go.sum are not exactly what `go mod tidy` writes, or when go.mod
# mixes direct and indirect requirements. (`go mod tidy` fixes the // indirect markers but
# never moves a line between require blocks, so a direct dependency added by hand to the
# indirect block stays there unless something checks: one block of direct requirements,
# then the indirect ones.)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! out=$(go mod tidy -diff 2>&1); then
  printf '%s\n' "$out" >&2
  echo "verify-gomod: go.mod/go.sum are not tidy: run 'go mod tidy' and commit" >&2
  exit 1
fi

awk '
  function fail(msg) { printf "verify-gomod: go.mod:%d: %s\n", NR, msg > "/dev/stderr"; bad = 1 }
  function req(line,   indirect) {
    indirect = line ~ /\/\/ indirect/
    if (indirect) { seenIndirect = 1; blockIndirect++ } else {
      blockDirect++
      if (seenIndirect) fail("direct requirement after an indirect one: " line)
    }
    if (blockDirect && blockIndirect && !mixed) { mixed = 1; fail("a require block mixes direct and indirect requirements") }
  }
  /^require \($/ { inBlock = 1; blockDirect = blockIndirect = mixed = 0; next }
  inBlock && /^\)$/ { inBlock = 0; next }
  inBlock && NF { sub(/^[ \t]+/, ""); req($0); next }
  /^require [^(]/ { blockDirect = blockIndirect = mixed = 0; sub(/^require /, ""); req($0) }
  END { if (bad) { print "verify-gomod: keep direct requirements in the first require block and indirect ones in the second" > "/dev/stderr"; exit 1 } }
' go.mod
echo "verify-gomod: go.mod and go.sum are tidy"
