#!/usr/bin/env bash
# Runs every test: vet, staticcheck, the generated-CRD check, unit tests, and the envtest integration and e2e suites.
# On a fresh machine the first run builds kube-apiserver and etcd (about 7 minutes; cached afterwards).
set -euo pipefail
cd "$(dirname "$0")/.."

KUBEBUILDER_ASSETS="$(hack/envtest-assets.sh)"
export KUBEBUILDER_ASSETS

# The console tests use real VNC peers: QEMU's VNC server and vncsnapshot (a VNC client), from Debian. As root
# they are installed when missing and then required; otherwise those tests skip without them.
if ! command -v qemu-system-x86_64 >/dev/null || ! command -v vncsnapshot >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "== installing QEMU and vncsnapshot for the console tests"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-system-x86 vncsnapshot >/dev/null 2>&1; }; then
      echo "== could not install qemu-system-x86 and vncsnapshot: the console tests with real VNC peers will skip"
    fi
  else
    echo "== no qemu-system-x86_64 or vncsnapshot: the console tests with real VNC peers will skip (apt-get install qemu-system-x86 vncsnapshot)"
  fi
fi
if command -v qemu-system-x86_64 >/dev/null && command -v vncsnapshot >/dev/null; then
  export CONSOLE_PEERS=required
fi

echo "== go vet"
go vet ./...
echo "== staticcheck"
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
echo "== generated CRDs are current"
hack/gen-crds.sh --check
echo "== go test"
go test -count=1 -timeout 30m "$@" ./...
