package kubevirtsim

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
)

// Reasons of the VM's Failure condition, as KubeVirt names them.
const (
	reasonFailedCreate = "FailedCreate"
	reasonFailedDelete = "FailedDelete"
)

// vmReconciler plays virt-controller's VirtualMachine controller (and, for the VM's dependents, the garbage
// collector that envtest lacks).
type vmReconciler struct{ *Sim }

// vmState is one reconcile's view of a VM.
type vmState struct {
	orig *kubevirtv1.VirtualMachine         // as read from the cache
	vm   *kubevirtv1.VirtualMachine         // as changed by this reconcile
	vmi  *kubevirtv1.VirtualMachineInstance // the VM's VMI, nil if there is none

	// KubeVirt's "expectations": a VMI this reconcile created or deleted, which the cache has not shown yet.
	startExpected, stopExpected bool

	failure *syncFailure  // becomes the Failure condition
	requeue time.Duration // run again after this long (start back-off)
}

type syncFailure struct {
	reason string
	err    error
}

func (st *vmState) fail(reason string, err error) {
	st.failure = &syncFailure{reason: reason, err: err}
}

func (r *vmReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	vm := &kubevirtv1.VirtualMachine{}
	if err := r.client.Get(ctx, req.NamespacedName, vm); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	vmi, err := r.vmiOf(ctx, vm)
	if err != nil {
		return outcome(ctx, err)
	}
	st := &vmState{orig: vm, vm: vm.DeepCopy(), vmi: vmi}
	if vm.DeletionTimestamp != nil {
		if gone, err := r.finalize(ctx, st); err != nil || gone {
			return outcome(ctx, err)
		}
	} else if err := r.sync(ctx, st); err != nil {
		return outcome(ctx, err)
	}
	if err := r.updateStatus(ctx, st); err != nil {
		return outcome(ctx, err)
	}
	return ctrl.Result{RequeueAfter: st.requeue}, nil
}

// vmiOf returns the VMI controlled by vm. A VMI of the same name owned by something else is ignored (KubeVirt
// would try to adopt an orphan; the simulator does not).
func (r *vmReconciler) vmiOf(ctx context.Context, vm *kubevirtv1.VirtualMachine) (*kubevirtv1.VirtualMachineInstance, error) {
	vmi := &kubevirtv1.VirtualMachineInstance{}
	if err := r.client.Get(ctx, objectKey(vm), vmi); err != nil {
		return nil, client.IgnoreNotFound(err)
	}
	if ref := metav1.GetControllerOf(vmi); ref == nil || ref.UID != vm.UID {
		return nil, nil
	}
	return vmi, nil
}

func (r *vmReconciler) sync(ctx context.Context, st *vmState) error {
	if !controllerutil.ContainsFinalizer(st.vm, kubevirtv1.VirtualMachineControllerFinalizer) {
		err := r.patchVM(ctx, st, func(vm *kubevirtv1.VirtualMachine) {
			controllerutil.AddFinalizer(vm, kubevirtv1.VirtualMachineControllerFinalizer)
		})
		if err != nil {
			return err
		}
	}
	strategy, err := st.vm.RunStrategy()
	if err != nil {
		st.fail(reasonFailedCreate, err)
		return nil
	}
	if st.vm.Annotations[kubevirtv1.ImmediateDataVolumeCreation] != "false" {
		ready, err := r.syncDataVolumes(ctx, st)
		// KubeVirt lets a Halted VM go on, so that it can stop a VMI while its disks import.
		if err != nil || (!ready && strategy != kubevirtv1.RunStrategyHalted) {
			return err
		}
	}
	if err := r.syncRunStrategy(ctx, st, strategy); err != nil {
		return err
	}
	return r.syncFirmwareUUID(ctx, st)
}

