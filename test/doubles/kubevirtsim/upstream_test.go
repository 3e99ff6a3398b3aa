package kubevirtsim_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/kubevirtsim"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/testenv"
)

// startController starts KubeVirt's VM controller alone, without the simulator's node agent, in a new namespace:
// the test plays virt-handler by writing the VMI's phase itself.
func startController(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "kubevirt-"}}
	require.NoError(t, env.Client.Create(t.Context(), ns))
	start := time.Now()
	release, err := kubevirtsim.AcquireController(t.Context(), env.Config)
	require.NoError(t, err)
	t.Logf("KubeVirt's VM controller ready in %v", time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() { require.NoError(t, release()) })
	return ns.Name
}

// TestKubeVirtVMController shows that KubeVirt's own controller (pkg/virt-controller/watch/vm, v1.8.0) runs against
// envtest: which run strategies create a VMI (vm.go, syncRunStrategy), with what (startVMI, SetupVMIFromVM), and
// what the VM's status says.
func TestKubeVirtVMController(t *testing.T) {
	ns := startController(t)
	tests := []struct {
		strategy kubevirtv1.VirtualMachineRunStrategy
		vmi      bool // syncRunStrategy starts a VMI without a start request
	}{
		{kubevirtv1.RunStrategyAlways, true},
		{kubevirtv1.RunStrategyRerunOnFailure, true},
		{kubevirtv1.RunStrategyOnce, true},
		{kubevirtv1.RunStrategyManual, false},
		{kubevirtv1.RunStrategyHalted, false},
	}
	for _, tt := range tests {
		t.Run(string(tt.strategy), func(t *testing.T) {
			t.Parallel()
			name := strings.ToLower(string(tt.strategy))
			createVM(t, newVM(ns, name, tt.strategy))
			vm, vmi := waitFor(t, ns, name, func(c *assert.CollectT, vm *kubevirtv1.VirtualMachine, vmi *kubevirtv1.VirtualMachineInstance) {
				assert.Contains(c, vm.Finalizers, kubevirtv1.VirtualMachineControllerFinalizer)
				assert.Equal(c, tt.vmi, vmi != nil, "VMI exists")
				assert.Equal(c, tt.vmi, vm.Status.Created, "status.created")
				// Nothing moves the VMI past its unset phase: no virt-handler runs.
				want := kubevirtv1.VirtualMachineStatusStopped
				if tt.vmi {
					want = kubevirtv1.VirtualMachineStatusStarting
				}
				assert.Equal(c, want, vm.Status.PrintableStatus)
			})
			assert.NotEmpty(t, vm.Annotations[kubevirtv1.ControllerAPILatestVersionObservedAnnotation], "execute writes the API version first")
			if !tt.vmi {
				return
			}
			ref := metav1.GetControllerOf(vmi)
			require.NotNil(t, ref)
			assert.Equal(t, vm.UID, ref.UID)
			assert.Contains(t, vmi.Finalizers, kubevirtv1.VirtualMachineControllerFinalizer)
			assert.Equal(t, "1", vmi.Annotations[kubevirtv1.VirtualMachineGenerationAnnotation])
			assert.Equal(t, "revision-start-vm-"+string(vm.UID)+"-1", vmi.Status.VirtualMachineRevisionName)
			assert.Equal(t, vm.Spec.Template.Spec.Domain.Firmware.UUID, vmi.Spec.Domain.Firmware.UUID)
			requireEvent(t, vm, "SuccessfulCreate")
		})
	}
}

