#!/usr/bin/env bash
# End-to-end on a real cluster, for developers' machines with a Docker engine (CI has none and does not run
# this): a kind cluster with KubeVirt, CDI and Multus, the reconciler built from this tree and deployed from
# manifests/default, then the e2e suite driving the extension with a kubeconfig for the cloudstack-extension
# ServiceAccount, exactly the identity a CloudStack management server would use.
#
# Usage: hack/kind-e2e.sh [--reuse] [--delete] [-- go test arguments]
#   --reuse, KIND_REUSE=1    the cluster exists and is set up: skip creating it and installing KubeVirt/CDI/Multus
#   --delete, KIND_DELETE=1  delete the cluster when done (also after a failure)
#   go test arguments        default -short (skips the 5,000-VM scale test); e.g. -- -run TestLifecycle
# Environment (defaults):
#   KIND_CLUSTER=cloudstack-kubevirt  KIND_NODE_IMAGE=(kind's default)
#   KUBEVIRT_VERSION=v1.9.0  CDI_VERSION=v1.66.0  MULTUS_VERSION=v4.2.2  CNI_PLUGINS_VERSION=v1.7.1
#   E2E_NAMESPACE=cloudstack-host-1   the managed namespace the suite may use (bound for the extension here)
#   E2E_IDENTITY=admin                the suite creates its own namespaces and NetworkAttachmentDefinitions, so it
#                                     needs kind's admin kubeconfig; "extension" hands it the extension's identity
# Without KIND_DELETE the cluster stays up: `kind export kubeconfig --name cloudstack-kubevirt` to look around.
set -euo pipefail
cd "$(dirname "$0")/.."

KIND_CLUSTER=${KIND_CLUSTER:-cloudstack-kubevirt}
KIND_REUSE=${KIND_REUSE:-0}
KIND_DELETE=${KIND_DELETE:-0}
KUBEVIRT_VERSION=${KUBEVIRT_VERSION:-v1.9.0}
CDI_VERSION=${CDI_VERSION:-v1.66.0}
MULTUS_VERSION=${MULTUS_VERSION:-v4.2.2}
CNI_PLUGINS_VERSION=${CNI_PLUGINS_VERSION:-v1.7.1}
E2E_NAMESPACE=${E2E_NAMESPACE:-cloudstack-host-1}
E2E_IDENTITY=${E2E_IDENTITY:-admin}
SYSTEM_NAMESPACE=cloudstack-kubevirt-system

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
log() { printf '\n== %s\n' "$*" >&2; }
die() { echo "kind-e2e: $*" >&2; exit 1; }
# A missing prerequisite exits 2, distinct from a failed test (1).
need() { command -v "$1" >/dev/null 2>&1 || { echo "kind-e2e: needs $1 ($2); this script is not run by CI" >&2; exit 2; }; }

while [ $# -gt 0 ]; do
  case $1 in
    --reuse) KIND_REUSE=1 ;;
    --delete) KIND_DELETE=1 ;;
    -h | --help) usage; exit 0 ;;
    --) shift; break ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
  shift
done
[ $# -gt 0 ] || set -- -short
case $E2E_IDENTITY in extension | admin) ;; *) die "E2E_IDENTITY must be extension or admin" ;; esac

# --- prerequisites ---------------------------------------------------------------------------------------
command -v docker >/dev/null 2>&1 ||
  { echo "kind-e2e: needs a Docker engine (no docker command); this script is not run by CI" >&2; exit 2; }
docker info >/dev/null 2>&1 ||
  { echo "kind-e2e: needs a Docker engine (docker info failed: is the daemon running, may this user use it?); this script is not run by CI" >&2; exit 2; }
need kind "https://kind.sigs.k8s.io"
need kubectl "https://kubernetes.io/docs/tasks/tools/"
need go "Go 1.26, for the reconciler image and the tests"
need curl "to fetch the CNI reference plugins"

