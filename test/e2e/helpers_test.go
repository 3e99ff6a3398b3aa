package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/cloudstacksim"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/fixture"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

// The simulator serves these namespaces; each test takes its own so tests never see each other's VMs.
var servedNamespaces = []string{"e2e-lifecycle", "e2e-variants", "e2e-retry", "e2e-gone", "e2e-bad", "e2e-pull", "e2e-scope", "e2e-other", "e2e-labels", "cloudstack-host-1", "e2e-concurrency", "e2e-bad-raw", "e2e-virtapi", "e2e-console",
	"e2e-listing", "e2e-listing-age", "e2e-listing-host1", "e2e-listing-host2", "e2e-listing-ms", "e2e-listing-full"}

// badImage is a containerDisk image the simulator never pulls.
const badImage = "registry.invalid/missing:latest"

// namespace creates ns (once) with the NetworkAttachmentDefinitions the tests' NICs use.
func namespace(t *testing.T, ns string) {
	t.Helper()
	require.NoError(t, fixture.HostNamespace(t.Context(), s.client, ns, 1577, 1578))
}

func isAlreadyExists(err error) bool {
	return client.IgnoreAlreadyExists(err) == nil
}

// host is the CloudStack host whose details map it to ns.
func host(ns string) cloudstacksim.Host {
	return cloudstacksim.Host{
		Host:        map[string]string{"kubeconfig": s.kubeconfig, "namespace": ns},
		ResourceMap: map[string]string{"cluster.level.key": "value"},
		Extension:   map[string]string{"log_file": "/tmp/kubevirt-extension-e2e.log"},
	}
}

var nextID atomic.Int64

// instance returns a fresh Instance with one NIC on VLAN 1577 and the given template/offering details.
func instance(details map[string]string) cloudstacksim.Instance {
	id := 100 + nextID.Add(1)
	return cloudstacksim.Instance{
		ID: id, Name: fmt.Sprintf("i-2-%d-VM", id), UUID: fmt.Sprintf("126f4562-1f0f-4313-875e-%012d", id),
		CPUs: 2, MemoryMB: 1024, Details: details,
		NICs: []cloudstacksim.NIC{{DeviceID: 0, MAC: fmt.Sprintf("02:01:00:cc:%02x:%02x", id>>8&255, id&255), IP: "10.1.1.245", BroadcastURI: "vlan://1577"}},
	}
}

func vmName(in cloudstacksim.Instance) string {
	name, _ := translate.VMName(in.Name)
	return name
}

// call runs one action as CloudStack would, with the payload CloudStack writes for it.
func call(t *testing.T, h cloudstacksim.Host, action string, in cloudstacksim.Instance) cloudstacksim.Result {
	t.Helper()
	return callOn(t, provisioner(), h, action, in)
}

// callOn runs one action on the management server p.
func callOn(t *testing.T, p *cloudstacksim.Provisioner, h cloudstacksim.Host, action string, in cloudstacksim.Instance) cloudstacksim.Result {
	t.Helper()
	res, err := p.Run(t.Context(), action, h.Payload(action, in), callTimeout)
	require.NoError(t, err)
	t.Logf("%s %s -> exit %d in %s: %s", action, in.Name, res.ExitCode, res.Elapsed.Round(1e6), res.Output)
	return res
}

// requireSuccess asserts CloudStack would record success, and that the answer is one JSON object.
func requireSuccess(t *testing.T, res cloudstacksim.Result) {
	t.Helper()
	require.True(t, res.Succeeded(), "CloudStack would record: %s", res.Details())
	var obj map[string]any
	require.NoError(t, json.Unmarshal([]byte(res.Output), &obj), "one JSON object: %q", res.Output)
}

// requireFailure asserts a non-zero exit with one JSON error object whose message contains want.
func requireFailure(t *testing.T, res cloudstacksim.Result, want string) {
	t.Helper()
	require.False(t, res.TimedOut, "answered before CloudStack's timeout")
	require.NotZero(t, res.ExitCode, "output: %s", res.Output)
	var obj struct{ Status, Message string }
	require.NoError(t, json.Unmarshal([]byte(res.Output), &obj), "one JSON object: %q", res.Output)
	require.Equal(t, "error", obj.Status)
	require.Contains(t, obj.Message, want)
}

func getVM(ctx context.Context, ns, name string) (*kubevirtv1.VirtualMachine, error) {
	vm := &kubevirtv1.VirtualMachine{}
	err := s.client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, vm)
	return vm, err
}

func getVMI(ctx context.Context, ns, name string) (*kubevirtv1.VirtualMachineInstance, error) {
	vmi := &kubevirtv1.VirtualMachineInstance{}
	err := s.client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, vmi)
	return vmi, err
}

// managedObjects counts the VMs and DataVolumes labelled for an Instance.
func managedObjects(t *testing.T, ns, uuid string) int {
	t.Helper()
	sel := client.MatchingLabels{translate.LabelInstanceUUID: uuid}
	var vms kubevirtv1.VirtualMachineList
	require.NoError(t, s.client.List(t.Context(), &vms, client.InNamespace(ns), sel))
	var dvs cdiv1.DataVolumeList
	require.NoError(t, s.client.List(t.Context(), &dvs, client.InNamespace(ns), sel))
	return len(vms.Items) + len(dvs.Items)
}

func namespaceObject(name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
}
