package translate

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	kubevirtv1 "kubevirt.io/api/core/v1"
)

// samplePayload loads the create payload reconstructed from CloudStack's source, with the given VM-level
// details (as templates and offerings set them) and this project's host details.
func samplePayload(t *testing.T, vmDetails map[string]string) *Payload {
	t.Helper()
	data, err := os.ReadFile("testdata/create_payload.json")
	require.NoError(t, err)
	p, err := ParsePayload(data)
	require.NoError(t, err)
	p.ExternalDetails.Host = map[string]string{"kubeconfig": "/etc/cloudstack/kubevirt/kubeconfig", "namespace": "tenant-a"}
	for k, v := range vmDetails {
		if key, ok := strings.CutPrefix(k, "host:"); ok { // a host detail: the operator's level
			p.ExternalDetails.Host[key] = v
			continue
		}
		p.ExternalDetails.VirtualMachine[k] = v
	}
	return p
}

func buildVM(t *testing.T, p *Payload) (*kubevirtv1.VirtualMachine, error) {
	t.Helper()
	spec, err := p.Details().Spec()
	if err != nil {
		return nil, err
	}
	return VirtualMachine(p, "tenant-a", spec)
}

func TestVirtualMachineFromSamplePayload(t *testing.T) {
	vm, err := buildVM(t, samplePayload(t, map[string]string{"image": "quay.io/containerdisks/fedora:43"}))
	require.NoError(t, err)

	assert.Equal(t, "i-2-45-vm", vm.Name)
	assert.Equal(t, "tenant-a", vm.Namespace)
	assert.Equal(t, map[string]string{
		LabelManagedBy: ManagedBy, LabelInstanceName: "i-2-45-VM", LabelInstanceUUID: "126f4562-1f0f-4313-875e-6150cabeb72f",
	}, vm.Labels)
	assert.Equal(t, "i-2-45-VM", vm.Spec.Template.ObjectMeta.Labels[LabelInstanceName], "template labels reach the VMI")
	require.NotNil(t, vm.Spec.RunStrategy)
	assert.Equal(t, kubevirtv1.RunStrategyAlways, *vm.Spec.RunStrategy)
	assert.Nil(t, vm.Spec.Running, "spec.running is deprecated and exclusive with runStrategy")

	domain := vm.Spec.Template.Spec.Domain
	assert.Equal(t, &kubevirtv1.CPU{Sockets: 1, Cores: 1, Threads: 1}, domain.CPU)
	assert.True(t, resource.MustParse("512Mi").Equal(*domain.Memory.Guest))
	assert.True(t, resource.MustParse("512Mi").Equal(domain.Resources.Requests[corev1.ResourceMemory]))
	assert.Equal(t, "126f4562-1f0f-4313-875e-6150cabeb72f", string(domain.Firmware.UUID))
	assert.NotNil(t, domain.Firmware.Bootloader.BIOS)
	assert.Equal(t, "amd64", vm.Spec.Template.Spec.Architecture)

	require.Len(t, vm.Spec.Template.Spec.Volumes, 1)
	assert.Equal(t, "quay.io/containerdisks/fedora:43", vm.Spec.Template.Spec.Volumes[0].ContainerDisk.Image)
	require.Len(t, domain.Devices.Disks, 1)
	assert.Equal(t, kubevirtv1.DiskBusVirtio, domain.Devices.Disks[0].Disk.Bus)

	require.Len(t, domain.Devices.Interfaces, 1)
	iface := domain.Devices.Interfaces[0]
	assert.Equal(t, "02:01:00:cc:00:01", iface.MacAddress)
	assert.NotNil(t, iface.Bridge)
	assert.Equal(t, "virtio", iface.Model)
	assert.Equal(t, "vlan-1577", vm.Spec.Template.Spec.Networks[0].Multus.NetworkName)
	assert.Equal(t, iface.Name, vm.Spec.Template.Spec.Networks[0].Name)
	assert.False(t, *domain.Devices.AutoattachPodInterface)
}

