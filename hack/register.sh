#!/usr/bin/env bash
# Registers the extension with CloudStack through CloudMonkey (cmk), the steps the UI walks through: the
# extension, a Cluster registered with it, a Host whose details name the namespace, a Template whose details
# name the image, optionally a compute offering mapped to a KubeVirt instancetype, and the custom actions (check,
# snapshots, pause/resume, migrate, describe).
# Idempotent: what exists by name is reused. Needs cmk configured for an admin (cmk set url/apikey/secretkey), and jq.
#
# Map parameters are written as CloudStack's UI writes them, one group with the key as the parameter's last part:
# details[0].kubeconfig=/etc/...  CloudStack's API reads a map with BaseCmd.convertDetailsToMap, which stores
# every entry of every group as a detail, so details[0].key=kubeconfig details[0].value=... would store two
# details named "key" and "value". Custom actions are added with enabled=true: addCustomAction leaves them
# disabled otherwise, and runCustomAction refuses a disabled one.
#
#   ZONE_ID=… POD_ID=… OS_TYPE_ID=… hack/register.sh
#
# Settings (environment, defaults):
#   NAME=KubeVirt  CLUSTER=kubevirt-1  HOST_NAMESPACE=cloudstack-host-1
#   KUBECONFIG_PATH=/etc/cloudstack/kubevirt/kubeconfig   (on every management server)
#   IMAGE=quay.io/containerdisks/fedora:43  TEMPLATE=fedora-43-kubevirt
#   INSTANCETYPE=  (e.g. u1.medium: also create the offering OFFERING=kubevirt-u1-medium)
set -euo pipefail

: "${ZONE_ID:?set ZONE_ID}" "${POD_ID:?set POD_ID}" "${OS_TYPE_ID:?set OS_TYPE_ID}"
NAME="${NAME:-KubeVirt}"
CLUSTER="${CLUSTER:-kubevirt-1}"
HOST_NAMESPACE="${HOST_NAMESPACE:-cloudstack-host-1}"
KUBECONFIG_PATH="${KUBECONFIG_PATH:-/etc/cloudstack/kubevirt/kubeconfig}"
IMAGE="${IMAGE:-quay.io/containerdisks/fedora:43}"
TEMPLATE="${TEMPLATE:-fedora-43-kubevirt}"
INSTANCETYPE="${INSTANCETYPE:-}"
OFFERING="${OFFERING:-kubevirt-${INSTANCETYPE//./-}}"
CMK="${CMK:-cmk}"

cmk() { "$CMK" -o json "$@"; }
say() { echo "register: $*" >&2; }
# first_id <json> <list key> <name>: the id of the listed item of that exact name, or nothing. CloudStack's name
# filters may match more than the name (a host is named after its URL), so the script picks for itself.
first_id() {
  jq -r --arg k "$2" --arg n "$3" '[.[$k][]? | select(.name == $n or .name == ("http://" + $n))][0].id // empty' <<<"$1"
}

ext_id="$(first_id "$(cmk list extensions name="$NAME")" extension "$NAME")"
if [ -z "$ext_id" ]; then
  ext_id="$(cmk create extension name="$NAME" type=Orchestrator path=kubevirt-extension \
    description="Runs Instances as KubeVirt VirtualMachines" orchestratorrequirespreparevm=true \
    "details[0].kubeconfig=$KUBECONFIG_PATH" | jq -r '.extension.id')"
  say "created extension $NAME ($ext_id)"
else
  say "extension $NAME exists ($ext_id)"
fi

cluster_id="$(first_id "$(cmk list clusters name="$CLUSTER" zoneid="$ZONE_ID")" cluster "$CLUSTER")"
if [ -z "$cluster_id" ]; then
  cluster_id="$(cmk add cluster zoneid="$ZONE_ID" podid="$POD_ID" clustername="$CLUSTER" hypervisor=External \
    clustertype=CloudManaged extensionid="$ext_id" | jq -r '.cluster[0].id')"
  say "added cluster $CLUSTER ($cluster_id), registered with $NAME"
else
  say "cluster $CLUSTER exists ($cluster_id)"
fi

host_name="kubevirt-$HOST_NAMESPACE"
host_id="$(first_id "$(cmk list hosts clusterid="$cluster_id")" host "$host_name")"
if [ -z "$host_id" ]; then
  # The URL only names the host; the extension uses neither username nor password.
  host_id="$(cmk add host zoneid="$ZONE_ID" podid="$POD_ID" clusterid="$cluster_id" hypervisor=External \
    url="http://$host_name" username=unused password=unused | jq -r '.host[0].id')"
  # addHost takes no details for the extension; updateHost stores them as the host's External: details, which
  # is what the payload's externaldetails.host holds. It replaces all of them, so it runs only for a new host.
  cmk update host id="$host_id" "externaldetails[0].namespace=$HOST_NAMESPACE" >/dev/null
  say "added host $host_name ($host_id) mapped to namespace $HOST_NAMESPACE"
