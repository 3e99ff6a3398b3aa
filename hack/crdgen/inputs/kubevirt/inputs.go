// Package kubevirt pins the Go packages crdgen generates the KubeVirt CRDs from, with the
// dependencies kubevirt.io/api itself requires. crdgen loads them from here as source.
package kubevirt

import (
	_ "kubevirt.io/api/core/v1"
	_ "kubevirt.io/api/instancetype/v1beta1"
	_ "kubevirt.io/api/snapshot/v1beta1"
)
