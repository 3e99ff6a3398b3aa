package kubevirtsim

import (
	"context"
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
)

// maxStartBackoff is KubeVirt's cap on the crash-loop back-off.
const maxStartBackoff = 5 * time.Minute

// updateStatus is KubeVirt's: it derives the VM's status from the VMI, writes it if it changed, and releases a
// final VMI once its state is recorded.
func (r *vmReconciler) updateStatus(ctx context.Context, st *vmState) error {
	vm, vmi := st.vm, st.vmi
	status := &vm.Status
	status.Created = vmi != nil
	status.Ready = vmi != nil && vmiHasCondition(vmi, kubevirtv1.VirtualMachineInstanceReady, corev1.ConditionTrue)
	if vmi != nil {
		if err := r.syncGeneration(ctx, st); err != nil {
			return err
		}
	}
	// Recorded from the first start on, so that it tells whether the VM ever ran.
	if strategy, err := st.orig.RunStrategy(); err == nil && (status.RunStrategy != "" || status.Created) {
		status.RunStrategy = strategy
	}
	if firstChangeRequestDone(vm, vmi) {
		status.StateChangeRequests = status.StateChangeRequests[1:]
	}
	r.syncStartFailure(vm, vmi)
	syncConditions(vm, vmi, st.failure)
	status.PrintableStatus = r.printableStatus(ctx, st)
	if !equality.Semantic.DeepEqual(st.orig.Status, vm.Status) {
		if err := r.writeVMStatus(ctx, vm); err != nil {
			return err
		}
	}
	if vmi != nil && vmi.IsFinal() && controllerutil.ContainsFinalizer(vmi, kubevirtv1.VirtualMachineControllerFinalizer) {
		return r.patchVMI(ctx, vmi, func(vmi *kubevirtv1.VirtualMachineInstance) {
			controllerutil.RemoveFinalizer(vmi, kubevirtv1.VirtualMachineControllerFinalizer)
		})
	}
	return nil
}

func (r *vmReconciler) writeVMStatus(ctx context.Context, vm *kubevirtv1.VirtualMachine) error {
	var err error
	if r.api.vmStatus {
		err = r.client.Status().Update(ctx, vm)
	} else {
		err = r.client.Update(ctx, vm)
	}
	if err != nil {
		return fmt.Errorf("updating the status of VM %s: %w", objectKey(vm), err)
	}
	return nil
}

// syncGeneration sets observedGeneration (the generation the VMI was started from) and desiredGeneration. Like
// KubeVirt it moves the VMI's generation forward when the VM's template is still the one the VMI started from.
func (r *vmReconciler) syncGeneration(ctx context.Context, st *vmState) error {
	vm, vmi := st.vm, st.vmi
	want := strconv.FormatInt(vm.Generation, 10)
	if vmi.Annotations[kubevirtv1.VirtualMachineGenerationAnnotation] != want && vmi.Annotations[annTemplateHash] == templateHash(vm) {
		err := r.patchVMI(ctx, vmi, func(vmi *kubevirtv1.VirtualMachineInstance) {
			vmi.Annotations[kubevirtv1.VirtualMachineGenerationAnnotation] = want
		})
		if err != nil {
			return err
		}
	}
	if gen, err := strconv.ParseInt(vmi.Annotations[kubevirtv1.VirtualMachineGenerationAnnotation], 10, 64); err == nil {
		vm.Status.ObservedGeneration = gen
	}
	vm.Status.DesiredGeneration = vm.Generation
	return nil
}

// patchVMI changes the cached VMI st holds; the patch fails if the VMI changed meanwhile.
func (r *vmReconciler) patchVMI(ctx context.Context, vmi *kubevirtv1.VirtualMachineInstance, mutate func(*kubevirtv1.VirtualMachineInstance)) error {
	base := vmi.DeepCopy()
	mutate(vmi)
	if err := r.client.Patch(ctx, vmi, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("patching VMI %s: %w", objectKey(vmi), err)
	}
	return nil
}

