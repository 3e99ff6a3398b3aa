package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	kerrors "k8s.io/apimachinery/pkg/api/errors"
	kubevirtv1 "kubevirt.io/api/core/v1"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

// Check results: Fail blocks Instances; Warn costs something (speed, a feature) but Instances work.
const (
	Pass = "ok"
	Warn = "warn"
	Fail = "FAIL"
)

// Finding is one line of the check action's table.
type Finding struct {
	Check  string `json:"check"`
	Result string `json:"result"`
	Detail string `json:"detail"`
}

// permission is one thing the extension does in the host's namespace (see manifests/extension-rbac).
type permission struct{ verb, group, resource, subresource, action string }

var permissions = []permission{
	{"get", "kubevirt.io", "virtualmachines", "", "status, every action"},
	{"list", "kubevirt.io", "virtualmachines", "", "statuses"},
	{"create", "kubevirt.io", "virtualmachines", "", "create"},
	{"update", "kubevirt.io", "virtualmachines", "", "create (retried)"},
	{"patch", "kubevirt.io", "virtualmachines", "", "start, stop"},
	{"patch", "kubevirt.io", "virtualmachines", "status", "start after a guest shutdown (RerunOnFailure)"},
	{"delete", "kubevirt.io", "virtualmachines", "", "delete"},
	{"get", "kubevirt.io", "virtualmachineinstances", "", "status, reboot"},
	{"list", "kubevirt.io", "virtualmachineinstances", "", "statuses"},
	{"delete", "kubevirt.io", "virtualmachineinstances", "", "reboot without virt-api"},
	{"update", "subresources.kubevirt.io", "virtualmachines", "restart", "reboot"},
	{"deletecollection", "cdi.kubevirt.io", "datavolumes", "", "delete"},
	{"deletecollection", "snapshot.kubevirt.io", "virtualmachinesnapshots", "", "delete"},
	{"get", "k8s.cni.cncf.io", "network-attachment-definitions", "", "create (NIC check)"},
	{"get", "", "persistentvolumeclaims", "", "create (root_disk_pvc clone source check)"},
	{"create", "cdi.kubevirt.io", "datavolumes", "source", "create (root_disk_pvc clone, CDI's clone authorization)"},
	// Custom actions.
	{"list", "snapshot.kubevirt.io", "virtualmachinesnapshots", "", "ListSnapshots"},
	{"get", "snapshot.kubevirt.io", "virtualmachinesnapshots", "", "CreateSnapshot, RestoreSnapshot, DeleteSnapshot"},
	{"create", "snapshot.kubevirt.io", "virtualmachinesnapshots", "", "CreateSnapshot"},
	{"delete", "snapshot.kubevirt.io", "virtualmachinesnapshots", "", "DeleteSnapshot"},
	{"get", "snapshot.kubevirt.io", "virtualmachinerestores", "", "RestoreSnapshot"},
	{"create", "snapshot.kubevirt.io", "virtualmachinerestores", "", "RestoreSnapshot"},
	{"delete", "snapshot.kubevirt.io", "virtualmachinerestores", "", "RestoreSnapshot"},
	{"update", "subresources.kubevirt.io", "virtualmachineinstances", "pause", "Pause"},
	{"update", "subresources.kubevirt.io", "virtualmachineinstances", "unpause", "Resume"},
	{"get", "kubevirt.io", "virtualmachineinstancemigrations", "", "Migrate"},
	{"list", "kubevirt.io", "virtualmachineinstancemigrations", "", "Migrate"},
	{"create", "kubevirt.io", "virtualmachineinstancemigrations", "", "Migrate"},
	{"list", "", "events", "", "Describe"},
}

