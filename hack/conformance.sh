#!/usr/bin/env bash
# Runs the Microsoft SCIM reference collection with newman against the real SCIM server
# on a local control plane. Environment (set by `make conformance`):
#   NEWMAN_DIR          where newman is installed with npm (default ~/.cache/scim-operator/bin/newman-$NEWMAN_VERSION)
#   NEWMAN_VERSION      pinned newman version (default 6.2.2)
#   KUBEBUILDER_ASSETS  kube-apiserver and etcd (hack/controlplane.sh prints it)
#   CONFORMANCE_DIR     the collection's directory (default ../shared/conformance/microsoft)
set -euo pipefail
cd "$(dirname "$0")/.."
NEWMAN_VERSION="${NEWMAN_VERSION:-6.2.2}"
NEWMAN_DIR="${NEWMAN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/scim-operator/bin/newman-$NEWMAN_VERSION}"
CONFORMANCE_DIR="${CONFORMANCE_DIR:-../shared/conformance/microsoft}"
collection="$CONFORMANCE_DIR/PostmanCollection.json"

if [ ! -f "$collection" ]; then
	echo "conformance: SKIPPED: $collection is absent (put the Microsoft SCIM Postman collection there to run it)"
	exit 0
fi
newman="$NEWMAN_DIR/node_modules/.bin/newman"
if [ ! -x "$newman" ]; then
	command -v npm >/dev/null || { echo "conformance: npm is needed to install newman $NEWMAN_VERSION" >&2; exit 1; }
	echo "conformance: installing newman $NEWMAN_VERSION into $NEWMAN_DIR"
	mkdir -p "$NEWMAN_DIR"
	npm install --no-audit --no-fund --prefix "$NEWMAN_DIR" "newman@$NEWMAN_VERSION" >/dev/null
fi
if [ -z "${KUBEBUILDER_ASSETS:-}" ]; then
	KUBEBUILDER_ASSETS="$(hack/controlplane.sh)"
	export KUBEBUILDER_ASSETS
fi
exec go run ./hack/conformance -newman "$newman" -collection "$collection" -expected hack/conformance/expected-failures.txt "$@"
