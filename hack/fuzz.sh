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
		for try in 1 2; do
			echo "==> $pkg $t ($duration)"
			out=$(mktemp)
			if go test -run '^$' -fuzz "^${t}\$" -fuzztime "$duration" -parallel 2 "$pkg" 2>&1 | tee "$out"; then
				rm -f "$out"
				break
			fi
			# Go's fuzzing coordinator can fail a target with a bare "context deadline
			# exceeded" as -fuzztime ends, on a loaded machine, having found nothing (no
			# input written; go.dev/issue/75804, fixed in Go 1.27): tried once more. A
			# finding (an input written, a panic, a failed check) fails at once.
			if [ "$try" -eq 1 ] && grep -q 'context deadline exceeded' "$out" &&
				! grep -qE 'Failing input written to|panic:|_test\.go:[0-9]+:' "$out"; then
				echo "fuzz: $pkg $t: the engine's deadline race at the end of -fuzztime, nothing found: once more" >&2
				rm -f "$out"
				continue
			fi
			failed=$((failed + 1))
			if grep -q 'Failing input written to' "$out"; then
				echo "FAIL: $pkg $t (a failing input was written to $pkg testdata/fuzz/$t)" >&2
			else
				echo "FAIL: $pkg $t" >&2
			fi
			rm -f "$out"
			break
		done
	done
done < <(go list -f '{{.Dir}} {{.ImportPath}}' ./...)
echo "fuzz: $count target(s), $failed failed"
if [ "$count" -eq 0 ]; then
	echo "fuzz: no fuzz target found: nothing was fuzzed" >&2
	exit 1
fi
[ "$failed" -eq 0 ]
