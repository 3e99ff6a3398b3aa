// Package admission runs every kind of VirtualMachine the translator builds through KubeVirt v1.8.0's own
// admission webhooks and VM controller (test/upstream, started by test/doubles/testenv and
// test/doubles/kubevirtsim): a VM that KubeVirt stores but whose VMI it then refuses shows here as a failed VMI
// create, as it would on a cluster.
package admission_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	instancetypev1beta1 "kubevirt.io/api/instancetype/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/kubevirtsim"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/testenv"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, testenv.Options{}, func(e *testenv.Env) { env = e }))
}

// variant is one way an operator or a user can shape an Instance.
type variant struct {
	name               string
	details            map[string]string // the Instance's merged details
	arch               string            // CloudStack's; default x86_64
	bootType, bootMode string
	nics               int // default 1
	cpus               int // default 1
	memoryMiB          int64
}

func variants() []variant {
	iso := map[string]string{"iso_url": "https://images.example/alpine.iso", "root_disk_size": "8Gi"}
	image := map[string]string{"image": "quay.io/containerdisks/fedora:43"}
	with := func(base map[string]string, kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	vs := []variant{
		{name: "containerdisk", details: image},
		{name: "http-import", details: map[string]string{"root_disk_url": "https://images.example/f.qcow2", "root_disk_size": "20Gi", "storage_class": "fast"}},
		{name: "registry-import", details: map[string]string{"root_disk_url": "docker://quay.io/containerdisks/fedora:43", "root_disk_size": "10Gi"}},
		{name: "clone", details: map[string]string{"root_disk_pvc": "golden", "root_disk_size": "30Gi"}},
		{name: "iso", details: iso},
		{name: "uefi", details: image, bootType: "UEFI", bootMode: "LEGACY"},
		{name: "secure-boot", details: image, bootType: "UEFI", bootMode: "SECURE"},
		{name: "rerun-on-failure", details: with(image, "run_strategy", "RerunOnFailure")},
		{name: "four-nics-e1000e", details: with(image, "nic_model", "e1000e"), nics: 4},
		{name: "no-nics", details: image, nics: -1},
		{name: "big", details: image, cpus: 64, memoryMiB: 256 << 10},
		{name: "odd-memory", details: image, memoryMiB: 1023},
		{name: "aarch64", details: image, arch: "aarch64"},
		{name: "aarch64-iso", details: iso, arch: "aarch64"},
		{name: "aarch64-scsi", details: with(image, "disk_bus", "scsi"), arch: "aarch64"},
		{name: "aarch64-uefi", details: image, arch: "aarch64", bootType: "UEFI", bootMode: "LEGACY"},
		{name: "instancetype", details: with(image, "instancetype", "cs-small")},
		{name: "preference", details: with(iso, "preference", "cs-windows")},
	}
	for _, bus := range []string{"virtio", "sata", "scsi"} {
		vs = append(vs, variant{name: "bus-" + bus, details: with(image, "disk_bus", bus)})
	}
	for _, model := range []string{"virtio", "e1000", "rtl8139", "ne2k_pci", "pcnet"} {
		vs = append(vs, variant{name: "nic-" + model, details: with(image, "nic_model", model)})
	}
	return vs
}

// payload builds the variant's payload from the create payload reconstructed from CloudStack's source.
func (v variant) payload(t *testing.T, i int) *translate.Payload {
	t.Helper()
	data, err := os.ReadFile("../../translate/testdata/create_payload.json")
	require.NoError(t, err)
	p, err := translate.ParsePayload(data)
	require.NoError(t, err)
	p.ExternalDetails.Host = map[string]string{"kubeconfig": "/unused", "namespace": "unused"}
	p.ExternalDetails.VirtualMachine = v.details
	name := fmt.Sprintf("i-2-%d-VM", 100+i)
	uuid := fmt.Sprintf("126f4562-1f0f-4313-875e-%012d", 100+i)
	p.VirtualMachineName, p.VirtualMachineID = name, uuid
	p.VM.Name, p.VM.UUID = name, uuid
	p.VM.Arch = cmpOr(v.arch, "x86_64")
	p.VM.BootType, p.VM.BootMode = v.bootType, v.bootMode
	if v.cpus > 0 {
		p.VM.CPUs = v.cpus
	}
	if v.memoryMiB > 0 {
		p.VM.MinRAM, p.VM.MaxRAM = v.memoryMiB<<20, v.memoryMiB<<20
	}
	nic := p.VM.NICs[0]
	p.VM.NICs = nil
	count := v.nics
	switch {
	case count == 0:
		count = 1
	case count < 0:
		count = 0
	}
	for n := range count {
		nic.DeviceID, nic.MAC = n, fmt.Sprintf("02:01:00:cc:%02x:%02x", i, n)
		p.VM.NICs = append(p.VM.NICs, nic)
	}
	return p
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// TestKubeVirtAdmitsEveryVariant: the VM is admitted, and KubeVirt's VM controller creates its VMI through the
// VMI webhooks (as virt-controller's service account), the step where KubeVirt refused aarch64 VMs before.
func TestKubeVirtAdmitsEveryVariant(t *testing.T) {
	ns := newNamespace(t)
	createClusterObjects(t)
	startSim(t, ns)
	for i, v := range variants() {
		t.Run(v.name, func(t *testing.T) {
			vmi := createAndWaitForVMI(t, ns, v.payload(t, i))
			if v.arch == "aarch64" {
				assert.Equal(t, "arm64", vmi.Spec.Architecture)
				require.NotNil(t, vmi.Spec.Domain.Firmware.Bootloader.EFI, "KubeVirt boots arm64 only with UEFI")
			}
		})
	}
}

// TestPreferenceTakesEffect: a preference's devices and firmware reach the VMI, because the translator leaves
// those fields unset (KubeVirt applies a preference only to what the VM does not set).
func TestPreferenceTakesEffect(t *testing.T) {
	ns := newNamespace(t)
	createClusterObjects(t)
	startSim(t, ns)
	v := variant{name: "preference", details: map[string]string{
		"iso_url": "https://images.example/win.iso", "root_disk_size": "40Gi", "preference": "cs-windows"}}
	vmi := createAndWaitForVMI(t, ns, v.payload(t, 90))
	disks := vmi.Spec.Domain.Devices.Disks
	require.Len(t, disks, 2)
	assert.Equal(t, kubevirtv1.DiskBusSATA, disks[0].Disk.Bus, "the preference's disk bus")
	assert.Equal(t, kubevirtv1.DiskBusSATA, disks[1].CDRom.Bus, "the preference's CD-ROM bus")
	assert.Equal(t, "e1000e", vmi.Spec.Domain.Devices.Interfaces[0].Model, "the preference's NIC model")
	require.NotNil(t, vmi.Spec.Domain.Firmware.Bootloader.EFI, "the preference's EFI")
	assert.Equal(t, types.UID(v.payload(t, 90).InstanceUUID()), vmi.Spec.Domain.Firmware.UUID, "the SMBIOS UUID stays CloudStack's")

	// A detail still wins over the preference.
	v.details["disk_bus"], v.details["nic_model"] = "virtio", "virtio"
	vmi = createAndWaitForVMI(t, ns, v.payload(t, 91))
	assert.Equal(t, kubevirtv1.DiskBusVirtio, vmi.Spec.Domain.Devices.Disks[0].Disk.Bus)
	assert.Equal(t, "virtio", vmi.Spec.Domain.Devices.Interfaces[0].Model)
}

// TestKubeVirtRefusesWhatItRefused: controls that KubeVirt's own code must refuse, so that the tests above
// could fail: the aarch64 VMs the translator used to build.
func TestKubeVirtRefusesWhatItRefused(t *testing.T) {
	ns := newNamespace(t)
	createClusterObjects(t)
	startSim(t, ns)
	tests := []struct {
		name   string
		mutate func(*kubevirtv1.VirtualMachine)
		want   string
	}{
		{name: "aarch64 BIOS", mutate: func(vm *kubevirtv1.VirtualMachine) {
			vm.Spec.Template.Spec.Domain.Firmware.Bootloader = &kubevirtv1.Bootloader{BIOS: &kubevirtv1.BIOS{}}
		}, want: "Arm64 does not support bios boot"},
		{name: "aarch64 sata disk", mutate: func(vm *kubevirtv1.VirtualMachine) {
			vm.Spec.Template.Spec.Domain.Devices.Disks[0].Disk.Bus = kubevirtv1.DiskBusSATA
		}, want: "Arm64 not support this disk bus type"},
		{name: "aarch64 sata cdrom", mutate: func(vm *kubevirtv1.VirtualMachine) {
			cdrom := uint(2)
			vm.Spec.Template.Spec.Domain.Devices.Disks = append(vm.Spec.Template.Spec.Domain.Devices.Disks, kubevirtv1.Disk{
				Name: "cdrom", BootOrder: &cdrom, DiskDevice: kubevirtv1.DiskDevice{CDRom: &kubevirtv1.CDRomTarget{Bus: kubevirtv1.DiskBusSATA}}})
			vm.Spec.Template.Spec.Volumes = append(vm.Spec.Template.Spec.Volumes, kubevirtv1.Volume{Name: "cdrom",
				VolumeSource: kubevirtv1.VolumeSource{ContainerDisk: &kubevirtv1.ContainerDiskSource{Image: "a/b:c"}}})
		}, want: "Arm64 not support this disk bus type"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := variant{details: map[string]string{"image": "quay.io/containerdisks/fedora:43"}, arch: "aarch64"}.payload(t, 50+i)
			vm := build(t, ns, p)
			tt.mutate(vm)
			createAndWaitForRefusal(t, vm, tt.want)
		})
	}
	t.Run("unknown disk bus refused at the VM", func(t *testing.T) {
		vm := build(t, ns, variant{details: map[string]string{"image": "a/b:c"}}.payload(t, 60))
		vm.Spec.Template.Spec.Domain.Devices.Disks[0].Disk.Bus = "ide"
		err := env.Client.Create(t.Context(), vm)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "admission webhook")
		assert.Contains(t, err.Error(), "IDE bus is not supported", "KubeVirt's own words (pkg/storage/admitters/disks.go)")
	})
}

