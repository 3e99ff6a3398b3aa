package kubevirtsim_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/kubevirtsim"
)

// Expectations are asynchronous: the simulator reacts to watch events. The timeout bounds correctness checks,
// not performance.
const (
	timeout = 30 * time.Second
	tick    = 10 * time.Millisecond
)

type check func(c *assert.CollectT, vm *kubevirtv1.VirtualMachine, vmi *kubevirtv1.VirtualMachineInstance)

// waitFor polls the VM and its VMI (nil if absent) until check passes, and returns what it saw last.
func waitFor(t *testing.T, ns, name string, checks ...check) (*kubevirtv1.VirtualMachine, *kubevirtv1.VirtualMachineInstance) {
	t.Helper()
	var vm *kubevirtv1.VirtualMachine
	var vmi *kubevirtv1.VirtualMachineInstance
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		vm, vmi = fetch(t.Context(), c, ns, name)
		if vm == nil {
			return
		}
		for _, chk := range checks {
			chk(c, vm, vmi)
		}
	}, timeout, tick)
	return vm, vmi
}

func fetch(ctx context.Context, c assert.TestingT, ns, name string) (*kubevirtv1.VirtualMachine, *kubevirtv1.VirtualMachineInstance) {
	key := types.NamespacedName{Namespace: ns, Name: name}
	vm := &kubevirtv1.VirtualMachine{}
	if !assert.NoError(c, env.Client.Get(ctx, key, vm)) {
		return nil, nil
	}
	vmi := &kubevirtv1.VirtualMachineInstance{}
	err := env.Client.Get(ctx, key, vmi)
	if apierrors.IsNotFound(err) {
		return vm, nil
	}
	if !assert.NoError(c, err) {
		return nil, nil
	}
	return vm, vmi
}

func printable(want kubevirtv1.VirtualMachinePrintableStatus) check {
	return func(c *assert.CollectT, vm *kubevirtv1.VirtualMachine, _ *kubevirtv1.VirtualMachineInstance) {
		assert.Equal(c, want, vm.Status.PrintableStatus)
	}
}

// running: the VM is Running and Ready with a Running VMI.
func running(c *assert.CollectT, vm *kubevirtv1.VirtualMachine, vmi *kubevirtv1.VirtualMachineInstance) {
	assert.Equal(c, kubevirtv1.VirtualMachineStatusRunning, vm.Status.PrintableStatus)
	assert.True(c, vm.Status.Ready, "status.ready")
	assert.True(c, vm.Status.Created, "status.created")
	if assert.NotNil(c, vmi, "VMI") {
		assert.Equal(c, kubevirtv1.Running, vmi.Status.Phase)
	}
}

// stoppedWithoutVMI: the VM is Stopped and its VMI is gone.
func stoppedWithoutVMI(c *assert.CollectT, vm *kubevirtv1.VirtualMachine, vmi *kubevirtv1.VirtualMachineInstance) {
	assert.Equal(c, kubevirtv1.VirtualMachineStatusStopped, vm.Status.PrintableStatus)
	assert.False(c, vm.Status.Created, "status.created")
	assert.False(c, vm.Status.Ready, "status.ready")
	assert.Nil(c, vmi, "VMI")
}

// finalVMI: the VM is Stopped and keeps its VMI in the given final phase.
func finalVMI(phase kubevirtv1.VirtualMachineInstancePhase) check {
	return func(c *assert.CollectT, vm *kubevirtv1.VirtualMachine, vmi *kubevirtv1.VirtualMachineInstance) {
		assert.Equal(c, kubevirtv1.VirtualMachineStatusStopped, vm.Status.PrintableStatus)
		assert.True(c, vm.Status.Created, "status.created")
		assert.False(c, vm.Status.Ready, "status.ready")
		if assert.NotNil(c, vmi, "VMI") {
			assert.Equal(c, phase, vmi.Status.Phase)
		}
	}
}

// replacing: the VMI is a new one, not the VMI with UID old.
func replacing(old types.UID) check {
	return func(c *assert.CollectT, _ *kubevirtv1.VirtualMachine, vmi *kubevirtv1.VirtualMachineInstance) {
		if assert.NotNil(c, vmi, "VMI") {
			assert.NotEqual(c, old, vmi.UID, "VMI UID")
		}
	}
}

func noStateChangeRequests(c *assert.CollectT, vm *kubevirtv1.VirtualMachine, _ *kubevirtv1.VirtualMachineInstance) {
	assert.Empty(c, vm.Status.StateChangeRequests)
}

func createVM(t *testing.T, vm *kubevirtv1.VirtualMachine) {
	t.Helper()
	require.NoError(t, env.Client.Create(t.Context(), vm))
}

