package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
)

// Client reads and writes the few kinds the extension uses, as JSON over client-go's REST client. The
// extension is a new process for every CloudStack call, so it carries no scheme of all Kubernetes kinds, no
// discovery and no metrics: controller-runtime's client cost more in package initialisation alone than the
// rest of a status call.
type Client struct {
	rest *rest.RESTClient
}

// Object is what Create, Update, Patch and Delete take: a Kubernetes object with metadata.
type Object interface {
	metav1.Object
	runtime.Object
}

// NewClient builds the extension's client for cfg.
func NewClient(cfg *rest.Config) (*Client, error) {
	// The scheme knows only the API's Status (errors) and the metadata-only kinds, which it reads as protobuf.
	meta := runtime.NewScheme()
	metav1.AddToGroupVersion(meta, schema.GroupVersion{Version: "v1"})
	metav1.AddMetaToScheme(meta)
	c := rest.CopyConfig(cfg)
	c.APIPath = "/"
	c.NegotiatedSerializer = serializer.NewCodecFactory(meta).WithoutConversion()
	rc, err := rest.UnversionedRESTClientFor(c)
	if err != nil {
		return nil, fmt.Errorf("creating the Kubernetes client for %s: %w", cfg.Host, err)
	}
	return &Client{rest: rc}, nil
}

// request starts a request on the resource of obj, in namespace, for name ("" for the collection).
func (c *Client) request(verb string, obj runtime.Object, namespace, name string) (*rest.Request, error) {
	r, err := resourceOf(obj)
	if err != nil {
		return nil, err
	}
	segments := []string{"apis", r.group, r.version}
	if r.group == "" {
		segments = []string{"api", r.version} // the core group
	}
	if r.namespaced {
		segments = append(segments, "namespaces", namespace)
	}
	segments = append(segments, r.name)
	if name != "" {
		segments = append(segments, name)
	}
	req := c.rest.Verb(verb).AbsPath(segments...)
	if r.as != "" {
		// Metadata is served as protobuf even for custom resources: a tenth of JSON's cost to encode and decode
		// at 10,000 VMs.
		as := ";as=" + r.as + ";g=meta.k8s.io;v=v1"
		req.SetHeader("Accept", "application/vnd.kubernetes.protobuf"+as+", application/json"+as)
	} else {
		req.SetHeader("Accept", "application/json")
	}
	return req, nil
}

// isMetadata says whether obj is a metadata-only kind, decoded by the client's own codecs.
func isMetadata(obj runtime.Object) bool {
	switch obj.(type) {
	case *metav1.PartialObjectMetadata, *metav1.PartialObjectMetadataList:
		return true
	}
	return false
}

// withTypeMeta sets apiVersion and kind, which the API server requires in a custom resource's body.
func withTypeMeta(obj Object) error {
	r, err := resourceOf(obj)
	if err != nil {
		return err
	}
	obj.GetObjectKind().SetGroupVersionKind(schema.GroupVersionKind{Group: r.group, Version: r.version, Kind: r.kind})
	return nil
}

// do sends req with body (nil for none) and decodes the answer into into (nil to ignore it), which it zeroes
// first: a field the answer omits must not survive from what into held before.
func do(ctx context.Context, req *rest.Request, body any, into runtime.Object) error {
	result, err := send(ctx, req, body)
	if err != nil {
		return err
	}
	if into != nil && isMetadata(into) {
		return result.Into(into)
	}
	raw, err := result.Raw()
	if err != nil {
		return result.Error()
	}
	if into == nil {
		return nil
	}
	v := reflect.ValueOf(into).Elem()
	v.Set(reflect.Zero(v.Type()))
	return json.Unmarshal(raw, into)
}

// send sends req with body marshalled as JSON (the caller sets the content type), or none when nil. On a failed
// request, read the error with Result.Error: Result.Raw returns a generic one ("the server rejected our request
// due to an error in our request") without the Status the API server sent, and with it the message of an
// admission webhook's refusal.
func send(ctx context.Context, req *rest.Request, body any) (rest.Result, error) {
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return rest.Result{}, err
		}
		req.Body(data)
	}
	return req.Do(ctx), nil
}

// Get reads the object key names into obj.
func (c *Client) Get(ctx context.Context, key types.NamespacedName, obj runtime.Object) error {
	req, err := c.request("GET", obj, key.Namespace, key.Name)
	if err != nil {
		return err
	}
	return do(ctx, req, nil, obj)
}

