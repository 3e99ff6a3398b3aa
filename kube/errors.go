package kube

import (
	"errors"
	"fmt"
	"net"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// explain turns an API error into a message a CloudStack admin can act on; what says what was being done
// ("create VirtualMachine tenant-a/i-2-45-vm").
func explain(err error, what string) error {
	if err == nil {
		return nil
	}
	var netErr net.Error
	switch {
	case apierrors.IsForbidden(err):
		return fmt.Errorf("%s: forbidden for the kubeconfig's identity (bind the ClusterRole of manifests/extension-rbac in this namespace with a RoleBinding): %w", what, err)
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("%s: the API server rejected the kubeconfig's credentials (expired token or certificate?): %w", what, err)
	case errors.As(err, &netErr):
		return fmt.Errorf("%s: cannot reach the Kubernetes API server (check the kubeconfig's server address and the network from the management server): %w", what, err)
	default:
		return fmt.Errorf("%s: %w", what, err)
	}
}
