package kubevirtsim

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
)

// revisionPrefix starts the name of every ControllerRevision KubeVirt's VM controller records a start in
// (kubevirt.io/kubevirt@v1.8.0/pkg/virt-controller/watch/vm/vm.go, vmRevisionName).
const revisionPrefix = "revision-start-vm-"

// foregroundPoll is how often a VM in foreground deletion looks for dependents that are not gone yet.
const foregroundPoll = 50 * time.Millisecond

// gcReconciler plays the part of the Kubernetes garbage collector (k8s.io/kubernetes/pkg/controller/
// garbagecollector) that envtest lacks, for a VirtualMachine's dependents: its VMI, the DataVolumes made from its
// templates and the ControllerRevisions KubeVirt's VM controller records. A VM deleted with propagation Orphan
// has its dependents' owner references removed, then the orphan finalizer; with Foreground its dependents are
// deleted and the foregroundDeletion finalizer is removed once they are gone. Background deletion (the default)
// is the VMI and DataVolume controllers' ownerGone, and the ControllerRevisions' collection here once the VM has
// vanished.
type gcReconciler struct{ *Sim }

func (r *gcReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	vm := &kubevirtv1.VirtualMachine{}
	if err := r.client.Get(ctx, req.NamespacedName, vm); err != nil {
		if apierrors.IsNotFound(err) {
			return outcome(ctx, r.collectRevisions(ctx, req.Namespace, req.Name))
		}
		return outcome(ctx, err)
	}
	if vm.DeletionTimestamp == nil {
		return ctrl.Result{}, nil
	}
	switch {
	case controllerutil.ContainsFinalizer(vm, metav1.FinalizerOrphanDependents):
		return outcome(ctx, r.orphan(ctx, vm))
	case controllerutil.ContainsFinalizer(vm, metav1.FinalizerDeleteDependents):
		left, err := r.deleteDependents(ctx, vm)
		if err != nil || left > 0 {
			res, err := outcome(ctx, err)
			if err == nil && res.RequeueAfter == 0 {
				res.RequeueAfter = foregroundPoll
			}
			return res, err
		}
		return outcome(ctx, r.removeFinalizer(ctx, vm, metav1.FinalizerDeleteDependents))
	}
	return ctrl.Result{}, nil
}

// dependents lists, from the API server, the objects vm controls.
func (r *gcReconciler) dependents(ctx context.Context, vm *kubevirtv1.VirtualMachine) ([]client.Object, error) {
	var deps []client.Object
	vmi := &kubevirtv1.VirtualMachineInstance{}
	switch err := r.reader.Get(ctx, objectKey(vm), vmi); {
	case err == nil:
		deps = append(deps, vmi)
	case !apierrors.IsNotFound(err):
		return nil, err
	}
	if r.api.dataVolumes {
		var dvs cdiv1.DataVolumeList
		if err := r.reader.List(ctx, &dvs, client.InNamespace(vm.Namespace)); err != nil {
			return nil, err
		}
		for i := range dvs.Items {
			deps = append(deps, &dvs.Items[i])
		}
	}
	var revs appsv1.ControllerRevisionList
	if err := r.reader.List(ctx, &revs, client.InNamespace(vm.Namespace)); err != nil {
		return nil, err
	}
	for i := range revs.Items {
		deps = append(deps, &revs.Items[i])
	}
	owned := deps[:0]
	for _, obj := range deps {
		if ref := metav1.GetControllerOf(obj); ref != nil && ref.UID == vm.UID {
			owned = append(owned, obj)
		}
	}
	return owned, nil
}

// orphan is the garbage collector's orphanDependents: the dependents lose their owner reference to vm, then vm
// its orphan finalizer.
func (r *gcReconciler) orphan(ctx context.Context, vm *kubevirtv1.VirtualMachine) error {
	deps, err := r.dependents(ctx, vm)
	if err != nil {
		return err
	}
	var errs []error
	for _, obj := range deps {
		base := obj.DeepCopyObject().(client.Object)
		var refs []metav1.OwnerReference
		for _, ref := range obj.GetOwnerReferences() {
			if ref.UID != vm.UID {
				refs = append(refs, ref)
			}
		}
		obj.SetOwnerReferences(refs)
		err := r.client.Patch(ctx, obj, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
		errs = append(errs, client.IgnoreNotFound(err))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return r.removeFinalizer(ctx, vm, metav1.FinalizerOrphanDependents)
}

// deleteDependents deletes what vm controls and returns how many of its dependents still exist.
func (r *gcReconciler) deleteDependents(ctx context.Context, vm *kubevirtv1.VirtualMachine) (int, error) {
	deps, err := r.dependents(ctx, vm)
	if err != nil {
		return 0, err
	}
	var errs []error
	for _, obj := range deps {
		if obj.GetDeletionTimestamp() == nil {
			errs = append(errs, r.collect(ctx, obj))
		}
	}
	return len(deps), errors.Join(errs...)
}

// collectRevisions deletes the ControllerRevisions of a VM named name that no longer exists.
func (r *gcReconciler) collectRevisions(ctx context.Context, namespace, name string) error {
	var revs appsv1.ControllerRevisionList
	if err := r.reader.List(ctx, &revs, client.InNamespace(namespace)); err != nil {
		return err
	}
	var errs []error
	for i := range revs.Items {
		rev := &revs.Items[i]
		ref := metav1.GetControllerOf(rev)
		if !strings.HasPrefix(rev.Name, revisionPrefix) || !isVMRef(ref) || ref.Name != name {
			continue
		}
		gone, err := r.ownerGone(ctx, rev)
		if err == nil && gone {
			err = r.collect(ctx, rev)
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (r *gcReconciler) removeFinalizer(ctx context.Context, vm *kubevirtv1.VirtualMachine, finalizer string) error {
	base := vm.DeepCopy()
	controllerutil.RemoveFinalizer(vm, finalizer)
	if err := r.client.Patch(ctx, vm, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("removing finalizer %s from VM %s: %w", finalizer, objectKey(vm), err)
	}
	return nil
}