func TestMapResources(t *testing.T) {
	tests := []struct {
		name             string
		cpus             int
		minRAM, maxRAM   int64
		details          map[string]string
		wantSockets      uint32
		wantGuest        string
		wantRequest      string
		wantInstancetype string
		wantErr          string
	}{
		{name: "plain", cpus: 4, minRAM: 4 << 30, maxRAM: 4 << 30, wantSockets: 4, wantGuest: "4Gi", wantRequest: "4Gi"},
		{name: "memory overcommit: guest sees maxRam, pod requests minRam", cpus: 2, minRAM: 1 << 30, maxRAM: 2 << 30, wantSockets: 2, wantGuest: "2Gi", wantRequest: "1Gi"},
		{name: "instancetype stands in for CPU and memory", cpus: 2, minRAM: 1 << 30, details: map[string]string{"instancetype": "u1.medium", "preference": "fedora"}, wantInstancetype: "u1.medium"},
		{name: "instancetype needs no CPU count", cpus: 0, details: map[string]string{"instancetype": "u1.small"}, wantInstancetype: "u1.small"},
		{name: "no CPUs", cpus: 0, minRAM: 1 << 30, wantErr: "0 CPUs"},
		{name: "memory under the webhook's floor", cpus: 1, minRAM: 1000, wantErr: "at least 1 MiB"},
		{name: "invalid instancetype name", cpus: 1, minRAM: 1 << 30, details: map[string]string{"instancetype": "U1 Medium"}, wantErr: "detail instancetype"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			details := map[string]string{"image": "quay.io/containerdisks/fedora:43"}
			for k, v := range tt.details {
				details[k] = v
			}
			p := samplePayload(t, details)
			p.VM.CPUs, p.VM.MinRAM, p.VM.MaxRAM = tt.cpus, tt.minRAM, tt.maxRAM
			vm, err := buildVM(t, p)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			domain := vm.Spec.Template.Spec.Domain
			if tt.wantInstancetype != "" {
				assert.Equal(t, tt.wantInstancetype, vm.Spec.Instancetype.Name)
				assert.Equal(t, "VirtualMachineClusterInstancetype", vm.Spec.Instancetype.Kind)
				assert.Nil(t, domain.CPU, "KubeVirt rejects CPU alongside an instancetype")
				assert.Nil(t, domain.Memory, "KubeVirt rejects memory alongside an instancetype")
				assert.Empty(t, domain.Resources.Requests)
				if pref := tt.details["preference"]; pref != "" {
					assert.Equal(t, pref, vm.Spec.Preference.Name)
					assert.Equal(t, "VirtualMachineClusterPreference", vm.Spec.Preference.Kind)
				}
				return
			}
			assert.Equal(t, tt.wantSockets, domain.CPU.Sockets)
			assert.True(t, resource.MustParse(tt.wantGuest).Equal(*domain.Memory.Guest), "guest %s", domain.Memory.Guest)
			assert.True(t, resource.MustParse(tt.wantRequest).Equal(domain.Resources.Requests[corev1.ResourceMemory]))
		})
	}
}

func TestMapFirmware(t *testing.T) {
	tests := []struct {
		bootType, bootMode  string
		wantEFI, wantSecure bool
		wantErr             string
	}{
		{bootType: "", wantEFI: false},
		{bootType: "BIOS", wantEFI: false},
		{bootType: "UEFI", bootMode: "LEGACY", wantEFI: true, wantSecure: false},
		{bootType: "uefi", bootMode: "", wantEFI: true, wantSecure: false},
		{bootType: "UEFI", bootMode: "SECURE", wantEFI: true, wantSecure: true},
		{bootType: "OpenFirmware", wantErr: `boot type "OpenFirmware"`},
	}
	for _, tt := range tests {
		t.Run(tt.bootType+"/"+tt.bootMode, func(t *testing.T) {
			p := samplePayload(t, map[string]string{"image": "quay.io/containerdisks/fedora:43"})
			p.VM.BootType, p.VM.BootMode = tt.bootType, tt.bootMode
			vm, err := buildVM(t, p)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			domain := vm.Spec.Template.Spec.Domain
			if !tt.wantEFI {
				assert.NotNil(t, domain.Firmware.Bootloader.BIOS)
				assert.Nil(t, domain.Firmware.Bootloader.EFI)
				return
			}
			require.NotNil(t, domain.Firmware.Bootloader.EFI)
			require.NotNil(t, domain.Firmware.Bootloader.EFI.SecureBoot, "unset secureBoot means true to KubeVirt")
			assert.Equal(t, tt.wantSecure, *domain.Firmware.Bootloader.EFI.SecureBoot)
			if tt.wantSecure {
				require.NotNil(t, domain.Features, "Secure Boot requires SMM")
				assert.True(t, *domain.Features.SMM.Enabled)
			}
		})
	}
}

