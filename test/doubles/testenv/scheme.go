package testenv

import (
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	kubevirtv1 "kubevirt.io/api/core/v1"
	instancetypev1beta1 "kubevirt.io/api/instancetype/v1beta1"
	snapshotv1beta1 "kubevirt.io/api/snapshot/v1beta1"
	cdiv1beta1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
)

// AddToScheme registers every API group the tests talk to: core Kubernetes types, KubeVirt core/v1,
// instancetype.kubevirt.io/v1beta1, snapshot.kubevirt.io/v1beta1 and CDI core/v1beta1.
func AddToScheme(s *runtime.Scheme) error {
	builder := runtime.NewSchemeBuilder(
		clientgoscheme.AddToScheme,
		kubevirtv1.AddToScheme,
		instancetypev1beta1.AddToScheme,
		snapshotv1beta1.AddToScheme,
		cdiv1beta1.AddToScheme,
	)
	if err := builder.AddToScheme(s); err != nil {
		return fmt.Errorf("testenv: registering API types: %w", err)
	}
	return nil
}

// Scheme returns a new scheme holding the types listed at AddToScheme. Each call builds a fresh scheme, so callers
// may add their own types to it.
func Scheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := AddToScheme(s); err != nil {
		return nil, err
	}
	return s, nil
}
