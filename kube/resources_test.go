package kube

import (
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	kubevirtv1 "kubevirt.io/api/core/v1"
	instancetypev1beta1 "kubevirt.io/api/instancetype/v1beta1"
	snapshotv1beta1 "kubevirt.io/api/snapshot/v1beta1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
)

// TestResourceOf: every kind the extension uses is served where the API server serves it.
func TestResourceOf(t *testing.T) {
	nad := &unstructured.Unstructured{}
	nad.SetGroupVersionKind(NetworkAttachmentDefinitionGVK)
	vmMeta := &metav1.PartialObjectMetadata{}
	vmMeta.SetGroupVersionKind(kubevirtv1.VirtualMachineGroupVersionKind)
	vmMetaList := &metav1.PartialObjectMetadataList{}
	vmMetaList.SetGroupVersionKind(kubevirtv1.GroupVersion.WithKind("VirtualMachineList"))
	tests := []struct {
		obj  runtime.Object
		want string // group/version/name, namespaced or not, as
	}{
		{&kubevirtv1.VirtualMachine{}, "kubevirt.io/v1/virtualmachines VirtualMachine true "},
		{&kubevirtv1.VirtualMachineList{}, "kubevirt.io/v1/virtualmachines VirtualMachine true "},
		{vmMeta, "kubevirt.io/v1/virtualmachines VirtualMachine true PartialObjectMetadata"},
		{vmMetaList, "kubevirt.io/v1/virtualmachines VirtualMachine true PartialObjectMetadataList"},
		{&kubevirtv1.VirtualMachineInstanceList{}, "kubevirt.io/v1/virtualmachineinstances VirtualMachineInstance true "},
		{&cdiv1.DataVolume{}, "cdi.kubevirt.io/v1beta1/datavolumes DataVolume true "},
		{&coordinationv1.Lease{}, "coordination.k8s.io/v1/leases Lease true "},
		{nad, "k8s.cni.cncf.io/v1/network-attachment-definitions NetworkAttachmentDefinition true "},
		{&instancetypev1beta1.VirtualMachineClusterInstancetype{}, "instancetype.kubevirt.io/v1beta1/virtualmachineclusterinstancetypes VirtualMachineClusterInstancetype false "},
		{&instancetypev1beta1.VirtualMachineClusterPreference{}, "instancetype.kubevirt.io/v1beta1/virtualmachineclusterpreferences VirtualMachineClusterPreference false "},
		{&corev1.SecretList{}, "/v1/secrets Secret true "},
		{&corev1.PersistentVolumeClaim{}, "/v1/persistentvolumeclaims PersistentVolumeClaim true "},
		{&snapshotv1beta1.VirtualMachineSnapshotList{}, "snapshot.kubevirt.io/v1beta1/virtualmachinesnapshots VirtualMachineSnapshot true "},
		{&snapshotv1beta1.VirtualMachineRestore{}, "snapshot.kubevirt.io/v1beta1/virtualmachinerestores VirtualMachineRestore true "},
		{&kubevirtv1.VirtualMachineInstanceMigration{}, "kubevirt.io/v1/virtualmachineinstancemigrations VirtualMachineInstanceMigration true "},
		{&corev1.EventList{}, "/v1/events Event true "},
	}
	for _, tt := range tests {
		r, err := resourceOf(tt.obj)
		require.NoError(t, err, "%T", tt.obj)
		got := r.group + "/" + r.version + "/" + r.name + " " + r.kind + " " + strconv.FormatBool(r.namespaced) + " " + r.as
		assert.Equal(t, tt.want, got, "%T", tt.obj)
	}
	_, err := resourceOf(&corev1.ConfigMap{})
	assert.ErrorContains(t, err, "does not handle *v1.ConfigMap", "a kind outside the registry")
}
