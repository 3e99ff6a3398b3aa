package powerstate_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/kube"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/kube/powerstate"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/cloudstacksim"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/kubevirtsim"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/testenv"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

// env and sim are shared by the package's tests; each test works in namespaces of its own.
var (
	env *testenv.Env
	sim *kubevirtsim.Sim
)

const leaseNamespace = "cloudstack-kubevirt-system"

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) (code int) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute) // a first run builds the binaries
	defer cancel()
	e, err := testenv.Start(ctx, testenv.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() {
		if err := e.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = max(code, 1)
		}
	}()
	env = e
	if err := e.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: leaseNamespace}}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if sim, err = kubevirtsim.Start(context.Background(), e.Config, kubevirtsim.Options{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// The simulator runs KubeVirt's VM controller as a process, which must let go of the API server before
	// envtest stops it, or kube-apiserver outlives envtest's stop timeout.
	defer func() {
		if err := sim.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = max(code, 1)
		}
	}()
	return m.Run()
}

// replica is one running reconciler.
type replica struct {
	config  powerstate.Config
	metrics *prometheus.Registry
	stop    func()
}

var replicas atomic.Int64

// startReconciler runs a reconciler until the test ends or stop is called. lease names its heartbeat (and
// leader election), so that tests do not share them.
func startReconciler(t *testing.T, lease string, namespaces ...string) *replica {
	t.Helper()
	return startReconcilerAt(t, env.Config, lease, namespaces...)
}

// startReconcilerAt is startReconciler reaching the API server through cfg.
func startReconcilerAt(t *testing.T, cfg *rest.Config, lease string, namespaces ...string) *replica {
	t.Helper()
	r := &replica{metrics: prometheus.NewRegistry()}
	r.config = powerstate.Config{
		Namespaces: namespaces, HeartbeatNamespace: leaseNamespace, HeartbeatLease: lease,
		HeartbeatInterval: 200 * time.Millisecond, HeartbeatDuration: 2 * time.Second,
		Identity:       fmt.Sprintf("reconciler-%d", replicas.Add(1)),
		LeaderElection: true, LeaderElectionID: lease + "-leader",
		MetricsAddr: "0", ProbeAddr: "0", Workers: 4, Registry: r.metrics,
	}
	mgr, err := powerstate.NewManager(cfg, r.config)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	var once atomic.Bool
	r.stop = func() {
		if once.Swap(true) {
			return
		}
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err, "reconciler %s", r.config.Identity)
		case <-time.After(30 * time.Second):
			t.Errorf("reconciler %s did not stop", r.config.Identity)
		}
	}
	t.Cleanup(r.stop)
	return r
}

func newNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "powerstate-"}}
	require.NoError(t, env.Client.Create(t.Context(), ns))
	return ns.Name
}

var nextID atomic.Int64

// createVM creates the VM the extension would create for a new Instance, under runStrategy.
func createVM(t *testing.T, ns string, strategy kubevirtv1.VirtualMachineRunStrategy) types.NamespacedName {
	t.Helper()
	id := 100 + nextID.Add(1)
	in := cloudstacksim.Instance{ID: id, Name: fmt.Sprintf("i-2-%d-VM", id), UUID: fmt.Sprintf("5e0a0d4c-0c8e-4a5e-9b1f-%012d", id),
		CPUs: 1, MemoryMB: 512, Details: map[string]string{"image": "quay.io/containerdisks/fedora:41", "run_strategy": string(strategy)}}
	data, err := json.Marshal(cloudstacksim.Host{}.PayloadAs(in, "Starting", false))
	require.NoError(t, err)
	p, err := translate.ParsePayload(data)
	require.NoError(t, err)
	spec, err := p.Details().Spec()
	require.NoError(t, err)
	vm, err := translate.VirtualMachine(p, ns, spec)
	require.NoError(t, err)
	require.NoError(t, env.Client.Create(t.Context(), vm))
	return client.ObjectKeyFromObject(vm)
}

