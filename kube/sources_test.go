package kube

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apiresource "k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	kubevirtv1 "kubevirt.io/api/core/v1"
	instancetypev1beta1 "kubevirt.io/api/instancetype/v1beta1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

// objectsAPI serves GETs of the objects it holds, by path, and NotFound for anything else.
type objectsAPI map[string]any

func (o objectsAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	obj, ok := o[r.URL.Path]
	if r.Method != http.MethodGet || !ok {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}`)
		return
	}
	_ = json.NewEncoder(w).Encode(obj)
}

func testLifecycle(t *testing.T, api http.Handler) Lifecycle {
	t.Helper()
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	c, err := NewClient(&rest.Config{Host: srv.URL})
	require.NoError(t, err)
	return NewScope(c, "tenant-a", nil).Lifecycle()
}

func pvcWith(labels map[string]string) *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Labels: labels}}
}

func cloneVM(namespace, name string) *kubevirtv1.VirtualMachine {
	vm := &kubevirtv1.VirtualMachine{}
	vm.Spec.DataVolumeTemplates = []kubevirtv1.DataVolumeTemplateSpec{{
		ObjectMeta: metav1.ObjectMeta{Name: "i-2-45-vm-root"},
		Spec:       cdiv1.DataVolumeSpec{Source: &cdiv1.DataVolumeSource{PVC: &cdiv1.DataVolumeSourcePVC{Namespace: namespace, Name: name}}},
	}}
	return vm
}

func TestCheckCloneSources(t *testing.T) {
	const pvcs = "/api/v1/namespaces/tenant-a/persistentvolumeclaims/"
	api := objectsAPI{
		pvcs + "shared":       pvcWith(map[string]string{translate.LabelSharedSource: "true"}),
		pvcs + "not-shared":   pvcWith(nil),
		pvcs + "shared-false": pvcWith(map[string]string{translate.LabelSharedSource: "false"}),
		pvcs + "i-2-101-vm-root": pvcWith(map[string]string{translate.LabelSharedSource: "true", translate.LabelManagedBy: translate.ManagedBy,
			translate.LabelInstanceUUID: "uuid-101", translate.LabelInstanceName: "i-2-101-VM"}),
		"/api/v1/namespaces/golden/persistentvolumeclaims/fedora": pvcWith(map[string]string{translate.LabelSharedSource: "true"}),
	}
	in := testLifecycle(t, api)
	tests := []struct {
		name, namespace, pvc, wantErr string
	}{
		{name: "shared", pvc: "shared"},
		{name: "shared, in another namespace", namespace: "golden", pvc: "fedora"},
		{name: "not shared", pvc: "not-shared", wantErr: "PersistentVolumeClaim tenant-a/not-shared is not a shared clone source"},
		{name: "label not true", pvc: "shared-false", wantErr: "is not a shared clone source"},
		{name: "another Instance's disk", pvc: "i-2-101-vm-root", wantErr: "detail root_disk_pvc: PersistentVolumeClaim tenant-a/i-2-101-vm-root is a disk of Instance i-2-101-VM"},
		{name: "missing", pvc: "nowhere", wantErr: "PersistentVolumeClaim tenant-a/nowhere does not exist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := in.CheckCloneSources(t.Context(), cloneVM(tt.namespace, tt.pvc))
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

func TestClusterInstancetype(t *testing.T) {
	in := testLifecycle(t, objectsAPI{
		"/apis/instancetype.kubevirt.io/v1beta1/virtualmachineclusterinstancetypes/u1.medium": &instancetypev1beta1.VirtualMachineClusterInstancetype{
			Spec: instancetypev1beta1.VirtualMachineInstancetypeSpec{
				CPU:    instancetypev1beta1.CPUInstancetype{Guest: 2},
				Memory: instancetypev1beta1.MemoryInstancetype{Guest: apiresource.MustParse("4Gi")},
			},
		},
	})
	got, err := in.ClusterInstancetype(t.Context(), "u1.medium")
	require.NoError(t, err)
	assert.Equal(t, uint32(2), got.CPUs)
	assert.True(t, apiresource.MustParse("4Gi").Equal(got.Memory))
	_, err = in.ClusterInstancetype(t.Context(), "u1.huge")
	require.ErrorContains(t, err, `VirtualMachineClusterInstancetype "u1.huge" named by the detail instancetype does not exist in the cluster`)
}

func TestCloneSourcesChanged(t *testing.T) {
	tests := []struct {
		name              string
		existing, desired *kubevirtv1.VirtualMachine
		want              bool
	}{
		{name: "same source", existing: cloneVM("", "a"), desired: cloneVM("", "a")},
		{name: "another PVC", existing: cloneVM("", "a"), desired: cloneVM("", "b"), want: true},
		{name: "another namespace", existing: cloneVM("", "a"), desired: cloneVM("golden", "a"), want: true},
		{name: "a clone where there was none", existing: &kubevirtv1.VirtualMachine{}, desired: cloneVM("", "a"), want: true},
		{name: "no clone", existing: cloneVM("", "a"), desired: &kubevirtv1.VirtualMachine{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, cloneSourcesChanged(tt.existing, tt.desired))
		})
	}
}
