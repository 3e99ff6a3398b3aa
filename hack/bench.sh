#!/usr/bin/env bash
# Runs the side-by-side benchmark (hack/bench), writes docs/performance-results.md and draws docs/performance.svg.
# Not part of CI: it loads about 11,000 VMs into a local API server and takes about 10 minutes on 2 cores.
#   hack/bench.sh [-runs N] [-sizes 100,1000,10000]
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v jq >/dev/null || [ ! -x /usr/bin/time ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq jq time >/dev/null
  else
    echo "bench: needs jq (the kubectl reference) and GNU time (peak RSS): apt-get install jq time" >&2; exit 1
  fi
fi
KUBEBUILDER_ASSETS="$(ENVTEST_WITH_KUBECTL=1 hack/envtest-assets.sh)"
export KUBEBUILDER_ASSETS
mkdir -p docs
exec go run ./hack/bench -out docs/performance-results.md -svg docs/performance.svg "$@"
