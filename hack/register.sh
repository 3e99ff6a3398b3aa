#!/usr/bin/env bash
# Registers the extension with CloudStack through CloudMonkey (cmk), the steps the UI walks through: the
# extension, a Cluster registered with it, a Host whose details name the namespace, a Template whose details
# name the image, optionally a compute offering mapped to a KubeVirt instancetype, and the custom actions of the
# extension's catalog (check, snapshots, pause/resume, migrate, describe).
# Idempotent: what exists by name is reused. Needs cmk configured for an admin (cmk set url/apikey/secretkey), jq,
# and the extension (EXTENSION) or Go.
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
#   EXTENSION=     (a kubevirt-extension executable to read the custom actions from; else the installed one,
#                   else `go run ./cmd/extension`)
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
# The custom actions are the extension's own catalog (`kubevirt-extension catalog`): EXTENSION names an executable
# to ask, else the one hack/install.sh installed on this management server, else this checkout's source answers
# through `go run`.
installed="/usr/share/cloudstack-management/extensions/$(printf '%s' "$NAME" | sed 's/[^a-zA-Z0-9._-]/_/g' | tr '[:upper:]' '[:lower:]')/kubevirt-extension"
read_catalog() {
  if [ -n "${EXTENSION:-}" ]; then
    "$EXTENSION" catalog
  elif [ -x "$installed" ]; then
    "$installed" catalog
  else
    (cd "$(dirname "$0")/.." && go run ./cmd/extension catalog)
  fi
}
say() { echo "register: $*" >&2; }
# first_id <json> <list key> <name>: the id of the listed item of that exact name, or nothing. CloudStack's name
# filters may match more than the name (a host is named after its URL), so the script picks for itself.
first_id() {
  jq -r --arg k "$2" --arg n "$3" '[.[$k][]? | select(.name == $n or .name == ("http://" + $n))][0].id // empty' <<<"$1"
}

# Read before anything is registered, so that an unreadable catalog leaves CloudStack as it was.
if ! catalog="$(read_catalog)" || ! jq -e '.status == "success"' <<<"$catalog" >/dev/null; then
  say "the extension printed no catalog of its actions (set EXTENSION to a kubevirt-extension executable): $catalog"
  exit 1
fi

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

# add_action JSON: registers one custom action of the catalog on Instances unless one of that name exists. Its
# parameters are typed as the extension reads them, with validation format NONE.
add_action() {
  local name id lines
  local args=()
  name="$(jq -r .name <<<"$1")"
  id="$(first_id "$(cmk list customactions extensionid="$ext_id" name="$name")" extensioncustomaction "$name")"
  if [ -n "$id" ]; then
    say "custom action $name exists ($id)"
    return
  fi
  lines="$(jq -r '
    "name=\(.name)", "resourcetype=VirtualMachine", "description=\(.description)",
    "allowedroletypes=\(.roles | join(","))", "timeout=\(.timeout)", "enabled=true",
    (select(.successmessage) | "successmessage=\(.successmessage)"),
    (select(.errormessage) | "errormessage=\(.errormessage)"),
    ((.parameters // []) | to_entries[] | "parameters[\(.key)].name=\(.value.name)", "parameters[\(.key)].type=\(.value.type)",
      "parameters[\(.key)].validationformat=NONE", "parameters[\(.key)].required=\(.value.required)")' <<<"$1")"
  mapfile -t args <<<"$lines"
  id="$(cmk add customaction extensionid="$ext_id" "${args[@]}" | jq -r '.extensioncustomaction.id')"
  say "added custom action $name ($id)"
}

found="$(jq -c '.actions[] | select(.kind == "custom")' <<<"$catalog")"
mapfile -t custom_actions <<<"$found"
for action in "${custom_actions[@]}"; do
  [ -z "$action" ] || add_action "$action"
done
say "done: deploy an Instance in zone $ZONE_ID with template $TEMPLATE"