func setRunStrategy(t *testing.T, key types.NamespacedName, strategy kubevirtv1.VirtualMachineRunStrategy) {
	t.Helper()
	vm := &kubevirtv1.VirtualMachine{}
	require.NoError(t, env.Client.Get(t.Context(), key, vm))
	patch := client.MergeFrom(vm.DeepCopy())
	vm.Spec.RunStrategy = &strategy
	require.NoError(t, env.Client.Patch(t.Context(), vm, patch))
}

// waitPowerState waits until the VM's label says want and was computed from its current generation.
func waitPowerState(t *testing.T, key types.NamespacedName, want translate.PowerState) *kubevirtv1.VirtualMachine {
	t.Helper()
	vm := &kubevirtv1.VirtualMachine{}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		require.NoError(c, env.Client.Get(context.Background(), key, vm))
		assert.Equal(c, string(want), vm.Labels[translate.LabelPowerState], "label")
		assert.Equal(c, fmt.Sprint(vm.Generation), vm.Annotations[translate.AnnotationPowerStateGeneration], "generation")
	}, 20*time.Second, 20*time.Millisecond, "VM %s to be labelled %s", key, want)
	return vm
}

// waitVMIPhase waits until the simulator has moved the VMI to phase.
func waitVMIPhase(t *testing.T, key types.NamespacedName, phase kubevirtv1.VirtualMachineInstancePhase) {
	t.Helper()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		vmi := &kubevirtv1.VirtualMachineInstance{}
		require.NoError(c, env.Client.Get(context.Background(), key, vmi))
		assert.Equal(c, phase, vmi.Status.Phase)
	}, 20*time.Second, 20*time.Millisecond)
}

// reconcilerComponent is the name the reconciler's Events carry (manager.go).
const reconcilerComponent = "cloudstack-kubevirt-reconciler"

// transitions lists the reasons of the power-state Events recorded on the VM, oldest first. KubeVirt's VM
// controller records its own on the VM too (SuccessfulCreate, SuccessfulDelete: kubevirt.io/kubevirt v1.8.0,
// pkg/virt-controller/watch/vm/vm.go, startVMI and stopVMI), which are not the reconciler's.
func transitions(t *testing.T, key types.NamespacedName) []string {
	t.Helper()
	var events eventsv1.EventList
	require.NoError(t, env.Client.List(t.Context(), &events, client.InNamespace(key.Namespace)))
	var reasons []string
	for _, e := range events.Items {
		mine := e.ReportingController == reconcilerComponent || e.DeprecatedSource.Component == reconcilerComponent
		if mine && e.Regarding.Name == key.Name && e.Regarding.Kind == "VirtualMachine" {
			reasons = append(reasons, e.Reason)
		}
	}
	return reasons
}

func waitTransitions(t *testing.T, key types.NamespacedName, want ...string) {
	t.Helper()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.ElementsMatch(c, want, transitions(t, key))
	}, 10*time.Second, 50*time.Millisecond)
}

func heartbeat(t *testing.T, lease string) (kube.Heartbeat, bool) {
	t.Helper()
	l := &coordinationv1.Lease{}
	if err := env.Client.Get(t.Context(), types.NamespacedName{Namespace: leaseNamespace, Name: lease}, l); err != nil {
		return kube.Heartbeat{}, false
	}
	h := kube.HeartbeatFromLease(l)
	return h, h.FreshAt(time.Now())
}

func waitHeartbeat(t *testing.T, lease, holder string) kube.Heartbeat {
	t.Helper()
	var h kube.Heartbeat
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var fresh bool
		h, fresh = heartbeat(t, lease)
		assert.True(c, fresh, "heartbeat fresh")
		assert.Equal(c, holder, h.Holder)
	}, 30*time.Second, 20*time.Millisecond)
	return h
}

