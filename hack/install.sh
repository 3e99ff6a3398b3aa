#!/usr/bin/env bash
# Installs the extension on one CloudStack management server; run it on every one (CloudStack compares the
# extension's files across management servers and marks the extension Not Ready when they differ). Idempotent:
# a second run changes nothing.
#
#   sudo ./install.sh [--name KubeVirt] [--from DIR] [--root /]
#
# What goes where:
#   /usr/share/cloudstack-management/extensions/<dir>/kubevirt-extension        what CloudStack runs: the launcher,
#       which answers a ping's status from the host's shared listing and hands everything else to
#   /usr/share/cloudstack-management/extensions/<dir>/kubevirt-extension-core   the extension; both cloud:cloud 0755.
#       <dir> is CloudStack's directory name for the extension: lower case, [^a-zA-Z0-9._-] as _. Nothing else
#       goes there: every file in it is checksummed. --from is where the two are (default: beside this script).
#   /etc/cloudstack/kubevirt/         per-server configuration (kubeconfig files), cloud:cloud 0750
#   /var/log/cloudstack/management/   the log (log_file detail), created by the management server
set -euo pipefail

name=KubeVirt
from="$(dirname "$0")"
files="kubevirt-extension kubevirt-extension-core"
root=/
owner="${INSTALL_OWNER:-cloud:cloud}"

usage() { echo "usage: $0 [--name NAME] [--from DIR] [--root DIR]" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --name) name="${2:?}"; shift 2 ;;
    --from) from="${2:?}"; shift 2 ;;
    --root) root="${2:?}"; shift 2 ;;
    -h | --help) usage ;;
    *) echo "install: unknown argument $1" >&2; usage ;;
  esac
done

for f in $files; do
  [ -x "$from/$f" ] || { echo "install: $from/$f is not an executable" >&2; exit 1; }
done
user="${owner%%:*}"
if ! id "$user" >/dev/null 2>&1; then
  echo "install: user $user does not exist: is this a CloudStack management server? (INSTALL_OWNER overrides)" >&2
  exit 1
fi

dir_name="$(printf '%s' "$name" | sed 's/[^a-zA-Z0-9._-]/_/g' | tr '[:upper:]' '[:lower:]')"
ext_dir="${root%/}/usr/share/cloudstack-management/extensions/$dir_name"
conf_dir="${root%/}/etc/cloudstack/kubevirt"
target="$ext_dir/kubevirt-extension"

install -d -o "$user" -g "${owner#*:}" -m 0755 "$ext_dir"
# The extension first, then the launcher: a call between the two finds a new extension behind the old
# launcher, which hands everything but a status from the listing to it unchanged.
for f in kubevirt-extension-core kubevirt-extension; do
  dest="$ext_dir/$f"
  if [ -f "$dest" ] && cmp -s "$from/$f" "$dest" && [ "$(stat -c '%U:%G %a' "$dest")" = "$owner 755" ]; then
    echo "install: $dest is already this build"
  else
    install -o "$user" -g "${owner#*:}" -m 0755 "$from/$f" "$dest.new"
    mv -f "$dest.new" "$dest" # atomic: a running call keeps the old file
    echo "install: installed $dest"
  fi
done
install -d -o "$user" -g "${owner#*:}" -m 0750 "$conf_dir"

others="$(find "$ext_dir" -mindepth 1 ! -name kubevirt-extension ! -name kubevirt-extension-core -print)"
if [ -n "$others" ]; then
  echo "install: warning: $ext_dir holds other files; CloudStack checksums them all, so they must be identical on every management server:" >&2
  echo "$others" >&2
fi
"$target" version
cat <<MSG
install: done. Next, on every management server:
  put the kubeconfig for the extension's identity at $conf_dir/kubeconfig (owner $user, mode 0600);
and once, in CloudStack: create the extension with name=$name path=kubevirt-extension (see the README).
MSG