else
  say "host $host_name exists ($host_id)"
fi

template_id="$(first_id "$(cmk list templates templatefilter=all name="$TEMPLATE" zoneid="$ZONE_ID")" template "$TEMPLATE")"
if [ -z "$template_id" ]; then
  # The URL is not downloaded for External templates; the image detail is what the extension boots.
  template_id="$(cmk register template name="$TEMPLATE" displaytext="$TEMPLATE" zoneids="$ZONE_ID" \
    hypervisor=External extensionid="$ext_id" format=RAW url="http://kubevirt.invalid/$TEMPLATE" \
    ostypeid="$OS_TYPE_ID" "externaldetails[0].image=$IMAGE" | jq -r '.template[0].id')"
  say "registered template $TEMPLATE ($template_id) booting $IMAGE"
else
  say "template $TEMPLATE exists ($template_id)"
fi

if [ -n "$INSTANCETYPE" ]; then
  offering_id="$(first_id "$(cmk list serviceofferings name="$OFFERING")" serviceoffering "$OFFERING")"
  if [ -z "$offering_id" ]; then
    offering_id="$(cmk create serviceoffering name="$OFFERING" displaytext="KubeVirt $INSTANCETYPE" \
      cpunumber=1 cpuspeed=1000 memory=1024 \
      "externaldetails[0].instancetype=$INSTANCETYPE" | jq -r '.serviceoffering.id')"
    say "created offering $OFFERING ($offering_id) mapped to instancetype $INSTANCETYPE"
  else
    say "offering $OFFERING exists ($offering_id)"
  fi
fi

action_id="$(first_id "$(cmk list customactions extensionid="$ext_id" name=check)" extensioncustomaction check)"
if [ -z "$action_id" ]; then
  # check answers success whatever it finds, so that CloudStack's UI draws its table (a failed run shows only the
  # error message): its first line says whether something blocks Instances.
  action_id="$(cmk add customaction extensionid="$ext_id" name=check resourcetype=VirtualMachine \
    description="What works and what does not between CloudStack and the cluster" allowedroletypes=Admin \
    timeout=60 enabled=true successmessage="The first line sums up what works and what does not" \
    errormessage="check could not run: see the management server log" | jq -r '.extensioncustomaction.id')"
  say "added custom action check ($action_id)"
else
  say "custom action check exists ($action_id)"
fi
# add_action NAME TIMEOUT ROLES DESCRIPTION [PARAM...]: registers a custom action on Instances unless one of that
# name exists. Each PARAM is name:TYPE:required (validation format NONE); see the README's "Custom actions".
add_action() {
  local name="$1" timeout="$2" roles="$3" description="$4"
  shift 4
  local id i=0 p pname ptype prequired
  local params=()
  id="$(first_id "$(cmk list customactions extensionid="$ext_id" name="$name")" extensioncustomaction "$name")"
  if [ -n "$id" ]; then
    say "custom action $name exists ($id)"
    return
  fi
  for p in "$@"; do
    IFS=: read -r pname ptype prequired <<<"$p"
    params+=("parameters[$i].name=$pname" "parameters[$i].type=$ptype" "parameters[$i].validationformat=NONE" "parameters[$i].required=$prequired")
    i=$((i + 1))
  done
  id="$(cmk add customaction extensionid="$ext_id" name="$name" resourcetype=VirtualMachine description="$description" \
    allowedroletypes="$roles" timeout="$timeout" enabled=true ${params[@]+"${params[@]}"} | jq -r '.extensioncustomaction.id')"
  say "added custom action $name ($id)"
}

users=Admin,ResourceAdmin,DomainAdmin,User
add_action ListSnapshots 60 "$users" "List the Instance's KubeVirt snapshots"
add_action CreateSnapshot 300 "$users" "Snapshot the Instance's disks and spec (KubeVirt VirtualMachineSnapshot)" snap_name:STRING:true snap_description:STRING:false
add_action RestoreSnapshot 300 "$users" "Restore the stopped Instance to a snapshot" snap_name:STRING:true
add_action DeleteSnapshot 120 "$users" "Delete one of the Instance's snapshots" snap_name:STRING:true
add_action Pause 60 "$users" "Pause the Instance's guest (its vCPUs stop; memory is kept)"
add_action Resume 60 "$users" "Resume the Instance's paused guest"
add_action Migrate 900 Admin "Live-migrate the Instance to another Kubernetes node" target_node:STRING:false
add_action Describe 60 Admin,ResourceAdmin "What Kubernetes knows of the Instance: node, IPs, conditions, recent events" events:NUMBER:false
say "done: deploy an Instance in zone $ZONE_ID with template $TEMPLATE"
