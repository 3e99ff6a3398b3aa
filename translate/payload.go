// Package translate maps CloudStack's Orchestrator-extension payloads onto KubeVirt objects and KubeVirt state
// back onto CloudStack power states. It is pure: no I/O, no clock, no API server.
package translate

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Payload is the JSON file CloudStack writes for each call (ExternalPathPayloadProvisioner.loadAccessDetails).
// Gson omits null fields, so every field may be absent; which ones are present depends on the action.
type Payload struct {
	ExternalDetails    ExternalDetails   `json:"externaldetails"`
	VirtualMachineID   string            `json:"virtualmachineid,omitempty"`
	VirtualMachineName string            `json:"virtualmachinename,omitempty"`
	VM                 *VirtualMachineTO `json:"cloudstack.vm.details,omitempty"`
	// Action is set for custom actions and for agent commands CloudStack forwards under their Java text.
	Action string `json:"action,omitempty"`
	// Parameters are a custom action's parameters (see Params).
	Parameters Params `json:"parameters,omitempty"`
}

// ExternalDetails are the operator's key/value settings, grouped by where they were set.
type ExternalDetails struct {
	VirtualMachine map[string]string `json:"virtualmachine,omitempty"`
	Host           map[string]string `json:"host,omitempty"`
	ResourceMap    map[string]string `json:"resourcemap,omitempty"`
	Extension      map[string]string `json:"extension,omitempty"`
	Action         map[string]string `json:"action,omitempty"`
}

// VirtualMachineTO is the subset of CloudStack's VirtualMachineTO the extension uses.
type VirtualMachineTO struct {
	ID       int64             `json:"id,omitempty"`
	Name     string            `json:"name,omitempty"`
	UUID     string            `json:"uuid,omitempty"`
	State    string            `json:"state,omitempty"`
	Type     string            `json:"type,omitempty"`
	CPUs     int               `json:"cpus,omitempty"`
	Speed    int               `json:"speed,omitempty"`
	MinRAM   int64             `json:"minRam,omitempty"`
	MaxRAM   int64             `json:"maxRam,omitempty"`
	Arch     string            `json:"arch,omitempty"`
	BootType string            `json:"bootType,omitempty"`
	BootMode string            `json:"bootMode,omitempty"`
	HostName string            `json:"hostName,omitempty"`
	Details  map[string]string `json:"details,omitempty"`
	NICs     []NicTO           `json:"nics,omitempty"`
	// Disks are the Instance's volumes; CloudStack sends [] for External Instances that have none.
	Disks []DiskTO `json:"disks,omitempty"`
}

// DiskTO is the subset of CloudStack's DiskTO the extension uses: the volume's type (ROOT, DATADISK, ISO) and
// the size CloudStack accounts for it, in bytes.
type DiskTO struct {
	Type string     `json:"type,omitempty"`
	Data DiskDataTO `json:"data"`
}

// DiskDataTO is a DiskTO's data (a VolumeObjectTO). CloudStack's GsonHelper writes DataTO fields wrapped in an
// object keyed by their Java class ({"org.apache.cloudstack.storage.to.VolumeObjectTO":{"size":…}}); plain
// Gson writes the fields themselves. Both are read.
type DiskDataTO struct {
	Size       int64  `json:"size,omitempty"`
	VolumeType string `json:"volumeType,omitempty"`
}

// UnmarshalJSON reads the fields, or the fields of the one object they are wrapped in.
func (d *DiskDataTO) UnmarshalJSON(data []byte) error {
	type plain DiskDataTO
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return err
	}
	if _, ok := fields["size"]; !ok && len(fields) == 1 {
		for _, inner := range fields {
			data = inner
		}
	}
	return json.Unmarshal(data, (*plain)(d))
}

// NicTO is the subset of CloudStack's NicTO the extension uses. Note that `uuid` is the network's UUID and
// `nicUuid` the NIC's own.
type NicTO struct {
	DeviceID      int    `json:"deviceId"`
	DefaultNic    bool   `json:"defaultNic,omitempty"`
	NicUUID       string `json:"nicUuid,omitempty"`
	NetworkUUID   string `json:"uuid,omitempty"`
	IP            string `json:"ip,omitempty"`
	Netmask       string `json:"netmask,omitempty"`
	Gateway       string `json:"gateway,omitempty"`
	MAC           string `json:"mac,omitempty"`
	BroadcastType string `json:"broadcastType,omitempty"`
	BroadcastURI  string `json:"broadcastUri,omitempty"`
	Type          string `json:"type,omitempty"`
	MTU           int    `json:"mtu,omitempty"`
}

// ParsePayload decodes a payload file's content. It never echoes the content back: the file holds secrets.
func ParsePayload(data []byte) (*Payload, error) {
	if len(data) == 0 {
		return nil, errors.New("payload file is empty")
	}
	var p Payload
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("payload is not CloudStack's JSON: %w", describeJSONError(err))
	}
	return &p, nil
}

// describeJSONError keeps the position and type information of a decoding error but drops any quoted input.
func describeJSONError(err error) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Errorf("invalid JSON at byte %d", syntax.Offset)
	case errors.As(err, &typ):
		return fmt.Errorf("field %q holds a JSON %s where a %s is expected", typ.Field, typ.Value, typ.Type)
	default:
		return errors.New("invalid JSON")
	}
}

// InstanceName is the CloudStack internal name (i-2-45-VM), from whichever place the payload carries it.
func (p *Payload) InstanceName() string {
	if p.VirtualMachineName != "" {
		return p.VirtualMachineName
	}
	if p.VM != nil {
		return p.VM.Name
	}
	return ""
}

// InstanceUUID is the CloudStack Instance UUID.
func (p *Payload) InstanceUUID() string {
	if p.VirtualMachineID != "" {
		return p.VirtualMachineID
	}
	if p.VM != nil {
		return p.VM.UUID
	}
	return ""
}

// RootVolumeSize is the size CloudStack accounts for the Instance's root volume, in bytes; ok is false when the
// payload carries no root volume with a size (CloudStack sends none for External Instances without volumes).
func (p *Payload) RootVolumeSize() (size int64, ok bool) {
	if p.VM == nil {
		return 0, false
	}
	for _, d := range p.VM.Disks {
		if (d.Type == "ROOT" || d.Data.VolumeType == "ROOT") && d.Data.Size > 0 {
			return d.Data.Size, true
		}
	}
	return 0, false
}
