#!/usr/bin/env bash
# Tests hack/verify-tree.sh: in a throwaway git repository, a clean tree must pass and each
# planted offender (a real ELF binary, Mach-O and PE headers, an exec-bit file without #!, a
# file over 1 MiB, a Dockerfile FROM without @sha256:) must make it fail and be named in its
# output. Run by `make verify`.
set -euo pipefail

script=$(cd "$(dirname "$0")" && pwd)/verify-tree.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0

repo() { # a fresh repository with a normal text file and a proper script
  rm -rf "$tmp/r" && mkdir -p "$tmp/r/hack" && cd "$tmp/r"
  git init -q .
  echo 'package main' >main.go
  printf '#!/usr/bin/env bash\necho hi\n' >hack/run.sh && chmod +x hack/run.sh
  git add -A
}

expect() { # expect pass|fail NAME: run verify-tree.sh on the repository as it is staged
  local want=$1 name=$2 out rc=0
  out=$("$script" "$tmp/r" 2>&1) || rc=$?
  if { [ "$want" = pass ] && [ "$rc" -ne 0 ]; } || { [ "$want" = fail ] && [ "$rc" -eq 0 ]; }; then
    printf 'FAIL %s: want %s, verify-tree.sh exited %d:\n%s\n' "$name" "$want" "$rc" "$out" >&2
    failures=$((failures + 1))
  elif [ "$want" = fail ] && [ -n "${3:-}" ] && ! grep -qF -- "$3" <<<"$out"; then
    printf 'FAIL %s: output does not name '%s':\n%s\n' "$name" "$3" "$out" >&2
    failures=$((failures + 1))
  else
    echo "ok   $name"
  fi
}

repo
expect pass "clean tree with a #! script"

repo
cp "$(type -P true)" bench # a real ELF executable, as committed once
git add bench
expect fail "ELF binary at the root" "bench: ELF executable binary"

repo
printf '\x7fELF\x02\x01\x01' >plugin.so && git add plugin.so # ELF without the exec bit
expect fail "ELF without exec bit" "plugin.so: ELF executable binary"

repo
printf '\xcf\xfa\xed\xfe\x07\x00\x00\x01' >manager-darwin && git add manager-darwin
expect fail "Mach-O binary" "manager-darwin: Mach-O executable binary"

repo
{ printf 'MZ'; head -c 58 /dev/zero; printf '\x40\x00\x00\x00PE\x00\x00'; head -c 64 /dev/zero; } >manager.exe
git add manager.exe
expect fail "PE binary" "manager.exe: PE (Windows) executable binary"

repo
printf 'MZ is a text file that happens to start with MZ\n' >notes.txt && git add notes.txt
expect pass "text starting with MZ is not PE"

repo
printf 'echo no shebang\n' >run && chmod +x run && git add run
expect fail "exec bit without #!" "run: has the exec bit"

repo
head -c 1048577 /dev/zero | tr '\0' 'a' >big.txt && git add big.txt
expect fail "text file over 1 MiB" "big.txt: 1048577 bytes"

repo
cp "$(type -P true)" tool
git add tool && echo 'now text' >tool # the index, what gets committed, still holds the binary
expect fail "staged binary, text in the working tree" "tool: ELF executable binary"

repo
echo text >notes && git add notes && cp "$(type -P true)" notes # an unstaged local build output
expect pass "binary in the working tree only"

repo
head -c 1048576 /dev/zero | tr '\0' 'a' >edge.txt && git add edge.txt
expect pass "text file of exactly 1 MiB"

repo
printf 'FROM golang:1.26@sha256:%s AS builder\nRUN go build\nFROM --platform=linux/amd64 gcr.io/distroless/static@sha256:%s\nCOPY --from=builder /m /m\nFROM builder AS again\nFROM scratch\n' \
  "$(printf 'a%.0s' {1..64})" "$(printf 'b%.0s' {1..64})" >Dockerfile && git add Dockerfile
expect pass "Dockerfile with every FROM pinned by digest (stages and scratch need none)"

repo
printf 'FROM golang:1.26@sha256:%s AS builder\nFROM gcr.io/distroless/static:nonroot\n' "$(printf 'a%.0s' {1..64})" >Dockerfile && git add Dockerfile
expect fail "Dockerfile FROM by tag only" "Dockerfile:2: FROM gcr.io/distroless/static:nonroot is not pinned"

repo
mkdir -p test/img && printf '  from --platform=$BUILDPLATFORM alpine:3\n' >test/img/Dockerfile.dev && git add test/img/Dockerfile.dev
expect fail "lower-case, indented FROM with a flag, in Dockerfile.dev" "test/img/Dockerfile.dev:1: FROM alpine:3 is not pinned"

if [ "$failures" -ne 0 ]; then
  echo "verify-tree_test: $failures case(s) failed" >&2
  exit 1
fi
echo "verify-tree_test: all cases passed"
