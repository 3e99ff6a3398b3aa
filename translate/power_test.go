package translate

import (
	"testing"

	"github.com/stretchr/testify/assert"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
)

func vmWith(strategy kubevirtv1.VirtualMachineRunStrategy, status kubevirtv1.VirtualMachinePrintableStatus) *kubevirtv1.VirtualMachine {
	vm := &kubevirtv1.VirtualMachine{Status: kubevirtv1.VirtualMachineStatus{PrintableStatus: status}}
	if strategy != "" {
		vm.Spec.RunStrategy = &strategy
	}
	return vm
}

func vmiIn(phase kubevirtv1.VirtualMachineInstancePhase) *kubevirtv1.VirtualMachineInstance {
	return &kubevirtv1.VirtualMachineInstance{Status: kubevirtv1.VirtualMachineInstanceStatus{Phase: phase}}
}

// TestPowerStateEveryPrintableStatus covers each printableStatus KubeVirt v1.9.0 sets, with the VMI it comes with.
func TestPowerStateEveryPrintableStatus(t *testing.T) {
	const always, halted = kubevirtv1.RunStrategyAlways, kubevirtv1.RunStrategyHalted
	tests := []struct {
		status   kubevirtv1.VirtualMachinePrintableStatus
		strategy kubevirtv1.VirtualMachineRunStrategy
		vmi      *kubevirtv1.VirtualMachineInstance
		want     PowerState
	}{
		{kubevirtv1.VirtualMachineStatusStopped, halted, nil, PowerOff},
		{kubevirtv1.VirtualMachineStatusStopped, always, nil, PowerOn}, // created, controller not yet acted: starting
		{kubevirtv1.VirtualMachineStatusProvisioning, always, nil, PowerOn},
		{kubevirtv1.VirtualMachineStatusWaitingForVolumeBinding, always, vmiIn(kubevirtv1.Pending), PowerOn},
		{kubevirtv1.VirtualMachineStatusStarting, always, vmiIn(kubevirtv1.Scheduling), PowerOn},
		{kubevirtv1.VirtualMachineStatusRunning, always, vmiIn(kubevirtv1.Running), PowerOn},
		{kubevirtv1.VirtualMachineStatusPaused, always, vmiIn(kubevirtv1.Running), PowerOn},
		{kubevirtv1.VirtualMachineStatusMigrating, always, vmiIn(kubevirtv1.Running), PowerOn},
		{kubevirtv1.VirtualMachineStatusStopping, halted, vmiIn(kubevirtv1.Running), PowerOff},
		{kubevirtv1.VirtualMachineStatusTerminating, always, vmiIn(kubevirtv1.Running), PowerOn}, // deletion judged below
		{kubevirtv1.VirtualMachineStatusCrashLoopBackOff, always, nil, PowerOff},
		{kubevirtv1.VirtualMachineStatusCrashLoopBackOff, always, vmiIn(kubevirtv1.Failed), PowerOff},
		{kubevirtv1.VirtualMachineStatusCrashLoopBackOff, always, vmiIn(kubevirtv1.Scheduling), PowerOn}, // next attempt under way
		{kubevirtv1.VirtualMachineStatusUnschedulable, always, vmiIn(kubevirtv1.Scheduling), PowerOn},
		{kubevirtv1.VirtualMachineStatusErrImagePull, always, vmiIn(kubevirtv1.Scheduled), PowerOn},
		{kubevirtv1.VirtualMachineStatusImagePullBackOff, always, vmiIn(kubevirtv1.Scheduled), PowerOn},
		{kubevirtv1.VirtualMachineStatusPvcNotFound, always, nil, PowerOn},
		{kubevirtv1.VirtualMachineStatusDataVolumeError, always, nil, PowerOn},
		{kubevirtv1.VirtualMachineStatusWaitingForReceiver, kubevirtv1.RunStrategyWaitAsReceiver, nil, PowerOff},
		{kubevirtv1.VirtualMachineStatusUnknown, always, vmiIn(kubevirtv1.Unknown), PowerOn},
		{kubevirtv1.VirtualMachineStatusUnknown, halted, vmiIn(kubevirtv1.Unknown), PowerOff},
	}
	for _, tt := range tests {
		t.Run(string(tt.status)+"/"+string(tt.strategy), func(t *testing.T) {
			assert.Equal(t, tt.want, PowerStateOf(vmWith(tt.strategy, tt.status), tt.vmi))
		})
	}
}

