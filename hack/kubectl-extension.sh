#!/usr/bin/env bash
# The extension as an operator would otherwise write it: kubectl and jq, in the style of CloudStack's Proxmox
# sample extension. For benchmarks against the Go extension; it validates little, waits for nothing, reads no VMI.
#
#   kubectl-extension.sh <action> <payload.json> <timeout-seconds>
#
# Details come from the payload's externaldetails, most specific first (virtualmachine, host, resourcemap,
# extension): kubeconfig, context, namespace, and for create image (a containerDisk). Every answer is one JSON line
# on stdout; a failure answers {"status":"error","message":...} with kubectl's stderr and exits 1.
# $KUBECTL names the kubectl binary (default: kubectl from $PATH).
set -uo pipefail

KUBECTL=${KUBECTL:-kubectl}
MANAGED_BY=app.kubernetes.io/managed-by=cloudstack-kubevirt

action=${1:-}
payload_file=${2:-}
timeout=${3:-}

errlog=$(mktemp)
trap 'rm -f "$errlog"' EXIT

# jq definitions shared by every filter: detail resolution and the power state CloudStack is told.
# shellcheck disable=SC2016 # $k is jq's
JQ_DEFS='
def detail($k): first(.externaldetails // {} | (.virtualmachine, .host, .resourcemap, .extension) | objects
  | .[$k] | strings | sub("^\\s+"; "") | sub("\\s+$"; "") | select(. != "")) // "";
def power: if ((.status.printableStatus // "") | IN("Running", "Starting", "Provisioning", "Scheduling", "Migrating"))
  or .spec.runStrategy == "Always" then "poweron" else "poweroff" end;
'

fail() {
  jq -cn --arg m "${action:+$action: }$1" --rawfile err "$errlog" \
    '{status: "error", message: ([$m, ($err | gsub("\\s+"; " ") | sub(" $"; ""))] | map(select(. != "")) | join(": "))}'
  exit 1
}

success() {
  jq -cn --arg m "$1" '{status: "success", message: $m}'
}

# kube runs kubectl against the payload's cluster and namespace; its stderr goes to $errlog for fail.
# --request-timeout bounds each HTTP request, and kubectl retries discovery: timeout bounds the whole call.
kube() {
  timeout "$timeout" "$KUBECTL" "${kube_args[@]}" "$@" 2>"$errlog"
  local rc=$?
  [ $rc -ne 124 ] || echo "kubectl did not finish within ${timeout}s" >>"$errlog"
  return $rc
}

parse_payload() {
  local conf
  [ -r "$payload_file" ] || fail "cannot read the payload file"
  [[ $timeout =~ ^[1-9][0-9]*$ ]] || fail "timeout '$timeout' is not a positive number of seconds"
  conf=$(jq -r "$JQ_DEFS"'detail("kubeconfig"), detail("context"), detail("namespace"),
    ((.virtualmachinename // .["cloudstack.vm.details"].name // "") | ascii_downcase)' "$payload_file" 2>"$errlog") ||
    fail "the payload is not JSON"
  mapfile -t conf_lines <<<"$conf" # $(...) dropped the trailing empty lines: default them
  kubeconfig=${conf_lines[0]:-} context=${conf_lines[1]:-} namespace=${conf_lines[2]:-} vm_name=${conf_lines[3]:-}
  [ -n "$kubeconfig" ] || fail "detail kubeconfig is not set"
  [ -n "$namespace" ] || fail "detail namespace is not set"
  kube_args=(--kubeconfig "$kubeconfig" --namespace "$namespace" --request-timeout "${timeout}s")
  [ -z "$context" ] || kube_args+=(--context "$context")
}

need_vm_name() {
  [ -n "$vm_name" ] || fail "the payload has no virtualmachinename"
}

status() {
  local out
  need_vm_name
  out=$(kube get vm "$vm_name" --ignore-not-found -o json) || fail "kubectl get vm $vm_name failed"
  jq -cs "$JQ_DEFS"'{status: "success", power_state: (if length == 0 then "poweroff" else (.[0] | power) end)}' <<<"$out"
}

statuses() {
  local out
  out=$(kube get vm -l "$MANAGED_BY" -o json) || fail "kubectl get vm -l $MANAGED_BY failed"
  jq -c "$JQ_DEFS"'{status: "success", power_state: ([.items[]
    | {key: .metadata.labels["cloudstack.apache.org/instance-name"], value: power} | select(.key != null)] | from_entries)}' <<<"$out"
}

create() {
  local vm
  need_vm_name
  vm=$(jq -c "$JQ_DEFS"'
    .["cloudstack.vm.details"] as $to
    | (.virtualmachinename // $to.name) as $instance
    | detail("image") as $image
    | if $to == null then error("the payload has no cloudstack.vm.details")
      elif $image == "" then error("detail image (a containerDisk image) is not set") else . end
    | {
        "app.kubernetes.io/managed-by": "cloudstack-kubevirt",
        "cloudstack.apache.org/instance-name": $instance,
        "cloudstack.apache.org/instance-uuid": (.virtualmachineid // $to.uuid)
      } as $labels
    | ($to.nics // [] | sort_by(.deviceId) | to_entries) as $nics
    | {
        apiVersion: "kubevirt.io/v1",
        kind: "VirtualMachine",
        metadata: {name: ($instance | ascii_downcase), labels: $labels},
        spec: {
          runStrategy: "Always",
          template: {
            metadata: {labels: $labels},
            spec: {
              domain: {
                cpu: {cores: $to.cpus},
                memory: {guest: ($to.minRam | tostring)},
                devices: {
                  autoattachPodInterface: false,
                  disks: [{name: "rootdisk", bootOrder: 1, disk: {bus: "virtio"}}],
                  interfaces: [$nics[] | {name: "nic\(.key)", macAddress: .value.mac, bridge: {}}]
                }
              },
              networks: [$nics[] | {name: "nic\(.key)",
                multus: {networkName: ("vlan-" + (.value.broadcastUri // "untagged" | sub("^vlan://"; "")))}}],
              volumes: [{name: "rootdisk", containerDisk: {image: $image}}]
            }
          }
        }
      }' "$payload_file" 2>"$errlog") || fail "cannot build the VirtualMachine"
  if kube create -f - -o name <<<"$vm" >/dev/null; then
    success "VirtualMachine $namespace/$vm_name created"
  elif grep -q '(AlreadyExists)' "$errlog"; then
    success "VirtualMachine $namespace/$vm_name already exists"
  else
    fail "kubectl create vm $vm_name failed"
  fi
}

set_run_strategy() {
  need_vm_name
  kube patch vm "$vm_name" --type merge -p "{\"spec\":{\"runStrategy\":\"$1\"}}" >/dev/null ||
    fail "kubectl patch vm $vm_name failed"
  success "VirtualMachine $namespace/$vm_name runStrategy $1"
}

delete() {
  need_vm_name
  kube delete vm "$vm_name" --ignore-not-found --wait=false >/dev/null || fail "kubectl delete vm $vm_name failed"
  success "VirtualMachine $namespace/$vm_name deleted"
}

[ $# -eq 3 ] || fail "usage: kubectl-extension.sh <action> <payload.json> <timeout-seconds>"
case "$action" in
  status | statuses | create | start | stop | delete) parse_payload ;;
  *) fail "action '$action' is not supported" ;;
esac
case "$action" in
  status) status ;;
  statuses) statuses ;;
  create) create ;;
  start) set_run_strategy Always ;;
  stop) set_run_strategy Halted ;;
  delete) delete ;;
esac
