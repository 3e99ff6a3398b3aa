package kubevirtsim

import (
	"context"
	"fmt"

	kubevirtv1 "kubevirt.io/api/core/v1"
	snapshotv1 "kubevirt.io/api/snapshot/v1beta1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// setupCustomActionControllers registers the migration, snapshot and restore controllers where their CRDs are
// installed, and returns the kinds whose informers Start waits for.
func (s *Sim) setupCustomActionControllers(mgr manager.Manager) ([]client.Object, error) {
	var objs []client.Object
	if s.api.migrations {
		err := ctrl.NewControllerManagedBy(mgr).Named("kubevirtsim-migration").
			For(&kubevirtv1.VirtualMachineInstanceMigration{}).
			Complete(&migrationReconciler{s})
		if err != nil {
			return nil, fmt.Errorf("kubevirtsim: migration controller: %w", err)
		}
		objs = append(objs, &kubevirtv1.VirtualMachineInstanceMigration{})
	}
	if !s.api.snapshots {
		return objs, nil
	}
	err := ctrl.NewControllerManagedBy(mgr).Named("kubevirtsim-snapshot").
		For(&snapshotv1.VirtualMachineSnapshot{}).
		Watches(&snapshotv1.VirtualMachineSnapshotContent{}, handler.EnqueueRequestsFromMapFunc(snapshotOfContent)).
		Complete(&snapshotReconciler{s})
	if err != nil {
		return nil, fmt.Errorf("kubevirtsim: snapshot controller: %w", err)
	}
	err = ctrl.NewControllerManagedBy(mgr).Named("kubevirtsim-restore").
		For(&snapshotv1.VirtualMachineRestore{}).
		Complete(&restoreReconciler{s})
	if err != nil {
		return nil, fmt.Errorf("kubevirtsim: restore controller: %w", err)
	}
	return append(objs, &snapshotv1.VirtualMachineSnapshot{}, &snapshotv1.VirtualMachineSnapshotContent{}, &snapshotv1.VirtualMachineRestore{}), nil
}

func snapshotOfContent(_ context.Context, obj client.Object) []reconcile.Request {
	c, ok := obj.(*snapshotv1.VirtualMachineSnapshotContent)
	if !ok || c.Spec.VirtualMachineSnapshotName == nil {
		return nil
	}
	return []reconcile.Request{{NamespacedName: client.ObjectKey{Namespace: c.Namespace, Name: *c.Spec.VirtualMachineSnapshotName}}}
}
