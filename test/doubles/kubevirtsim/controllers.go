package kubevirtsim

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/types"
	kubevirtv1 "kubevirt.io/api/core/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"
)

// deletions passes only deletions: the VMI and DataVolume controllers watch VMs to collect what a deleted VM left.
func deletions() predicate.Funcs {
	return predicate.Funcs{
		CreateFunc:  func(event.CreateEvent) bool { return false },
		UpdateFunc:  func(event.UpdateEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
}

// setup registers one controller per kind and their informers, so that Start can wait for the caches. The
// VirtualMachines themselves are KubeVirt's own VM controller's (upstream.go); the simulator only collects what a
// deleted one leaves.
func (s *Sim) setup(ctx context.Context, mgr manager.Manager) error {
	gc := ctrl.NewControllerManagedBy(mgr).Named("kubevirtsim-gc").
		For(&kubevirtv1.VirtualMachine{}).
		Owns(&kubevirtv1.VirtualMachineInstance{})
	if s.api.dataVolumes {
		gc = gc.Owns(&cdiv1.DataVolume{})
	}
	if err := gc.Complete(&gcReconciler{s}); err != nil {
		return fmt.Errorf("kubevirtsim: garbage collector: %w", err)
	}
	err := ctrl.NewControllerManagedBy(mgr).Named("kubevirtsim-vmi").
		For(&kubevirtv1.VirtualMachineInstance{}).
		Watches(&kubevirtv1.VirtualMachine{}, handler.EnqueueRequestsFromMapFunc(vmiOfVM), builder.WithPredicates(deletions())).
		WatchesRawSource(source.Channel(s.pokes, &handler.EnqueueRequestForObject{})).
		Complete(&vmiReconciler{s})
	if err != nil {
		return fmt.Errorf("kubevirtsim: VMI controller: %w", err)
	}
	objs := []client.Object{&kubevirtv1.VirtualMachine{}, &kubevirtv1.VirtualMachineInstance{}}
	if s.api.dataVolumes {
		err := ctrl.NewControllerManagedBy(mgr).Named("kubevirtsim-datavolume").
			For(&cdiv1.DataVolume{}).
			Watches(&kubevirtv1.VirtualMachine{}, handler.EnqueueRequestsFromMapFunc(dataVolumesOfVM), builder.WithPredicates(deletions())).
			Complete(&dvReconciler{s})
		if err != nil {
			return fmt.Errorf("kubevirtsim: DataVolume controller: %w", err)
		}
		objs = append(objs, &cdiv1.DataVolume{})
	}
	more, err := s.setupCustomActionControllers(mgr)
	if err != nil {
		return err
	}
	objs = append(objs, more...)
	for _, obj := range objs {
		if _, err := mgr.GetCache().GetInformer(ctx, obj); err != nil {
			return fmt.Errorf("kubevirtsim: informer for %T: %w", obj, err)
		}
	}
	return nil
}

func vmiOfVM(_ context.Context, vm client.Object) []reconcile.Request {
	return []reconcile.Request{{NamespacedName: objectKey(vm)}}
}

func dataVolumesOfVM(_ context.Context, obj client.Object) []reconcile.Request {
	vm, ok := obj.(*kubevirtv1.VirtualMachine)
	if !ok {
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(vm.Spec.DataVolumeTemplates))
	for _, t := range vm.Spec.DataVolumeTemplates {
		reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: vm.Namespace, Name: t.Name}})
	}
	return reqs
}