# Kubeconfigs (one holds a token) live here, mode 0700, and go when the script ends.
work=$(mktemp -d "${TMPDIR:-/tmp}/kind-e2e.XXXXXX")
cleanup() {
  local rc=$?
  if [ "$KIND_DELETE" = 1 ]; then
    log "deleting kind cluster $KIND_CLUSTER"
    kind delete cluster --name "$KIND_CLUSTER" || true
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT

# --- cluster ---------------------------------------------------------------------------------------------
# kind writes to our own kubeconfig, never to the user's ~/.kube/config.
export KUBECONFIG="$work/admin.kubeconfig"
clusters=$(kind get clusters 2>/dev/null || true) # not piped into grep -q: pipefail would see SIGPIPE
if grep -qx "$KIND_CLUSTER" <<<"$clusters"; then
  log "reusing kind cluster $KIND_CLUSTER"
elif [ "$KIND_REUSE" = 1 ]; then
  die "KIND_REUSE=1 but there is no kind cluster $KIND_CLUSTER"
else
  log "creating kind cluster $KIND_CLUSTER"
  if [ -n "${KIND_NODE_IMAGE:-}" ]; then
    kind create cluster --name "$KIND_CLUSTER" --image "$KIND_NODE_IMAGE" --wait 5m
  else
    kind create cluster --name "$KIND_CLUSTER" --wait 5m
  fi
fi
kind get kubeconfig --name "$KIND_CLUSTER" >"$KUBECONFIG"
chmod 600 "$KUBECONFIG"

nodes() { kind get nodes --name "$KIND_CLUSTER"; }

# KubeVirt needs /dev/kvm for hardware virtualisation; kind nodes are privileged containers, so they see the
# host's /dev/kvm when it has one.
kvm_on_every_node() {
  local node
  for node in $(nodes); do
    docker exec "$node" test -e /dev/kvm || return 1
  done
}

install_kubevirt() {
  local url="https://github.com/kubevirt/kubevirt/releases/download/$KUBEVIRT_VERSION"
  log "KubeVirt $KUBEVIRT_VERSION"
  kubectl apply -f "$url/kubevirt-operator.yaml"
  kubectl wait --for condition=Established --timeout=2m crd/kubevirts.kubevirt.io
  kubectl apply -f "$url/kubevirt-cr.yaml"
  if ! kvm_on_every_node; then
    log "no /dev/kvm on the kind nodes: KubeVirt will emulate (slow, but VMs run)"
    kubectl -n kubevirt patch kubevirts.kubevirt.io kubevirt --type merge \
      -p '{"spec":{"configuration":{"developerConfiguration":{"useEmulation":true}}}}'
  fi
  kubectl -n kubevirt wait kubevirts.kubevirt.io/kubevirt --for condition=Available --timeout=20m
}

install_cdi() {
  local url="https://github.com/kubevirt/containerized-data-importer/releases/download/$CDI_VERSION"
  log "CDI $CDI_VERSION"
  kubectl apply -f "$url/cdi-operator.yaml"
  kubectl wait --for condition=Established --timeout=2m crd/cdis.cdi.kubevirt.io
  kubectl apply -f "$url/cdi-cr.yaml"
  kubectl wait cdis.cdi.kubevirt.io/cdi --for condition=Available --timeout=15m
}

# kind's nodes carry only the CNI plugins kindnet uses; the NetworkAttachmentDefinitions below use the
# reference bridge plugin, so put it on every node that lacks it (nothing else is overwritten).
install_bridge_plugin() {
  local node arch tarball
  for node in $(nodes); do
    docker exec "$node" test -x /opt/cni/bin/bridge && continue
    case $(docker exec "$node" uname -m) in
      x86_64) arch=amd64 ;;
      aarch64 | arm64) arch=arm64 ;;
      *) die "no CNI plugins for $(docker exec "$node" uname -m)" ;;
    esac
    tarball="$work/cni-plugins-$arch.tgz"
    if [ ! -f "$tarball" ]; then
      log "CNI reference plugins $CNI_PLUGINS_VERSION ($arch)"
      curl -fsSL -o "$tarball" \
        "https://github.com/containernetworking/plugins/releases/download/$CNI_PLUGINS_VERSION/cni-plugins-linux-$arch-$CNI_PLUGINS_VERSION.tgz"
    fi
    docker cp "$tarball" "$node:/tmp/cni-plugins.tgz"
    docker exec "$node" tar -xzf /tmp/cni-plugins.tgz -C /opt/cni/bin --wildcards '*bridge'
  done
}

install_multus() {
  local image="ghcr.io/k8snetworkplumbingwg/multus-cni:$MULTUS_VERSION-thick"
  log "Multus $MULTUS_VERSION (thick)"
  kubectl apply -f "https://raw.githubusercontent.com/k8snetworkplumbingwg/multus-cni/$MULTUS_VERSION/deployments/multus-daemonset-thick.yml"
  # Pin the image to the release (the manifest may name a moving snapshot tag), and give the daemon more
  # memory than the quickstart's 50Mi, which it can outgrow.
  kubectl -n kube-system set image daemonset/kube-multus-ds "kube-multus=$image" "install-multus-binary=$image"
  kubectl -n kube-system set resources daemonset/kube-multus-ds -c kube-multus --limits=cpu=500m,memory=256Mi
  kubectl -n kube-system rollout status daemonset/kube-multus-ds --timeout=10m
}

if [ "$KIND_REUSE" = 1 ]; then
  log "KIND_REUSE=1: KubeVirt, CDI and Multus are taken as installed"
else
  install_kubevirt
  install_cdi
  install_bridge_plugin
  install_multus
fi