func setRunStrategy(t *testing.T, ns, name string, s kubevirtv1.VirtualMachineRunStrategy) {
	t.Helper()
	patch := []byte(fmt.Sprintf(`{"spec":{"runStrategy":%q}}`, s))
	vm := &kubevirtv1.VirtualMachine{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	require.NoError(t, env.Client.Patch(t.Context(), vm, client.RawPatch(types.MergePatchType, patch)))
}

// requestStateChange appends to status.stateChangeRequests, as virt-api's start, stop and restart do.
func requestStateChange(t *testing.T, ns, name string, reqs ...kubevirtv1.VirtualMachineStateChangeRequest) {
	t.Helper()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		vm := &kubevirtv1.VirtualMachine{}
		if !assert.NoError(c, env.Client.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: name}, vm)) {
			return
		}
		vm.Status.StateChangeRequests = append(vm.Status.StateChangeRequests, reqs...)
		assert.NoError(c, env.Client.Status().Update(t.Context(), vm)) // a conflict is retried
	}, timeout, tick)
}

func stopRequest(uid types.UID) kubevirtv1.VirtualMachineStateChangeRequest {
	return kubevirtv1.VirtualMachineStateChangeRequest{Action: kubevirtv1.StopRequest, UID: &uid}
}

func startRequest() kubevirtv1.VirtualMachineStateChangeRequest {
	return kubevirtv1.VirtualMachineStateChangeRequest{Action: kubevirtv1.StartRequest}
}

func TestRunStrategies(t *testing.T) {
	_, ns := startSim(t, kubevirtsim.Options{})
	tests := []struct {
		name     string
		strategy *kubevirtv1.VirtualMachineRunStrategy
		running  *bool
		started  bool
	}{
		{name: "always", strategy: ptr.To(kubevirtv1.RunStrategyAlways), started: true},
		{name: "rerun-on-failure", strategy: ptr.To(kubevirtv1.RunStrategyRerunOnFailure), started: true},
		{name: "once", strategy: ptr.To(kubevirtv1.RunStrategyOnce), started: true},
		{name: "manual", strategy: ptr.To(kubevirtv1.RunStrategyManual)},
		{name: "halted", strategy: ptr.To(kubevirtv1.RunStrategyHalted)},
		{name: "running-true", running: ptr.To(true), started: true},
		{name: "running-false", running: ptr.To(false)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			vm := newVM(ns, tt.name, "")
			vm.Spec.RunStrategy, vm.Spec.Running = tt.strategy, tt.running
			createVM(t, vm)
			want, _ := vm.RunStrategy()
			if tt.started {
				vm, _ = waitFor(t, ns, tt.name, running)
				assert.Equal(t, want, vm.Status.RunStrategy, "status.runStrategy records the applied strategy")
			} else {
				vm, _ = waitFor(t, ns, tt.name, stoppedWithoutVMI)
				assert.Empty(t, vm.Status.RunStrategy, "status.runStrategy is set from the first start on")
				ready := condition(vm, kubevirtv1.VirtualMachineReady)
				require.NotNil(t, ready)
				assert.Equal(t, "VMINotExists", ready.Reason)
			}
			assert.Contains(t, vm.Finalizers, kubevirtv1.VirtualMachineControllerFinalizer)
		})
	}
}

