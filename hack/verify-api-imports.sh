#!/usr/bin/env bash
# api/ is a contract other programs import: it must not depend on controller-runtime.
set -euo pipefail
cd "$(dirname "$0")/.."
bad=$(go list -deps ./api/... | grep -E '^sigs\.k8s\.io/controller-runtime' || true)
if [ -n "$bad" ]; then
  echo "api/ imports controller-runtime:"; echo "$bad"; exit 1
fi