// TestPowerStateEveryPhase covers each VMI phase under each run strategy.
func TestPowerStateEveryPhase(t *testing.T) {
	type row struct{ always, rerun, once, manual, halted PowerState }
	on, off := PowerOn, PowerOff
	tests := map[kubevirtv1.VirtualMachineInstancePhase]row{
		"none":                    {on, on, on, off, off}, // no VMI at all
		kubevirtv1.VmPhaseUnset:   {on, on, on, on, off},
		kubevirtv1.Pending:        {on, on, on, on, off},
		kubevirtv1.Scheduling:     {on, on, on, on, off},
		kubevirtv1.Scheduled:      {on, on, on, on, off},
		kubevirtv1.Running:        {on, on, on, on, off},
		kubevirtv1.WaitingForSync: {on, on, on, on, off},
		kubevirtv1.Unknown:        {on, on, on, on, off},
		kubevirtv1.Succeeded:      {on, off, off, off, off}, // guest shut down
		kubevirtv1.Failed:         {on, on, off, off, off},  // crashed
	}
	strategies := []kubevirtv1.VirtualMachineRunStrategy{
		kubevirtv1.RunStrategyAlways, kubevirtv1.RunStrategyRerunOnFailure, kubevirtv1.RunStrategyOnce,
		kubevirtv1.RunStrategyManual, kubevirtv1.RunStrategyHalted,
	}
	for phase, want := range tests {
		expected := []PowerState{want.always, want.rerun, want.once, want.manual, want.halted}
		for i, strategy := range strategies {
			t.Run(string(strategy)+"/"+string(phase), func(t *testing.T) {
				var vmi *kubevirtv1.VirtualMachineInstance
				if phase != "none" {
					vmi = vmiIn(phase)
				}
				assert.Equal(t, expected[i], PowerStateOf(vmWith(strategy, ""), vmi))
			})
		}
	}
}

func TestPowerStateEdges(t *testing.T) {
	now := metav1.Now()
	yes, no := true, false
	deleting := vmWith(kubevirtv1.RunStrategyAlways, kubevirtv1.VirtualMachineStatusTerminating)
	deleting.DeletionTimestamp = &now
	deletingVMI := vmiIn(kubevirtv1.Running)
	deletingVMI.DeletionTimestamp = &now
	both := vmWith(kubevirtv1.RunStrategyAlways, "")
	both.Spec.Running = &yes
	legacyOn := &kubevirtv1.VirtualMachine{Spec: kubevirtv1.VirtualMachineSpec{Running: &yes}}
	legacyOff := &kubevirtv1.VirtualMachine{Spec: kubevirtv1.VirtualMachineSpec{Running: &no}}
	manualStart := vmWith(kubevirtv1.RunStrategyManual, kubevirtv1.VirtualMachineStatusStopped)
	manualStart.Status.StateChangeRequests = []kubevirtv1.VirtualMachineStateChangeRequest{{Action: kubevirtv1.StartRequest}}
	manualStop := vmWith(kubevirtv1.RunStrategyManual, kubevirtv1.VirtualMachineStatusRunning)
	manualStop.Status.StateChangeRequests = []kubevirtv1.VirtualMachineStateChangeRequest{{Action: kubevirtv1.StopRequest}}
	rerunShutDown := vmWith(kubevirtv1.RunStrategyRerunOnFailure, kubevirtv1.VirtualMachineStatusStopped)
	rerunShutDown.Status.RunStrategy = kubevirtv1.RunStrategyRerunOnFailure
	rerunRestarting := rerunShutDown.DeepCopy()
	rerunRestarting.Status.StateChangeRequests = []kubevirtv1.VirtualMachineStateChangeRequest{{Action: kubevirtv1.StartRequest}}
	rerunSwitched := rerunShutDown.DeepCopy()
	rerunSwitched.Status.RunStrategy = kubevirtv1.RunStrategyHalted
	tests := []struct {
		name string
		vm   *kubevirtv1.VirtualMachine
		vmi  *kubevirtv1.VirtualMachineInstance
		want PowerState
	}{
		{"RerunOnFailure after a guest shutdown: VMI removed, none started", rerunShutDown, nil, PowerOff},
		{"RerunOnFailure after a failure: VMI removed, start requested", rerunRestarting, nil, PowerOn},
		{"RerunOnFailure just set on a halted VM", rerunSwitched, nil, PowerOn},
		{"no VirtualMachine", nil, nil, PowerOff},
		{"VirtualMachine being deleted", deleting, vmiIn(kubevirtv1.Running), PowerOff},
		{"Manual with its VMI being deleted", vmWith(kubevirtv1.RunStrategyManual, ""), deletingVMI, PowerOff},
		{"running and runStrategy both set, VMI running", both, vmiIn(kubevirtv1.Running), PowerOn},
		{"running and runStrategy both set, no VMI", both, nil, PowerOff},
		{"deprecated running=true", legacyOn, nil, PowerOn},
		{"deprecated running=false", legacyOff, vmiIn(kubevirtv1.Running), PowerOff},
		{"neither running nor runStrategy", &kubevirtv1.VirtualMachine{}, nil, PowerOff},
		{"Manual with a pending start", manualStart, nil, PowerOn},
		{"Manual with a pending stop", manualStop, vmiIn(kubevirtv1.Running), PowerOff},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, PowerStateOf(tt.vm, tt.vmi))
		})
	}
}