// syncRunStrategy is KubeVirt's: it decides from the run strategy, the VMI and the first state change request
// whether to create or delete the VMI.
func (r *vmReconciler) syncRunStrategy(ctx context.Context, st *vmState, strategy kubevirtv1.VirtualMachineRunStrategy) error {
	vm, vmi := st.vm, st.vmi
	switch strategy {
	case kubevirtv1.RunStrategyAlways:
		if vmi != nil {
			if vmi.IsFinal() || hasStopRequestFor(vm, vmi) {
				return r.stopVMI(ctx, st) // started again once the cache shows it gone
			}
			return nil
		}
		return r.startAfterBackoff(ctx, st)
	case kubevirtv1.RunStrategyRerunOnFailure:
		if vmi != nil {
			failed := vmi.Status.Phase == kubevirtv1.Failed
			if vmi.DeletionTimestamp != nil || !(failed || vmi.Status.Phase == kubevirtv1.Succeeded || hasStopRequestFor(vm, vmi)) {
				return nil
			}
			// The start request is what restarts a failed VMI; record it before deleting, so it cannot be lost.
			if failed && !hasStartRequest(vm) {
				if err := r.addStartRequest(ctx, st); err != nil {
					return err
				}
			}
			return r.stopVMI(ctx, st)
		}
		if !hasStartRequest(vm) && vm.Status.RunStrategy == strategy {
			return nil // stopped after a guest shutdown, or already ran under this strategy
		}
		return r.startAfterBackoff(ctx, st)
	case kubevirtv1.RunStrategyManual:
		if vmi != nil {
			if hasStopRequestFor(vm, vmi) {
				return r.stopVMI(ctx, st)
			}
			return nil
		}
		if hasStartRequest(vm) {
			return r.startVMI(ctx, st)
		}
		return nil
	case kubevirtv1.RunStrategyHalted:
		if vmi != nil {
			return r.stopVMI(ctx, st)
		}
		if hasStartRequest(vm) { // a paused start of a Halted VM: virt-api left it to the controller
			return r.patchVM(ctx, st, func(vm *kubevirtv1.VirtualMachine) {
				if vm.Spec.RunStrategy != nil {
					vm.Spec.RunStrategy = ptr.To(kubevirtv1.RunStrategyAlways)
				} else {
					vm.Spec.Running = ptr.To(true)
				}
			})
		}
		return nil
	case kubevirtv1.RunStrategyOnce:
		if vmi == nil {
			return r.startVMI(ctx, st)
		}
		return nil
	default:
		st.fail(reasonFailedCreate, fmt.Errorf("unknown runstrategy: %s", strategy))
		return nil
	}
}

// startAfterBackoff starts the VMI unless the VM is in crash-loop back-off.
func (r *vmReconciler) startAfterBackoff(ctx context.Context, st *vmState) error {
	if left := startBackoffLeft(st.vm); left > 0 {
		st.requeue = left
		return nil
	}
	return r.startVMI(ctx, st)
}

func (r *vmReconciler) startVMI(ctx context.Context, st *vmState) error {
	ready, err := r.syncDataVolumes(ctx, st)
	if err != nil || !ready {
		return err
	}
	err = r.client.Create(ctx, newVMI(st.vm))
	switch {
	case apierrors.IsAlreadyExists(err):
		// Created by an earlier reconcile that the cache has not caught up with.
	case err != nil:
		st.fail(reasonFailedCreate, err)
		return fmt.Errorf("creating VMI %s: %w", objectKey(st.vm), err)
	}
	st.startExpected = true
	return nil
}

func (r *vmReconciler) stopVMI(ctx context.Context, st *vmState) error {
	vmi := st.vmi
	if vmi == nil || vmi.DeletionTimestamp != nil {
		return nil
	}
	uid := vmi.UID
	if err := r.client.Delete(ctx, vmi, client.Preconditions{UID: &uid}); client.IgnoreNotFound(err) != nil {
		st.fail(reasonFailedDelete, err)
		return fmt.Errorf("deleting VMI %s: %w", objectKey(vmi), err)
	}
	st.stopExpected = true
	return nil
}

func (r *vmReconciler) addStartRequest(ctx context.Context, st *vmState) error {
	st.vm.Status.StateChangeRequests = append(st.vm.Status.StateChangeRequests,
		kubevirtv1.VirtualMachineStateChangeRequest{Action: kubevirtv1.StartRequest})
	return r.writeVMStatus(ctx, st.vm)
}

