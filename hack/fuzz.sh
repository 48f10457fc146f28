#!/usr/bin/env bash
# Runs every Go fuzz target of the module, one at a time, for DURATION each
# (default 10s). Seed corpora live in <package>/testdata/fuzz/<FuzzName>/.
#   hack/fuzz.sh 30s
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-10s}"
failed=0
count=0
for pkg in $(go list ./...); do
	targets=$(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true)
	for t in $targets; do
		count=$((count + 1))
		echo "==> $pkg $t ($duration)"
		if ! go test -run '^$' -fuzz "^${t}\$" -fuzztime "$duration" -parallel 2 "$pkg"; then
			failed=$((failed + 1))
			echo "FAIL: $pkg $t (a failing input was written to $pkg testdata/fuzz/$t)" >&2
		fi
	done
done
echo "fuzz: $count target(s), $failed failed"
[ "$failed" -eq 0 ]
