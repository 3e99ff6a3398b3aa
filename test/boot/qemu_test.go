package boot

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/fixture"
)

// TestQEMUStartsEveryShape starts, paused, the domain of more Instances than TestBoot boots: every disk bus under
// every firmware, every NIC model, one to three NICs, larger sizes. Each is created through the extension, made a
// VMI by KubeVirt's controller and a domain by its converter; libvirt defines it and QEMU starts it (its devices,
// firmware and machine accepted) without running the guest, a second or so each.
func TestQEMUStartsEveryShape(t *testing.T) {
	requireBoot(t)
	require.NoError(t, fixture.HostNamespace(t.Context(), s.client, ns, vlans...))
	golden := goldenPVC(t)
	image := "quay.io/containerdisks/fedora:43"
	tests := []variant{
		{name: "BIOS, virtio, 1 NIC", details: map[string]string{"image": image}, nics: 1},
		{name: "BIOS, sata", details: map[string]string{"image": image, "disk_bus": "sata"}},
		{name: "BIOS, scsi, 3 NICs", details: map[string]string{"image": image, "disk_bus": "scsi"}, nics: 3},
		{name: "UEFI, virtio", details: map[string]string{"image": image}, bootType: "UEFI", bootMode: "LEGACY"},
		{name: "UEFI, scsi", details: map[string]string{"image": image, "disk_bus": "scsi"}, bootType: "UEFI", bootMode: "LEGACY"},
		{name: "Secure Boot, sata", details: map[string]string{"image": image, "disk_bus": "sata"}, bootType: "UEFI", bootMode: "SECURE"},
		{name: "Secure Boot, scsi", details: map[string]string{"image": image, "disk_bus": "scsi"}, bootType: "UEFI", bootMode: "SECURE"},
		{name: "e1000", details: map[string]string{"image": image, "nic_model": "e1000"}},
		{name: "e1000e", details: map[string]string{"image": image, "nic_model": "e1000e"}, bootType: "UEFI", bootMode: "SECURE"},
		{name: "rtl8139", details: map[string]string{"image": image, "nic_model": "rtl8139"}, bootType: "UEFI", bootMode: "LEGACY"},
		{name: "pcnet", details: map[string]string{"image": image, "nic_model": "pcnet"}},
		{name: "ne2k_pci", details: map[string]string{"image": image, "nic_model": "ne2k_pci"}},
		{name: "igb", details: map[string]string{"image": image, "nic_model": "igb"}},
		{name: "8 vCPUs, 4 GiB", details: map[string]string{"image": image}, cpus: 8, memoryMB: 4096},
		{name: "ISO install, scsi, Secure Boot", details: map[string]string{"iso_url": s.fileURL + "probe.iso", "root_disk_size": "1Gi", "disk_bus": "scsi"}, bootType: "UEFI", bootMode: "SECURE"},
		{name: "URL import, sata, UEFI", details: map[string]string{"root_disk_url": s.fileURL + "disk.img", "root_disk_size": "1Gi", "disk_bus": "sata"}, bootType: "UEFI", bootMode: "LEGACY"},
		{name: "PVC clone, scsi", details: map[string]string{"storage_class": "standard", "disk_bus": "scsi"}, host: map[string]string{"root_disk_pvc": golden}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.cpus == 0 {
				tt.cpus, tt.memoryMB = 1, 512
			}
			in, h := tt.instance()
			requireSuccess(t, call(t, h, "create", in))
			t.Cleanup(func() { call(t, h, "delete", in) })
			d := defineDomain(t, runningVMI(t, in))
			_, err := virsh(t.Context(), "start", "--paused", d.name)
			if tt.details["nic_model"] == "igb" && !s.igb {
				require.Error(t, err, "this QEMU has no igb device")
				assert.Contains(t, err.Error(), "igb", "QEMU refuses the igb model by name")
				return
			}
			require.NoError(t, err, "QEMU starts KubeVirt's domain")
			assert.Equal(t, "paused", domainState(t.Context(), d.name))
		})
	}
}