func build(t *testing.T, ns string, p *translate.Payload) *kubevirtv1.VirtualMachine {
	t.Helper()
	spec, err := p.Details().Spec()
	require.NoError(t, err)
	vm, err := translate.VirtualMachine(p, ns, spec)
	require.NoError(t, err)
	return vm
}

// createAndWaitForVMI creates the VM and waits for its VMI. KubeVirt's controller retries what fails (a
// ControllerRevision patch that raced another writer, say), so a refusal counts only if no VMI ever comes.
func createAndWaitForVMI(t *testing.T, ns string, p *translate.Payload) *kubevirtv1.VirtualMachineInstance {
	t.Helper()
	vm := build(t, ns, p)
	require.NoError(t, env.Client.Create(t.Context(), vm), "KubeVirt's VM admission")
	vmi := &kubevirtv1.VirtualMachineInstance{}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		err := env.Client.Get(t.Context(), client.ObjectKeyFromObject(vm), vmi)
		assert.NoError(c, err, "no VMI; KubeVirt's last refusal: %q", refusal(t, vm, ""))
	}, 60*time.Second, 100*time.Millisecond)
	return vmi
}

func createAndWaitForRefusal(t *testing.T, vm *kubevirtv1.VirtualMachine, want string) {
	t.Helper()
	require.NoError(t, env.Client.Create(t.Context(), vm), "KubeVirt stores the VM; it refuses its VMI")
	require.Eventually(t, func() bool { return refusal(t, vm, want) != "" },
		60*time.Second, 100*time.Millisecond, "KubeVirt's VMI admission should refuse %s with %q", vm.Name, want)
}