func TestMapDisks(t *testing.T) {
	tests := []struct {
		name      string
		details   map[string]string
		check     func(t *testing.T, vm *kubevirtv1.VirtualMachine)
		wantError string
	}{
		{
			name:    "http import with size and storage class",
			details: map[string]string{"root_disk_url": "https://images.example/fedora.qcow2", "root_disk_size": "20Gi", "host:storage_class": "ceph-rbd", "disk_bus": "sata"},
			check: func(t *testing.T, vm *kubevirtv1.VirtualMachine) {
				require.Len(t, vm.Spec.DataVolumeTemplates, 1)
				dv := vm.Spec.DataVolumeTemplates[0]
				assert.Equal(t, "i-2-45-vm-root", dv.Name)
				assert.Equal(t, "i-2-45-VM", dv.Labels[LabelInstanceName], "the DataVolume is found by its Instance labels")
				assert.Equal(t, "https://images.example/fedora.qcow2", dv.Spec.Source.HTTP.URL)
				assert.True(t, resource.MustParse("20Gi").Equal(dv.Spec.Storage.Resources.Requests[corev1.ResourceStorage]))
				assert.Equal(t, "ceph-rbd", *dv.Spec.Storage.StorageClassName)
				assert.Equal(t, "i-2-45-vm-root", vm.Spec.Template.Spec.Volumes[0].DataVolume.Name)
				assert.Equal(t, kubevirtv1.DiskBusSATA, vm.Spec.Template.Spec.Domain.Devices.Disks[0].Disk.Bus)
			},
		},
		{
			name:    "registry import",
			details: map[string]string{"root_disk_url": "docker://quay.io/containerdisks/fedora:43", "root_disk_size": "10Gi"},
			check: func(t *testing.T, vm *kubevirtv1.VirtualMachine) {
				assert.Equal(t, "docker://quay.io/containerdisks/fedora:43", *vm.Spec.DataVolumeTemplates[0].Spec.Source.Registry.URL)
			},
		},
		{
			name:    "clone from a PVC in another namespace, size from the source",
			details: map[string]string{"host:root_disk_pvc": "golden/fedora-43"},
			check: func(t *testing.T, vm *kubevirtv1.VirtualMachine) {
				src := vm.Spec.DataVolumeTemplates[0].Spec.Source.PVC
				assert.Equal(t, "golden", src.Namespace)
				assert.Equal(t, "fedora-43", src.Name)
				assert.Empty(t, vm.Spec.DataVolumeTemplates[0].Spec.Storage.Resources.Requests)
			},
		},
		{
			name:    "clone from a PVC in the VM's namespace",
			details: map[string]string{"root_disk_pvc": "fedora-43", "root_disk_size": "30Gi"},
			check: func(t *testing.T, vm *kubevirtv1.VirtualMachine) {
				assert.Equal(t, "tenant-a", vm.Spec.DataVolumeTemplates[0].Spec.Source.PVC.Namespace)
			},
		},
		{
			name:    "ISO install: cdrom boots first, blank root disk second",
			details: map[string]string{"iso_url": "https://images.example/alpine.iso", "root_disk_size": "8Gi"},
			check: func(t *testing.T, vm *kubevirtv1.VirtualMachine) {
				require.Len(t, vm.Spec.DataVolumeTemplates, 2)
				assert.NotNil(t, vm.Spec.DataVolumeTemplates[0].Spec.Source.Blank)
				assert.Equal(t, "i-2-45-vm-iso", vm.Spec.DataVolumeTemplates[1].Name)
				assert.True(t, resource.MustParse(DefaultISOSize).Equal(vm.Spec.DataVolumeTemplates[1].Spec.Storage.Resources.Requests[corev1.ResourceStorage]))
				disks := vm.Spec.Template.Spec.Domain.Devices.Disks
				require.Len(t, disks, 2)
				assert.Equal(t, "rootdisk", disks[0].Name)
				assert.Equal(t, uint(2), *disks[0].BootOrder)
				assert.Equal(t, "cdrom", disks[1].Name)
				assert.Equal(t, uint(1), *disks[1].BootOrder)
				assert.NotNil(t, disks[1].CDRom)
			},
		},
		{name: "no source", details: map[string]string{}, wantError: "no root disk"},
		{name: "two sources", details: map[string]string{"image": "a/b:c", "root_disk_pvc": "x"}, wantError: "detail root_disk_pvc"},
		{name: "import without size", details: map[string]string{"root_disk_url": "https://images.example/f.qcow2"}, wantError: "detail root_disk_size"},
		{name: "import from ftp", details: map[string]string{"root_disk_url": "ftp://images.example/f.qcow2", "root_disk_size": "1Gi"}, wantError: `scheme "ftp"`},
		{name: "bad size", details: map[string]string{"root_disk_url": "https://x.example/f", "root_disk_size": "twenty"}, wantError: "detail root_disk_size"},
		{name: "negative size", details: map[string]string{"root_disk_url": "https://x.example/f", "root_disk_size": "-1Gi"}, wantError: "detail root_disk_size"},
		{name: "image given as URL", details: map[string]string{"image": "https://quay.io/x"}, wantError: "detail image"},
		{name: "bad bus", details: map[string]string{"image": "a/b", "disk_bus": "ide"}, wantError: "detail disk_bus"},
		{name: "bad PVC name", details: map[string]string{"root_disk_pvc": "Golden/Fedora"}, wantError: "detail root_disk_pvc"},
		{name: "bad storage class", details: map[string]string{"image": "a/b", "host:storage_class": "Fast SSD"}, wantError: "detail storage_class"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := samplePayload(t, tt.details)
			vm, err := buildVM(t, p)
			if tt.wantError != "" {
				require.ErrorContains(t, err, tt.wantError)
				return
			}
			require.NoError(t, err)
			tt.check(t, vm)
		})
	}
}

