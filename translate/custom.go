package translate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Params are a custom action's parameters as runCustomAction passes them in the payload's top-level
// "parameters": declared ones converted to their type (BOOLEAN to a JSON boolean, NUMBER to a number, STRING to
// a string), undeclared ones passed through as strings. Each reader accepts both forms, so an action works
// whether or not its registration declared the parameter's type.
type Params map[string]json.RawMessage

// Names of the custom actions' parameters. snap_* are those of CloudStack's built-in Proxmox extension, so
// scripts written for it work here.
const (
	ParamSnapshotName        = "snap_name"
	ParamSnapshotDescription = "snap_description"
	ParamSnapshotSaveMemory  = "snap_save_memory"
	ParamTargetNode          = "target_node"
	ParamEvents              = "events"
)

// Limits of the parameters.
const (
	// MaxSnapshotName keeps a snapshot's name a DNS-1123 label, which kubectl, labels and host names all take.
	MaxSnapshotName = 63
	// MaxSnapshotDescription bounds the annotation holding the description.
	MaxSnapshotDescription = 1024
	// DefaultEvents and MaxEvents bound the events Describe shows.
	DefaultEvents = 10
	MaxEvents     = 50
)

// only refuses parameters an action does not take: a misspelt name would otherwise be ignored silently.
func (ps Params) only(allowed ...string) error {
	var unknown []string
	for name := range ps {
		if !slices.Contains(allowed, name) {
			unknown = append(unknown, strconv.Quote(truncateParam(name)))
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	takes := "no parameters"
	if len(allowed) > 0 {
		takes = "only " + strings.Join(allowed, ", ")
	}
	// The answer is prefixed with the action's name already.
	return fmt.Errorf("the action takes %s; unknown parameter %s", takes, strings.Join(unknown, ", "))
}

// str reads a string parameter; ok is false when it is absent or empty.
func (ps Params) str(name string) (value string, ok bool, err error) {
	raw, present := ps[name]
	if !present || isNull(raw) {
		return "", false, nil
	}
	if err := json.Unmarshal(raw, &value); err != nil {
		return "", false, fmt.Errorf("parameter %s must be a string", name)
	}
	return value, value != "", nil
}

// boolean reads a BOOLEAN parameter (a JSON boolean, or "true"/"false" when passed undeclared).
func (ps Params) boolean(name string, def bool) (bool, error) {
	raw, present := ps[name]
	if !present || isNull(raw) {
		return def, nil
	}
	var b bool
	if json.Unmarshal(raw, &b) == nil {
		return b, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		case "":
			return def, nil
		}
	}
	return false, fmt.Errorf("parameter %s must be true or false", name)
}

// integer reads a NUMBER parameter within [lo, hi] (a JSON number, or a decimal string when passed undeclared).
func (ps Params) integer(name string, def, lo, hi int) (int, error) {
	raw, present := ps[name]
	if !present || isNull(raw) {
		return def, nil
	}
	text := string(bytes.TrimSpace(raw))
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if s = strings.TrimSpace(s); s == "" {
			return def, nil
		}
		text = s
	}
	// CloudStack converts NUMBER to an int or a float; 10 may arrive as 10.0.
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || f != float64(int(f)) || int(f) < lo || int(f) > hi {
		return 0, fmt.Errorf("parameter %s must be a whole number from %d to %d", name, lo, hi)
	}
	return int(f), nil
}

func isNull(raw json.RawMessage) bool { return len(raw) == 0 || string(bytes.TrimSpace(raw)) == "null" }

// truncateParam shortens a value quoted in an error message.
func truncateParam(s string) string {
	const n = 64
	if len(s) <= n {
		return s
	}
	for !utf8.ValidString(s[:n]) {
		s = s[:len(s)-1]
	}
	return s[:n] + "..."
}

