package cloudstacksim

// Instance is what CloudStack knows of one Instance, enough to build its payloads.
type Instance struct {
	ID       int64
	Name     string // internal name, i-<account>-<id>-VM
	UUID     string
	CPUs     int
	MemoryMB int64
	BootType string // "", BIOS or UEFI
	BootMode string // "", LEGACY or SECURE
	NICs     []NIC
	// Details are the Instance's External: details (template, offering and Instance), prefix stripped.
	Details map[string]string
	// RootDiskBytes, when set, sends a ROOT volume of that size in disks, as GsonHelper writes a DiskTO (its
	// VolumeObjectTO wrapped in an object keyed by the class: core/src/main/java/com/cloud/serializer/
	// GsonHelper.java registers core/src/main/java/com/cloud/agent/transport/InterfaceTypeAdaptor.java for
	// DataTO, whose serialize writes {src.getClass().getName(): src}; apache/cloudstack @79cc9704). CloudStack
	// 4.21 and 4.22 send no volumes for External Instances.
	RootDiskBytes int64
	// State is the state CloudStack records for the Instance between actions, which the actions it sends from
	// that record carry (see Host.Payload): Running when empty, or Stopped.
	State string
}

// NIC is one CloudStack NIC on a VLAN.
type NIC struct {
	DeviceID     int
	MAC          string
	IP           string
	BroadcastURI string // vlan://1577
}

// Host holds the details of the CloudStack host, cluster registration and extension.
type Host struct {
	Host, ResourceMap, Extension map[string]string
}

// Payload builds what CloudStack writes for action on the Instance. ExternalPathPayloadProvisioner
// (plugins/hypervisors/external/src/main/java/org/apache/cloudstack/hypervisor/external/provisioner/
// ExternalPathPayloadProvisioner.java, apache/cloudstack @de357a6f) passes loadAccessDetails the
// VirtualMachineTO of the command behind the action, and the commands differ (the delete's StopCommand:
// plugins/hypervisors/external/src/main/java/org/apache/cloudstack/guru/ExternalHypervisorGuru.java
// finalizeExpunge, @0174a131):
//
//   - prepare (PrepareExternalProvisioningCommand), create and start (StartCommand, run as create when the
//     TO's details say deployvm=true) carry the TO of the Instance being started, state Starting, NICs in full;
//   - stop (StopCommand) and delete (the StopCommand of ExternalHypervisorGuru.finalizeExpunge) carry a TO
//     built from the bare record (new VirtualMachineProfileImpl(vm)), state Stopping, no NICs;
//   - statuses carries no Instance at all (StatusesPayload);
//   - every other action (status from getVmPowerState, reboot, getconsole, the custom actions) carries the TO
//     of the record as it stands: the Instance's State, no NICs.
func (h Host) Payload(action string, in Instance) map[string]any {
	switch action {
	case "prepare", "create", "start":
		return h.PayloadAs(in, "Starting", true)
	case "stop", "delete":
		return h.PayloadAs(in, "Stopping", false)
	case "statuses":
		return h.StatusesPayload()
	}
	state := in.State
	if state == "" {
		state = "Running"
	}
	return h.PayloadAs(in, state, false)
}

// PayloadAs builds what loadAccessDetails writes for a VM in state, with its NICs in full or none. Payload
// knows which action CloudStack sends in which shape; PayloadAs is for a test that needs a shape of its own.
func (h Host) PayloadAs(in Instance, state string, withNICs bool) map[string]any {
	vmDetails := map[string]string{"cpuOvercommitRatio": "2.0", "Message.ReservedCapacityFreed.Flag": "false"}
	for k, v := range in.Details {
		vmDetails["External:"+k] = v
	}
	if state == "Starting" && withNICs {
		vmDetails["deployvm"] = "true"
	}
	nics := []map[string]any{}
	if withNICs {
		for _, n := range in.NICs {
			nics = append(nics, nicTO(n))
		}
	}
	ram := in.MemoryMB << 20
	to := map[string]any{
		"id": in.ID, "name": in.Name, "uuid": in.UUID, "state": state, "type": "User",
		"cpus": in.CPUs, "minSpeed": 500, "maxSpeed": 500, "minRam": ram, "maxRam": ram,
		"arch": "x86_64", "bootArgs": "", "enableHA": false, "limitCpuUse": false,
		"enableDynamicallyScaleVm": false, "vncPassword": "uHQHQ4niy8f4ogwCM1k-rw",
		"details": vmDetails, "enterHardwareSetup": false, "disks": []any{}, "nics": nics,
		"configDriveLocation": "SECONDARY", "guestOsDetails": map[string]any{}, "extraConfig": map[string]any{},
		"networkIdToNetworkNameMap": map[string]any{},
	}
	if in.RootDiskBytes > 0 {
		to["disks"] = []any{map[string]any{"diskSeq": 0, "type": "ROOT", "data": map[string]any{
			"org.apache.cloudstack.storage.to.VolumeObjectTO": map[string]any{"volumeType": "ROOT", "size": in.RootDiskBytes, "name": "ROOT-" + in.Name},
		}}}
	}
	if in.BootType != "" {
		to["bootType"] = in.BootType
	}
	if in.BootMode != "" {
		to["bootMode"] = in.BootMode
	}
	external := h.external()
	if len(in.Details) > 0 {
		external["virtualmachine"] = in.Details
	}
	return map[string]any{
		"virtualmachineid":      in.UUID,
		"virtualmachinename":    in.Name,
		"cloudstack.vm.details": to,
		"externaldetails":       external,
		"caller": map[string]string{
			"roleid": "6b86674b-7e61-11f0-ba77-1e00c8000158", "rolename": "Root Admin", "name": "admin",
			"roletype": "Admin", "id": "93567ed9-7e61-11f0-ba77-1e00c8000158", "type": "ADMIN",
		},
	}
}

// StatusesPayload is the host-level payload of the 4.22 statuses ping: details only.
func (h Host) StatusesPayload() map[string]any {
	return map[string]any{"externaldetails": h.external()}
}

// external omits empty maps, as loadAccessDetails does.
func (h Host) external() map[string]any {
	out := map[string]any{}
	for key, m := range map[string]map[string]string{"host": h.Host, "resourcemap": h.ResourceMap, "extension": h.Extension} {
		if len(m) > 0 {
			out[key] = m
		}
	}
	return out
}

func nicTO(n NIC) map[string]any {
	return map[string]any{
		"deviceId": n.DeviceID, "networkRateMbps": 200, "defaultNic": n.DeviceID == 0, "pxeDisable": false,
		"nicUuid": "388e2dad-d1f1-4381-8e32-4878f6d2" + hex4(n.DeviceID), "details": map[string]string{
			"MacAddressChanges": "true", "PromiscuousMode": "false", "MacLearning": "false", "ForgedTransmits": "true",
		},
		"dpdkEnabled": false, "networkId": 204, "networkSegmentName": "D1-A2-Z1-S204",
		"uuid": "3cd4f011-88e1-4b01-875f-ce318c3678a5", "ip": n.IP, "netmask": "255.255.255.0",
		"gateway": "10.1.1.1", "mac": n.MAC, "dns1": "10.0.32.1", "dns2": "8.8.8.8", "broadcastType": "Vlan",
		"type": "Guest", "broadcastUri": n.BroadcastURI, "isolationUri": n.BroadcastURI,
		"securityGroupEnabled": false, "name": "cloudbr1",
	}
}

func hex4(i int) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[i>>12&15], digits[i>>8&15], digits[i>>4&15], digits[i&15]})
}
