package kube

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/rest"
)

// restarter asks KubeVirt to restart a VM. A NotFound error means the API is not served (no virt-api).
type restarter interface {
	Restart(ctx context.Context, namespace, name string) error
}

// SubresourceRestarter calls virt-api's restart subresource
// (PUT /apis/subresources.kubevirt.io/v1/namespaces/{ns}/virtualmachines/{name}/restart), which envtest does
// not serve.
type SubresourceRestarter struct {
	rest rest.Interface
}

// NewSubresourceRestarter builds a restarter from the same config as the client.
func NewSubresourceRestarter(cfg *rest.Config) (*SubresourceRestarter, error) {
	c := rest.CopyConfig(cfg)
	c.APIPath = "/apis"
	c.GroupVersion = &schema.GroupVersion{Group: "subresources.kubevirt.io", Version: "v1"}
	// A scheme that knows metav1.Status: virt-api answers refusals (409 "VM is not running") with one, and a
	// codec without it cannot decode the error.
	st := runtime.NewScheme()
	metav1.AddToGroupVersion(st, schema.GroupVersion{Version: "v1"})
	c.NegotiatedSerializer = serializer.NewCodecFactory(st).WithoutConversion()
	rc, err := rest.RESTClientFor(c)
	if err != nil {
		return nil, fmt.Errorf("creating the KubeVirt subresource client: %w", err)
	}
	return &SubresourceRestarter{rest: rc}, nil
}

// Restart asks virt-api for a restart.
func (r *SubresourceRestarter) Restart(ctx context.Context, namespace, name string) error {
	return r.rest.Put().
		Namespace(namespace).Resource("virtualmachines").Name(name).SubResource("restart").
		Body([]byte("{}")).SetHeader("Content-Type", "application/json").
		Do(ctx).Error()
}
