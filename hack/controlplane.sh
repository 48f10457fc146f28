#!/usr/bin/env bash
# Provides kube-apiserver, etcd and kubectl for one Kubernetes version in a cache directory
# outside the repository, and prints that directory (for KUBEBUILDER_ASSETS).
#
# Order: binaries already in the cache -> the usual envtest download (setup-envtest) ->
# a build from Go module sources through the module proxy. Progress goes to stderr; the
# directory is the only thing printed on stdout.
#
#   hack/controlplane.sh            # ensure and print the directory
#   hack/controlplane.sh --no-download   # skip the envtest download attempt
#
# Environment: K8S_VERSION (1.37.2), ETCD_VERSION (3.7.3), ENVTEST_DIR (the store root,
# default ~/.local/share/kubebuilder-envtest, the standard envtest store location).
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-1.37.2}
ETCD_VERSION=${ETCD_VERSION:-3.7.3}
SETUP_ENVTEST_VERSION=${SETUP_ENVTEST_VERSION:-v0.25.1}
GOOS=$(go env GOOS)
GOARCH=$(go env GOARCH)
ENVTEST_DIR=${ENVTEST_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/kubebuilder-envtest}
DEST="$ENVTEST_DIR/k8s/${K8S_VERSION}-${GOOS}-${GOARCH}"
WORK="$ENVTEST_DIR/build"
DOWNLOAD=1
[ "${1:-}" = "--no-download" ] && DOWNLOAD=0

say() { printf '[controlplane] %s\n' "$*" >&2; }

have_all() { [ -x "$DEST/kube-apiserver" ] && [ -x "$DEST/etcd" ] && [ -x "$DEST/kubectl" ]; }

if have_all; then echo "$DEST"; exit 0; fi
mkdir -p "$DEST" "$WORK"

# Serialise concurrent callers (two make targets at once must not build twice).
exec 9>"$ENVTEST_DIR/.lock"
flock 9
if have_all; then echo "$DEST"; exit 0; fi

try_download() {
  [ "$DOWNLOAD" = 1 ] || return 1
  say "trying the envtest download for $K8S_VERSION (falls back to a source build)"
  local out
  if out=$(timeout 120 go run sigs.k8s.io/controller-runtime/tools/setup-envtest@"$SETUP_ENVTEST_VERSION" \
        use "$K8S_VERSION" --bin-dir "$ENVTEST_DIR" -p path 2>/dev/null) && [ -n "$out" ] \
        && [ -x "$out/kube-apiserver" ] && [ -x "$out/etcd" ]; then
    for b in kube-apiserver etcd kubectl; do
      [ -x "$out/$b" ] && [ "$out" != "$DEST" ] && cp "$out/$b" "$DEST/$b"
    done
    return 0
  fi
  say "download unavailable; building from Go module sources"
  return 1
}

