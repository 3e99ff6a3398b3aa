// Package kube is everything that talks to the Kubernetes API server: the client built from CloudStack's
// details, and the Instance lifecycle (apply, power operations, deletion, power-state reads) on KubeVirt.
package kube

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	kubevirtv1 "kubevirt.io/api/core/v1"
	instancetypev1beta1 "kubevirt.io/api/instancetype/v1beta1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"

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
	return cfg, nil
}

// Scheme holds the kinds the extension reads and writes.
func Scheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		kubevirtv1.AddToScheme, cdiv1.AddToScheme, instancetypev1beta1.AddToScheme, coordinationv1.AddToScheme,
	} {
		if err := add(s); err != nil {
			return nil, fmt.Errorf("building the scheme: %w", err)
		}
	}
	return s, nil
}

// restMapper knows the few kinds the extension uses, so a call never pays for API discovery: the extension is
// a new process for every CloudStack call.
func restMapper() meta.RESTMapper {
	m := meta.NewDefaultRESTMapper(nil)
	for _, gvk := range []schema.GroupVersionKind{
		kubevirtv1.VirtualMachineGroupVersionKind,
		kubevirtv1.VirtualMachineInstanceGroupVersionKind,
		cdiv1.SchemeGroupVersion.WithKind("DataVolume"),
		coordinationv1.SchemeGroupVersion.WithKind("Lease"),
	} {
		m.Add(gvk, meta.RESTScopeNamespace)
	}
	for _, kind := range []string{"VirtualMachineClusterInstancetype", "VirtualMachineClusterPreference"} {
		m.Add(instancetypev1beta1.SchemeGroupVersion.WithKind(kind), meta.RESTScopeRoot)
	}
	nad := NetworkAttachmentDefinitionGVK
	m.AddSpecific(nad, nad.GroupVersion().WithResource("network-attachment-definitions"),
		nad.GroupVersion().WithResource("network-attachment-definition"), meta.RESTScopeNamespace)
	return m
}

// NewClient builds an uncached client for the kinds the extension uses.
func NewClient(cfg *rest.Config) (client.Client, error) {
	s, err := Scheme()
	if err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: s, Mapper: restMapper()})
	if err != nil {
		return nil, fmt.Errorf("creating the Kubernetes client for %s: %w", cfg.Host, err)
	}
	return c, nil
}