// TestKubeVirtVMControllerLifecycle plays virt-handler by hand: the VM is Running once its VMI is, Halted deletes
// the VMI, and the controller releases its finalizer once the VMI is final (vm.go, updateStatus).
func TestKubeVirtVMControllerLifecycle(t *testing.T) {
	ns := startController(t)
	createVM(t, newVM(ns, "vm", kubevirtv1.RunStrategyAlways))
	_, vmi := waitFor(t, ns, "vm", printable(kubevirtv1.VirtualMachineStatusStarting), func(c *assert.CollectT, _ *kubevirtv1.VirtualMachine, vmi *kubevirtv1.VirtualMachineInstance) {
		assert.NotNil(c, vmi, "VMI")
	})

	setVMIPhase(t, vmi, kubevirtv1.Running, corev1.ConditionTrue)
	vm, _ := waitFor(t, ns, "vm", running)
	if ready := condition(vm, kubevirtv1.VirtualMachineReady); assert.NotNil(t, ready) {
		assert.Equal(t, corev1.ConditionTrue, ready.Status)
	}
	assert.Equal(t, kubevirtv1.RunStrategyAlways, vm.Status.RunStrategy)

	setRunStrategy(t, ns, "vm", kubevirtv1.RunStrategyHalted)
	_, vmi = waitFor(t, ns, "vm", printable(kubevirtv1.VirtualMachineStatusStopping), func(c *assert.CollectT, _ *kubevirtv1.VirtualMachine, vmi *kubevirtv1.VirtualMachineInstance) {
		if assert.NotNil(c, vmi, "VMI") {
			assert.NotNil(c, vmi.DeletionTimestamp, "the controller deleted the VMI")
		}
	})
	requireEvent(t, vm, "SuccessfulDelete")

	setVMIPhase(t, vmi, kubevirtv1.Succeeded, corev1.ConditionFalse)
	vm, _ = waitFor(t, ns, "vm", stoppedWithoutVMI)
	assert.Equal(t, kubevirtv1.RunStrategyHalted, vm.Status.RunStrategy)
}

// setVMIPhase writes what virt-handler would: the phase, its transition timestamp and the Ready condition. It
// writes as virt-handler's service account: KubeVirt's admission drops VMI status changes from anyone else
// (pkg/virt-api/webhooks/mutating-webhook/mutators/vmi-mutator.go). A final VMI also loses the VMI controller's
// finalizer, as once its pod is gone (pkg/virt-controller/watch/vmi/lifecycle.go).
func setVMIPhase(t *testing.T, vmi *kubevirtv1.VirtualMachineInstance, phase kubevirtv1.VirtualMachineInstancePhase, ready corev1.ConditionStatus) {
	t.Helper()
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + testenv.KubeVirtNamespace + ":" + testenv.HandlerServiceAccount}
	handler, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	require.NoError(t, err)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		cur := &kubevirtv1.VirtualMachineInstance{}
		if !assert.NoError(c, handler.Get(t.Context(), client.ObjectKeyFromObject(vmi), cur)) {
			return
		}
		now := metav1.Now()
		cur.Status.Phase = phase
		cur.Status.PhaseTransitionTimestamps = append(cur.Status.PhaseTransitionTimestamps,
			kubevirtv1.VirtualMachineInstancePhaseTransitionTimestamp{Phase: phase, PhaseTransitionTimestamp: now})
		cur.Status.Conditions = []kubevirtv1.VirtualMachineInstanceCondition{{
			Type: kubevirtv1.VirtualMachineInstanceReady, Status: ready, LastTransitionTime: now, LastProbeTime: now,
		}}
		if cur.IsFinal() {
			controllerutil.RemoveFinalizer(cur, kubevirtv1.VirtualMachineInstanceFinalizer)
		}
		assert.NoError(c, handler.Update(t.Context(), cur)) // the VMI CRD has no status subresource
	}, timeout, tick)
}

// requireEvent waits for an Event with reason on vm, recorded by KubeVirt's VM controller.
func requireEvent(t *testing.T, vm *kubevirtv1.VirtualMachine, reason string) {
	t.Helper()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var events corev1.EventList
		if !assert.NoError(c, env.Client.List(t.Context(), &events, client.InNamespace(vm.Namespace))) {
			return
		}
		found := false
		for _, e := range events.Items {
			found = found || (e.InvolvedObject.UID == vm.UID && e.Reason == reason && e.Source.Component == "virtualmachine-controller")
		}
		assert.True(c, found, "no %s event on VM %s", reason, vm.Name)
	}, timeout, tick)
}
