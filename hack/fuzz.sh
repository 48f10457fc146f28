#!/usr/bin/env bash
# Runs every Go fuzz target of the module, one at a time, for DURATION each
# (default 10s). Seed corpora live in <package>/testdata/fuzz/<FuzzName>/.
#   hack/fuzz.sh 30s
# A package whose tests do not build fails the run (it is never skipped), and so does a
# module without any fuzz target: a run that fuzzes nothing must not pass.
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-10s}"
failed=0
count=0
while read -r dir pkg; do
	# only packages that declare fuzz targets: listing runs the test binary (and its TestMain)
	grep -qsE '^func Fuzz[A-Z0-9_]' "$dir"/*_test.go || continue
	if ! list=$(go test -list '^Fuzz' "$pkg" 2>&1); then
		printf '%s\n' "$list" >&2
		echo "FAIL: $pkg: its tests do not build, so its fuzz targets cannot run" >&2
		failed=$((failed + 1))
		continue
	fi
	for t in $(grep '^Fuzz' <<<"$list" || true); do
		count=$((count + 1))
		echo "==> $pkg $t ($duration)"
		if ! go test -run '^$' -fuzz "^${t}\$" -fuzztime "$duration" -parallel 2 "$pkg"; then
			failed=$((failed + 1))
			echo "FAIL: $pkg $t (a failing input was written to $pkg testdata/fuzz/$t)" >&2
		fi
	done
done < <(go list -f '{{.Dir}} {{.ImportPath}}' ./...)
echo "fuzz: $count target(s), $failed failed"
if [ "$count" -eq 0 ]; then
	echo "fuzz: no fuzz target found: nothing was fuzzed" >&2
	exit 1
fi
[ "$failed" -eq 0 ]
