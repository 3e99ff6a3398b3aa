package kube

import (
	"fmt"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kubevirtv1 "kubevirt.io/api/core/v1"
	instancetypev1beta1 "kubevirt.io/api/instancetype/v1beta1"
	snapshotv1beta1 "kubevirt.io/api/snapshot/v1beta1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
)

// resource says where a kind is served.
type resource struct {
	group, version, name, kind string
	namespaced                 bool
	as                         string // "PartialObjectMetadata(List)": ask the API server for metadata only
}

// resourceOf is the registry of every kind the extension reads or writes, the lifecycle's and the custom
// actions' alike: it maps the Go type to where the kind is served. The client knows no other kind, so what the
// extension may touch is this list.
func resourceOf(obj runtime.Object) (resource, error) {
	if r, ok := typedResourceOf(obj); ok {
		return r, nil
	}
	if r, ok := untypedResourceOf(obj); ok {
		return r, nil
	}
	return resource{}, fmt.Errorf("the extension's client does not handle %T %s", obj, obj.GetObjectKind().GroupVersionKind())
}

// typedResourceOf maps the kinds the extension has Go types for.
func typedResourceOf(obj runtime.Object) (resource, bool) {
	switch obj.(type) {
	case *kubevirtv1.VirtualMachine, *kubevirtv1.VirtualMachineList:
		return virtualMachines(""), true
	case *kubevirtv1.VirtualMachineInstance, *kubevirtv1.VirtualMachineInstanceList:
		return resource{"kubevirt.io", "v1", "virtualmachineinstances", "VirtualMachineInstance", true, ""}, true
	case *cdiv1.DataVolume, *cdiv1.DataVolumeList:
		return resource{"cdi.kubevirt.io", "v1beta1", "datavolumes", "DataVolume", true, ""}, true
	case *coordinationv1.Lease:
		return resource{"coordination.k8s.io", "v1", "leases", "Lease", true, ""}, true
	case *corev1.Secret, *corev1.SecretList: // console tokens
		return resource{"", "v1", "secrets", "Secret", true, ""}, true
	case *corev1.PersistentVolumeClaim: // clone sources
		return resource{"", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", true, ""}, true
	case *instancetypev1beta1.VirtualMachineClusterInstancetype:
		return resource{"instancetype.kubevirt.io", "v1beta1", "virtualmachineclusterinstancetypes", "VirtualMachineClusterInstancetype", false, ""}, true
	case *instancetypev1beta1.VirtualMachineClusterPreference:
		return resource{"instancetype.kubevirt.io", "v1beta1", "virtualmachineclusterpreferences", "VirtualMachineClusterPreference", false, ""}, true
	case *snapshotv1beta1.VirtualMachineSnapshot, *snapshotv1beta1.VirtualMachineSnapshotList:
		return resource{"snapshot.kubevirt.io", "v1beta1", "virtualmachinesnapshots", "VirtualMachineSnapshot", true, ""}, true
	case *snapshotv1beta1.VirtualMachineRestore, *snapshotv1beta1.VirtualMachineRestoreList:
		return resource{"snapshot.kubevirt.io", "v1beta1", "virtualmachinerestores", "VirtualMachineRestore", true, ""}, true
	case *kubevirtv1.VirtualMachineInstanceMigration, *kubevirtv1.VirtualMachineInstanceMigrationList:
		return resource{"kubevirt.io", "v1", "virtualmachineinstancemigrations", "VirtualMachineInstanceMigration", true, ""}, true
	case *corev1.Event, *corev1.EventList:
		// Events are read through core/v1 only: events.k8s.io/v1 serves the same stored objects, so the Events
		// KubeVirt records (core/v1) and those the reconciler records (events.k8s.io) are all listed there, once.
		return resource{"", "v1", "events", "Event", true, ""}, true
	}
	return resource{}, false
}

// untypedResourceOf maps the kinds the extension reads without their Go types: NetworkAttachmentDefinitions
// (unstructured: the module does not import Multus's API) and VMs' metadata alone.
func untypedResourceOf(obj runtime.Object) (resource, bool) {
	switch o := obj.(type) {
	case *unstructured.Unstructured:
		if o.GroupVersionKind() == NetworkAttachmentDefinitionGVK {
			return resource{"k8s.cni.cncf.io", "v1", "network-attachment-definitions", "NetworkAttachmentDefinition", true, ""}, true
		}
	case *metav1.PartialObjectMetadata:
		if o.GroupVersionKind() == kubevirtv1.VirtualMachineGroupVersionKind {
			return virtualMachines("PartialObjectMetadata"), true
		}
	case *metav1.PartialObjectMetadataList:
		if o.GroupVersionKind().GroupKind() == (schema.GroupKind{Group: "kubevirt.io", Kind: "VirtualMachineList"}) {
			return virtualMachines("PartialObjectMetadataList"), true
		}
	}
	return resource{}, false
}

// virtualMachines is where VMs are served, in full or (as) as metadata only.
func virtualMachines(as string) resource {
	return resource{"kubevirt.io", "v1", "virtualmachines", "VirtualMachine", true, as}
}