func metricValue(t *testing.T, reg *prometheus.Registry, name, powerState string) float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if labelValue(m, "power_state") == powerState {
				if m.GetCounter() != nil {
					return m.GetCounter().GetValue()
				}
				return m.GetGauge().GetValue()
			}
		}
	}
	return 0
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func TestTransitions(t *testing.T) {
	ns := newNamespace(t)
	r := startReconciler(t, "transitions", ns)
	ctx := t.Context()

	always := createVM(t, ns, kubevirtv1.RunStrategyAlways)
	rerun := createVM(t, ns, kubevirtv1.RunStrategyRerunOnFailure)
	vm := waitPowerState(t, always, translate.PowerOn)
	assert.NotEmpty(t, vm.Annotations[translate.AnnotationPowerStateChanged])
	waitPowerState(t, rerun, translate.PowerOn)
	waitTransitions(t, always)

	t.Run("stop and start", func(t *testing.T) {
		setRunStrategy(t, always, kubevirtv1.RunStrategyHalted)
		waitPowerState(t, always, translate.PowerOff)
		setRunStrategy(t, always, kubevirtv1.RunStrategyAlways)
		waitPowerState(t, always, translate.PowerOn)
		waitTransitions(t, always, "PowerOff", "PowerOn")
	})

	t.Run("guest shutdown under RerunOnFailure stays off", func(t *testing.T) {
		waitVMIPhase(t, rerun, kubevirtv1.Running)
		require.NoError(t, sim.GuestShutdown(ctx, rerun.Namespace, rerun.Name))
		waitPowerState(t, rerun, translate.PowerOff)
		waitTransitions(t, rerun, "PowerOff")
	})

	t.Run("a crash under Always restarts: still on, no transition", func(t *testing.T) {
		waitVMIPhase(t, always, kubevirtv1.Running)
		require.NoError(t, sim.Crash(ctx, always.Namespace, always.Name))
		waitVMIPhase(t, always, kubevirtv1.Running)
		waitPowerState(t, always, translate.PowerOn)
		assert.Equal(t, []string{"PowerOff", "PowerOn"}, transitions(t, always))
	})

	t.Run("metrics count the VMs by label and the transitions", func(t *testing.T) {
		assert.Equal(t, 1.0, metricValue(t, r.metrics, "cloudstack_kubevirt_managed_vms", "poweron"))
		assert.Equal(t, 1.0, metricValue(t, r.metrics, "cloudstack_kubevirt_managed_vms", "poweroff"))
		assert.Equal(t, 1.0, metricValue(t, r.metrics, "cloudstack_kubevirt_power_state_transitions_total", "poweron"))
		assert.Equal(t, 2.0, metricValue(t, r.metrics, "cloudstack_kubevirt_power_state_transitions_total", "poweroff"))
	})

	t.Run("deleted out of band", func(t *testing.T) {
		require.NoError(t, env.Client.Delete(ctx, &kubevirtv1.VirtualMachine{ObjectMeta: metav1.ObjectMeta{Namespace: rerun.Namespace, Name: rerun.Name}}))
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			assert.Equal(c, 0.0, metricValue(t, r.metrics, "cloudstack_kubevirt_managed_vms", "poweroff"))
		}, 10*time.Second, 50*time.Millisecond)
	})

	t.Run("the heartbeat names this replica and its namespaces", func(t *testing.T) {
		h := waitHeartbeat(t, "transitions", r.config.Identity)
		assert.Equal(t, []string{ns}, h.Namespaces)
		assert.Equal(t, 2*time.Second, h.Duration)
	})
}

