package kubevirtsim

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	kubevirtv1 "kubevirt.io/api/core/v1"
)

// The hooks below inject what happens inside a guest or on a node, out of band. Each reads the VMI from the API
// server, checks that the event makes sense in its current phase, and writes the VMI as virt-handler would;
// KubeVirt's own VM controller then reacts to it.

// GuestShutdown powers the guest off from inside (phase Succeeded, after Running in
// status.phaseTransitionTimestamps, so that KubeVirt does not count it as a failed start). Under Always the VM
// starts a new VMI; under RerunOnFailure, Once and Manual it stays Stopped (vm.go, syncRunStrategy).
func (s *Sim) GuestShutdown(ctx context.Context, namespace, name string) error {
	return s.updateVMI(ctx, namespace, name, "guest shutdown", func(vmi *kubevirtv1.VirtualMachineInstance) error {
		if !vmi.IsRunning() {
			return fmt.Errorf("phase is %q, not Running", vmi.Status.Phase)
		}
		stopGuest(vmi, kubevirtv1.Succeeded)
		return nil
	})
}

// Crash fails the VMI (phase Failed), as when QEMU or virt-launcher dies. Under Always and RerunOnFailure the VM
// starts a new VMI; a VMI that crashes before it ever ran counts as a start failure (crash-loop back-off).
func (s *Sim) Crash(ctx context.Context, namespace, name string) error {
	return s.updateVMI(ctx, namespace, name, "crash", func(vmi *kubevirtv1.VirtualMachineInstance) error {
		if vmi.IsFinal() {
			return fmt.Errorf("phase is already %q", vmi.Status.Phase)
		}
		stopGuest(vmi, kubevirtv1.Failed)
		return nil
	})
}

// Pause pauses a running guest: condition Paused=True (reason PausedByUser), Ready=False, printableStatus Paused.
func (s *Sim) Pause(ctx context.Context, namespace, name string) error {
	return s.updateVMI(ctx, namespace, name, "pause", func(vmi *kubevirtv1.VirtualMachineInstance) error {
		switch {
		case !vmi.IsRunning():
			return fmt.Errorf("phase is %q, not Running", vmi.Status.Phase)
		case vmiHasCondition(vmi, kubevirtv1.VirtualMachineInstancePaused, corev1.ConditionTrue):
			return fmt.Errorf("already paused")
		}
		pause(vmi)
		return nil
	})
}

// Unpause resumes a paused guest.
func (s *Sim) Unpause(ctx context.Context, namespace, name string) error {
	return s.updateVMI(ctx, namespace, name, "unpause", func(vmi *kubevirtv1.VirtualMachineInstance) error {
		if !vmi.IsRunning() || !vmiHasCondition(vmi, kubevirtv1.VirtualMachineInstancePaused, corev1.ConditionTrue) {
			return fmt.Errorf("not paused")
		}
		unpause(vmi)
		return nil
	})
}

func (s *Sim) updateVMI(ctx context.Context, namespace, name, what string, mutate func(*kubevirtv1.VirtualMachineInstance) error) error {
	key := types.NamespacedName{Namespace: namespace, Name: name}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		vmi := &kubevirtv1.VirtualMachineInstance{}
		if err := s.reader.Get(ctx, key, vmi); err != nil {
			return err
		}
		if err := mutate(vmi); err != nil {
			return err
		}
		status := vmi.Status.DeepCopy()
		return s.save(ctx, vmi, false, true, s.api.vmiStatus, func() func() { return func() { vmi.Status = *status } })
	})
	if err != nil {
		return fmt.Errorf("kubevirtsim: %s of VMI %s: %w", what, key, err)
	}
	return nil
}