// ListOptions narrow a List.
type ListOptions struct {
	LabelSelector string
	FieldSelector string
	Limit         int64
	Continue      string
}

// List reads one page of the namespace's objects into list.
func (c *Client) List(ctx context.Context, namespace string, list runtime.Object, opts ListOptions) error {
	req, err := c.request("GET", list, namespace, "")
	if err != nil {
		return err
	}
	setListParams(req, opts)
	return do(ctx, req, nil, list)
}

func setListParams(req *rest.Request, opts ListOptions) {
	q := url.Values{}
	if opts.LabelSelector != "" {
		q.Set("labelSelector", opts.LabelSelector)
	}
	if opts.FieldSelector != "" {
		q.Set("fieldSelector", opts.FieldSelector)
	}
	if opts.Limit > 0 {
		q.Set("limit", strconv.FormatInt(opts.Limit, 10))
	}
	if opts.Continue != "" {
		q.Set("continue", opts.Continue)
	}
	for k, vs := range q {
		req.Param(k, vs[0])
	}
}

// Create creates obj and reads back what the API server stored.
func (c *Client) Create(ctx context.Context, obj Object) error {
	if err := withTypeMeta(obj); err != nil {
		return err
	}
	req, err := c.request("POST", obj, obj.GetNamespace(), "")
	if err != nil {
		return err
	}
	req.SetHeader("Content-Type", "application/json")
	return do(ctx, req, obj, obj)
}

// Update replaces obj (guarded by its resourceVersion) and reads back what the API server stored.
func (c *Client) Update(ctx context.Context, obj Object) error {
	if err := withTypeMeta(obj); err != nil {
		return err
	}
	req, err := c.request("PUT", obj, obj.GetNamespace(), obj.GetName())
	if err != nil {
		return err
	}
	req.SetHeader("Content-Type", "application/json")
	return do(ctx, req, obj, obj)
}

// MergePatch applies a JSON merge patch to obj and reads back the result.
func (c *Client) MergePatch(ctx context.Context, obj Object, patch any) error {
	req, err := c.request("PATCH", obj, obj.GetNamespace(), obj.GetName())
	if err != nil {
		return err
	}
	req.SetHeader("Content-Type", string(types.MergePatchType))
	return do(ctx, req, patch, obj)
}

// MergePatchStatus is MergePatch on obj's status subresource.
func (c *Client) MergePatchStatus(ctx context.Context, obj Object, patch any) error {
	req, err := c.request("PATCH", obj, obj.GetNamespace(), obj.GetName())
	if err != nil {
		return err
	}
	req.SubResource("status").SetHeader("Content-Type", string(types.MergePatchType))
	return do(ctx, req, patch, obj)
}

// Delete deletes obj with opts (preconditions, propagation).
func (c *Client) Delete(ctx context.Context, obj Object, opts metav1.DeleteOptions) error {
	req, err := c.request("DELETE", obj, obj.GetNamespace(), obj.GetName())
	if err != nil {
		return err
	}
	opts.APIVersion, opts.Kind = "meta.k8s.io/v1", "DeleteOptions"
	req.SetHeader("Content-Type", "application/json")
	return do(ctx, req, opts, nil)
}

// DeleteCollection deletes the namespace's objects of obj's kind that labelSelector selects.
func (c *Client) DeleteCollection(ctx context.Context, namespace string, obj runtime.Object, labelSelector string) error {
	req, err := c.request("DELETE", obj, namespace, "")
	if err != nil {
		return err
	}
	req.Param("labelSelector", labelSelector)
	return do(ctx, req, nil, nil)
}

// Raw sends one request to path (absolute, with its query) and returns the body; body is sent as JSON when
// not nil. It serves the check action's probes of discovery, version and access reviews.
func (c *Client) Raw(ctx context.Context, verb, path string, body any) ([]byte, error) {
	u, err := url.Parse(path)
	if err != nil {
		return nil, err
	}
	req := c.rest.Verb(verb).AbsPath(u.Path)
	for k, vs := range u.Query() {
		req.Param(k, vs[0])
	}
	req.SetHeader("Accept", "application/json")
	if body != nil {
		req.SetHeader("Content-Type", "application/json")
	}
	result, err := send(ctx, req, body)
	if err != nil {
		return nil, err
	}
	raw, err := result.Raw()
	if err != nil {
		return raw, result.Error()
	}
	return raw, nil
}
