#!/usr/bin/env bash
# Builds the release: static binaries (CGO off) of the extension and its launcher for linux/amd64 and linux/arm64, the version
# and commit stamped in, each in a tarball with the install script, and SHA256SUMS beside them.
#   hack/dist.sh                  # into dist/
#   VERSION=v0.2.0 DIST_DIR=/tmp/out hack/dist.sh
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION="${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}"
COMMIT="${COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}"
DIST_DIR="${DIST_DIR:-dist}"
ARCHES="${ARCHES:-amd64 arm64}"

mkdir -p "$DIST_DIR"
DIST_DIR="$(cd "$DIST_DIR" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

for arch in $ARCHES; do
  name="cloudstack-kubevirt-$VERSION-linux-$arch"
  mkdir -p "$work/$name"
  echo "dist: building $name" >&2
  # What CloudStack runs is the launcher (cmd/launcher), which hands all but a ping's status to the extension.
  CGO_ENABLED=0 GOOS=linux GOARCH="$arch" go build -trimpath \
    -ldflags "-s -w -X main.version=$VERSION -X main.commit=$COMMIT" \
    -o "$work/$name/kubevirt-extension-core" ./cmd/extension
  CGO_ENABLED=0 GOOS=linux GOARCH="$arch" go build -trimpath -ldflags "-s -w" \
    -o "$work/$name/kubevirt-extension" ./cmd/launcher
  cp hack/install.sh "$work/$name/install.sh"
  cp README.md "$work/$name/README.md"
  # The README's links (and --help's pointer to docs/configuration.md) lead into docs/.
  mkdir -p "$work/$name/docs" && cp docs/*.md docs/*.png docs/*.svg "$work/$name/docs/"
  # Reproducible archives: fixed owner, order and times.
  tar -C "$work" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -czf "$DIST_DIR/$name.tar.gz" "$name"
done
(cd "$DIST_DIR" && sha256sum cloudstack-kubevirt-"$VERSION"-linux-*.tar.gz >SHA256SUMS)
echo "dist: $DIST_DIR" >&2
ls -1 "$DIST_DIR"
