// Package kube is everything that talks to the Kubernetes API server: the client built from CloudStack's
// details, and the Instance lifecycle (apply, power operations, deletion, power-state reads) on KubeVirt.
package kube

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

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
	if err := checkKubeconfigFile(conn.Kubeconfig); err != nil {
		return nil, err
	}
	loader := &clientcmd.ClientConfigLoadingRules{ExplicitPath: conn.Kubeconfig}
	overrides := &clientcmd.ConfigOverrides{CurrentContext: conn.Context}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(loader, overrides).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s (context %q): %w", conn.Kubeconfig, conn.Context, err)
	}
	if cfg.Insecure && !conn.InsecureTLS {
		return nil, fmt.Errorf("kubeconfig %s turns TLS verification off (insecure-skip-tls-verify): give it the cluster's CA instead, or set the detail %s=true to accept the risk", conn.Kubeconfig, translate.DetailInsecureTLS)
	}
	cfg.UserAgent = UserAgent
	// A status ping across thousands of VMs pages through lists; client-go's default 5 QPS would throttle it.
	cfg.QPS, cfg.Burst = 50, 100
	// One short-lived process, a handful of requests: HTTP/2's connection set-up costs more than it saves.
	cfg.NextProtos = []string{"http/1.1"}
	return cfg, nil
}

// checkKubeconfigFile refuses a kubeconfig that is not a regular file (a symbolic link included) or that others
// may write: whoever can write it can point the extension, and its credentials, anywhere.
func checkKubeconfigFile(path string) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("kubeconfig %s is not an absolute path", path)
	}
	info, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("kubeconfig %s does not exist on this management server: copy it to every management server", path)
	}
	if err != nil {
		return fmt.Errorf("kubeconfig %s cannot be read by the management server's user: %w", path, err)
	}
	if !info.Mode().IsRegular() {
		return fmt.Errorf("kubeconfig %s is not a regular file (%s)", path, info.Mode().Type())
	}
	if info.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("kubeconfig %s is writable by other users (mode %04o): chmod go-w it (0600, owned by the cloud user, is best)", path, info.Mode().Perm())
	}
	return nil
}