// refusal is the message of a warning event KubeVirt's VM controller recorded when it failed to create the
// VMI, the first containing want.
func refusal(t *testing.T, vm *kubevirtv1.VirtualMachine, want string) string {
	t.Helper()
	var events corev1.EventList
	require.NoError(t, env.Client.List(t.Context(), &events, client.InNamespace(vm.Namespace)))
	for _, e := range events.Items {
		if e.InvolvedObject.Name == vm.Name && e.Type == corev1.EventTypeWarning && e.Reason == "FailedCreate" &&
			strings.Contains(e.Message, want) {
			return e.Message
		}
	}
	return ""
}

func newNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "admission-"}}
	require.NoError(t, env.Client.Create(t.Context(), ns))
	return ns.Name
}

func startSim(t *testing.T, ns string) {
	t.Helper()
	sim, err := kubevirtsim.Start(t.Context(), env.Config, kubevirtsim.Options{Namespaces: []string{ns}})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, sim.Stop()) })
}

// createClusterObjects creates the cluster instancetype and preference the variants name, once.
func createClusterObjects(t *testing.T) {
	t.Helper()
	objs := []client.Object{
		&instancetypev1beta1.VirtualMachineClusterInstancetype{
			ObjectMeta: metav1.ObjectMeta{Name: "cs-small"},
			Spec: instancetypev1beta1.VirtualMachineInstancetypeSpec{
				CPU:    instancetypev1beta1.CPUInstancetype{Guest: 1},
				Memory: instancetypev1beta1.MemoryInstancetype{Guest: resource.MustParse("512Mi")},
			},
		},
		&instancetypev1beta1.VirtualMachineClusterPreference{
			ObjectMeta: metav1.ObjectMeta{Name: "cs-windows"},
			Spec: instancetypev1beta1.VirtualMachinePreferenceSpec{
				Devices: &instancetypev1beta1.DevicePreferences{
					PreferredDiskBus: kubevirtv1.DiskBusSATA, PreferredCdromBus: kubevirtv1.DiskBusSATA,
					PreferredInterfaceModel: "e1000e",
				},
				Firmware: &instancetypev1beta1.FirmwarePreferences{PreferredEfi: &kubevirtv1.EFI{SecureBoot: ptr.To(false)}},
			},
		},
	}
	for _, o := range objs {
		if err := env.Client.Create(t.Context(), o); err != nil && !strings.Contains(err.Error(), "already exists") {
			require.NoError(t, err)
		}
	}
}
