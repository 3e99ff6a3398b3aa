package cloudstacksim

import (
	"encoding/json"
	"errors"
	"strings"
)

// How CloudStack reads the answers of status and statuses. status is read from
// plugins/hypervisors/external/src/main/java/org/apache/cloudstack/hypervisor/external/provisioner/
// ExternalPathPayloadProvisioner.java (apache/cloudstack @0337e341, the same at @de357a6f): getVmPowerState,
// parsePowerStateFromResponse and getPowerStateFromString. The Java side of statuses (PR #11619, 4.22.1) is not in
// any source read here: ParseStatuses follows the PR's description and CloudStack's Proxmox extension's statuses
// (extensions/Proxmox/proxmox.py @0ef2aa11), and says so. The real code cannot run here: it needs a management
// server and its database.

// CloudStack's VirtualMachine.PowerState values, as getPowerStateFromString yields them.
const (
	PowerOn      = "PowerOn"
	PowerOff     = "PowerOff"
	PowerUnknown = "PowerUnknown"
)

// PowerStateFromString is getPowerStateFromString: case-insensitive PowerOn/PowerOff, anything else (blank
// included) unknown.
func PowerStateFromString(s string) string {
	switch {
	case strings.EqualFold(s, PowerOn):
		return PowerOn
	case strings.EqualFold(s, PowerOff):
		return PowerOff
	default:
		return PowerUnknown
	}
}

// ParseStatus reads a status answer as getVmPowerState and parsePowerStateFromResponse do: a failed run is
// unknown; output (already trimmed, as executeExternalCommand trims it) not starting with "{" is a bare word;
// otherwise the JSON object's power_state, and any parse failure is unknown.
func ParseStatus(r Result) string {
	if !r.Succeeded() {
		return PowerUnknown
	}
	if !strings.HasPrefix(r.Output, "{") {
		return PowerStateFromString(r.Output)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal([]byte(r.Output), &obj); err != nil {
		return PowerUnknown // Gson's parse exception: CloudStack logs it and reports unknown
	}
	var s string
	if err := json.Unmarshal(obj["power_state"], &s); err != nil {
		return PowerUnknown
	}
	return PowerStateFromString(s)
}

// ErrFallback is returned when CloudStack would fall back to one status call per VM.
var ErrFallback = errors.New("statuses answer unusable: CloudStack falls back to status per VM")

// ParseStatuses reads a statuses answer as PR #11619 describes it (not read from its source, see above): status
// must be success and power_state an object of names to states, each through PowerStateFromString; anything
// else makes CloudStack fall back to one status per VM.
func ParseStatuses(r Result) (map[string]string, error) {
	if !r.Succeeded() {
		return nil, ErrFallback
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal([]byte(r.Output), &obj); err != nil {
		return nil, err // Gson would throw: the ping fails
	}
	var status string
	if json.Unmarshal(obj["status"], &status) != nil || !strings.EqualFold(status, "success") {
		return nil, ErrFallback
	}
	var states map[string]json.RawMessage
	if json.Unmarshal(obj["power_state"], &states) != nil || states == nil {
		return nil, ErrFallback
	}
	out := make(map[string]string, len(states))
	for name, raw := range states {
		var s string
		_ = json.Unmarshal(raw, &s)
		out[name] = PowerStateFromString(s)
	}
	return out, nil
}