// firstChangeRequestDone is KubeVirt's isTrimFirstChangeRequestNeeded: requests are handled one at a time, and the
// first is dropped once it has taken effect.
func firstChangeRequestDone(vm *kubevirtv1.VirtualMachine, vmi *kubevirtv1.VirtualMachineInstance) bool {
	if len(vm.Status.StateChangeRequests) == 0 {
		return false
	}
	req := vm.Status.StateChangeRequests[0]
	switch req.Action {
	case kubevirtv1.StopRequest:
		// Done when that VMI is gone; a request without a UID can never be acted upon.
		return vmi == nil || req.UID == nil || *req.UID != vmi.UID
	case kubevirtv1.StartRequest:
		return vmi != nil && vmi.DeletionTimestamp == nil && !vmi.IsFinal()
	}
	return false
}

// syncStartFailure counts VMIs that failed before ever running and schedules the next start (crash-loop back-off).
func (r *vmReconciler) syncStartFailure(vm *kubevirtv1.VirtualMachine, vmi *kubevirtv1.VirtualMachineInstance) {
	if startFailureCleared(vm, vmi) {
		vm.Status.StartFailure = nil
		return
	}
	if vmi == nil || !vmi.IsFinal() || everRan(vmi) {
		return
	}
	last := vm.Status.StartFailure
	if last != nil && last.LastFailedVMIUID == vmi.UID {
		return
	}
	count := 1
	if last != nil {
		count = last.ConsecutiveFailCount + 1
	}
	// The timestamp is stored in whole seconds; rounding up keeps the stored retry time from coming early.
	at := time.Now().Add(min(r.opts.StartBackoff*time.Duration(count*count), maxStartBackoff))
	retry := metav1.NewTime(at.Truncate(time.Second).Add(time.Second))
	vm.Status.StartFailure = &kubevirtv1.VirtualMachineStartFailure{
		ConsecutiveFailCount: count, LastFailedVMIUID: vmi.UID, RetryAfterTimestamp: &retry,
	}
}

func startFailureCleared(vm *kubevirtv1.VirtualMachine, vmi *kubevirtv1.VirtualMachineInstance) bool {
	if everRan(vmi) {
		return true
	}
	strategy, err := vm.RunStrategy()
	if err != nil {
		return false
	}
	return !restartsOnFailure(strategy)
}

func restartsOnFailure(s kubevirtv1.VirtualMachineRunStrategy) bool {
	return s == kubevirtv1.RunStrategyAlways || s == kubevirtv1.RunStrategyRerunOnFailure || s == kubevirtv1.RunStrategyOnce
}

func everRan(vmi *kubevirtv1.VirtualMachineInstance) bool {
	if vmi == nil {
		return false
	}
	for _, ts := range vmi.Status.PhaseTransitionTimestamps {
		if ts.Phase == kubevirtv1.Running {
			return true
		}
	}
	return false
}

func startBackoffLeft(vm *kubevirtv1.VirtualMachine) time.Duration {
	sf := vm.Status.StartFailure
	if sf == nil || sf.RetryAfterTimestamp == nil {
		return 0
	}
	return max(0, time.Until(sf.RetryAfterTimestamp.Time))
}

// syncConditions is KubeVirt's: Ready mirrors the VMI's Ready condition, Failure reports the last sync error,
// and the VMI's other conditions are copied. Without a VMI the copied ones are left as they were, as KubeVirt does.
func syncConditions(vm *kubevirtv1.VirtualMachine, vmi *kubevirtv1.VirtualMachineInstance, failure *syncFailure) {
	now := metav1.Now()
	ready := kubevirtv1.VirtualMachineCondition{
		Type: kubevirtv1.VirtualMachineReady, Status: corev1.ConditionFalse,
		Reason: "VMINotExists", Message: "VMI does not exist", LastProbeTime: now, LastTransitionTime: now,
	}
	if c := vmiCondition(vmi, kubevirtv1.VirtualMachineInstanceReady); c != nil {
		ready.Status, ready.Reason, ready.Message = c.Status, c.Reason, c.Message
		ready.LastProbeTime, ready.LastTransitionTime = c.LastProbeTime, c.LastTransitionTime
	} else if vmi != nil {
		ready.Reason, ready.Message = "VMIConditionMissing", "VMI is missing the Ready condition"
	}
	setVMCondition(vm, ready)
	if failure != nil {
		setVMCondition(vm, kubevirtv1.VirtualMachineCondition{
			Type: kubevirtv1.VirtualMachineFailure, Status: corev1.ConditionTrue,
			Reason: failure.reason, Message: failure.err.Error(), LastTransitionTime: now,
		})
	} else {
		removeVMCondition(vm, kubevirtv1.VirtualMachineFailure)
	}
	if vmi != nil {
		copyVMIConditions(vm, vmi)
	}
}

