package kubevirtsim

import (
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	kubevirtv1 "kubevirt.io/api/core/v1"
	snapshotv1 "kubevirt.io/api/snapshot/v1beta1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
)

// apiInfo is what the API server serves. The same code runs against virt-operator's CRDs (no status subresource
// on the VMI) and generated ones, and with or without CDI.
type apiInfo struct {
	vmStatus    bool // VirtualMachine has a status subresource
	vmiStatus   bool // VirtualMachineInstance has a status subresource
	dvStatus    bool // DataVolume has a status subresource
	dataVolumes bool // the DataVolume CRD is installed
	migrations  bool // the VirtualMachineInstanceMigration CRD is installed
	snapshots   bool // the VirtualMachineSnapshot, VirtualMachineSnapshotContent and VirtualMachineRestore CRDs are
}

func discover(cfg *rest.Config) (apiInfo, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return apiInfo{}, fmt.Errorf("kubevirtsim: discovery client: %w", err)
	}
	var api apiInfo
	kv, err := dc.ServerResourcesForGroupVersion(kubevirtv1.SchemeGroupVersion.String())
	if err != nil {
		return apiInfo{}, fmt.Errorf("kubevirtsim: the API server does not serve %s (are the KubeVirt CRDs installed?): %w",
			kubevirtv1.SchemeGroupVersion, err)
	}
	for _, r := range kv.APIResources {
		switch r.Name {
		case "virtualmachines/status":
			api.vmStatus = true
		case "virtualmachineinstances/status":
			api.vmiStatus = true
		case "virtualmachineinstancemigrations":
			api.migrations = true
		}
	}
	if api.snapshots, err = servesSnapshots(dc); err != nil {
		return apiInfo{}, err
	}
	cdi, err := dc.ServerResourcesForGroupVersion(cdiv1.SchemeGroupVersion.String())
	switch {
	case apierrors.IsNotFound(err):
		return api, nil
	case err != nil:
		return apiInfo{}, fmt.Errorf("kubevirtsim: discovering %s: %w", cdiv1.SchemeGroupVersion, err)
	}
	for _, r := range cdi.APIResources {
		switch r.Name {
		case "datavolumes":
			api.dataVolumes = true
		case "datavolumes/status":
			api.dvStatus = true
		}
	}
	return api, nil
}

// servesSnapshots reports whether the three snapshot.kubevirt.io/v1beta1 kinds are served.
func servesSnapshots(dc *discovery.DiscoveryClient) (bool, error) {
	list, err := dc.ServerResourcesForGroupVersion(snapshotv1.SchemeGroupVersion.String())
	switch {
	case apierrors.IsNotFound(err):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("kubevirtsim: discovering %s: %w", snapshotv1.SchemeGroupVersion, err)
	}
	found := 0
	for _, r := range list.APIResources {
		switch r.Name {
		case "virtualmachinesnapshots", "virtualmachinesnapshotcontents", "virtualmachinerestores":
			found++
		}
	}
	return found == 3, nil
}