# --- the reconciler --------------------------------------------------------------------------------------
# A fresh tag per run: the pods roll to the new build, and a non-latest tag makes the pull policy
# IfNotPresent, so the kubelet uses the image kind loaded instead of pulling.
image="cloudstack-kubevirt/reconciler:kind-$(date +%Y%m%d%H%M%S)"
log "building $image"
docker build -t "$image" .
kind load docker-image "$image" --name "$KIND_CLUSTER"
console_image="cloudstack-kubevirt/console:${image##*:}"
log "building $console_image"
docker build --target console -t "$console_image" .
kind load docker-image "$console_image" --name "$KIND_CLUSTER"

# Deploy manifests/default through a throw-away overlay that swaps the image, leaving the tree untouched
# (kustomize only accepts relative paths to a base, hence the copy).
log "applying manifests/default"
cp -R manifests "$work/manifests"
mkdir "$work/overlay"
cat >"$work/overlay/kustomization.yaml" <<EOF
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../manifests/default
images:
  - name: ghcr.io/cloudstack-kubevirt/reconciler
    newName: ${image%:*}
    newTag: ${image##*:}
  - name: ghcr.io/cloudstack-kubevirt/console
    newName: ${console_image%:*}
    newTag: ${console_image##*:}
EOF
kubectl apply -k "$work/overlay"
kubectl -n "$SYSTEM_NAMESPACE" rollout status deployment/cloudstack-kubevirt-reconciler --timeout=5m
kubectl -n "$SYSTEM_NAMESPACE" rollout status deployment/cloudstack-kubevirt-console --timeout=5m

# --- the managed namespace -------------------------------------------------------------------------------
# What an operator does per CloudStack host: the namespace, the extension's RoleBinding there (already made by
# manifests/default for cloudstack-host-1), and the NetworkAttachmentDefinitions the Instances' VLANs map to.
log "managed namespace $E2E_NAMESPACE"
kubectl create namespace "$E2E_NAMESPACE" --dry-run=client -o yaml | kubectl apply -f -
kubectl -n "$E2E_NAMESPACE" create rolebinding cloudstack-kubevirt-extension \
  --clusterrole=cloudstack-kubevirt-extension --serviceaccount="$SYSTEM_NAMESPACE:cloudstack-extension" \
  --dry-run=client -o yaml | kubectl apply -f -
for vlan in 1577 1578; do
  kubectl apply -f - <<EOF
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata:
  name: vlan-$vlan
  namespace: $E2E_NAMESPACE
spec:
  config: '{"cniVersion":"0.3.1","type":"bridge","bridge":"br-guest","vlan":$vlan}'
EOF
done

# --- the extension's kubeconfig --------------------------------------------------------------------------
# As an operator would make it for a management server: a token for the ServiceAccount, and the cluster's
# address and CA from kind's kubeconfig; mode 0600.
log "kubeconfig for $SYSTEM_NAMESPACE/cloudstack-extension"
server=$(kubectl config view --minify --raw -o jsonpath='{.clusters[0].cluster.server}')
ca=$(kubectl config view --minify --raw -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')
token=$(kubectl -n "$SYSTEM_NAMESPACE" create token cloudstack-extension --duration=24h)
ext_kubeconfig="$work/cloudstack-extension.kubeconfig"
(
  umask 077
  cat >"$ext_kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: $KIND_CLUSTER
    cluster:
      server: $server
      certificate-authority-data: $ca
users:
  - name: cloudstack-extension
    user:
      token: $token
contexts:
  - name: cloudstack-extension
    context:
      cluster: $KIND_CLUSTER
      user: cloudstack-extension
      namespace: $E2E_NAMESPACE
current-context: cloudstack-extension
EOF
)
chmod 600 "$ext_kubeconfig"
# Fail here, with a clear message, if the RBAC does not let the extension work in the namespace.
for verb in create delete; do
  [ "$(kubectl --kubeconfig "$ext_kubeconfig" auth can-i "$verb" virtualmachines.kubevirt.io -n "$E2E_NAMESPACE")" = yes ] ||
    die "cloudstack-extension may not $verb VirtualMachines in $E2E_NAMESPACE: check manifests/extension-rbac"
done

# --- the e2e suite ---------------------------------------------------------------------------------------
e2e_kubeconfig=$ext_kubeconfig
[ "$E2E_IDENTITY" = admin ] && e2e_kubeconfig=$KUBECONFIG
log "go test ./test/e2e/... as $E2E_IDENTITY, namespace $E2E_NAMESPACE"
E2E_KUBECONFIG="$e2e_kubeconfig" E2E_NAMESPACE="$E2E_NAMESPACE" \
  go test -count=1 -timeout 60m -v "$@" ./test/e2e/...
log "e2e passed on kind cluster $KIND_CLUSTER"
