#!/usr/bin/env bash
# Prints a directory holding kube-apiserver and etcd for envtest (KUBEBUILDER_ASSETS).
#
# Order: $KUBEBUILDER_ASSETS if it already holds both binaries; the per-version cache in the user's cache
# directory; setup-envtest (downloads release binaries where the network allows); and, as the fallback, a build
# from the Go module proxy: kube-apiserver from k8s.io/kubernetes (its staging modules replaced by their
# published k8s.io/* versions) and etcd from go.etcd.io/etcd/server/v3. The first build takes about 7 minutes on
# 2 cores; every later run, clean clones and CI included, reuses the cache.
#
# With ENVTEST_WITH_KUBECTL=1 the directory also holds kubectl (setup-envtest's, else built from k8s.io/kubernetes
# the same way as kube-apiserver, a few minutes more), for scripts that drive the API server as an operator would.
#
# Progress goes to stderr; only the directory goes to stdout, so `export KUBEBUILDER_ASSETS=$(hack/envtest-assets.sh)`.
set -euo pipefail

K8S_VERSION="${ENVTEST_K8S_VERSION:-1.37.2}"
ETCD_VERSION="${ENVTEST_ETCD_VERSION:-3.6.5}"
SETUP_ENVTEST_VERSION="${SETUP_ENVTEST_VERSION:-release-0.25}"

cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/cloudstack-kubevirt/envtest"
assets="$cache_root/k8s-$K8S_VERSION-etcd-$ETCD_VERSION"

log() { echo "envtest-assets: $*" >&2; }
have() { [ -x "$1/kube-apiserver" ] && [ -x "$1/etcd" ]; }
want_kubectl() { [ "${ENVTEST_WITH_KUBECTL:-}" = "1" ]; }
# ready: everything this run was asked for is in $1.
ready() { have "$1" && { ! want_kubectl || [ -x "$1/kubectl" ]; }; }

if [ -n "${KUBEBUILDER_ASSETS:-}" ] && ready "$KUBEBUILDER_ASSETS"; then
  echo "$KUBEBUILDER_ASSETS"; exit 0
fi
if ready "$assets"; then
  echo "$assets"; exit 0
fi
mkdir -p "$assets"

try_setup_envtest() {
  local dir
  log "trying setup-envtest $K8S_VERSION"
  dir=$(timeout 300 go run "sigs.k8s.io/controller-runtime/tools/setup-envtest@$SETUP_ENVTEST_VERSION" \
        use "$K8S_VERSION" --bin-dir "$cache_root/setup-envtest" -p path 2>/dev/null) || return 1
  have "$dir" || return 1
  ln -sf "$dir/kube-apiserver" "$assets/kube-apiserver"
  ln -sf "$dir/etcd" "$assets/etcd"
  [ -x "$dir/kubectl" ] && ln -sf "$dir/kubectl" "$assets/kubectl"
}

# build_k8s_command <name> [go build flag...] builds k8s.io/kubernetes/cmd/<name> into $assets/<name>, in a
# wrapper module that requires k8s.io/kubernetes at K8S_VERSION.
build_k8s_command() {
  local name=$1 work mod
  shift
  work=$(mktemp -d)
  # Clear the trap once it has run: bash would otherwise run it again when the caller returns, $work unset.
  trap 'rm -rf "$work"; trap - RETURN' RETURN
  mod=$(cd "$work" && go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -n 's/^\s*"GoMod": "\(.*\)",\?$/\1/p')
  [ -n "$mod" ] || { log "could not download k8s.io/kubernetes@v$K8S_VERSION"; return 1; }
  {
    echo "module envtest.local/$name"
    echo
    echo "go $(go env GOVERSION | sed 's/^go//; s/^\([0-9]*\.[0-9]*\).*/\1/')"
    echo
    echo "require k8s.io/kubernetes v$K8S_VERSION"
    echo
    # k8s.io/kubernetes replaces its staging modules with local paths; point each at its published twin.
    sed -n 's#^\s*\(k8s\.io/[a-z0-9-]*\) => \./staging/.*#\1#p' "$mod" |
      while read -r m; do echo "replace $m => $m v0.${K8S_VERSION#1.}"; done
  } >"$work/go.mod"
  (cd "$work" && GOFLAGS=-mod=mod go build -trimpath "$@" -o "$assets/$name" "k8s.io/kubernetes/cmd/$name")
}

build_kube_apiserver() {
  log "building kube-apiserver v$K8S_VERSION from the module proxy (about 7 minutes the first time)"
  build_k8s_command kube-apiserver
}

build_kubectl() {
  log "building kubectl v$K8S_VERSION from the module proxy (a few minutes the first time)"
  # The version stamp makes `kubectl version --client` report v$K8S_VERSION rather than v0.0.0-master.
  build_k8s_command kubectl -ldflags "-X k8s.io/component-base/version.gitVersion=v$K8S_VERSION -X k8s.io/client-go/pkg/version.gitVersion=v$K8S_VERSION"
}

build_etcd() {
  local work
  work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  log "building etcd v$ETCD_VERSION from the module proxy"
  cat >"$work/main.go" <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  (cd "$work" && go mod init envtest.local/etcd >/dev/null 2>&1 &&
    go mod edit -require "go.etcd.io/etcd/server/v3@v$ETCD_VERSION" &&
    GOFLAGS=-mod=mod go mod tidy >/dev/null 2>&1 &&
    go build -trimpath -o "$assets/etcd" .)
}

if ! have "$assets"; then
  if [ "${ENVTEST_BUILD_ONLY:-}" != "1" ] && try_setup_envtest; then
    log "using setup-envtest's binaries"
  else
    [ -x "$assets/etcd" ] || build_etcd
    [ -x "$assets/kube-apiserver" ] || build_kube_apiserver
  fi
fi
if want_kubectl && [ ! -x "$assets/kubectl" ]; then
  build_kubectl || { log "could not build kubectl"; exit 1; }
fi
have "$assets" || { log "no kube-apiserver/etcd in $assets"; exit 1; }
echo "$assets"