func TestVMIMirrorsTemplate(t *testing.T) {
	_, ns := startSim(t, kubevirtsim.Options{})
	want := newVM(ns, "mirror", kubevirtv1.RunStrategyAlways)
	start := time.Now()
	createVM(t, want)
	vm, vmi := waitFor(t, ns, "mirror", running)
	t.Logf("one VM from Create to Running (StepDelay 0): %v", time.Since(start).Round(time.Millisecond))

	for k, v := range want.Spec.Template.ObjectMeta.Labels {
		assert.Equal(t, v, vmi.Labels[k], "label %s", k)
	}
	assert.Equal(t, "sim-node-1", vmi.Labels[kubevirtv1.NodeNameLabel], "virt-controller adds the node label")
	assert.Len(t, vmi.Labels, len(want.Spec.Template.ObjectMeta.Labels)+1)
	assert.NotContains(t, vmi.Labels, "vm-label", "labels of the VM itself do not propagate")
	assert.Equal(t, "linux", vmi.Annotations["vm.kubevirt.io/os"])
	assert.Equal(t, "1", vmi.Annotations[kubevirtv1.VirtualMachineGenerationAnnotation])
	ref := metav1.GetControllerOf(vmi)
	require.NotNil(t, ref)
	assert.Equal(t, vm.UID, ref.UID)
	assert.Equal(t, "VirtualMachine", ref.Kind)
	assert.ElementsMatch(t, []string{kubevirtv1.VirtualMachineControllerFinalizer, kubevirtv1.VirtualMachineInstanceFinalizer}, vmi.Finalizers)
	// The VM controller copies the template (vm.go, SetupVMIFromVM); KubeVirt's admission then adds its defaults
	// (CPU topology, machine type, disk buses, pull policies: pkg/defaults), so the VMI holds more than the
	// template, and what the template says unchanged.
	dom := vmi.Spec.Domain
	assert.Equal(t, want.Spec.Template.Spec.Domain.Firmware.UUID, dom.Firmware.UUID)
	assert.Equal(t, want.Spec.Template.Spec.Domain.Memory.Guest.String(), dom.Memory.Guest.String())
	assert.Equal(t, want.Spec.Template.Spec.Domain.Devices.Interfaces, dom.Devices.Interfaces)
	require.Len(t, dom.Devices.Disks, 1)
	assert.Equal(t, want.Spec.Template.Spec.Domain.Devices.Disks[0].Disk.Bus, dom.Devices.Disks[0].Disk.Bus)
	require.Len(t, vmi.Spec.Volumes, 1)
	assert.Equal(t, "root", vmi.Spec.Volumes[0].Name)
	assert.Equal(t, want.Spec.Template.Spec.Volumes[0].ContainerDisk.Image, vmi.Spec.Volumes[0].ContainerDisk.Image)
	assert.Equal(t, vm.Spec.Template.Spec.Architecture, vmi.Spec.Architecture, "the architecture the VM's admission defaulted")

	assert.Equal(t, "sim-node-1", vmi.Status.NodeName)
	require.Len(t, vmi.Status.Interfaces, 1)
	iface := vmi.Status.Interfaces[0]
	assert.Equal(t, "default", iface.Name)
	assert.Equal(t, "02:00:00:aa:bb:cc", iface.MAC)
	assert.True(t, strings.HasPrefix(iface.IP, "10.244."), "pod network IP %q", iface.IP)
	assert.Equal(t, []string{iface.IP}, iface.IPs)
	assert.NotEmpty(t, vmi.Status.GuestOSInfo.ID)
	var phases []kubevirtv1.VirtualMachineInstancePhase
	for _, ts := range vmi.Status.PhaseTransitionTimestamps {
		phases = append(phases, ts.Phase)
	}
	assert.Equal(t, []kubevirtv1.VirtualMachineInstancePhase{kubevirtv1.Pending, kubevirtv1.Scheduling, kubevirtv1.Scheduled, kubevirtv1.Running}, phases)

	assert.Equal(t, vm.Generation, vm.Status.ObservedGeneration)
	assert.Equal(t, vm.Generation, vm.Status.DesiredGeneration)
	if ready := condition(vm, kubevirtv1.VirtualMachineReady); assert.NotNil(t, ready) {
		assert.Equal(t, corev1.ConditionTrue, ready.Status)
	}
	if agent := condition(vm, kubevirtv1.VirtualMachineConditionType(kubevirtv1.VirtualMachineInstanceAgentConnected)); assert.NotNil(t, agent) {
		assert.Equal(t, corev1.ConditionTrue, agent.Status, "VMI conditions are copied to the VM")
	}
}

func TestDefaults(t *testing.T) {
	_, ns := startSim(t, kubevirtsim.Options{})
	vm := newVM(ns, "defaults", kubevirtv1.RunStrategyAlways)
	vm.Spec.Template.Spec.Domain.Firmware = nil
	vm.Spec.Template.Spec.Domain.Devices.Interfaces = nil
	vm.Spec.Template.Spec.Networks = nil
	vm.Spec.Template.Spec.Domain.Devices.Disks = nil
	createVM(t, vm)
	vm, vmi := waitFor(t, ns, "defaults", running)

	// KubeVirt's VM admission gives a new VM a random firmware UUID and serial
	// (pkg/virt-api/webhooks/mutating-webhook/mutators/vm-mutator.go, setFirmwareDefaultsIfEmpty), so the VM
	// controller's firmware synchronizer, which would write the name-derived legacy UUID into the spec
	// (pkg/virt-controller/watch/vm/firmware.go), has nothing to do and the generation stays 1.
	legacy := types.UID(uuid.NewSHA1(uuid.MustParse("6a1a24a1-4061-4607-8bf4-a3963d0c5895"), []byte("defaults")).String())
	require.NotNil(t, vm.Spec.Template.Spec.Domain.Firmware)
	fwUUID := vm.Spec.Template.Spec.Domain.Firmware.UUID
	assert.NotEmpty(t, fwUUID)
	assert.NotEqual(t, legacy, fwUUID)
	assert.NotEmpty(t, vm.Spec.Template.Spec.Domain.Firmware.Serial)
	assert.Equal(t, fwUUID, vmi.Spec.Domain.Firmware.UUID)
	assert.Equal(t, int64(1), vm.Generation)
	assert.Equal(t, int64(1), vm.Status.ObservedGeneration, "the VMI started from generation 1")
	assert.Equal(t, int64(1), vm.Status.DesiredGeneration)

	// The VM controller adds the default pod interface (pkg/network/vmispec, SetDefaultNetworkInterface: bridge
	// unless the KubeVirt CR says otherwise) and a disk for each volume (util.SetDefaultVolumeDisk).
	require.Len(t, vmi.Spec.Domain.Devices.Interfaces, 1, "default pod interface")
	assert.NotNil(t, vmi.Spec.Domain.Devices.Interfaces[0].Bridge)
	assert.Equal(t, []kubevirtv1.Network{*kubevirtv1.DefaultPodNetwork()}, vmi.Spec.Networks)
	require.Len(t, vmi.Spec.Domain.Devices.Disks, 1, "a disk for each volume")
	assert.Equal(t, "root", vmi.Spec.Domain.Devices.Disks[0].Name)
	require.Len(t, vmi.Status.Interfaces, 1)
	assert.Regexp(t, `^02:[0-9a-f]{2}(:[0-9a-f]{2}){4}$`, vmi.Status.Interfaces[0].MAC)
}

