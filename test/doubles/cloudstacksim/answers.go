package cloudstacksim

import (
	"encoding/json"
	"errors"
	"strings"
)

// CloudStack's VirtualMachine.PowerState values, as getPowerStateFromString yields them.
const (
	PowerOn      = "PowerOn"
	PowerOff     = "PowerOff"
	PowerUnknown = "PowerUnknown"
)

// PowerStateFromString is getPowerStateFromString: case-insensitive PowerOn/PowerOff, anything else unknown.
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

// ParseStatus reads a status answer as ExternalPathPayloadProvisioner does: a bare word, or a JSON object's
// power_state. Any failure means PowerUnknown.
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

// ParseStatuses reads a statuses answer as getVmPowerStates does: status must be success and power_state an
// object; each value goes through PowerStateFromString.
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
