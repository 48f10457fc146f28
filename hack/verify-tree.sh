#!/usr/bin/env bash
# Fails when git tracks a file that a source tree must not carry:
#   - a file over 1 MiB (MAX_FILE_BYTES);
#   - an executable binary: ELF, Mach-O (thin or fat) or PE, whatever its mode;
#   - a file with the exec bit that is not a script starting with "#!";
#   - a Dockerfile (Dockerfile, Dockerfile.*, *.Dockerfile) with a FROM image not pinned by
#     digest (@sha256:); a FROM naming an earlier stage, or scratch, needs none.
# Build outputs go to bin/ and dist/ (git-ignored). What is checked is the index, i.e. what
# the next commit holds, so a binary fails here as soon as it is `git add`ed.
#
#   hack/verify-tree.sh          # the repository this script belongs to
#   hack/verify-tree.sh DIR      # the git repository at DIR (hack/verify-tree_test.sh)
set -euo pipefail

root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
max=${MAX_FILE_BYTES:-1048576}
cd "$root"
export LC_ALL=C

modes=() shas=() paths=()
while IFS= read -r -d '' entry; do
  read -r mode sha _ <<<"${entry%%$'\t'*}"
  case $mode in 100644 | 100755) ;; *) continue ;; esac # symlinks, submodules
  modes+=("$mode") shas+=("$sha") paths+=("${entry#*$'\t'}")
done < <(git ls-files -s -z)
((${#paths[@]})) || { echo "verify-tree: no tracked files"; exit 0; }

# sizes of the staged blobs, in one git call
mapfile -t sizes < <(printf '%s\n' "${shas[@]}" | git cat-file --batch-check='%(objectsize)')

# Content is read from the working tree (no process per file) unless the file there is not
# what is staged: then from the blob.
declare -A stale=()
while IFS= read -r -d '' p; do stale[$p]=1; done < <(git ls-files -z --modified --deleted)

# head BYTES INDEX: the first BYTES bytes of a file as lowercase hex
head_hex() {
  if [ -n "${stale[${paths[$2]}]:-}" ]; then
    { git cat-file blob "${shas[$2]}" 2>/dev/null || true; } | head -c "$1" | od -An -v -tx1 | tr -d ' \n'
  else
    od -An -v -tx1 -N "$1" -- "${paths[$2]}" | tr -d ' \n'
  fi
}

# magic=the first 4 bytes, read without a process per file (bash drops NUL bytes, and the
# magic numbers checked here have none)
first4() {
  magic=''
  if [ -n "${stale[${paths[$1]}]:-}" ]; then
    printf -v magic '%b' "$(head_hex 4 "$1" | sed 's/../\\x&/g')"
  else
    IFS= read -r -N 4 magic <"${paths[$1]}" 2>/dev/null || true
  fi
}

# is_pe INDEX: "MZ", then "PE\0\0" at the offset stored at 0x3c
is_pe() {
  local hex off
  hex=$(head_hex 4096 "$1")
  [ "${#hex}" -ge 128 ] || return 1
  off=$((16#${hex:126:2}${hex:124:2}${hex:122:2}${hex:120:2}))
  [ $((off * 2 + 8)) -le "${#hex}" ] && [ "${hex:$((off * 2)):8}" = 50450000 ]
}

fail=0
bad() { printf 'verify-tree: %s: %s\n' "$1" "$2" >&2; fail=1; }

for i in "${!paths[@]}"; do
  path=${paths[$i]}
  if [ "${sizes[$i]}" -gt "$max" ]; then
    bad "$path" "${sizes[$i]} bytes, over the $max-byte limit for tracked files"
  fi
  first4 "$i"
  case $magic in
    $'\x7f'ELF) bad "$path" "ELF executable binary" ;;
    $'\xfe\xed\xfa\xce' | $'\xfe\xed\xfa\xcf' | $'\xce\xfa\xed\xfe' | $'\xcf\xfa\xed\xfe')
      bad "$path" "Mach-O executable binary" ;;
    $'\xca\xfe\xba\xbe' | $'\xca\xfe\xba\xbf' | $'\xbe\xba\xfe\xca')
      bad "$path" "fat Mach-O (or Java class) binary" ;;
    MZ*) if is_pe "$i"; then bad "$path" "PE (Windows) executable binary"; fi ;;
  esac
  if [ "${modes[$i]}" = 100755 ] && [ "${magic:0:2}" != '#!' ]; then
    bad "$path" "has the exec bit but is not a script with a #! line (git update-index --chmod=-x, or remove it)"
  fi
done

# check_from INDEX: each FROM of a Dockerfile whose image has no @sha256: digest
check_from() {
  local path=${paths[$1]} n=0 j line image w
  local -A stages=()
  while IFS= read -r line || [ -n "$line" ]; do
    n=$((n + 1))
    read -r -a w <<<"$line"
    [ "${#w[@]}" -ge 2 ] && [ "${w[0],,}" = from ] || continue
    image=""
    for ((j = 1; j < ${#w[@]}; j++)); do
      case ${w[$j]} in --*) ;; *) image=${w[$j]}; break ;; esac
    done
    # "AS name" names a stage later FROMs may use
    if [ "${#w[@]}" -ge $((j + 3)) ] && [ "${w[$((j + 1))],,}" = as ]; then stages[${w[$((j + 2))],,}]=1; fi
    [ -n "$image" ] || continue
    [ "${image,,}" = scratch ] && continue
    [ -n "${stages[${image,,}]:-}" ] && continue
    case $image in
      *@sha256:*) ;;
      *) bad "$path:$n" "FROM $image is not pinned by digest (add @sha256:..., the digest of the image you tested)" ;;
    esac
  done < <(if [ -n "${stale[$path]:-}" ]; then git cat-file blob "${shas[$1]}"; else cat -- "$path"; fi)
}
for i in "${!paths[@]}"; do
  case ${paths[$i]##*/} in Dockerfile | Dockerfile.* | *.Dockerfile) check_from "$i" ;; esac
done

if [ "$fail" -ne 0 ]; then
  echo "verify-tree: remove binaries and oversized files from git (git rm --cached PATH) and ignore build outputs in .gitignore; pin each Dockerfile FROM by digest" >&2
  exit 1
fi
echo "verify-tree: ${#paths[@]} tracked files: none over $max bytes, no executable binaries, every Dockerfile FROM pinned by digest"
