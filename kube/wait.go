package kube

import (
	"context"
	"fmt"
	"strings"
	"time"

	kerrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	kubevirtv1 "kubevirt.io/api/core/v1"
)

// Polling starts fast, for clusters (and the simulator) that answer in milliseconds, and backs off to a
// gentle rate for the minutes a DataVolume import or a guest shutdown can take.
const (
	pollFirst = 50 * time.Millisecond
	pollMax   = time.Second
)

// poll calls check until it reports done or an error, or ctx ends. On ctx's end it returns describe()'s
// account of where things stood, so the admin reads why, not just "deadline exceeded".
func poll(ctx context.Context, check func() (bool, error), describe func() string) error {
	delay := pollFirst
	for {
		done, err := check()
		if err != nil || done {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s, and CloudStack's timeout for this call is nearly up: %w", describe(), context.Cause(ctx))
		case <-time.After(delay):
		}
		delay = min(2*delay, pollMax)
	}
}

// failedStatuses are printable statuses that will not clear up by waiting: the image, the volume or the
// guest itself is wrong, so a start fails now rather than at CloudStack's timeout.
var failedStatuses = map[kubevirtv1.VirtualMachinePrintableStatus]bool{
	kubevirtv1.VirtualMachineStatusErrImagePull:     true,
	kubevirtv1.VirtualMachineStatusImagePullBackOff: true,
	kubevirtv1.VirtualMachineStatusPvcNotFound:      true,
	kubevirtv1.VirtualMachineStatusDataVolumeError:  true,
	kubevirtv1.VirtualMachineStatusCrashLoopBackOff: true,
}

// waitRunning waits until the VM has a running VMI other than the one with UID old ("" for any).
func (in *Scope) waitRunning(ctx context.Context, name string, old types.UID) error {
	var vm kubevirtv1.VirtualMachine
	var vmi *kubevirtv1.VirtualMachineInstance
	check := func() (bool, error) {
		if err := in.client.Get(ctx, in.key(name), &vm); err != nil {
			if kerrors.IsNotFound(err) {
				return false, fmt.Errorf("VirtualMachine %s was deleted while starting", in.ref(name))
			}
			return false, explain(err, "read VirtualMachine "+in.ref(name))
		}
		var err error
		if vmi, err = in.vmi(ctx, name); err != nil {
			return false, err
		}
		if vmi != nil && vmi.UID != old && vmi.Status.Phase == kubevirtv1.Running {
			return true, nil
		}
		if failedStatuses[vm.Status.PrintableStatus] {
			return false, fmt.Errorf("VirtualMachine %s cannot start: %s", in.ref(name), describeVM(&vm))
		}
		return false, nil
	}
	describe := func() string {
		return fmt.Sprintf("VirtualMachine %s is not running yet (%s)", in.ref(name), describeVM(&vm))
	}
	return poll(ctx, check, describe)
}

// waitStopped waits until the VM has no VMI, or only a finished one.
func (in *Scope) waitStopped(ctx context.Context, name string) error {
	var phase kubevirtv1.VirtualMachineInstancePhase
	check := func() (bool, error) {
		vmi, err := in.vmi(ctx, name)
		if err != nil {
			return false, err
		}
		if vmi == nil || vmi.IsFinal() {
			return true, nil
		}
		phase = vmi.Status.Phase
		return false, nil
	}
	describe := func() string {
		return fmt.Sprintf("VirtualMachineInstance %s is still %s (its guest is shutting down)", in.ref(name), phase)
	}
	return poll(ctx, check, describe)
}

// waitGone waits until the VM no longer exists (KubeVirt's finalizer is released once the VMI is gone).
func (in *Scope) waitGone(ctx context.Context, name string) error {
	check := func() (bool, error) {
		var vm kubevirtv1.VirtualMachine
		err := in.client.Get(ctx, in.key(name), &vm)
		if kerrors.IsNotFound(err) {
			return true, nil
		}
		return false, explain(err, "read VirtualMachine "+in.ref(name))
	}
	describe := func() string {
		return fmt.Sprintf("VirtualMachine %s is being deleted but still exists (finalizers pending)", in.ref(name))
	}
	return poll(ctx, check, describe)
}

// describeVM summarises a VM's status for an error message: printable status and the reasons KubeVirt gives.
func describeVM(vm *kubevirtv1.VirtualMachine) string {
	status := string(vm.Status.PrintableStatus)
	if status == "" {
		status = "no status yet"
	}
	var reasons []string
	for _, c := range vm.Status.Conditions {
		if c.Message != "" && (c.Type == kubevirtv1.VirtualMachineFailure || c.Status != "True") {
			reasons = append(reasons, fmt.Sprintf("%s: %s", c.Type, c.Message))
		}
	}
	if len(reasons) == 0 {
		return status
	}
	return status + "; " + strings.Join(reasons, "; ")
}

// waitSnapshotUnlocked returns vm, read again once KubeVirt's snapshot lock is released. While
// status.snapshotInProgress is set, KubeVirt's VM admission refuses any change to the run strategy or the
// volumes ("Cannot update vm running state until snapshot ... completes": KubeVirt v1.8.0
// pkg/storage/admitters/vm-storage-status.go), and its snapshot controller clears it only after the snapshot
// succeeded, so a stop right after a snapshot waits for it rather than failing.
func (in *Scope) waitSnapshotUnlocked(ctx context.Context, vm *kubevirtv1.VirtualMachine) (*kubevirtv1.VirtualMachine, error) {
	if vm.Status.SnapshotInProgress == nil {
		return vm, nil
	}
	snapshot := *vm.Status.SnapshotInProgress
	check := func() (bool, error) {
		if err := in.client.Get(ctx, in.key(vm.Name), vm); err != nil {
			return false, explain(err, "read VirtualMachine "+in.ref(vm.Name))
		}
		return vm.Status.SnapshotInProgress == nil, nil
	}
	describe := func() string {
		return fmt.Sprintf("VirtualMachine %s is still locked by snapshot %s", in.ref(vm.Name), snapshot)
	}
	return vm, poll(ctx, check, describe)
}
