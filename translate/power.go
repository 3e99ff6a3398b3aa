package translate

import (
	kubevirtv1 "kubevirt.io/api/core/v1"
)

// PowerState is what CloudStack is told about an Instance. CloudStack understands only these two words; any
// other answer becomes PowerUnknown on its side.
type PowerState string

const (
	PowerOn  PowerState = "poweron"
	PowerOff PowerState = "poweroff"
)

// PowerStateOf decides the CloudStack power state of a VirtualMachine and its VirtualMachineInstance (nil when
// there is none). It follows intent plus progress: a VM that is meant to run and is on its way (provisioning,
// scheduling, starting, restarting) is on, because reporting it off would make CloudStack mark a starting
// Instance Stopped out of band. A nil VM (deleted, or never created) is off.
//
// The extension and the reconciler both call this one function, so CloudStack hears the same answer whichever
// path computed it.
func PowerStateOf(vm *kubevirtv1.VirtualMachine, vmi *kubevirtv1.VirtualMachineInstance) PowerState {
	if vm == nil || vm.DeletionTimestamp != nil {
		return PowerOff
	}
	active := vmi != nil && vmi.DeletionTimestamp == nil && !vmi.IsFinal()
	if vm.Status.PrintableStatus == kubevirtv1.VirtualMachineStatusCrashLoopBackOff && !active {
		// KubeVirt is backing off between failed starts: nothing runs until the next attempt succeeds.
		return PowerOff
	}
	strategy, err := vm.RunStrategy()
	if err != nil {
		// running and runStrategy both set: KubeVirt refuses to act on it, so only the VMI tells.
		return onIf(active)
	}
	switch strategy {
	case kubevirtv1.RunStrategyHalted:
		// Intent is off; a VMI still shutting down is on its way out.
		return PowerOff
	case kubevirtv1.RunStrategyAlways:
		// KubeVirt (re)creates the VMI whatever happened to the last one.
		return PowerOn
	case kubevirtv1.RunStrategyRerunOnFailure:
		// Restarted after a failure, but a guest that shut itself down stays off.
		if vmi != nil {
			return onIf(vmi.Status.Phase != kubevirtv1.Succeeded)
		}
		// KubeVirt removes the VMI of a guest that shut down and starts no other; it starts one only when the
		// strategy is new to it (not yet in status) or a start is requested (after a failure, or by a user).
		return onIf(vm.Status.RunStrategy != kubevirtv1.RunStrategyRerunOnFailure || startRequested(vm))
	case kubevirtv1.RunStrategyOnce:
		// Runs once: off as soon as its VMI has finished.
		return onIf(vmi == nil || !vmi.IsFinal())
	case kubevirtv1.RunStrategyManual:
		return manualPowerState(vm, active)
	default:
		return onIf(active)
	}
}

// manualPowerState follows the VMI, except that a pending start or stop request already decides the outcome.
func manualPowerState(vm *kubevirtv1.VirtualMachine, active bool) PowerState {
	if n := len(vm.Status.StateChangeRequests); n > 0 {
		return onIf(vm.Status.StateChangeRequests[n-1].Action == kubevirtv1.StartRequest)
	}
	return onIf(active)
}

func startRequested(vm *kubevirtv1.VirtualMachine) bool {
	reqs := vm.Status.StateChangeRequests
	return len(reqs) > 0 && reqs[0].Action == kubevirtv1.StartRequest
}

func onIf(on bool) PowerState {
	if on {
		return PowerOn
	}
	return PowerOff
}
