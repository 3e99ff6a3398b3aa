// Package kube is everything that talks to the Kubernetes API server: the client built from CloudStack's
// details, and one Scope (a namespace's Instances) with a type per capability over it: Lifecycle (apply, power
// operations, pause and resume, deletion, power-state reads), Snapshots, Migrations, Consoles and Diagnostics.
package kube

import (
	"fmt"
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

// RESTConfig loads the kubeconfig file a CloudStack detail names. The file is opened once and checked on the open
// descriptor (see readKubeconfig), and the client configuration is built from the bytes read, so that the file
// client-go uses is the file that was checked.
func RESTConfig(conn translate.Connection) (*rest.Config, error) {
	data, err := readKubeconfig(conn.Kubeconfig, os.Geteuid())
	if err != nil {
		return nil, err
	}
	cfg, err := restConfigFromKubeconfig(conn.Kubeconfig, conn.Context, data)
	if err != nil {
		return nil, err
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

// restConfigFromKubeconfig builds the client configuration from a kubeconfig's bytes, as client-go's loader
// would from its file: relative certificate and key paths are taken relative to the kubeconfig's directory.
func restConfigFromKubeconfig(path, context string, data []byte) (*rest.Config, error) {
	raw, err := clientcmd.Load(data)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s cannot be parsed: %w", path, err)
	}
	for _, c := range raw.Clusters {
		c.LocationOfOrigin = path
	}
	for _, a := range raw.AuthInfos {
		a.LocationOfOrigin = path
	}
	if err := clientcmd.ResolveLocalPaths(raw); err != nil {
		return nil, fmt.Errorf("kubeconfig %s: resolving its file paths: %w", path, err)
	}
	overrides := &clientcmd.ConfigOverrides{CurrentContext: context}
	cfg, err := clientcmd.NewNonInteractiveClientConfig(*raw, "", overrides, nil).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s (context %q): %w", path, context, err)
	}
	return cfg, nil
}