func TestHaltedStopsAndAlwaysStarts(t *testing.T) {
	_, ns := startSim(t, kubevirtsim.Options{})
	createVM(t, newVM(ns, "vm", kubevirtv1.RunStrategyAlways))
	_, first := waitFor(t, ns, "vm", running)

	setRunStrategy(t, ns, "vm", kubevirtv1.RunStrategyHalted)
	vm, _ := waitFor(t, ns, "vm", stoppedWithoutVMI)
	assert.Equal(t, kubevirtv1.RunStrategyHalted, vm.Status.RunStrategy)

	setRunStrategy(t, ns, "vm", kubevirtv1.RunStrategyAlways)
	waitFor(t, ns, "vm", running, replacing(first.UID))
}

func TestGuestShutdown(t *testing.T) {
	sim, ns := startSim(t, kubevirtsim.Options{})
	tests := []struct {
		strategy kubevirtv1.VirtualMachineRunStrategy
		then     []check
	}{
		{kubevirtv1.RunStrategyAlways, nil},                                     // restarted: see below
		{kubevirtv1.RunStrategyRerunOnFailure, []check{stoppedWithoutVMI}},      // deleted, not restarted
		{kubevirtv1.RunStrategyOnce, []check{finalVMI(kubevirtv1.Succeeded)}},   // kept, never restarted
		{kubevirtv1.RunStrategyManual, []check{finalVMI(kubevirtv1.Succeeded)}}, // kept until a request
		{kubevirtv1.RunStrategyHalted, []check{stoppedWithoutVMI}},              // never ran
	}
	for _, tt := range tests {
		t.Run(string(tt.strategy), func(t *testing.T) {
			t.Parallel()
			name := strings.ToLower(string(tt.strategy))
			vm := newVM(ns, name, tt.strategy)
			if tt.strategy == kubevirtv1.RunStrategyManual || tt.strategy == kubevirtv1.RunStrategyHalted {
				vm.Spec.RunStrategy = ptr.To(kubevirtv1.RunStrategyAlways) // start it, then switch
			}
			createVM(t, vm)
			_, vmi := waitFor(t, ns, name, running)
			if tt.strategy != *vm.Spec.RunStrategy {
				setRunStrategy(t, ns, name, tt.strategy)
				if tt.strategy == kubevirtv1.RunStrategyHalted {
					waitFor(t, ns, name, stoppedWithoutVMI)
					require.Error(t, sim.GuestShutdown(t.Context(), ns, name), "no VMI to shut down")
					return
				}
				waitFor(t, ns, name, func(c *assert.CollectT, vm *kubevirtv1.VirtualMachine, _ *kubevirtv1.VirtualMachineInstance) {
					assert.Equal(c, tt.strategy, vm.Status.RunStrategy)
				})
			}
			require.NoError(t, sim.GuestShutdown(t.Context(), ns, name))
			if tt.then == nil {
				waitFor(t, ns, name, running, replacing(vmi.UID))
				return
			}
			waitFor(t, ns, name, tt.then...)
			require.Error(t, sim.GuestShutdown(t.Context(), ns, name), "a stopped guest cannot shut down")
		})
	}
}