func TestMapNetworks(t *testing.T) {
	nic := func(id int, uri, mac string) NicTO { return NicTO{DeviceID: id, BroadcastURI: uri, MAC: mac} }
	tests := []struct {
		name         string
		nics         []NicTO
		details      map[string]string
		wantNetworks []string
		wantMACs     []string
		wantErr      string
	}{
		{name: "default template, device order", nics: []NicTO{nic(1, "vlan://200", "02:00:00:00:00:02"), nic(0, "vlan://100", "02:00:00:00:00:01")},
			wantNetworks: []string{"vlan-100", "vlan-200"}, wantMACs: []string{"02:00:00:00:00:01", "02:00:00:00:00:02"}},
		{name: "explicit map wins, template for the rest", nics: []NicTO{nic(0, "vlan://100", "02:00:00:00:00:01"), nic(1, "vlan://200", "02:00:00:00:00:02")},
			details:      map[string]string{"host:network_map": "100=infra/prod-net, 300=x", "host:network_template": "cs-{vlan}"},
			wantNetworks: []string{"infra/prod-net", "cs-200"}},
		{name: "untagged and vxlan", nics: []NicTO{nic(0, "", "02:00:00:00:00:01"), nic(1, "vxlan://5000", "02:00:00:00:00:02"), nic(2, "vlan://untagged", "02:00:00:00:00:03")},
			wantNetworks: []string{"vlan-untagged", "vlan-vxlan-5000", "vlan-untagged"}},
		{name: "MAC normalised", nics: []NicTO{nic(0, "vlan://1", "02-01-00-CC-00-01")}, wantNetworks: []string{"vlan-1"}, wantMACs: []string{"02:01:00:cc:00:01"}},
		{name: "no NICs", nics: nil, wantNetworks: nil},
		{name: "missing MAC", nics: []NicTO{nic(0, "vlan://1", "")}, wantErr: "NIC 0 has no MAC"},
		{name: "bad MAC", nics: []NicTO{nic(0, "vlan://1", "02:01:00:cc:00")}, wantErr: "not a 6-byte MAC"},
		{name: "EUI-64 MAC", nics: []NicTO{nic(0, "vlan://1", "02:01:00:cc:00:01:02:03")}, wantErr: "not a 6-byte MAC"},
		{name: "multicast MAC", nics: []NicTO{nic(0, "vlan://1", "01:00:5e:00:00:01")}, wantErr: "multicast"},
		{name: "bad broadcast URI", nics: []NicTO{nic(0, "1577", "02:00:00:00:00:01")}, wantErr: "broadcast URI"},
		{name: "bad map entry", nics: []NicTO{nic(0, "vlan://1", "02:00:00:00:00:01")}, details: map[string]string{"host:network_map": "1577"}, wantErr: "detail network_map"},
		{name: "bad map target", nics: []NicTO{nic(0, "vlan://1", "02:00:00:00:00:01")}, details: map[string]string{"host:network_map": "1=Prod Net"}, wantErr: "detail network_map"},
		{name: "bad template", nics: []NicTO{nic(0, "vlan://1", "02:00:00:00:00:01")}, details: map[string]string{"host:network_template": "VLAN_{vlan}"}, wantErr: "detail network_template"},
		{name: "bad NIC model", nics: []NicTO{nic(0, "vlan://1", "02:00:00:00:00:01")}, details: map[string]string{"nic_model": "vmxnet3"}, wantErr: "detail nic_model"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			details := map[string]string{"image": "a/b:c"}
			for k, v := range tt.details {
				details[k] = v
			}
			p := samplePayload(t, details)
			p.VM.NICs = tt.nics
			vm, err := buildVM(t, p)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			tmpl := vm.Spec.Template.Spec
			var networks, macs []string
			for i, n := range tmpl.Networks {
				networks = append(networks, n.Multus.NetworkName)
				macs = append(macs, tmpl.Domain.Devices.Interfaces[i].MacAddress)
				assert.Equal(t, n.Name, tmpl.Domain.Devices.Interfaces[i].Name, "each interface pairs with its network by name")
				assert.NotNil(t, tmpl.Domain.Devices.Interfaces[i].Bridge, "bridge binding on Multus networks")
			}
			assert.Equal(t, tt.wantNetworks, networks)
			if tt.wantMACs != nil {
				assert.Equal(t, tt.wantMACs, macs)
			}
		})
	}
}