// syncFirmwareUUID is KubeVirt v1.9's firmware controller: a VM without a firmware UUID gets the one derived from
// its name written into its spec, which bumps its generation.
func (r *vmReconciler) syncFirmwareUUID(ctx context.Context, st *vmState) error {
	if fw := st.vm.Spec.Template.Spec.Domain.Firmware; fw != nil && fw.UUID != "" {
		return nil
	}
	return r.patchVM(ctx, st, func(vm *kubevirtv1.VirtualMachine) {
		if vm.Spec.Template.Spec.Domain.Firmware == nil {
			vm.Spec.Template.Spec.Domain.Firmware = &kubevirtv1.Firmware{}
		}
		vm.Spec.Template.Spec.Domain.Firmware.UUID = legacyFirmwareUUID(vm.Name)
	})
}

// finalize handles a VM being deleted. KubeVirt deletes the VMI and then drops its finalizer; the garbage
// collector owns the foregroundDeletion and orphan finalizers. It reports whether the VM is about to vanish.
func (r *vmReconciler) finalize(ctx context.Context, st *vmState) (bool, error) {
	vm := st.vm
	if controllerutil.ContainsFinalizer(vm, metav1.FinalizerOrphanDependents) {
		if err := r.orphanDependents(ctx, st); err != nil {
			return false, err
		}
		return r.removeFinalizers(ctx, st, metav1.FinalizerOrphanDependents, kubevirtv1.VirtualMachineControllerFinalizer)
	}
	foreground := controllerutil.ContainsFinalizer(vm, metav1.FinalizerDeleteDependents)
	dataVolumesLeft := 0
	if foreground {
		n, err := r.deleteDataVolumes(ctx, st)
		if err != nil {
			return false, err
		}
		dataVolumesLeft = n
	}
	if st.vmi != nil {
		return false, r.stopVMI(ctx, st)
	}
	remove := []string{kubevirtv1.VirtualMachineControllerFinalizer}
	if foreground && dataVolumesLeft == 0 {
		remove = append(remove, metav1.FinalizerDeleteDependents)
	}
	return r.removeFinalizers(ctx, st, remove...)
}

func (r *vmReconciler) removeFinalizers(ctx context.Context, st *vmState, finalizers ...string) (bool, error) {
	has := false
	for _, f := range finalizers {
		has = has || controllerutil.ContainsFinalizer(st.vm, f)
	}
	if !has {
		return false, nil
	}
	err := r.patchVM(ctx, st, func(vm *kubevirtv1.VirtualMachine) {
		for _, f := range finalizers {
			controllerutil.RemoveFinalizer(vm, f)
		}
	})
	return err == nil && len(st.vm.Finalizers) == 0, err
}

// orphanDependents is the garbage collector's orphan deletion: the VMI and DataVolumes lose their owner reference.
func (r *vmReconciler) orphanDependents(ctx context.Context, st *vmState) error {
	deps := r.ownedDataVolumes(ctx, st.vm)
	if st.vmi != nil {
		deps = append(deps, st.vmi)
	}
	var errs []error
	for _, obj := range deps {
		base := obj.DeepCopyObject().(client.Object)
		refs := obj.GetOwnerReferences()[:0]
		for _, ref := range obj.GetOwnerReferences() {
			if ref.UID != st.vm.UID {
				refs = append(refs, ref)
			}
		}
		obj.SetOwnerReferences(refs)
		err := r.client.Patch(ctx, obj, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
		errs = append(errs, client.IgnoreNotFound(err))
	}
	return errors.Join(errs...)
}

// patchVM applies mutate to the VM with a merge patch that fails on a concurrent change, and refreshes st.vm.
func (r *vmReconciler) patchVM(ctx context.Context, st *vmState, mutate func(*kubevirtv1.VirtualMachine)) error {
	base := st.vm.DeepCopy()
	mutate(st.vm)
	if err := r.client.Patch(ctx, st.vm, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("patching VM %s: %w", objectKey(st.vm), err)
	}
	return nil
}
