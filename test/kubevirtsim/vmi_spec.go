package kubevirtsim

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"strconv"

	"github.com/google/uuid"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	kubevirtv1 "kubevirt.io/api/core/v1"
)

// annTemplateHash records on a VMI the hash of the VM template it was started from. KubeVirt keeps that
// template in a ControllerRevision; the simulator only needs to know whether it changed.
const annTemplateHash = "kubevirtsim.kubevirt.io/template-hash"

// legacyFirmwareUUID is KubeVirt's CalculateLegacyUUID: a UUIDv5 of the VM name in KubeVirt's namespace
// 6a1a24a1-4061-4607-8bf4-a3963d0c5895.
func legacyFirmwareUUID(name string) types.UID {
	ns := uuid.UUID{0x6a, 0x1a, 0x24, 0xa1, 0x40, 0x61, 0x46, 0x07, 0x8b, 0xf4, 0xa3, 0x96, 0x3d, 0x0c, 0x58, 0x95}
	return types.UID(uuid.NewSHA1(ns, []byte(name)).String())
}

// newVMI is KubeVirt's SetupVMIFromVM: the VM's template, named after the VM and controlled by it.
func newVMI(vm *kubevirtv1.VirtualMachine) *kubevirtv1.VirtualMachineInstance {
	vmi := &kubevirtv1.VirtualMachineInstance{ObjectMeta: *vm.Spec.Template.ObjectMeta.DeepCopy()}
	vmi.Name, vmi.Namespace, vmi.GenerateName = vm.Name, vm.Namespace, ""
	vmi.Labels = maps.Clone(vm.Spec.Template.ObjectMeta.Labels)
	if vmi.Annotations == nil {
		vmi.Annotations = map[string]string{}
	}
	vmi.Annotations[kubevirtv1.VirtualMachineGenerationAnnotation] = strconv.FormatInt(vm.Generation, 10)
	vmi.Annotations[annTemplateHash] = templateHash(vm)
	vmi.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(vm, kubevirtv1.VirtualMachineGroupVersionKind)}
	// The VM controller's finalizer gives it the chance to see the VMI's final state before it goes.
	vmi.Finalizers = append(vmi.Finalizers, kubevirtv1.VirtualMachineControllerFinalizer)
	vmi.Spec = vmiSpec(vm)
	if hasStartPausedRequest(vm) {
		paused := kubevirtv1.StartStrategyPaused
		vmi.Spec.StartStrategy = &paused
	}
	return vmi
}

// vmiSpec applies the defaults virt-controller adds when it starts a VMI: a stable firmware UUID, the default
// pod network (bridge binding) when no network is given, and a disk for every volume that has none.
func vmiSpec(vm *kubevirtv1.VirtualMachine) kubevirtv1.VirtualMachineInstanceSpec {
	spec := *vm.Spec.Template.Spec.DeepCopy()
	if spec.Domain.Firmware == nil {
		spec.Domain.Firmware = &kubevirtv1.Firmware{}
	}
	if spec.Domain.Firmware.UUID == "" {
		spec.Domain.Firmware.UUID = legacyFirmwareUUID(vm.Name)
	}
	devices := &spec.Domain.Devices
	autoAttach := devices.AutoattachPodInterface == nil || *devices.AutoattachPodInterface
	if autoAttach && len(spec.Networks) == 0 && len(devices.Interfaces) == 0 {
		devices.Interfaces = []kubevirtv1.Interface{*kubevirtv1.DefaultBridgeNetworkInterface()}
		spec.Networks = []kubevirtv1.Network{*kubevirtv1.DefaultPodNetwork()}
	}
	named := map[string]bool{}
	for _, d := range devices.Disks {
		named[d.Name] = true
	}
	for _, fs := range devices.Filesystems {
		named[fs.Name] = true
	}
	for _, v := range spec.Volumes {
		if !named[v.Name] {
			devices.Disks = append(devices.Disks, kubevirtv1.Disk{Name: v.Name})
		}
	}
	return spec
}

func templateHash(vm *kubevirtv1.VirtualMachine) string {
	data, err := json.Marshal(vm.Spec.Template)
	if err != nil {
		return "" // cannot happen for an object the API server returned; an empty hash only delays a bump
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:8])
}

func hasStartRequest(vm *kubevirtv1.VirtualMachine) bool {
	reqs := vm.Status.StateChangeRequests
	return len(reqs) > 0 && reqs[0].Action == kubevirtv1.StartRequest
}

func hasStartPausedRequest(vm *kubevirtv1.VirtualMachine) bool {
	reqs := vm.Status.StateChangeRequests
	return hasStartRequest(vm) && reqs[0].Data[kubevirtv1.StartRequestDataPausedKey] == kubevirtv1.StartRequestDataPausedTrue
}

func hasStopRequestFor(vm *kubevirtv1.VirtualMachine, vmi *kubevirtv1.VirtualMachineInstance) bool {
	reqs := vm.Status.StateChangeRequests
	return len(reqs) > 0 && reqs[0].Action == kubevirtv1.StopRequest && reqs[0].UID != nil && *reqs[0].UID == vmi.UID
}
