package e2e

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kubevirtv1 "kubevirt.io/api/core/v1"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/cloudstacksim"
)

// TestBadInput: each mistake an operator can make is one clear JSON error naming what to fix, a non-zero
// exit, and nothing created.
func TestBadInput(t *testing.T) {
	const ns = "e2e-bad"
	namespace(t, ns)
	good := map[string]string{"image": "quay.io/containerdisks/fedora:43"}
	tests := []struct {
		name    string
		action  string
		details map[string]string
		host    func(h *cloudstacksim.Host)
		mutate  func(in *cloudstacksim.Instance)
		want    string
	}{
		{name: "no root disk", action: "create", details: map[string]string{}, want: "no root disk"},
		{name: "unknown run strategy", action: "create", details: map[string]string{"image": "a/b:1", "run_strategy": "Sometimes"}, want: `detail run_strategy (set on the instance, template or offering): "Sometimes" is not one of Always, RerunOnFailure`},
		{name: "bad disk size", action: "create", details: map[string]string{"root_disk_url": "https://x.example/a.qcow2", "root_disk_size": "big"}, want: "detail root_disk_size"},
		{name: "VLAN without attachment", action: "create", details: good, mutate: func(in *cloudstacksim.Instance) { in.NICs[0].BroadcastURI = "vlan://999" }, want: "NetworkAttachmentDefinition e2e-bad/vlan-999 (for interface nic0) not found"},
		{name: "missing instancetype", action: "create", details: map[string]string{"image": "a/b:1", "instancetype": "u1.huge"}, want: `"u1.huge" named by the detail instancetype does not exist`},
		{name: "bad MAC", action: "create", details: good, mutate: func(in *cloudstacksim.Instance) { in.NICs[0].MAC = "02:01:00:cc" }, want: "not a 6-byte MAC"},
		{name: "no memory", action: "create", details: good, mutate: func(in *cloudstacksim.Instance) { in.MemoryMB = 0 }, want: "need at least 1 MiB"},
		{name: "prepare checks too", action: "prepare", details: good, mutate: func(in *cloudstacksim.Instance) { in.NICs[0].BroadcastURI = "vlan://999" }, want: "vlan-999"},
		{name: "no namespace", action: "create", details: good, host: func(h *cloudstacksim.Host) { delete(h.Host, "namespace") }, want: "detail namespace: not set"},
		{name: "namespace missing from the cluster", action: "create", details: good, host: func(h *cloudstacksim.Host) { h.Host["namespace"] = "e2e-nowhere" }, want: "e2e-nowhere"},
		{name: "kubeconfig missing", action: "status", details: good, host: func(h *cloudstacksim.Host) { h.Host["kubeconfig"] = "/etc/nowhere/kubeconfig" }, want: "kubeconfig /etc/nowhere/kubeconfig does not exist"},
		{name: "context missing", action: "status", details: good, host: func(h *cloudstacksim.Host) { h.Host["context"] = "prod" }, want: `context "prod"`},
		{name: "unsupported action", action: "hibernate", details: good, want: `unsupported action "hibernate"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := host(ns)
			if tt.host != nil {
				tt.host(&h)
			}
			in := instance(tt.details)
			if tt.mutate != nil {
				tt.mutate(&in)
			}
			requireFailure(t, call(t, h, tt.action, in), tt.want)
			assert.Zero(t, managedObjects(t, ns, in.UUID), "nothing created")
		})
	}
}

// TestStartFailuresRollBack: a create that cannot bring the VM up fails before CloudStack's timeout and takes
// back what it created, so CloudStack's retry on another host leaves no orphan.
func TestStartFailuresRollBack(t *testing.T) {
	tests := []struct {
		name, ns string
		details  map[string]string
		timeout  time.Duration
		want     string
	}{
		{"image that never pulls fails fast", "e2e-pull", map[string]string{"image": badImage}, callTimeout, "cannot start: ErrImagePull"},
		{"VM never scheduled: answered before the timeout", unservedNamespace, map[string]string{"image": "quay.io/containerdisks/fedora:43"}, 3 * time.Second, "CloudStack's timeout for this call is nearly up"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			namespace(t, tt.ns)
			in := instance(tt.details)
			res, err := provisioner().Run(t.Context(), "create", host(tt.ns).Payload("create", in), tt.timeout)
			require.NoError(t, err)
			t.Logf("create -> exit %d in %s: %s", res.ExitCode, res.Elapsed, res.Output)
			requireFailure(t, res, tt.want)
			assert.Less(t, res.Elapsed, tt.timeout)
			assert.Contains(t, res.Output, "being removed again")
			// The deletion is requested before the answer; KubeVirt finishes it (the guest stops) after.
			assert.EventuallyWithT(t, func(c *assert.CollectT) {
				assert.Zero(c, managedObjects(t, tt.ns, in.UUID), "rolled back")
			}, 30*time.Second, 100*time.Millisecond)
		})
	}
}

// TestStatusesScope: statuses reports exactly the managed VMs of the host's namespace, by CloudStack name.
func TestStatusesScope(t *testing.T) {
	const ns, other = "e2e-scope", "e2e-other"
	namespace(t, ns)
	namespace(t, other)
	details := map[string]string{"image": "quay.io/containerdisks/fedora:43"}
	running, stopped, elsewhere := instance(details), instance(details), instance(details)
	requireSuccess(t, call(t, host(ns), "create", running))
	requireSuccess(t, call(t, host(ns), "create", stopped))
	requireSuccess(t, call(t, host(ns), "stop", stopped))
	requireSuccess(t, call(t, host(other), "create", elsewhere))
	unmanaged := &kubevirtv1.VirtualMachine{}
	unmanaged.Name, unmanaged.Namespace = "someone-elses", ns
	strategy := kubevirtv1.RunStrategyAlways
	unmanaged.Spec.RunStrategy = &strategy
	unmanaged.Spec.Template = &kubevirtv1.VirtualMachineInstanceTemplateSpec{}
	require.NoError(t, s.client.Create(t.Context(), unmanaged))
	t.Cleanup(func() { _ = s.client.Delete(t.Context(), unmanaged, client.PropagationPolicy("Background")) })

	assert.Equal(t, map[string]string{running.Name: cloudstacksim.PowerOn, stopped.Name: cloudstacksim.PowerOff}, statuses(t, host(ns)))
	assert.Equal(t, map[string]string{elsewhere.Name: cloudstacksim.PowerOn}, statuses(t, host(other)))
	requireFailure(t, call(t, host(ns), "stop", instanceNamed("someone-elses")), "CloudStack did not create it")
}

// instanceNamed is an Instance whose VM name collides with an object CloudStack did not create.
func instanceNamed(name string) cloudstacksim.Instance {
	in := instance(nil)
	in.Name = name
	return in
}
