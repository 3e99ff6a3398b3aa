package kubevirtsim

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	kubevirtv1 "kubevirt.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// conflictRetry is how soon a reconcile that lost an optimistic-concurrency race runs again. The newer object's
// watch event would trigger it anyway; the requeue keeps conflicts out of the error log.
const conflictRetry = 5 * time.Millisecond

// outcome turns a reconcile's error into its result: a conflict is retried quietly, an object that vanished
// meanwhile needs nothing more, and nothing is worth reporting once the simulator is stopping.
func outcome(ctx context.Context, err error) (ctrl.Result, error) {
	switch {
	case err == nil, ctx.Err() != nil:
		return ctrl.Result{}, nil
	case apierrors.IsConflict(err):
		return ctrl.Result{RequeueAfter: conflictRetry}, nil
	case apierrors.IsNotFound(err):
		return ctrl.Result{}, nil
	}
	return ctrl.Result{}, err
}

func objectKey(obj client.Object) types.NamespacedName { return client.ObjectKeyFromObject(obj) }

// save writes an object whose metadata or status changed. With a status subresource that takes two writes: the
// main resource ignores status and the status subresource ignores the rest. keepStatus saves the wanted status
// and returns a function that puts it back after the first write replaced obj with the server's copy.
func (s *Sim) save(ctx context.Context, obj client.Object, metaChanged, statusChanged, statusSub bool, keepStatus func() func()) error {
	if !statusSub {
		if metaChanged || statusChanged {
			return s.client.Update(ctx, obj)
		}
		return nil
	}
	if metaChanged {
		restore := keepStatus()
		if err := s.client.Update(ctx, obj); err != nil {
			return err
		}
		restore()
	}
	if statusChanged {
		return s.client.Status().Update(ctx, obj)
	}
	return nil
}

// ownerGone reports whether obj is controlled by a VirtualMachine that no longer exists, which is when the
// garbage collector deletes it. The cache may not yet hold a VM just created, so a miss is confirmed with the
// API server before anything is deleted.
func (s *Sim) ownerGone(ctx context.Context, obj client.Object) (bool, error) {
	ref := metav1.GetControllerOf(obj)
	if !isVMRef(ref) {
		return false, nil
	}
	key := types.NamespacedName{Namespace: obj.GetNamespace(), Name: ref.Name}
	vm := &kubevirtv1.VirtualMachine{}
	if err := s.client.Get(ctx, key, vm); err == nil && vm.UID == ref.UID {
		return false, nil
	}
	switch err := s.reader.Get(ctx, key, vm); {
	case apierrors.IsNotFound(err):
		return true, nil
	case err != nil:
		return false, fmt.Errorf("looking up owner %s: %w", key, err)
	}
	return vm.UID != ref.UID, nil
}

func isVMRef(ref *metav1.OwnerReference) bool {
	if ref == nil || ref.Kind != kubevirtv1.VirtualMachineGroupVersionKind.Kind {
		return false
	}
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	return err == nil && gv.Group == kubevirtv1.VirtualMachineGroupVersionKind.Group
}

// collect deletes a dependent whose owner is gone, as the garbage collector does (background propagation).
func (s *Sim) collect(ctx context.Context, obj client.Object) error {
	uid := obj.GetUID()
	err := s.client.Delete(ctx, obj, client.Preconditions{UID: &uid}, client.PropagationPolicy(metav1.DeletePropagationBackground))
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil // already gone, or replaced by a new object with the same name
	}
	return err
}