func copyVMIConditions(vm *kubevirtv1.VirtualMachine, vmi *kubevirtv1.VirtualMachineInstance) {
	own := map[kubevirtv1.VirtualMachineConditionType]bool{
		kubevirtv1.VirtualMachineReady: true, kubevirtv1.VirtualMachineFailure: true, kubevirtv1.VirtualMachineRestartRequired: true,
	}
	onVMI := map[kubevirtv1.VirtualMachineConditionType]bool{}
	for _, c := range vmi.Status.Conditions {
		t := kubevirtv1.VirtualMachineConditionType(c.Type)
		if own[t] {
			continue
		}
		onVMI[t] = true
		setVMCondition(vm, kubevirtv1.VirtualMachineCondition{
			Type: t, Status: c.Status, Reason: c.Reason, Message: c.Message,
			LastProbeTime: c.LastProbeTime, LastTransitionTime: c.LastTransitionTime,
		})
	}
	for _, c := range append([]kubevirtv1.VirtualMachineCondition(nil), vm.Status.Conditions...) {
		if !own[c.Type] && !onVMI[c.Type] {
			removeVMCondition(vm, c.Type)
		}
	}
}

// printableStatus is KubeVirt's setPrintableStatus: the first matching status wins. Migrating, ErrorPvcNotFound,
// WaitingForVolumeBinding, ImagePullBackOff and WaitingForReceiver are never produced by the simulator.
func (r *vmReconciler) printableStatus(ctx context.Context, st *vmState) kubevirtv1.VirtualMachinePrintableStatus {
	vm, vmi := st.vm, st.vmi
	paused := vmiHasCondition(vmi, kubevirtv1.VirtualMachineInstancePaused, corev1.ConditionTrue)
	synced := vmiCondition(vmi, kubevirtv1.VirtualMachineInstanceSynchronized)
	switch {
	case vm.DeletionTimestamp != nil:
		return kubevirtv1.VirtualMachineStatusTerminating
	case vmi != nil && !vmi.IsFinal() && (vmi.DeletionTimestamp != nil || st.stopExpected):
		return kubevirtv1.VirtualMachineStatusStopping
	case vmi != nil && vmi.IsRunning() && paused:
		return kubevirtv1.VirtualMachineStatusPaused
	case vmi != nil && vmi.IsRunning():
		return kubevirtv1.VirtualMachineStatusRunning
	case r.dataVolumeError(ctx, vm):
		return kubevirtv1.VirtualMachineStatusDataVolumeError
	case vmiHasCondition(vmi, kubevirtv1.VirtualMachineInstanceConditionType(corev1.PodScheduled), corev1.ConditionFalse) &&
		vmiCondition(vmi, kubevirtv1.VirtualMachineInstanceConditionType(corev1.PodScheduled)).Reason == corev1.PodReasonUnschedulable:
		return kubevirtv1.VirtualMachineStatusUnschedulable
	case r.provisioning(ctx, vm):
		return kubevirtv1.VirtualMachineStatusProvisioning
	case synced != nil && synced.Status == corev1.ConditionFalse && synced.Reason == "ErrImagePull":
		return kubevirtv1.VirtualMachineStatusErrImagePull
	case starting(st):
		return kubevirtv1.VirtualMachineStatusStarting
	case crashLooping(st):
		return kubevirtv1.VirtualMachineStatusCrashLoopBackOff
	case vmi != nil && vmi.IsFinal(), vmi == nil && !st.startExpected:
		return kubevirtv1.VirtualMachineStatusStopped
	}
	return kubevirtv1.VirtualMachineStatusUnknown
}

func starting(st *vmState) bool {
	if st.vmi == nil {
		return st.startExpected
	}
	return st.vmi.IsUnprocessed() || st.vmi.IsScheduling() || st.vmi.IsScheduled()
}

func crashLooping(st *vmState) bool {
	if (st.vmi != nil && !st.vmi.IsFinal()) || st.startExpected {
		return false
	}
	strategy, err := st.vm.RunStrategy()
	sf := st.vm.Status.StartFailure
	return err == nil && sf != nil && sf.ConsecutiveFailCount > 0 && restartsOnFailure(strategy)
}
