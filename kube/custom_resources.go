package kube

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kubevirtv1 "kubevirt.io/api/core/v1"
	snapshotv1beta1 "kubevirt.io/api/snapshot/v1beta1"
)

// The kinds the custom actions use (snapshots, restores, migrations, events), in kube/objects.go's table.
var (
	vmSnapshots  = resource{"snapshot.kubevirt.io", "v1beta1", "virtualmachinesnapshots", "VirtualMachineSnapshot", true, ""}
	vmRestores   = resource{"snapshot.kubevirt.io", "v1beta1", "virtualmachinerestores", "VirtualMachineRestore", true, ""}
	vmMigrations = resource{"kubevirt.io", "v1", "virtualmachineinstancemigrations", "VirtualMachineInstanceMigration", true, ""}
	// Events are read through core/v1 only: events.k8s.io/v1 serves the same stored objects, so the Events
	// KubeVirt records (core/v1) and those the reconciler records (events.k8s.io) are all listed there, once.
	coreEvents = resource{"", "v1", "events", "Event", true, ""}
)

// customActionResourceOf maps the custom actions' Go types to their resources.
func customActionResourceOf(obj runtime.Object) (resource, bool) {
	switch obj.(type) {
	case *snapshotv1beta1.VirtualMachineSnapshot, *snapshotv1beta1.VirtualMachineSnapshotList:
		return vmSnapshots, true
	case *snapshotv1beta1.VirtualMachineRestore, *snapshotv1beta1.VirtualMachineRestoreList:
		return vmRestores, true
	case *kubevirtv1.VirtualMachineInstanceMigration, *kubevirtv1.VirtualMachineInstanceMigrationList:
		return vmMigrations, true
	case *corev1.Event, *corev1.EventList:
		return coreEvents, true
	}
	return resource{}, false
}
