// Package kube is everything that talks to the Kubernetes API server: the client built from CloudStack's
// details, and the Instance lifecycle (apply, power operations, deletion, power-state reads) on KubeVirt.
package kube

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

// UserAgent identifies the extension in the API server's audit log.
const UserAgent = "cloudstack-kubevirt-extension"

// NetworkAttachmentDefinitionGVK is Multus's kind; the extension only checks that one exists, so it needs no
// Go type for it.
var NetworkAttachmentDefinitionGVK = schema.GroupVersionKind{Group: "k8s.cni.cncf.io", Version: "v1", Kind: "NetworkAttachmentDefinition"}

// RESTConfig loads the kubeconfig file a CloudStack detail names.
func RESTConfig(conn translate.Connection) (*rest.Config, error) {
	if _, err := os.Stat(conn.Kubeconfig); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("kubeconfig %s does not exist on this management server: copy it to every management server", conn.Kubeconfig)
		}
		return nil, fmt.Errorf("kubeconfig %s cannot be read by the management server's user: %w", conn.Kubeconfig, err)
	}
	loader := &clientcmd.ClientConfigLoadingRules{ExplicitPath: conn.Kubeconfig}
	overrides := &clientcmd.ConfigOverrides{CurrentContext: conn.Context}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(loader, overrides).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s (context %q): %w", conn.Kubeconfig, conn.Context, err)
	}
	cfg.UserAgent = UserAgent
	// A status ping across thousands of VMs pages through lists; client-go's default 5 QPS would throttle it.
	cfg.QPS, cfg.Burst = 50, 100
	// One short-lived process, a handful of requests: HTTP/2's connection set-up costs more than it saves.
	cfg.NextProtos = []string{"http/1.1"}
	return cfg, nil
}
