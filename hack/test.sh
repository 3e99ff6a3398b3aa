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

# The boot tests (test/boot) boot the VMs the extension creates: KubeVirt's converter makes each domain, Debian's
# libvirt and QEMU (and OVMF) run it, with a probe guest built from Debian's packages (hack/boot-guest.sh). As root
# these are installed when missing and the tests are then required (BOOT_TESTS=required); otherwise they skip
# and say why.
boot_pkgs="libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86 qemu-utils ovmf mtools dosfstools fdisk cpio kmod syslinux syslinux-common isolinux xorriso"
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  # shellcheck disable=SC2086
  if ! dpkg -s $boot_pkgs >/dev/null 2>&1; then
    echo "== installing libvirt, QEMU, OVMF and the probe guest's build tools for the boot tests"
    # shellcheck disable=SC2086
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $boot_pkgs >/dev/null 2>&1; } \
      || echo "== could not install the boot tests' packages: they will skip"
  fi
  # shellcheck disable=SC2086
  if dpkg -s $boot_pkgs >/dev/null 2>&1; then
    export BOOT_TESTS=required
  fi
else
  echo "== not root: the boot tests (test/boot) will skip (they run libvirtd as root)"
fi

# Direct mode's browser test: Debian's Chromium (installed as root when missing) and noVNC from npm, pinned with its
# sha512 in hack/novnc.lock (the Dockerfile fetches it the same way) and cached by version outside the work tree.
# Without either the test skips and says so.
if ! command -v chromium >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "== installing Chromium for the direct-mode console test"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1; } \
    || echo "== could not install chromium: the browser test will skip"
fi
novnc_version=$(hack/fetch-novnc.sh --version)
novnc_integrity=$(hack/fetch-novnc.sh --integrity)
novnc_dir="${XDG_CACHE_HOME:-$HOME/.cache}/cloudstack-kubevirt/novnc-$novnc_version"
# A cached copy counts only if it was checked against the integrity hack/novnc.lock keeps now.
if [ "$(cat "$novnc_dir/.integrity" 2>/dev/null)" != "$novnc_integrity" ] && command -v npm >/dev/null; then
  echo "== fetching noVNC $novnc_version from npm, checked against hack/novnc.lock, for the direct-mode console test"
  tmp=$(mktemp -d)
  if hack/fetch-novnc.sh "$tmp/x"; then
    mkdir -p "$(dirname "$novnc_dir")" && rm -rf "$novnc_dir" && mv "$tmp/x" "$novnc_dir"
  else
    echo "== could not fetch noVNC: the browser test will skip"
  fi
  rm -rf "$tmp"
fi
if [ "$(cat "$novnc_dir/.integrity" 2>/dev/null)" = "$novnc_integrity" ]; then
  export NOVNC_DIR="$novnc_dir"
fi

echo "== go vet"
go vet ./...
# test/upstream is a module of its own (KubeVirt's code, which the product's module must not depend on); the
# envtest-based tests start its binaries. A first run compiles KubeVirt (about 3 minutes on 2 cores), which the
# binaries' builds then reuse.
echo "== go vet (test/upstream)"
(cd test/upstream && GONOSUMDB=github.com/rhobs GOWORK=off go vet ./...)
echo "== staticcheck"
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
echo "== generated CRDs are current"
hack/gen-crds.sh --check
echo "== go test (test/upstream)"
(cd test/upstream && GONOSUMDB=github.com/rhobs GOWORK=off go test -count=1 ./...)
# Built before the other packages start, so that a first run's build (minutes) counts against no test's deadline.
echo "== KubeVirt's webhook server and VM controller (test/upstream), built or found in the cache"
go test -count=1 -timeout 30m -run '^TestUpstreamBinaries$' ./test/doubles/testenv
echo "== go test"
# shellcheck disable=SC2046
go test -count=1 -timeout 30m "$@" $(go list ./... | grep -v '/test/boot$')
# The boot tests run by themselves: their guests run under TCG where KVM fails, which takes the CPUs that other
# packages' tests time themselves on.
echo "== go test (test/boot: the VMs booted under libvirt and QEMU)"
go test -count=1 -timeout 30m "$@" ./test/boot
