package e2e

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	kubevirtv1 "kubevirt.io/api/core/v1"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/cloudstacksim"
)

// vncBackends says where each guest's VNC stream is, for virtapisim's vnc subresource: tests that open a console
// register a dialer (a QEMU VNC socket, say) for their VM.
type vncBackends struct {
	mu    sync.Mutex
	dials map[string]func(context.Context) (net.Conn, error)
}

// set registers dial as the VNC stream of namespace/name until the test ends.
func (b *vncBackends) set(t *testing.T, namespace, name string, dial func(context.Context) (net.Conn, error)) {
	t.Helper()
	key := namespace + "/" + name
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dials == nil {
		b.dials = map[string]func(context.Context) (net.Conn, error){}
	}
	b.dials[key] = dial
	t.Cleanup(func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		delete(b.dials, key)
	})
}

func (b *vncBackends) dial(ctx context.Context, namespace, name string) (net.Conn, error) {
	b.mu.Lock()
	dial := b.dials[namespace+"/"+name]
	b.mu.Unlock()
	if dial == nil {
		return nil, fmt.Errorf("no VNC stream registered for %s/%s", namespace, name)
	}
	return dial(ctx)
}

// virtapiHost is host(ns) with a kubeconfig that reaches envtest through virtapisim, as the cluster admin, so
// that KubeVirt's subresources (pause, unpause, restart, vnc) are served. On a real cluster it is host(ns).
func virtapiHost(t *testing.T, ns string) cloudstacksim.Host {
	t.Helper()
	h := host(ns)
	if s.virtapi == nil {
		return h
	}
	kc, err := s.virtapi.KubeconfigFor(t.TempDir(), "e2e-admin", []string{"system:masters"})
	require.NoError(t, err)
	h.Host["kubeconfig"] = kc
	return h
}

// Where virt-api serves the restart subresource, reboot uses it (KubeVirt stops the VMI and starts a new one)
// rather than deleting the VMI; where it refuses, the refusal reaches CloudStack.
func TestRebootThroughVirtAPI(t *testing.T) {
	if s.virtapi == nil {
		t.Skip("a real cluster's virt-api is exercised by TestLifecycle")
	}
	ns := "e2e-virtapi"
	namespace(t, ns)
	h := virtapiHost(t, ns)
	in := instance(map[string]string{"image": "quay.io/containerdisks/fedora:43"})
	requireSuccess(t, call(t, h, "create", in))
	before, err := getVMI(t.Context(), ns, vmName(in))
	require.NoError(t, err)
	served := s.virtapi.Served("restart")

	requireSuccess(t, call(t, h, "reboot", in))
	after, err := getVMI(t.Context(), ns, vmName(in))
	require.NoError(t, err)
	require.NotEqual(t, before.UID, after.UID, "reboot gives the VM a new VMI")
	require.Equal(t, kubevirtv1.Running, after.Status.Phase)
	require.Equal(t, served+1, s.virtapi.Served("restart"), "rebooted through virt-api's restart subresource")

	requireSuccess(t, call(t, h, "delete", in))
}

// Under RerunOnFailure a guest that shuts itself down stays off, and KubeVirt keeps its finished VMI: CloudStack's
// start must ask KubeVirt to start it again (as virtctl start does), not just re-apply an unchanged spec.
func TestStartAfterGuestShutdown(t *testing.T) {
	if s.sim == nil {
		t.Skip("needs the simulator to shut a guest down")
	}
	ns := "e2e-virtapi"
	namespace(t, ns)
	h := host(ns)
	in := instance(map[string]string{"image": "quay.io/containerdisks/fedora:43", "run_strategy": "RerunOnFailure"})
	requireSuccess(t, call(t, h, "create", in))
	before, err := getVMI(t.Context(), ns, vmName(in))
	require.NoError(t, err)
	require.NoError(t, s.sim.GuestShutdown(t.Context(), ns, vmName(in)))
	require.Eventually(t, func() bool {
		return cloudstacksim.ParseStatus(call(t, h, "status", in)) == cloudstacksim.PowerOff
	}, 20*time.Second, 100*time.Millisecond)

	requireSuccess(t, call(t, h, "start", in))
	after, err := getVMI(t.Context(), ns, vmName(in))
	require.NoError(t, err)
	require.NotEqual(t, before.UID, after.UID, "a new VMI")
	require.Equal(t, kubevirtv1.Running, after.Status.Phase)
	require.Equal(t, cloudstacksim.PowerOn, cloudstacksim.ParseStatus(call(t, h, "status", in)))
	requireSuccess(t, call(t, h, "start", in)) // a retried start changes nothing
	again, err := getVMI(t.Context(), ns, vmName(in))
	require.NoError(t, err)
	require.Equal(t, after.UID, again.UID, "a start of a running Instance leaves its VMI alone")
	requireSuccess(t, call(t, h, "delete", in))
}
