package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// vmi is a VMI as KubeVirt's controller and admission leave it, cut to what the converter reads: one PVC disk,
// one bridged NIC, EFI with Secure Boot (SMM on), the firmware UUID the extension sets.
const vmi = `{
  "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
  "metadata": {"name": "i-2-45-vm", "namespace": "host-1", "uid": "0f03649b-ff52-4bb4-abbe-483a8c22a3f4"},
  "spec": {
    "domain": {
      "cpu": {"sockets": 2, "cores": 1, "threads": 1},
      "memory": {"guest": "1Gi"},
      "machine": {"type": "q35"},
      "features": {"smm": {"enabled": true}},
      "firmware": {"uuid": "7c2a5f0e-3d1b-4b8e-9f6a-000000000045", "bootloader": {"efi": {"secureBoot": %SB%}}},
      "devices": {
        "disks": [{"name": "rootdisk", "bootOrder": 1, "disk": {"bus": "virtio"}}],
        "interfaces": [{"name": "nic-0", "bridge": {}, "macAddress": "02:01:00:cc:00:2d", "model": "virtio"}]
      },
      "resources": {"requests": {"memory": "1Gi"}}
    },
    "networks": [{"name": "nic-0", "multus": {"networkName": "vlan-1577"}}],
    "volumes": [{"name": "rootdisk", "dataVolume": {"name": "i-2-45-vm-root"}}]
  }
}`

// ovmf is a --ovmf-path with KubeVirt's file names (empty files: the converter only names them).
func ovmf(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"OVMF_CODE.fd", "OVMF_VARS.fd", "OVMF_CODE.secboot.fd", "OVMF_VARS.secboot.fd"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestRun(t *testing.T) {
	dir := ovmf(t)
	tests := []struct {
		name       string
		secureBoot string
		kvm        bool
		want       []string
	}{
		{"TCG, Secure Boot", "true", false, []string{
			`<domain type="qemu"`,
			`<entry name="uuid">7c2a5f0e-3d1b-4b8e-9f6a-000000000045</entry>`,
			`<entry name="manufacturer">KubeVirt</entry>`,
			`secure="yes"`, filepath.Join(dir, "OVMF_CODE.secboot.fd"), filepath.Join(dir, "OVMF_VARS.secboot.fd"),
			`<source file="/var/run/kubevirt-private/vmi-disks/rootdisk/disk.img"`,
			`<mac address="02:01:00:cc:00:2d">`, `<model type="virtio-non-transitional">`,
			`<log file="/var/run/kubevirt-private/0f03649b-ff52-4bb4-abbe-483a8c22a3f4/virt-serial0-log"`,
		}},
		{"KVM, UEFI without Secure Boot", "false", true, []string{
			`<domain type="kvm"`, filepath.Join(dir, "OVMF_CODE.fd"), filepath.Join(dir, "OVMF_VARS.fd"),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			in := strings.NewReader(strings.Replace(vmi, "%SB%", tt.secureBoot, 1))
			if err := run(in, &out, "", dir, tt.kvm); err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("the domain lacks %s:\n%s", w, out.String())
				}
			}
		})
	}
}

func TestRunRefuses(t *testing.T) {
	tests := []struct {
		name, vmi, ovmf, want string
	}{
		{"a containerDisk without its image", strings.Replace(strings.Replace(vmi, `"dataVolume": {"name": "i-2-45-vm-root"}`, `"containerDisk": {"image": "quay.io/containerdisks/fedora:43"}`, 1), "%SB%", "false", 1),
			"", "give its image with -container-disk"},
		{"EFI without OVMF files", strings.Replace(vmi, "%SB%", "true", 1), "/nonexistent", "EFI OVMF roms missing in /nonexistent"},
		{"not a VMI", "{", "", "reading the VMI from stdin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := tt.ovmf
			if dir == "" {
				dir = ovmf(t)
			}
			err := run(strings.NewReader(tt.vmi), &bytes.Buffer{}, "", dir, false)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("run: %v, want an error with %q", err, tt.want)
			}
		})
	}
}