func TestCrash(t *testing.T) {
	sim, ns := startSim(t, kubevirtsim.Options{})
	tests := []struct {
		strategy kubevirtv1.VirtualMachineRunStrategy
		restarts bool
	}{
		{kubevirtv1.RunStrategyAlways, true},
		{kubevirtv1.RunStrategyRerunOnFailure, true},
		{kubevirtv1.RunStrategyOnce, false},
	}
	for _, tt := range tests {
		t.Run(string(tt.strategy), func(t *testing.T) {
			t.Parallel()
			name := strings.ToLower(string(tt.strategy))
			createVM(t, newVM(ns, name, tt.strategy))
			_, vmi := waitFor(t, ns, name, running)
			require.NoError(t, sim.Crash(t.Context(), ns, name))
			if tt.restarts {
				vm, _ := waitFor(t, ns, name, running, replacing(vmi.UID), noStateChangeRequests)
				assert.Nil(t, vm.Status.StartFailure, "a VMI that ran is not a start failure")
				return
			}
			waitFor(t, ns, name, finalVMI(kubevirtv1.Failed))
		})
	}
}

func TestRebootByDeletingVMI(t *testing.T) {
	_, ns := startSim(t, kubevirtsim.Options{})
	createVM(t, newVM(ns, "vm", kubevirtv1.RunStrategyAlways))
	_, vmi := waitFor(t, ns, "vm", running)
	require.NoError(t, env.Client.Delete(t.Context(), vmi))
	waitFor(t, ns, "vm", running, replacing(vmi.UID))
}

// TestRestartRequests restarts as virt-api's restart subresource does: a Stop request for the VMI, then a Start.
// It is the way to reboot RerunOnFailure and Manual VMs (deleting their VMI just stops them, as in KubeVirt).
func TestRestartRequests(t *testing.T) {
	_, ns := startSim(t, kubevirtsim.Options{})
	for _, strategy := range []kubevirtv1.VirtualMachineRunStrategy{
		kubevirtv1.RunStrategyAlways, kubevirtv1.RunStrategyRerunOnFailure, kubevirtv1.RunStrategyManual,
	} {
		t.Run(string(strategy), func(t *testing.T) {
			t.Parallel()
			name := strings.ToLower(string(strategy))
			createVM(t, newVM(ns, name, strategy))
			if strategy == kubevirtv1.RunStrategyManual {
				requestStateChange(t, ns, name, startRequest())
			}
			_, vmi := waitFor(t, ns, name, running, noStateChangeRequests)
			requestStateChange(t, ns, name, stopRequest(vmi.UID), startRequest())
			waitFor(t, ns, name, running, replacing(vmi.UID), noStateChangeRequests)
		})
	}
}

func TestDeletingVMIOfRerunOnFailureStopsIt(t *testing.T) {
	_, ns := startSim(t, kubevirtsim.Options{})
	createVM(t, newVM(ns, "vm", kubevirtv1.RunStrategyRerunOnFailure))
	_, vmi := waitFor(t, ns, "vm", running)
	require.NoError(t, env.Client.Delete(t.Context(), vmi))
	waitFor(t, ns, "vm", stoppedWithoutVMI)
}

func TestManualStateChangeRequests(t *testing.T) {
	_, ns := startSim(t, kubevirtsim.Options{})
	createVM(t, newVM(ns, "vm", kubevirtv1.RunStrategyManual))
	waitFor(t, ns, "vm", stoppedWithoutVMI)

	requestStateChange(t, ns, "vm", startRequest())
	_, vmi := waitFor(t, ns, "vm", running, noStateChangeRequests)

	requestStateChange(t, ns, "vm", stopRequest("not-this-vmi"))
	waitFor(t, ns, "vm", running, noStateChangeRequests) // a request for another VMI is dropped

	requestStateChange(t, ns, "vm", stopRequest(vmi.UID))
	waitFor(t, ns, "vm", stoppedWithoutVMI, noStateChangeRequests)
}

func TestPause(t *testing.T) {
	sim, ns := startSim(t, kubevirtsim.Options{})
	createVM(t, newVM(ns, "vm", kubevirtv1.RunStrategyAlways))
	waitFor(t, ns, "vm", running)

	require.NoError(t, sim.Pause(t.Context(), ns, "vm"))
	vm, vmi := waitFor(t, ns, "vm", printable(kubevirtv1.VirtualMachineStatusPaused))
	assert.False(t, vm.Status.Ready)
	assert.Equal(t, kubevirtv1.Running, vmi.Status.Phase, "a paused VMI is still Running")
	require.Error(t, sim.Pause(t.Context(), ns, "vm"), "already paused")

	require.NoError(t, sim.Unpause(t.Context(), ns, "vm"))
	waitFor(t, ns, "vm", running)
	require.Error(t, sim.Unpause(t.Context(), ns, "vm"), "not paused")
}

func TestStartPaused(t *testing.T) {
	_, ns := startSim(t, kubevirtsim.Options{})
	createVM(t, newVM(ns, "vm", kubevirtv1.RunStrategyManual))
	waitFor(t, ns, "vm", stoppedWithoutVMI)
	requestStateChange(t, ns, "vm", kubevirtv1.VirtualMachineStateChangeRequest{
		Action: kubevirtv1.StartRequest,
		Data:   map[string]string{kubevirtv1.StartRequestDataPausedKey: kubevirtv1.StartRequestDataPausedTrue},
	})
	_, vmi := waitFor(t, ns, "vm", printable(kubevirtv1.VirtualMachineStatusPaused), noStateChangeRequests)
	assert.Equal(t, ptr.To(kubevirtv1.StartStrategyPaused), vmi.Spec.StartStrategy)
}

