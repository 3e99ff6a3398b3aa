package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	kubevirtv1 "kubevirt.io/api/core/v1"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/cloudstacksim"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

// TestLifecycle walks one Instance through what CloudStack does to it: deploy, pings, stop, start, reboot,
// expunge.
func TestLifecycle(t *testing.T) {
	const ns = "e2e-lifecycle"
	namespace(t, ns)
	h := host(ns)
	in := instance(map[string]string{"root_disk_url": "https://images.example/fedora-43.qcow2", "root_disk_size": "10Gi"})
	name := vmName(in)

	prep := call(t, h, "prepare", in)
	requireSuccess(t, prep)
	var patch struct{ Details map[string]string }
	require.NoError(t, json.Unmarshal([]byte(prep.Output), &patch))
	assert.Equal(t, map[string]string{"External:kubevirt_namespace": ns, "External:kubevirt_vm": name}, patch.Details,
		"prepare answers a merge patch on the VirtualMachineTO")

	requireSuccess(t, call(t, h, "create", in))
	vm, err := getVM(t.Context(), ns, name)
	require.NoError(t, err)
	assert.Equal(t, in.Name, vm.Labels[translate.LabelInstanceName])
	assert.Equal(t, in.UUID, vm.Labels[translate.LabelInstanceUUID])
	assert.Equal(t, kubevirtv1.RunStrategyAlways, *vm.Spec.RunStrategy)
	assert.Nil(t, vm.Spec.Running)
	assert.Equal(t, in.NICs[0].MAC, vm.Spec.Template.Spec.Domain.Devices.Interfaces[0].MacAddress)
	vmi, err := getVMI(t.Context(), ns, name)
	require.NoError(t, err)
	assert.Equal(t, kubevirtv1.Running, vmi.Status.Phase, "create returns once the VM runs")
	assert.Equal(t, 2, managedObjects(t, ns, in.UUID), "the VM and its root DataVolume")

	assert.Equal(t, cloudstacksim.PowerOn, cloudstacksim.ParseStatus(call(t, h, "status", in)))
	states := statuses(t, h)
	assert.Equal(t, map[string]string{in.Name: cloudstacksim.PowerOn}, states)

	requireSuccess(t, call(t, h, "stop", in))
	vmi, err = getVMI(t.Context(), ns, name)
	assert.True(t, kerrors.IsNotFound(err) || err == nil && vmi.IsFinal(), "stop returns once the guest is off: the VMI gone or final")
	assert.Equal(t, cloudstacksim.PowerOff, cloudstacksim.ParseStatus(call(t, h, "status", in)))
	assert.Equal(t, map[string]string{in.Name: cloudstacksim.PowerOff}, statuses(t, h))

	requireSuccess(t, call(t, h, "start", in))
	assert.Equal(t, cloudstacksim.PowerOn, cloudstacksim.ParseStatus(call(t, h, "status", in)))
	before, err := getVMI(t.Context(), ns, name)
	require.NoError(t, err)

	requireSuccess(t, call(t, h, "reboot", in))
	after, err := getVMI(t.Context(), ns, name)
	require.NoError(t, err)
	assert.NotEqual(t, before.UID, after.UID, "reboot gives the VM a new VMI")
	assert.Equal(t, kubevirtv1.Running, after.Status.Phase)

	requireSuccess(t, call(t, h, "delete", in))
	_, err = getVM(t.Context(), ns, name)
	assert.True(t, kerrors.IsNotFound(err), "delete returns once the VM is gone")
	assert.Zero(t, managedObjects(t, ns, in.UUID), "nothing of the Instance is left")
	assert.Equal(t, cloudstacksim.PowerOff, cloudstacksim.ParseStatus(call(t, h, "status", in)))
	assert.Empty(t, statuses(t, h))
}

func statuses(t *testing.T, h cloudstacksim.Host) map[string]string {
	t.Helper()
	res, err := provisioner().Run(t.Context(), "statuses", h.StatusesPayload(), callTimeout)
	require.NoError(t, err)
	states, err := cloudstacksim.ParseStatuses(res)
	require.NoError(t, err, "output: %s", res.Output)
	return states
}