ldflags() {
  local minor=${K8S_VERSION#*.}; minor=${minor%%.*}
  local major=${K8S_VERSION%%.*}
  echo "-s -w -X k8s.io/component-base/version.gitVersion=v${K8S_VERSION} \
-X k8s.io/component-base/version.gitMajor=${major} -X k8s.io/component-base/version.gitMinor=${minor} \
-X k8s.io/component-base/version.gitTreeState=clean \
-X k8s.io/component-base/version.buildDate=1970-01-01T00:00:00Z \
-X k8s.io/client-go/pkg/version.gitVersion=v${K8S_VERSION} \
-X k8s.io/client-go/pkg/version.gitMajor=${major} -X k8s.io/client-go/pkg/version.gitMinor=${minor}"
}

staging_version() { echo "v0.${K8S_VERSION#*.}"; }

build_kube_apiserver() {
  [ -x "$DEST/kube-apiserver" ] && return 0
  local dir="$WORK/kube-apiserver" sv; sv=$(staging_version)
  rm -rf "$dir"; mkdir -p "$dir"
  say "kube-apiserver v$K8S_VERSION: resolving k8s.io/kubernetes and its staging modules"
  local gomod
  gomod=$(cd "$dir" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" \
          | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  {
    echo "module scim-operator.local/kube-apiserver"
    echo
    echo "go $(go env GOVERSION | sed 's/^go//; s/^\([0-9]*\.[0-9]*\).*/\1/')"
    echo
    echo "require k8s.io/kubernetes v$K8S_VERSION"
    echo
    echo "replace ("
    # every `k8s.io/x => ./staging/src/k8s.io/x` of k8s.io/kubernetes's go.mod, pointed at
    # the published module of the same release line
    grep -E '^\s*k8s\.io/[^ ]+ => \./staging/' "$gomod" | awk -v v="$sv" '{print "\t" $1 " => " $1 " " v}'
    echo ")"
  } >"$dir/go.mod"
  say "  $(grep -c '=> k8s.io' "$dir/go.mod") staging replacements"
  cat >"$dir/tools.go" <<'GO'
package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver/app"
GO
  (cd "$dir" && go mod tidy >&2)
  say "kube-apiserver: compiling (about 10 minutes cold on 2 cores; progress below)"
  # -v lists every package, so only a count is shown; the full output is kept in a log and
  # its end is shown when the build fails (the caller must see the compiler's error).
  local log="$WORK/kube-apiserver-build.log"
  if ! (cd "$dir" && CGO_ENABLED=0 go build -v -trimpath -ldflags "$(ldflags)" \
      -o "$DEST/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver 2>&1 \
      | tee "$log" \
      | awk '{n++; if (n % 200 == 0) printf "[controlplane]   %d packages compiled\n", n > "/dev/stderr"}'); then
    say "kube-apiserver: the build failed; the end of $log:"
    tail -n 40 "$log" >&2
    exit 1
  fi
  mv "$DEST/kube-apiserver.tmp" "$DEST/kube-apiserver"
}

build_etcd() {
  [ -x "$DEST/etcd" ] && return 0
  local dir="$WORK/etcd"
  rm -rf "$dir"; mkdir -p "$dir"
  say "etcd v$ETCD_VERSION: building from go.etcd.io/etcd/server/v3"
  cat >"$dir/go.mod" <<GOMOD
module scim-operator.local/etcd

go $(go env GOVERSION | sed 's/^go//; s/^\([0-9]*\.[0-9]*\).*/\1/')

require go.etcd.io/etcd/server/v3 v$ETCD_VERSION
GOMOD
  cat >"$dir/main.go" <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  (cd "$dir" && go mod tidy >&2 && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$DEST/etcd.tmp" .)
  mv "$DEST/etcd.tmp" "$DEST/etcd"
}

build_kubectl() {
  [ -x "$DEST/kubectl" ] && return 0
  local dir="$WORK/kubectl" sv; sv=$(staging_version)
  rm -rf "$dir"; mkdir -p "$dir"
  say "kubectl v$K8S_VERSION: building from k8s.io/kubectl $sv"
  cat >"$dir/go.mod" <<GOMOD
module scim-operator.local/kubectl

go $(go env GOVERSION | sed 's/^go//; s/^\([0-9]*\.[0-9]*\).*/\1/')

require k8s.io/kubectl $sv
GOMOD
  cat >"$dir/main.go" <<'GO'
package main

import (
	"k8s.io/component-base/cli"
	"k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/util"
)

func main() {
	command := cmd.NewDefaultKubectlCommand()
	if err := cli.RunNoErrOutput(command); err != nil {
		util.CheckErr(err)
	}
}
GO
  (cd "$dir" && go mod tidy >&2 && CGO_ENABLED=0 go build -trimpath -ldflags "$(ldflags)" -o "$DEST/kubectl.tmp" .)
  mv "$DEST/kubectl.tmp" "$DEST/kubectl"
}

if ! try_download; then
  start=$(date +%s)
  build_etcd
  build_kubectl
  build_kube_apiserver
  say "built in $(( $(date +%s) - start ))s"
fi
if ! [ -x "$DEST/kubectl" ]; then build_kubectl; fi
have_all || { say "failed to provide the control plane in $DEST"; exit 1; }
say "$("$DEST/kube-apiserver" --version 2>&1) / etcd $("$DEST/etcd" --version 2>/dev/null | head -1)"
echo "$DEST"