func TestErrImagePull(t *testing.T) {
	const broken = "registry.example/broken:1"
	sim, ns := startSim(t, kubevirtsim.Options{FailImagePull: []string{broken}})

	t.Run("SetFault", func(t *testing.T) {
		sim.SetFault(ns, "fault", kubevirtsim.FaultErrImagePull)
		createVM(t, newVM(ns, "fault", kubevirtv1.RunStrategyAlways))
		_, vmi := waitFor(t, ns, "fault", printable(kubevirtv1.VirtualMachineStatusErrImagePull))
		assert.Equal(t, kubevirtv1.Scheduling, vmi.Status.Phase)
		sim.SetFault(ns, "fault", kubevirtsim.FaultNone)
		waitFor(t, ns, "fault", running)
	})
	t.Run("Options.FailImagePull", func(t *testing.T) {
		vm := newVM(ns, "image", kubevirtv1.RunStrategyAlways)
		vm.Spec.Template.Spec.Volumes[0].ContainerDisk.Image = broken
		createVM(t, vm)
		_, vmi := waitFor(t, ns, "image", printable(kubevirtv1.VirtualMachineStatusErrImagePull))
		cond := vmiCondition(vmi, kubevirtv1.VirtualMachineInstanceSynchronized)
		require.NotNil(t, cond)
		assert.Equal(t, "ErrImagePull", cond.Reason)
		assert.Contains(t, cond.Message, broken)
	})
}

// TestUnschedulable: a VMI that no node takes stays Scheduling, KubeVirt's VM controller reports it
// (vm.go, isVirtualMachineStatusUnschedulable), and the VM can still be deleted.
func TestUnschedulable(t *testing.T) {
	tests := []struct {
		name  string
		opts  kubevirtsim.Options
		fault kubevirtsim.Fault
	}{
		{name: "Options.Unschedulable", opts: kubevirtsim.Options{Unschedulable: true}},
		{name: "SetFault", fault: kubevirtsim.FaultUnschedulable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim, ns := startSim(t, tt.opts)
			if tt.fault != kubevirtsim.FaultNone {
				sim.SetFault(ns, "vm", tt.fault)
			}
			vm := newVM(ns, "vm", kubevirtv1.RunStrategyAlways)
			createVM(t, vm)
			_, vmi := waitFor(t, ns, "vm", printable(kubevirtv1.VirtualMachineStatusUnschedulable))
			assert.Equal(t, kubevirtv1.Scheduling, vmi.Status.Phase)
			cond := vmiCondition(vmi, kubevirtv1.VirtualMachineInstanceConditionType(corev1.PodScheduled))
			require.NotNil(t, cond)
			assert.Equal(t, corev1.ConditionFalse, cond.Status)
			assert.Equal(t, corev1.PodReasonUnschedulable, cond.Reason)

			if tt.fault != kubevirtsim.FaultNone {
				sim.SetFault(ns, "vm", kubevirtsim.FaultNone)
				waitFor(t, ns, "vm", running)
			}
			require.NoError(t, env.Client.Delete(t.Context(), vm))
			require.EventuallyWithT(t, func(c *assert.CollectT) {
				err := env.Client.Get(t.Context(), client.ObjectKeyFromObject(vm), &kubevirtv1.VirtualMachine{})
				assert.True(c, apierrors.IsNotFound(err), "VM still exists: %v", err)
			}, timeout, tick)
		})
	}
}

func TestCrashLoopBackOff(t *testing.T) {
	sim, ns := startSim(t, kubevirtsim.Options{})
	sim.SetFault(ns, "vm", kubevirtsim.FaultCrashLoop)
	createVM(t, newVM(ns, "vm", kubevirtv1.RunStrategyAlways))
	vm, _ := waitFor(t, ns, "vm", printable(kubevirtv1.VirtualMachineStatusCrashLoopBackOff))
	require.NotNil(t, vm.Status.StartFailure)
	assert.GreaterOrEqual(t, vm.Status.StartFailure.ConsecutiveFailCount, 1)
	assert.NotNil(t, vm.Status.StartFailure.RetryAfterTimestamp)

	sim.SetFault(ns, "vm", kubevirtsim.FaultNone)
	vm, _ = waitFor(t, ns, "vm", running)
	assert.Nil(t, vm.Status.StartFailure, "cleared once a VMI runs")
}

