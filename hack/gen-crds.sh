#!/usr/bin/env bash
# Regenerates the KubeVirt, CDI and Multus CRDs that envtest loads, into test/crds/.
#
#   hack/gen-crds.sh           write test/crds/*.yaml
#   hack/gen-crds.sh --check   regenerate into a temporary directory and fail if test/crds/ differs
#
# The generator is hack/crdgen, a module of its own so that controller-tools and the API versions
# it reads stay out of the product's go.mod. Only the Go module proxy is needed, and only once.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dest="$repo/test/crds"

check=false
case "${1:-}" in
  "") ;;
  --check) check=true ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

# A go.work elsewhere must not change what the generator builds or reads, and nothing here may
# rewrite a go.mod or go.sum: the pinned versions are the point.
export GOWORK=off
export GOFLAGS="${GOFLAGS:-} -mod=readonly"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/crds"
(cd "$repo/hack/crdgen" && go run . -out "$tmp/crds")

if ! $check; then
  # Replace only the YAML files: test/crds/ also holds the Go test that checks them.
  rm -f "$dest"/*.yaml
  cp "$tmp/crds"/*.yaml "$dest"/
  echo "gen-crds: wrote $(ls "$tmp/crds" | wc -l) CRDs to ${dest#"$repo"/}"
  exit 0
fi

# --check: compare the YAML files only, by name and content.
problems=()
for f in "$tmp/crds"/*.yaml; do
  name=$(basename "$f")
  if [ ! -f "$dest/$name" ]; then
    problems+=("missing  $name")
  elif ! cmp -s "$dest/$name" "$f"; then
    lines=$(diff "$dest/$name" "$f" || true)
    added=$(grep -c '^>' <<<"$lines" || true)
    removed=$(grep -c '^<' <<<"$lines" || true)
    problems+=("changed  $name (+$added -$removed lines)")
  fi
done
for f in "$dest"/*.yaml; do
  [ -e "$f" ] || continue
  name=$(basename "$f")
  [ -f "$tmp/crds/$name" ] || problems+=("extra    $name (no longer generated)")
done
if [ "${#problems[@]}" -ne 0 ]; then
  echo "gen-crds: test/crds/ is stale; run hack/gen-crds.sh and commit the result:" >&2
  printf '  %s\n' "${problems[@]}" >&2
  exit 1
fi
echo "gen-crds: test/crds/ is up to date"