func TestVirtualMachineRejectsBadIdentity(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(p *Payload)
		wantErr string
	}{
		{"no VM details", func(p *Payload) { p.VM = nil }, "no cloudstack.vm.details"},
		{"no name", func(p *Payload) { p.VirtualMachineName, p.VM.Name = "", "" }, "names no Instance"},
		{"name too long", func(p *Payload) { p.VirtualMachineName = "i-2-45-VM-" + string(make([]byte, 60)) }, "cannot name a VirtualMachine"},
		{"no UUID", func(p *Payload) { p.VirtualMachineID, p.VM.UUID = "", "" }, "no virtualmachineid"},
		{"unknown architecture", func(p *Payload) { p.VM.Arch = "sparc64" }, "sparc64"},
		{"run strategy Manual", func(p *Payload) { p.ExternalDetails.Host["run_strategy"] = "Manual" }, "detail run_strategy (set on the host)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := samplePayload(t, map[string]string{"image": "a/b:c"})
			tt.mutate(p)
			_, err := buildVM(t, p)
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

func TestRunStrategyDetail(t *testing.T) {
	p := samplePayload(t, map[string]string{"image": "a/b:c", "run_strategy": "rerunonfailure"})
	vm, err := buildVM(t, p)
	require.NoError(t, err)
	assert.Equal(t, kubevirtv1.RunStrategyRerunOnFailure, *vm.Spec.RunStrategy)
}

// TestArchitectures covers what KubeVirt v1.8.0 refuses on arm64 (pkg/virt-api/webhooks/arm64.go) and the
// CD-ROM bus it refuses everywhere (pkg/storage/admitters/disks.go); test/upstream runs the webhooks themselves.
func TestArchitectures(t *testing.T) {
	iso := map[string]string{"iso_url": "https://images.example/alpine.iso", "root_disk_size": "8Gi"}
	tests := []struct {
		name              string
		arch, bootType    string
		bootMode          string
		details           map[string]string
		wantArch          string
		wantEFI, wantBIOS bool
		wantDiskBus       kubevirtv1.DiskBus
		wantCDRomBus      kubevirtv1.DiskBus
		wantErr           string
	}{
		{name: "x86_64 ISO: BIOS, sata cdrom", arch: "x86_64", details: iso, wantArch: "amd64", wantBIOS: true, wantDiskBus: "virtio", wantCDRomBus: "sata"},
		{name: "aarch64 default: UEFI without Secure Boot", arch: "aarch64", wantArch: "arm64", wantEFI: true, wantDiskBus: "virtio"},
		{name: "aarch64 ISO: scsi cdrom", arch: "aarch64", details: iso, wantArch: "arm64", wantEFI: true, wantDiskBus: "virtio", wantCDRomBus: "scsi"},
		{name: "aarch64 UEFI legacy", arch: "aarch64", bootType: "UEFI", bootMode: "LEGACY", wantArch: "arm64", wantEFI: true, wantDiskBus: "virtio"},
		{name: "aarch64 scsi disk", arch: "aarch64", details: map[string]string{"disk_bus": "scsi"}, wantArch: "arm64", wantEFI: true, wantDiskBus: "scsi"},
		{name: "aarch64 sata disk refused", arch: "aarch64", details: map[string]string{"disk_bus": "sata"}, wantErr: "detail disk_bus"},
		{name: "aarch64 BIOS refused", arch: "aarch64", bootType: "BIOS", wantErr: "boot type UEFI"},
		{name: "aarch64 Secure Boot refused", arch: "aarch64", bootType: "UEFI", bootMode: "SECURE", wantErr: "boot mode LEGACY"},
		{name: "s390x ISO: scsi cdrom", arch: "s390x", details: iso, wantArch: "s390x", wantBIOS: true, wantDiskBus: "virtio", wantCDRomBus: "scsi"},
		{name: "unknown arch", arch: "riscv64", wantErr: `architecture "riscv64"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			details := map[string]string{"image": "quay.io/containerdisks/fedora:43"}
			if tt.details["iso_url"] != "" {
				details = map[string]string{}
			}
			for k, v := range tt.details {
				details[k] = v
			}
			p := samplePayload(t, details)
			p.VM.Arch, p.VM.BootType, p.VM.BootMode = tt.arch, tt.bootType, tt.bootMode
			vm, err := buildVM(t, p)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			spec := vm.Spec.Template.Spec
			assert.Equal(t, tt.wantArch, spec.Architecture)
			boot := spec.Domain.Firmware.Bootloader
			assert.Equal(t, tt.wantBIOS, boot.BIOS != nil, "BIOS")
			assert.Equal(t, tt.wantEFI, boot.EFI != nil, "EFI")
			if tt.wantEFI {
				require.NotNil(t, boot.EFI.SecureBoot, "unset means Secure Boot to KubeVirt")
				assert.False(t, *boot.EFI.SecureBoot)
			}
			assert.Equal(t, tt.wantDiskBus, spec.Domain.Devices.Disks[0].Disk.Bus)
			if tt.wantCDRomBus != "" {
				require.Len(t, spec.Domain.Devices.Disks, 2)
				assert.Equal(t, tt.wantCDRomBus, spec.Domain.Devices.Disks[1].CDRom.Bus)
			}
		})
	}
}

// TestPreferenceTakesEffect: a KubeVirt preference fills only fields the VM leaves unset, so with one the
// translator leaves the disk bus, NIC model, CD-ROM bus and bootloader to it unless a detail or CloudStack's
// boot type asks for them.
func TestPreferenceTakesEffect(t *testing.T) {
	tests := []struct {
		name         string
		details      map[string]string
		arch         string
		bootType     string
		wantDiskBus  kubevirtv1.DiskBus
		wantNIC      string
		wantCDRomBus kubevirtv1.DiskBus
		wantBoot     bool
	}{
		{name: "all left to the preference", details: map[string]string{"iso_url": "https://images.example/w.iso", "root_disk_size": "40Gi"}},
		{name: "details still win", details: map[string]string{"image": "a/b:c", "disk_bus": "sata", "nic_model": "e1000e"}, wantDiskBus: "sata", wantNIC: "e1000e"},
		{name: "CloudStack's boot type still wins", details: map[string]string{"image": "a/b:c"}, bootType: "UEFI", wantBoot: true},
		{name: "aarch64 keeps a cdrom bus KubeVirt accepts", arch: "aarch64", details: map[string]string{"iso_url": "https://images.example/w.iso", "root_disk_size": "40Gi"}, wantCDRomBus: "scsi"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			details := map[string]string{"preference": "windows.11"}
			for k, v := range tt.details {
				details[k] = v
			}
			p := samplePayload(t, details)
			p.VM.Arch, p.VM.BootType = tt.arch, tt.bootType
			vm, err := buildVM(t, p)
			require.NoError(t, err)
			spec := vm.Spec.Template.Spec
			assert.Equal(t, "windows.11", vm.Spec.Preference.Name)
			assert.Equal(t, tt.wantDiskBus, spec.Domain.Devices.Disks[0].Disk.Bus)
			assert.Equal(t, tt.wantNIC, spec.Domain.Devices.Interfaces[0].Model)
			assert.Equal(t, tt.wantBoot, spec.Domain.Firmware.Bootloader != nil)
			assert.Equal(t, "126f4562-1f0f-4313-875e-6150cabeb72f", string(spec.Domain.Firmware.UUID), "the UUID stays pinned")
			if len(spec.Domain.Devices.Disks) == 2 {
				assert.Equal(t, tt.wantCDRomBus, spec.Domain.Devices.Disks[1].CDRom.Bus)
			}
		})
	}
}