func TestDelete(t *testing.T) {
	_, ns := startSim(t, kubevirtsim.Options{})
	tests := []struct {
		name   string
		policy *metav1.DeletionPropagation
		orphan bool
	}{
		{name: "default"},
		{name: "background", policy: ptr.To(metav1.DeletePropagationBackground)},
		{name: "foreground", policy: ptr.To(metav1.DeletePropagationForeground)},
		{name: "orphan", policy: ptr.To(metav1.DeletePropagationOrphan), orphan: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			vm := withDataVolumes(newVM(ns, tt.name, kubevirtv1.RunStrategyAlways), tt.name+"-root", tt.name+"-data")
			createVM(t, vm)
			_, vmi := waitFor(t, ns, tt.name, running)

			var opts []client.DeleteOption
			if tt.policy != nil {
				opts = append(opts, client.PropagationPolicy(*tt.policy))
			}
			require.NoError(t, env.Client.Delete(ctx, vm, opts...))
			require.EventuallyWithT(t, func(c *assert.CollectT) {
				err := env.Client.Get(ctx, client.ObjectKeyFromObject(vm), &kubevirtv1.VirtualMachine{})
				assert.True(c, apierrors.IsNotFound(err), "VM still exists: %v", err)
			}, timeout, tick)

			deps := []client.Object{&kubevirtv1.VirtualMachineInstance{}, &cdiv1.DataVolume{}, &cdiv1.DataVolume{}}
			names := []string{tt.name, tt.name + "-root", tt.name + "-data"}
			require.EventuallyWithT(t, func(c *assert.CollectT) {
				for i, obj := range deps {
					err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: names[i]}, obj)
					if tt.orphan {
						if assert.NoError(c, err, "%s is orphaned, not deleted", names[i]) {
							assert.Empty(c, obj.GetOwnerReferences(), "%s owner references", names[i])
						}
					} else {
						assert.True(c, apierrors.IsNotFound(err), "%s %T still exists: %v", names[i], obj, err)
					}
				}
			}, timeout, tick)
			if tt.orphan {
				got := &kubevirtv1.VirtualMachineInstance{}
				require.NoError(t, env.Client.Get(ctx, client.ObjectKeyFromObject(vmi), got))
				assert.Equal(t, kubevirtv1.Running, got.Status.Phase, "an orphaned VMI keeps running")
			}
		})
	}
}

func TestDataVolumeProvisioning(t *testing.T) {
	// A step delay makes Provisioning last long enough to be seen.
	_, ns := startSim(t, kubevirtsim.Options{StepDelay: 100 * time.Millisecond})
	vm := withDataVolumes(newVM(ns, "vm", kubevirtv1.RunStrategyAlways), "vm-root")
	vm.Spec.DataVolumeTemplates[0].Labels = map[string]string{"disk": "root"}
	vm.Spec.DataVolumeTemplates[0].Annotations = map[string]string{"note": "from-template"}
	createVM(t, vm)

	waitFor(t, ns, "vm", printable(kubevirtv1.VirtualMachineStatusProvisioning),
		func(c *assert.CollectT, _ *kubevirtv1.VirtualMachine, vmi *kubevirtv1.VirtualMachineInstance) {
			assert.Nil(c, vmi, "no VMI before the DataVolumes succeed")
		})
	vm, vmi := waitFor(t, ns, "vm", running)

	dv := &cdiv1.DataVolume{}
	require.NoError(t, env.Client.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: "vm-root"}, dv))
	assert.Equal(t, cdiv1.Succeeded, dv.Status.Phase)
	assert.Equal(t, cdiv1.DataVolumeProgress("100.0%"), dv.Status.Progress)
	assert.Equal(t, "root", dv.Labels["disk"])
	assert.Equal(t, string(vm.UID), dv.Labels[kubevirtv1.CreatedByLabel])
	assert.Equal(t, "from-template", dv.Annotations["note"])
	assert.Equal(t, vm.Spec.DataVolumeTemplates[0].Spec, dv.Spec)
	ref := metav1.GetControllerOf(dv)
	require.NotNil(t, ref)
	assert.Equal(t, vm.UID, ref.UID)
	assert.False(t, vmi.CreationTimestamp.Before(&dv.CreationTimestamp), "the VMI comes after its DataVolume")
}

