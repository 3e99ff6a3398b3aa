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

// VirtAPI calls virt-api's subresources (PUT /apis/subresources.kubevirt.io/v1/namespaces/{ns}/{resource}/{name}/
// {subresource}): restart, pause, unpause. envtest does not serve them: a NotFound error means no virt-api.
type VirtAPI struct {
	rest rest.Interface
}

// NewVirtAPI builds the subresource client from the same config as the client. Only the actions that use it
// build it, so that a status ping pays nothing for it.
func NewVirtAPI(cfg *rest.Config) (*VirtAPI, error) {
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
	return &VirtAPI{rest: rc}, nil
}

func (v *VirtAPI) put(ctx context.Context, resource, namespace, name, subresource string) error {
	return v.rest.Put().
		Namespace(namespace).Resource(resource).Name(name).SubResource(subresource).
		Body([]byte("{}")).SetHeader("Content-Type", "application/json").
		Do(ctx).Error()
}

// Restart asks virt-api to restart a VM.
func (v *VirtAPI) Restart(ctx context.Context, namespace, name string) error {
	return v.put(ctx, "virtualmachines", namespace, name, "restart")
}

// Pause asks virt-api to pause a VMI's guest: its vCPUs stop; it keeps its memory and node.
func (v *VirtAPI) Pause(ctx context.Context, namespace, name string) error {
	return v.put(ctx, "virtualmachineinstances", namespace, name, "pause")
}

// Unpause asks virt-api to resume a paused guest.
func (v *VirtAPI) Unpause(ctx context.Context, namespace, name string) error {
	return v.put(ctx, "virtualmachineinstances", namespace, name, "unpause")
}
