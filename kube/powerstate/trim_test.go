package powerstate

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

// The cache's trimmed objects must decide the same power state as the full ones, for every combination of the
// fields translate.PowerStateOf reads.
func TestTrimKeepsThePowerState(t *testing.T) {
	strategies := []*kubevirtv1.VirtualMachineRunStrategy{nil,
		ptr.To(kubevirtv1.RunStrategyAlways), ptr.To(kubevirtv1.RunStrategyHalted), ptr.To(kubevirtv1.RunStrategyManual),
		ptr.To(kubevirtv1.RunStrategyRerunOnFailure), ptr.To(kubevirtv1.RunStrategyOnce)}
	printable := []kubevirtv1.VirtualMachinePrintableStatus{"", kubevirtv1.VirtualMachineStatusRunning,
		kubevirtv1.VirtualMachineStatusCrashLoopBackOff, kubevirtv1.VirtualMachineStatusStopped}
	requests := [][]kubevirtv1.VirtualMachineStateChangeRequest{nil,
		{{Action: kubevirtv1.StartRequest}}, {{Action: kubevirtv1.StopRequest}}}
	phases := []kubevirtv1.VirtualMachineInstancePhase{"absent", kubevirtv1.Pending, kubevirtv1.Running,
		kubevirtv1.Succeeded, kubevirtv1.Failed}
	deleted := &metav1.Time{}
	cases := 0
	for _, rs := range strategies {
		for _, ps := range printable {
			for _, req := range requests {
				for _, phase := range phases {
					for _, variant := range []int{0, 1, 2} { // deleted; status.runStrategy as in spec or not yet
						vmDeleted := variant == 0
						vm := fullVM(rs, ps, req)
						if variant == 1 {
							vm.Status.RunStrategy = ptr.Deref(rs, "")
						}
						if vmDeleted {
							vm.DeletionTimestamp = deleted
						}
						var vmi *kubevirtv1.VirtualMachineInstance
						if phase != "absent" {
							vmi = fullVMI(phase)
						}
						var trimmed *kubevirtv1.VirtualMachineInstance
						if vmi != nil {
							trimmed = trimVirtualMachineInstance(vmi)
						}
						name := fmt.Sprintf("%v/%s/%v/%s/variant=%d", ptr.Deref(rs, "nil"), ps, req, phase, variant)
						assert.Equal(t, translate.PowerStateOf(vm, vmi), translate.PowerStateOf(trimVirtualMachine(vm), trimmed), name)
						cases++
					}
				}
			}
		}
	}
	assert.Equal(t, 6*4*3*5*3, cases)
}

func TestTrimDropsTheBulk(t *testing.T) {
	vm := trimVirtualMachine(fullVM(ptr.To(kubevirtv1.RunStrategyAlways), kubevirtv1.VirtualMachineStatusRunning, nil))
	assert.Nil(t, vm.Spec.Template)
	assert.Nil(t, vm.ManagedFields)
	assert.Empty(t, vm.Status.Conditions)
	assert.Equal(t, "managed", vm.Labels[translate.LabelManagedBy])
	vmi := trimVirtualMachineInstance(fullVMI(kubevirtv1.Running))
	assert.Empty(t, vmi.Spec.Domain.Devices.Disks)
	assert.Empty(t, vmi.Status.Interfaces)
	assert.Equal(t, kubevirtv1.Running, vmi.Status.Phase)

	other := &metav1.PartialObjectMetadata{}
	got, err := trim(other)
	assert.NoError(t, err)
	assert.Same(t, other, got, "other kinds pass through")
}

func fullVM(rs *kubevirtv1.VirtualMachineRunStrategy, ps kubevirtv1.VirtualMachinePrintableStatus, req []kubevirtv1.VirtualMachineStateChangeRequest) *kubevirtv1.VirtualMachine {
	return &kubevirtv1.VirtualMachine{
		ObjectMeta: metav1.ObjectMeta{Name: "i-2-45-vm", Labels: map[string]string{translate.LabelManagedBy: "managed"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubevirt-extension"}}},
		Spec: kubevirtv1.VirtualMachineSpec{RunStrategy: rs, Template: &kubevirtv1.VirtualMachineInstanceTemplateSpec{}},
		Status: kubevirtv1.VirtualMachineStatus{PrintableStatus: ps, StateChangeRequests: req,
			Conditions: []kubevirtv1.VirtualMachineCondition{{Type: kubevirtv1.VirtualMachineReady}}},
	}
}

func fullVMI(phase kubevirtv1.VirtualMachineInstancePhase) *kubevirtv1.VirtualMachineInstance {
	return &kubevirtv1.VirtualMachineInstance{
		ObjectMeta: metav1.ObjectMeta{Name: "i-2-45-vm"},
		Spec:       kubevirtv1.VirtualMachineInstanceSpec{Domain: kubevirtv1.DomainSpec{Devices: kubevirtv1.Devices{Disks: []kubevirtv1.Disk{{Name: "root"}}}}},
		Status:     kubevirtv1.VirtualMachineInstanceStatus{Phase: phase, Interfaces: []kubevirtv1.VirtualMachineInstanceNetworkInterface{{IP: "10.0.0.1"}}},
	}
}