func TestIgnoresWhatItDoesNotManage(t *testing.T) {
	watched, other := newNamespace(t), newNamespace(t)
	startReconciler(t, "scope", watched)
	ctx := t.Context()

	elsewhere := createVM(t, other, kubevirtv1.RunStrategyAlways)
	unmanaged := createVM(t, watched, kubevirtv1.RunStrategyAlways)
	vm := &kubevirtv1.VirtualMachine{}
	require.NoError(t, env.Client.Get(ctx, unmanaged, vm))
	patch := client.MergeFrom(vm.DeepCopy())
	delete(vm.Labels, translate.LabelManagedBy)
	require.NoError(t, env.Client.Patch(ctx, vm, patch))
	// A managed VM in the watched namespace, labelled last: once it is, the others had every chance.
	managed := createVM(t, watched, kubevirtv1.RunStrategyAlways)
	waitPowerState(t, managed, translate.PowerOn)
	waitVMIPhase(t, elsewhere, kubevirtv1.Running)
	waitVMIPhase(t, unmanaged, kubevirtv1.Running)
	time.Sleep(500 * time.Millisecond)

	for _, key := range []types.NamespacedName{elsewhere, unmanaged} {
		require.NoError(t, env.Client.Get(ctx, key, vm))
		assert.NotContains(t, vm.Labels, translate.LabelPowerState, key.String())
		assert.Empty(t, transitions(t, key), key.String())
	}
}

// A reconciler that is down misses nothing: its successor labels what changed meanwhile, and vouches for the
// labels only once they are all current.
func TestRestartLosesNoTransition(t *testing.T) {
	ns := newNamespace(t)
	first := startReconciler(t, "restart", ns)
	stopped := createVM(t, ns, kubevirtv1.RunStrategyAlways)
	shutdown := createVM(t, ns, kubevirtv1.RunStrategyRerunOnFailure)
	waitPowerState(t, stopped, translate.PowerOn)
	waitPowerState(t, shutdown, translate.PowerOn)
	waitHeartbeat(t, "restart", first.config.Identity)

	first.stop()
	_, fresh := heartbeat(t, "restart")
	assert.False(t, fresh, "a clean stop releases the heartbeat at once")

	setRunStrategy(t, stopped, kubevirtv1.RunStrategyHalted)
	waitVMIPhase(t, shutdown, kubevirtv1.Running)
	require.NoError(t, sim.GuestShutdown(t.Context(), shutdown.Namespace, shutdown.Name))
	waitVMIPhase(t, shutdown, kubevirtv1.Succeeded)
	created := createVM(t, ns, kubevirtv1.RunStrategyAlways)

	second := startReconciler(t, "restart", ns)
	// The first fresh heartbeat must already find every label current.
	waitHeartbeat(t, "restart", second.config.Identity)
	for key, want := range map[types.NamespacedName]translate.PowerState{stopped: translate.PowerOff, shutdown: translate.PowerOff, created: translate.PowerOn} {
		vm := &kubevirtv1.VirtualMachine{}
		require.NoError(t, env.Client.Get(t.Context(), key, vm))
		assert.Equal(t, string(want), vm.Labels[translate.LabelPowerState], key.String())
	}
	waitTransitions(t, stopped, "PowerOff")
	waitTransitions(t, shutdown, "PowerOff")
}

// Two replicas: one leads and labels; when it goes, the other takes over the labels and the heartbeat.
func TestTwoReplicas(t *testing.T) {
	ns := newNamespace(t)
	a := startReconciler(t, "replicas", ns)
	b := startReconciler(t, "replicas", ns)
	key := createVM(t, ns, kubevirtv1.RunStrategyAlways)
	waitPowerState(t, key, translate.PowerOn)

	var leader, standby *replica
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		h, fresh := heartbeat(t, "replicas")
		assert.True(c, fresh)
		switch h.Holder {
		case a.config.Identity:
			leader, standby = a, b
		case b.config.Identity:
			leader, standby = b, a
		default:
			assert.Fail(c, "no replica holds the heartbeat", h.Holder)
		}
	}, 30*time.Second, 20*time.Millisecond)

	leader.stop()
	setRunStrategy(t, key, kubevirtv1.RunStrategyHalted)
	waitHeartbeat(t, "replicas", standby.config.Identity)
	waitPowerState(t, key, translate.PowerOff)
	waitTransitions(t, key, "PowerOff")
}
