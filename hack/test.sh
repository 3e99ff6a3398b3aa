#!/usr/bin/env bash
# Runs every test: vet, staticcheck, the generated-CRD check, unit tests, and the envtest integration and e2e suites.
# On a fresh machine the first run builds kube-apiserver and etcd (about 7 minutes; cached afterwards).
set -euo pipefail
cd "$(dirname "$0")/.."

KUBEBUILDER_ASSETS="$(hack/envtest-assets.sh)"
export KUBEBUILDER_ASSETS

echo "== go vet"
go vet ./...
echo "== staticcheck"
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
echo "== generated CRDs are current"
hack/gen-crds.sh --check
echo "== go test"
go test -count=1 -timeout 30m "$@" ./...