// TestStepDelay watches the intermediate statuses a real cluster shows, slowed down by StepDelay.
func TestStepDelay(t *testing.T) {
	const step = 150 * time.Millisecond
	_, ns := startSim(t, kubevirtsim.Options{StepDelay: step})
	start := time.Now()
	createVM(t, newVM(ns, "vm", kubevirtv1.RunStrategyAlways))
	seen := observe(t, ns, "vm", kubevirtv1.VirtualMachineStatusRunning)
	assert.GreaterOrEqual(t, time.Since(start), 3*step, "Pending, Scheduling and Scheduled last a step each")
	// KubeVirt's VM controller writes the status after every pass (vm.go, execute and updateStatus), also after a
	// first pass that returns before it starts the VMI: a VM without a VMI and without an expected one is Stopped
	// (isVirtualMachineStatusStopped).
	if len(seen) > 0 && seen[0] == kubevirtv1.VirtualMachineStatusStopped {
		seen = seen[1:]
	}
	assert.Equal(t, []kubevirtv1.VirtualMachinePrintableStatus{kubevirtv1.VirtualMachineStatusStarting, kubevirtv1.VirtualMachineStatusRunning}, seen)

	setRunStrategy(t, ns, "vm", kubevirtv1.RunStrategyHalted)
	seen = observe(t, ns, "vm", kubevirtv1.VirtualMachineStatusStopped)
	assert.Equal(t, []kubevirtv1.VirtualMachinePrintableStatus{kubevirtv1.VirtualMachineStatusRunning, kubevirtv1.VirtualMachineStatusStopping, kubevirtv1.VirtualMachineStatusStopped}, seen)
}

// observe polls the VM's printableStatus until it is final and returns the distinct values seen, in order.
func observe(t *testing.T, ns, name string, final kubevirtv1.VirtualMachinePrintableStatus) []kubevirtv1.VirtualMachinePrintableStatus {
	t.Helper()
	var seen []kubevirtv1.VirtualMachinePrintableStatus
	require.Eventually(t, func() bool {
		vm := &kubevirtv1.VirtualMachine{}
		if env.Client.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: name}, vm) != nil {
			return false
		}
		if s := vm.Status.PrintableStatus; s != "" && (len(seen) == 0 || seen[len(seen)-1] != s) {
			seen = append(seen, s)
		}
		return vm.Status.PrintableStatus == final
	}, timeout, 5*time.Millisecond)
	return seen
}

// TestManyVMs checks that the simulator copes with a large fleet (a correctness check with a generous bound).
func TestManyVMs(t *testing.T) {
	if testing.Short() {
		t.Skip("creates 1000 VMs")
	}
	const n = 1000
	_, ns := startSim(t, kubevirtsim.Options{})
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < n; i += 16 {
				errs <- env.Client.Create(t.Context(), newVM(ns, fmt.Sprintf("vm-%04d", i), kubevirtv1.RunStrategyAlways))
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	created := time.Since(start)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var vms kubevirtv1.VirtualMachineList
		if !assert.NoError(c, env.Client.List(t.Context(), &vms, client.InNamespace(ns))) {
			return
		}
		runningVMs := 0
		for _, vm := range vms.Items {
			if vm.Status.PrintableStatus == kubevirtv1.VirtualMachineStatusRunning && vm.Status.Ready {
				runningVMs++
			}
		}
		assert.Equal(c, n, runningVMs)
	}, 5*time.Minute, 250*time.Millisecond)
	t.Logf("%d VMs: created in %v, all Running after %v", n, created.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

func withDataVolumes(vm *kubevirtv1.VirtualMachine, names ...string) *kubevirtv1.VirtualMachine {
	spec := &vm.Spec.Template.Spec
	spec.Volumes, spec.Domain.Devices.Disks = nil, nil
	for _, name := range names {
		vm.Spec.DataVolumeTemplates = append(vm.Spec.DataVolumeTemplates, kubevirtv1.DataVolumeTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: cdiv1.DataVolumeSpec{
				Source: &cdiv1.DataVolumeSource{HTTP: &cdiv1.DataVolumeSourceHTTP{URL: "http://images.example/" + name + ".qcow2"}},
				Storage: &cdiv1.StorageSpec{Resources: corev1.VolumeResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
				}},
			},
		})
		spec.Volumes = append(spec.Volumes, kubevirtv1.Volume{
			Name:         name,
			VolumeSource: kubevirtv1.VolumeSource{DataVolume: &kubevirtv1.DataVolumeSource{Name: name}},
		})
		spec.Domain.Devices.Disks = append(spec.Domain.Devices.Disks, kubevirtv1.Disk{Name: name})
	}
	return vm
}

func condition(vm *kubevirtv1.VirtualMachine, t kubevirtv1.VirtualMachineConditionType) *kubevirtv1.VirtualMachineCondition {
	for i := range vm.Status.Conditions {
		if vm.Status.Conditions[i].Type == t {
			return &vm.Status.Conditions[i]
		}
	}
	return nil
}

func vmiCondition(vmi *kubevirtv1.VirtualMachineInstance, t kubevirtv1.VirtualMachineInstanceConditionType) *kubevirtv1.VirtualMachineInstanceCondition {
	for i := range vmi.Status.Conditions {
		if vmi.Status.Conditions[i].Type == t {
			return &vmi.Status.Conditions[i]
		}
	}
	return nil
}