// CheckAPI probes the API server: reachable, which Kubernetes, and who the kubeconfig's identity is.
func (c *Client) CheckAPI(ctx context.Context, server string) []Finding {
	start := time.Now()
	raw, err := c.Raw(ctx, "GET", "/version", nil)
	if err != nil {
		return []Finding{{"API server", Fail, explain(err, "reach "+server).Error()}}
	}
	var v struct{ GitVersion string }
	_ = json.Unmarshal(raw, &v)
	out := []Finding{{"API server", Pass, fmt.Sprintf("%s answers: Kubernetes %s (%d ms)", server, v.GitVersion, time.Since(start).Milliseconds())}}
	review := map[string]any{"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
	raw, err = c.Raw(ctx, "POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", review)
	if err != nil {
		return append(out, Finding{"identity", Warn, "cannot ask who the kubeconfig's identity is: " + err.Error()})
	}
	var r struct {
		Status struct {
			UserInfo struct {
				Username string
				Groups   []string
			}
		}
	}
	_ = json.Unmarshal(raw, &r)
	return append(out, Finding{"identity", Pass, fmt.Sprintf("%s (groups %s)", r.Status.UserInfo.Username, strings.Join(r.Status.UserInfo.Groups, ", "))})
}

// CheckAPIs reports whether KubeVirt, and CDI for DataVolume root disks, are installed, and at which versions.
func (c *Client) CheckAPIs(ctx context.Context) []Finding {
	var out []Finding
	if _, err := c.Raw(ctx, "GET", "/apis/kubevirt.io/v1", nil); err != nil {
		out = append(out, Finding{"KubeVirt", Fail, "the kubevirt.io/v1 API is not served: install KubeVirt (" + err.Error() + ")"})
	} else {
		version := "version unknown (virt-api's version endpoint does not answer)"
		if raw, err := c.Raw(ctx, "GET", "/apis/subresources.kubevirt.io/v1/version", nil); err == nil {
			var v struct{ GitVersion string }
			if json.Unmarshal(raw, &v) == nil && v.GitVersion != "" {
				version = "KubeVirt " + v.GitVersion
			}
		}
		out = append(out, Finding{"KubeVirt", Pass, "kubevirt.io/v1 served, " + version})
	}
	if _, err := c.Raw(ctx, "GET", "/apis/cdi.kubevirt.io/v1beta1", nil); err != nil {
		out = append(out, Finding{"CDI", Warn, "cdi.kubevirt.io/v1beta1 is not served: root_disk_url, root_disk_pvc and iso_url need CDI; image works without"})
	} else {
		out = append(out, Finding{"CDI", Pass, "cdi.kubevirt.io/v1beta1 served"})
	}
	return out
}

// CheckNamespace dry-runs the creation of vm: the namespace exists and KubeVirt's admission takes the VM.
func (in Diagnostics) CheckNamespace(ctx context.Context, vm *kubevirtv1.VirtualMachine) Finding {
	body := vm.DeepCopy()
	body.APIVersion, body.Kind = kubevirtv1.GroupVersion.String(), "VirtualMachine"
	_, err := in.client.Raw(ctx, "POST", "/apis/kubevirt.io/v1/namespaces/"+in.namespace+"/virtualmachines?dryRun=All", body)
	switch {
	case err == nil, kerrors.IsAlreadyExists(err):
		return Finding{"namespace", Pass, in.namespace + " exists and takes the VirtualMachine " + vm.Name + " (dry run)"}
	case kerrors.IsNotFound(err):
		return Finding{"namespace", Fail, fmt.Sprintf("namespace %s does not exist: create it, or fix the host's namespace detail", in.namespace)}
	default:
		return Finding{"namespace", Fail, explain(err, "dry-run create VirtualMachine "+in.ref(vm.Name)).Error()}
	}
}

// CheckPermissions asks the API server (SelfSubjectAccessReview) for each permission the extension uses in
// the namespace.
func (in Diagnostics) CheckPermissions(ctx context.Context) Finding {
	var missing []string
	for _, p := range permissions {
		ok, err := in.client.allowed(ctx, in.namespace, p.verb, p.group, p.resource, p.subresource)
		if err != nil {
			return Finding{"permissions", Fail, explain(err, "ask the API server for the identity's permissions").Error()}
		}
		if !ok {
			resource := p.resource
			if p.subresource != "" {
				resource += "/" + p.subresource
			}
			if p.group != "" { // the core group has no name
				resource += "." + p.group
			}
			missing = append(missing, fmt.Sprintf("%s %s (%s)", p.verb, resource, p.action))
		}
	}
	if len(missing) > 0 {
		return Finding{"permissions", Fail, fmt.Sprintf("missing in %s: %s; bind manifests/extension-rbac's ClusterRole there", in.namespace, strings.Join(missing, ", "))}
	}
	return Finding{"permissions", Pass, fmt.Sprintf("all %d the extension uses in %s", len(permissions), in.namespace)}
}

// allowed asks the API server (SelfSubjectAccessReview) whether the identity may verb the resource in
// namespace. An answer it cannot read allows nothing.
func (c *Client) allowed(ctx context.Context, namespace, verb, group, resource, subresource string) (bool, error) {
	review := map[string]any{
		"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
		"spec": map[string]any{"resourceAttributes": map[string]string{
			"namespace": namespace, "verb": verb, "group": group, "resource": resource, "subresource": subresource,
		}},
	}
	raw, err := c.Raw(ctx, "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", review)
	if err != nil {
		return false, err
	}
	var r struct{ Status struct{ Allowed bool } }
	if err := json.Unmarshal(raw, &r); err != nil {
		return false, nil
	}
	return r.Status.Allowed, nil
}

// CheckNetworks reports whether every attachment the VM's NICs use exists.
func (in Diagnostics) CheckNetworks(ctx context.Context, vm *kubevirtv1.VirtualMachine) Finding {
	if err := in.Lifecycle().CheckReferences(ctx, vm); err != nil {
		return Finding{"networks", Fail, err.Error()}
	}
	var names []string
	for _, n := range vm.Spec.Template.Spec.Networks {
		if n.Multus != nil {
			names = append(names, n.Multus.NetworkName)
		}
	}
	if len(names) == 0 {
		return Finding{"networks", Pass, "the Instance has no NIC to attach"}
	}
	return Finding{"networks", Pass, "present: " + strings.Join(names, ", ")}
}

// CheckHeartbeat reports the companion reconciler's heartbeat.
func (in Diagnostics) CheckHeartbeat(ctx context.Context, lease translate.LeaseRef, clock *ServerClock) Finding {
	in.TrustHeartbeat(lease, clock)
	if in.heartbeatFresh(ctx) {
		return Finding{"reconciler", Pass, fmt.Sprintf("heartbeat %s/%s fresh: status calls answer from labels", lease.Namespace, lease.Name)}
	}
	return Finding{"reconciler", Warn, fmt.Sprintf("no fresh heartbeat in %s/%s for this namespace: status calls read every VM and VMI (slower, still right); deploy manifests/reconciler, or set reconciler_lease=none", lease.Namespace, lease.Name)}
}

// CheckConsole is the check action's line for getconsole: its details resolve, and the identity may leave
// tokens in the tokens' namespace. Without either, every other action still works: a warning.
func (in Diagnostics) CheckConsole(ctx context.Context, d translate.Details) Finding {
	settings, err := d.Console()
	if err != nil {
		return Finding{"console", Warn, "getconsole would fail: " + err.Error()}
	}
	ok, err := in.client.allowed(ctx, settings.Namespace, "create", "", "secrets", "")
	if err != nil {
		return Finding{"console", Warn, explain(err, "ask the API server whether getconsole may create its tokens").Error()}
	}
	if !ok {
		return Finding{"console", Warn, fmt.Sprintf("getconsole would fail: the identity may not create Secrets (console tokens) in %s; apply manifests/extension-rbac/console-tokens.yaml there", settings.Namespace)}
	}
	where := fmt.Sprintf("%s:%d", settings.Host, settings.Port)
	if settings.Mode == translate.ConsoleDirect {
		where = settings.URL
	}
	return Finding{"console", Pass, fmt.Sprintf("%s mode via %s; tokens in %s, valid %s", settings.Mode, where, settings.Namespace, settings.Lifetime)}
}