// TestRootDiskVariants creates and deletes an Instance for each kind of root disk and boot firmware.
func TestRootDiskVariants(t *testing.T) {
	const ns = "e2e-variants"
	namespace(t, ns)
	sourcePVC(t, "golden", "fedora-43", map[string]string{translate.LabelSharedSource: "true"})
	allowClones(t, ns, "golden")
	tests := []struct {
		name    string
		details map[string]string
		boot    [2]string
		objects int
	}{
		{"containerDisk", map[string]string{"image": "quay.io/containerdisks/fedora:43"}, [2]string{}, 1},
		{"registry import on UEFI", map[string]string{"root_disk_url": "docker://quay.io/containerdisks/fedora:43", "root_disk_size": "10Gi"}, [2]string{"UEFI", "LEGACY"}, 2},
		{"PVC clone with Secure Boot", map[string]string{"host:root_disk_pvc": "golden/fedora-43", "storage_class": "standard"}, [2]string{"UEFI", "SECURE"}, 2},
		{"ISO install", map[string]string{"iso_url": "https://images.example/alpine.iso", "root_disk_size": "8Gi"}, [2]string{}, 3},
		{"two VLANs, explicit map", map[string]string{"image": "quay.io/containerdisks/fedora:43", "host:network_map": "1578=vlan-1578"}, [2]string{}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := host(ns)
			details := map[string]string{}
			for k, v := range tt.details {
				if key, ok := strings.CutPrefix(k, "host:"); ok { // the operator's detail, on the host
					h.Host[key] = v
				} else {
					details[k] = v
				}
			}
			in := instance(details)
			in.BootType, in.BootMode = tt.boot[0], tt.boot[1]
			in.NICs = append(in.NICs, cloudstacksim.NIC{DeviceID: 1, MAC: "02:01:00:dd:00:01", BroadcastURI: "vlan://1578"})
			requireSuccess(t, call(t, h, "create", in))
			assert.Equal(t, tt.objects, managedObjects(t, ns, in.UUID))
			assert.Equal(t, cloudstacksim.PowerOn, cloudstacksim.ParseStatus(call(t, h, "status", in)))
			requireSuccess(t, call(t, h, "delete", in))
			assert.Zero(t, managedObjects(t, ns, in.UUID))
		})
	}
}

// TestRetries covers CloudStack's repeated calls: create after create, create after a partial success, start
// of a VM deleted out of band, stop and delete of what is already gone.
func TestRetries(t *testing.T) {
	const ns = "e2e-retry"
	namespace(t, ns)
	h := host(ns)
	details := map[string]string{"image": "quay.io/containerdisks/fedora:43"}

	t.Run("create twice", func(t *testing.T) {
		in := instance(details)
		requireSuccess(t, call(t, h, "create", in))
		first, err := getVM(t.Context(), ns, vmName(in))
		require.NoError(t, err)
		requireSuccess(t, call(t, h, "create", in))
		second, err := getVM(t.Context(), ns, vmName(in))
		require.NoError(t, err)
		assert.Equal(t, first.UID, second.UID, "the same VM, adopted")
		assert.Equal(t, first.Generation, second.Generation, "nothing to change, nothing written")
	})
	t.Run("create after a partial success converges", func(t *testing.T) {
		in := instance(details)
		requireSuccess(t, call(t, h, "create", in))
		requireSuccess(t, call(t, h, "stop", in)) // CloudStack's cleanup after a failed start
		in.CPUs = 4                               // and the retry may carry another offering
		requireSuccess(t, call(t, h, "create", in))
		vm, err := getVM(t.Context(), ns, vmName(in))
		require.NoError(t, err)
		assert.Equal(t, kubevirtv1.RunStrategyAlways, *vm.Spec.RunStrategy)
		assert.Equal(t, uint32(4), vm.Spec.Template.Spec.Domain.CPU.Sockets)
		assert.Equal(t, cloudstacksim.PowerOn, cloudstacksim.ParseStatus(call(t, h, "status", in)))
	})
	t.Run("start recreates a VM deleted out of band", func(t *testing.T) {
		in := instance(details)
		requireSuccess(t, call(t, h, "create", in))
		vm, err := getVM(t.Context(), ns, vmName(in))
		require.NoError(t, err)
		require.NoError(t, s.client.Delete(t.Context(), vm))
		require.Eventually(t, func() bool { _, err := getVM(t.Context(), ns, vmName(in)); return kerrors.IsNotFound(err) }, 10*time.Second, 20*time.Millisecond)
		assert.Equal(t, cloudstacksim.PowerOff, cloudstacksim.ParseStatus(call(t, h, "status", in)))
		requireSuccess(t, call(t, h, "start", in))
		assert.Equal(t, cloudstacksim.PowerOn, cloudstacksim.ParseStatus(call(t, h, "status", in)))
	})
	t.Run("stop and delete of what is gone succeed", func(t *testing.T) {
		in := instance(details)
		requireSuccess(t, call(t, h, "stop", in))
		requireSuccess(t, call(t, h, "delete", in))
		requireSuccess(t, call(t, h, "delete", in))
	})
	t.Run("reboot of a stopped Instance fails clearly", func(t *testing.T) {
		in := instance(details)
		requireSuccess(t, call(t, h, "create", in))
		requireSuccess(t, call(t, h, "stop", in))
		requireFailure(t, call(t, h, "reboot", in), "is not running: start the Instance instead")
	})
}
