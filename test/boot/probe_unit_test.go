package boot

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A serial console as the probe guest writes it under UEFI (firmware noise, a line split by a carriage return).
const uefiSerial = "\x1b[2J\x1b[01;01HBdsDxe: loading Boot0001\r\nGRUB: booting the probe\r\n" +
	"probe: begin kernel=6.1.0-57-amd64 uptime=5.76s\r\n" +
	"probe: cmdline BOOT_IMAGE=/vmlinuz console=ttyS0,115200 quiet probe.loader=grub\r\n" +
	"probe: firmware=uefi secureboot=1\r\n" +
	"probe: smbios uuid=7C2A5F0E-3D1B-4B8E-9F6A-000000000504 manufacturer=KubeVirt product=None family=KubeVirt\r\n" +
	"probe: cpu cpu0 package=0 core=0 siblings=0-1\r\n" +
	"probe: cpu cpu1 package=0 core=0 siblings=0-1\r\n" +
	"probe: cpu cpu2 package=1 core=0 siblings=2-3\r\n" +
	"probe: cpu cpu3 package=1 core=0 siblings=2-3\r\n" +
	"probe: memory systemram=1035317248 present_kib=1011088\r\n" +
	"probe: nic eth0 mac=02:01:00:B0:F8:01 driver=virtio_net\r\n" +
	"probe: disk sr0 bus=sata driver=sr sectors=87776 medium=iso\r\n" +
	"probe: disk vda bus=virtio driver=virtio_blk sectors=2097152 medium=none\r\n" +
	"probe: end\r\n"

func TestParseReport(t *testing.T) {
	r, err := parseReport(uefiSerial)
	require.NoError(t, err)
	assert.Equal(t, "grub", r.loader)
	assert.Equal(t, "uefi", r.firmware)
	assert.Equal(t, "1", r.secureBoot)
	assert.Equal(t, "7c2a5f0e-3d1b-4b8e-9f6a-000000000504", r.uuid, "lower case, as KubeVirt writes firmware.uuid")
	assert.Equal(t, "KubeVirt", r.smbios["manufacturer"])
	sockets, cores, threads := r.topology()
	assert.Equal(t, [3]int{2, 1, 2}, [3]int{sockets, cores, threads})
	assert.Equal(t, int64(1011088), r.presentKiB)
	assert.Equal(t, []nic{{"eth0", "02:01:00:b0:f8:01", "virtio_net"}}, r.nics)
	assert.Equal(t, []disk{{"sr0", "sata", "sr", "iso"}}, r.bootDisks())

	_, err = parseReport("probe: begin\r\nprobe: firmware=bios secureboot=none\r\n")
	assert.ErrorContains(t, err, "never reported its end", "a guest that stopped halfway fails the test")
}

func TestKeyValues(t *testing.T) {
	tests := []struct {
		fields []string
		want   map[string]string
	}{
		{[]string{"a=1", "b=2"}, map[string]string{"a": "1", "b": "2"}},
		{[]string{"product=Standard", "PC", "(Q35)", "family="}, map[string]string{"product": "Standard PC (Q35)", "family": ""}},
		{[]string{"stray", "a=1"}, map[string]string{"a": "1"}},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, keyValues(tt.fields), "%q", tt.fields)
	}
}

// TestRewrite checks that only launcher-pod paths, maxMemory's zero slots and (under TCG) the host-model CPU change.
func TestRewrite(t *testing.T) {
	defer func(a accel) { s.accel = a }(s.accel)
	s.accel = accel{name: "tcg"}
	dir := t.TempDir()
	pvc := filepath.Join(dir, "root.img")
	require.NoError(t, os.WriteFile(pvc, nil, 0o644))
	in := `<domain type="qemu"><name>ns_vm</name><maxMemory unit="b" slots="0">4294967296</maxMemory>` +
		`<cpu mode="host-model"><topology sockets="2" cores="1" threads="1"></topology></cpu>` +
		`<disk type="file"><source file="/var/run/kubevirt-private/vmi-disks/rootdisk/disk.img"></source></disk>` +
		`<serial type="unix"><source mode="bind" path="/var/run/kubevirt-private/0f03/virt-serial0"></source>` +
		`<log file="/var/run/kubevirt-private/0f03/virt-serial0-log" append="on"></log></serial></domain>`
	out, err := rewrite(t, in, hostFiles{dir: dir, volumes: map[string]string{"rootdisk": pvc}})
	require.NoError(t, err)
	want := `<domain type="qemu"><name>ns_vm</name>` +
		`<cpu mode="custom" match="exact"><model fallback="forbid">Nehalem</model><topology sockets="2" cores="1" threads="1"></topology></cpu>` +
		`<disk type="file"><source file="` + pvc + `"></source></disk>` +
		`<serial type="unix"><source mode="bind" path="` + filepath.Join(dir, "virt-serial0") + `"></source>` +
		`<log file="` + filepath.Join(dir, "virt-serial0-log") + `" append="on"></log></serial></domain>`
	assert.Equal(t, want, out)

	_, err = rewrite(t, `<source file="/var/run/kubevirt-private/vmi-disks/datadisk/disk.img">`, hostFiles{dir: dir})
	assert.ErrorContains(t, err, "no file for volume datadisk", "a disk the test did not populate fails loudly")
}
