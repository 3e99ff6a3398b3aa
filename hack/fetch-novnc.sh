#!/bin/sh
# Fetches noVNC as hack/novnc.lock pins it and unpacks it into DEST:
#   hack/fetch-novnc.sh DEST            # fetch, check, unpack
#   hack/fetch-novnc.sh --version       # print the pinned version
#   hack/fetch-novnc.sh --integrity     # print the pinned integrity (DEST/.integrity holds it once checked)
# The tarball's sha512 must equal the integrity kept in hack/novnc.lock. npm checks a tarball against the
# registry's own metadata only, so a registry (or mirror) that served another tarball would serve matching
# metadata too; the hash kept here is what ties the build to the tarball that was reviewed. POSIX sh and node
# only, so that it runs in the Dockerfile's node image as well as on a developer's machine.
set -eu
lock="$(dirname "$0")/novnc.lock"
read -r package version integrity <<LOCK
$(grep -v '^#' "$lock")
LOCK
case "${1:-}" in
  --version) echo "$version"; exit 0 ;;
  --integrity) echo "$integrity"; exit 0 ;;
esac
dest="${1:?usage: hack/fetch-novnc.sh DEST}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "$package@$version" >/dev/null)
tarball=$(ls "$tmp"/*.tgz)
got=$(node -e 'const c = require("crypto"), fs = require("fs");
process.stdout.write("sha512-" + c.createHash("sha512").update(fs.readFileSync(process.argv[1])).digest("base64"))' "$tarball")
if [ "$got" != "$integrity" ]; then
  echo "fetch-novnc: $package@$version is $got, not $integrity as hack/novnc.lock pins: refusing it" >&2
  exit 1
fi
mkdir -p "$dest"
tar -xzf "$tarball" -C "$dest" --strip-components=1
echo "$integrity" >"$dest/.integrity"
