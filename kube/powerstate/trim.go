package powerstate

import (
	toolscache "k8s.io/client-go/tools/cache"
	kubevirtv1 "kubevirt.io/api/core/v1"
)

// The cache keeps of each object only what translate.PowerStateOf reads, plus metadata: at 10,000 VMs the full
// objects (templates, volumes, status conditions, managed fields) would cost most of the reconciler's memory.

// trimVirtualMachine keeps the VM's metadata, run intent and the status fields the power state depends on.
func trimVirtualMachine(vm *kubevirtv1.VirtualMachine) *kubevirtv1.VirtualMachine {
	meta := vm.ObjectMeta
	meta.ManagedFields = nil
	return &kubevirtv1.VirtualMachine{
		TypeMeta:   vm.TypeMeta,
		ObjectMeta: meta,
		Spec:       kubevirtv1.VirtualMachineSpec{Running: vm.Spec.Running, RunStrategy: vm.Spec.RunStrategy},
		Status: kubevirtv1.VirtualMachineStatus{
			PrintableStatus:     vm.Status.PrintableStatus,
			RunStrategy:         vm.Status.RunStrategy,
			StateChangeRequests: vm.Status.StateChangeRequests,
		},
	}
}

// trimVirtualMachineInstance keeps the VMI's metadata and phase.
func trimVirtualMachineInstance(vmi *kubevirtv1.VirtualMachineInstance) *kubevirtv1.VirtualMachineInstance {
	meta := vmi.ObjectMeta
	meta.ManagedFields = nil
	return &kubevirtv1.VirtualMachineInstance{
		TypeMeta:   vmi.TypeMeta,
		ObjectMeta: meta,
		Status:     kubevirtv1.VirtualMachineInstanceStatus{Phase: vmi.Status.Phase},
	}
}

// trim is the informers' transform. Tombstones and other kinds pass through unchanged.
func trim(obj any) (any, error) {
	switch o := obj.(type) {
	case *kubevirtv1.VirtualMachine:
		return trimVirtualMachine(o), nil
	case *kubevirtv1.VirtualMachineInstance:
		return trimVirtualMachineInstance(o), nil
	}
	return obj, nil
}

var _ toolscache.TransformFunc = trim