// SnapshotName validates the required snap_name: a DNS-1123 label of at most 63 characters, so that it names a
// Kubernetes object as typed (no case folding: "Daily" and "daily" would otherwise be one snapshot).
func (ps Params) SnapshotName() (string, error) {
	name, ok, err := ps.str(ParamSnapshotName)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("parameter %s is required: the snapshot's name", ParamSnapshotName)
	}
	if len(name) > MaxSnapshotName {
		return "", fmt.Errorf("parameter %s %q is %d characters long; at most %d", ParamSnapshotName, truncateParam(name), len(name), MaxSnapshotName)
	}
	if lower := strings.ToLower(name); lower != name && dns1123Label(lower) == "" {
		return "", fmt.Errorf("parameter %s %q has upper-case letters, which Kubernetes names do not take: use %q", ParamSnapshotName, name, lower)
	}
	if dns1123Label(name) != "" {
		return "", fmt.Errorf("parameter %s %q: lower-case letters, digits and '-' only, starting and ending with a letter or digit", ParamSnapshotName, truncateParam(name))
	}
	return name, nil
}

// SnapshotRequest is what CreateSnapshot makes.
type SnapshotRequest struct {
	Name        string
	Description string
}

// CreateSnapshotParams validates CreateSnapshot's parameters. KubeVirt's snapshots hold the VM's spec and its
// disks, never the guest's memory, so snap_save_memory=true (which Proxmox's action takes) is refused rather
// than ignored.
func (ps Params) CreateSnapshotParams() (SnapshotRequest, error) {
	if err := ps.only(ParamSnapshotName, ParamSnapshotDescription, ParamSnapshotSaveMemory); err != nil {
		return SnapshotRequest{}, err
	}
	name, err := ps.SnapshotName()
	if err != nil {
		return SnapshotRequest{}, err
	}
	desc, _, err := ps.str(ParamSnapshotDescription)
	if err != nil {
		return SnapshotRequest{}, err
	}
	if n := utf8.RuneCountInString(desc); n > MaxSnapshotDescription {
		return SnapshotRequest{}, fmt.Errorf("parameter %s is %d characters long; at most %d", ParamSnapshotDescription, n, MaxSnapshotDescription)
	}
	memory, err := ps.boolean(ParamSnapshotSaveMemory, false)
	if err != nil {
		return SnapshotRequest{}, err
	}
	if memory {
		return SnapshotRequest{}, fmt.Errorf("parameter %s=true cannot be honoured: KubeVirt snapshots hold the VM's disks and spec, not the guest's memory; leave it out or set it to false", ParamSnapshotSaveMemory)
	}
	return SnapshotRequest{Name: name, Description: desc}, nil
}

// SnapshotNameParams validates the parameters of RestoreSnapshot and DeleteSnapshot: snap_name only.
func (ps Params) SnapshotNameParams() (string, error) {
	if err := ps.only(ParamSnapshotName); err != nil {
		return "", err
	}
	return ps.SnapshotName()
}

// NoParams validates an action that takes no parameters (ListSnapshots, Pause, Resume).
func (ps Params) NoParams() error { return ps.only() }

// MigrateParams validates Migrate's optional target_node: the node to move to, a node name (DNS-1123
// subdomain); empty lets the scheduler choose.
func (ps Params) MigrateParams() (targetNode string, err error) {
	if err := ps.only(ParamTargetNode); err != nil {
		return "", err
	}
	node, ok, err := ps.str(ParamTargetNode)
	if err != nil || !ok {
		return "", err
	}
	if dns1123Subdomain(node) != "" {
		return "", fmt.Errorf("parameter %s %q is not a node name: lower-case letters, digits, '-' and '.' only (kubectl get nodes lists them)", ParamTargetNode, truncateParam(node))
	}
	return node, nil
}

// DescribeParams validates Describe's optional events: how many recent events to show.
func (ps Params) DescribeParams() (events int, err error) {
	if err := ps.only(ParamEvents); err != nil {
		return 0, err
	}
	return ps.integer(ParamEvents, DefaultEvents, 0, MaxEvents)
}

// SnapshotObjectName names the VirtualMachineSnapshot of an Instance's snapshot: the VM's name first, so that
// two Instances in one namespace may each have a snapshot "daily", and kubectl lists an Instance's snapshots
// together. Both parts are DNS-1123 labels, so the result is a DNS-1123 subdomain of at most 127 characters.
func SnapshotObjectName(vmName, snapshot string) string { return vmName + "-" + snapshot }

// Annotations of the snapshots the extension creates.
const (
	// AnnotationSnapshotName holds the name CloudStack knows a snapshot by (snap_name).
	AnnotationSnapshotName = Prefix + "snapshot-name"
	// AnnotationSnapshotDescription holds snap_description.
	AnnotationSnapshotDescription = Prefix + "snapshot-description"
)
