package kubevirtsim

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
)

const (
	kindVMI = "VirtualMachineInstance"
	// launcherImage is reported as the virt-launcher image of every simulated VMI.
	launcherImage = "kubevirtsim/virt-launcher:v1.9.0"
)

// vmiReconciler plays virt-controller's VMI controller and virt-handler for one VMI: it moves a new VMI through
// Pending, Scheduling and Scheduled to Running, shuts a deleted one down and releases its finalizers.
type vmiReconciler struct{ *Sim }

func (r *vmiReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	vmi := &kubevirtv1.VirtualMachineInstance{}
	if err := r.client.Get(ctx, req.NamespacedName, vmi); err != nil {
		if apierrors.IsNotFound(err) {
			r.pacer.forget(kindVMI, req.NamespacedName)
			return ctrl.Result{}, nil
		}
		return outcome(ctx, err)
	}
	ownerGone, err := r.ownerGone(ctx, vmi)
	if err != nil {
		return outcome(ctx, err)
	}
	if ownerGone && vmi.DeletionTimestamp == nil {
		return outcome(ctx, r.collect(ctx, vmi))
	}
	cur := vmi.DeepCopy()
	wait := r.steps(cur, ownerGone || metav1.GetControllerOf(vmi) == nil)
	if cur.IsRunning() && vmiCondition(cur, kubevirtv1.VirtualMachineInstanceIsMigratable) == nil {
		status, reason, msg := r.liveMigratable(ctx, cur) // migration_controller.go
		setVMICondition(cur, kubevirtv1.VirtualMachineInstanceIsMigratable, status, reason, msg)
	}
	if err := r.saveVMI(ctx, vmi, cur); err != nil {
		return outcome(ctx, err)
	}
	return ctrl.Result{RequeueAfter: wait}, nil
}

// steps takes the VMI one step further, or, without a step delay, as far as it goes in one write (Pending to
// Running; the phase transition timestamps still list every phase). It returns how long to wait for the next.
func (r *vmiReconciler) steps(vmi *kubevirtv1.VirtualMachineInstance, noOwnerVM bool) time.Duration {
	for {
		phase := vmi.Status.Phase
		wait := r.step(vmi, noOwnerVM)
		if r.opts.StepDelay > 0 || wait > 0 || vmi.Status.Phase == phase {
			return wait
		}
	}
}

// step takes the VMI one step further and returns how long to wait before the next one.
func (r *vmiReconciler) step(vmi *kubevirtv1.VirtualMachineInstance, noOwnerVM bool) time.Duration {
	switch {
	case vmi.IsFinal():
		r.pacer.forget(kindVMI, objectKey(vmi))
		release(vmi, noOwnerVM)
		return 0
	case vmi.DeletionTimestamp != nil:
		return r.shutdown(vmi)
	}
	switch vmi.Status.Phase {
	case kubevirtv1.VmPhaseUnset:
		accept(vmi)
	case kubevirtv1.Pending:
		return r.createPod(vmi)
	case kubevirtv1.Scheduling:
		return r.schedule(vmi)
	case kubevirtv1.Scheduled:
		return r.boot(vmi)
	}
	return 0
}

// accept is virt-controller's first look at a VMI: it takes a finalizer and asks for a launcher pod.
func accept(vmi *kubevirtv1.VirtualMachineInstance) {
	controllerutil.AddFinalizer(vmi, kubevirtv1.VirtualMachineInstanceFinalizer)
	setPhase(vmi, kubevirtv1.Pending)
	setVMICondition(vmi, kubevirtv1.VirtualMachineInstanceReady, corev1.ConditionFalse,
		kubevirtv1.PodNotExistsReason, "virt-launcher pod has not yet been scheduled")
}

func (r *vmiReconciler) createPod(vmi *kubevirtv1.VirtualMachineInstance) time.Duration {
	if wait := r.pacer.wait(kindVMI, vmi, string(vmi.Status.Phase)); wait > 0 {
		return wait
	}
	setPhase(vmi, kubevirtv1.Scheduling)
	setVMICondition(vmi, kubevirtv1.VirtualMachineInstanceReady, corev1.ConditionFalse,
		kubevirtv1.GuestNotRunningReason, "Guest VM is not reported as running")
	return 0
}

// schedule waits for the launcher pod to be running on the node, or fails to pull its image forever, or never
// finds a node. The VMI controller copies the pod's PodScheduled=False condition to the VMI while it is
// Scheduling (kubevirt.io/kubevirt@v1.8.0/pkg/virt-controller/watch/vmi/lifecycle.go).
func (r *vmiReconciler) schedule(vmi *kubevirtv1.VirtualMachineInstance) time.Duration {
	podScheduled := kubevirtv1.VirtualMachineInstanceConditionType(corev1.PodScheduled)
	if r.faults.of(vmi) == FaultUnschedulable {
		setVMICondition(vmi, podScheduled, corev1.ConditionFalse, corev1.PodReasonUnschedulable,
			"0/1 nodes are available: 1 Insufficient memory. preemption: 0/1 nodes are available: "+
				"1 No preemption victims found for incoming pod.")
		return 0 // SetFault(FaultNone) requeues the VMI
	}
	removeVMICondition(vmi, podScheduled)
	if r.faults.of(vmi) == FaultErrImagePull {
		setVMICondition(vmi, kubevirtv1.VirtualMachineInstanceSynchronized, corev1.ConditionFalse,
			"ErrImagePull", fmt.Sprintf("simulated: failed to pull image %q", containerDiskImage(vmi)))
		return 0 // SetFault(FaultNone) requeues the VMI
	}
	if c := vmiCondition(vmi, kubevirtv1.VirtualMachineInstanceSynchronized); c != nil && c.Reason == "ErrImagePull" {
		removeVMICondition(vmi, kubevirtv1.VirtualMachineInstanceSynchronized)
	}
	if wait := r.pacer.wait(kindVMI, vmi, string(vmi.Status.Phase)); wait > 0 {
		return wait
	}
	setPhase(vmi, kubevirtv1.Scheduled)
	if vmi.Labels == nil {
		vmi.Labels = map[string]string{}
	}
	vmi.Labels[kubevirtv1.NodeNameLabel] = r.opts.NodeName
	vmi.Status.NodeName = r.opts.NodeName
	qos := corev1.PodQOSBurstable
	vmi.Status.QOSClass = &qos
	vmi.Status.LauncherContainerImageVersion = launcherImage
	return 0
}

// boot is virt-handler starting the domain: the guest runs, or the launcher crashes first.
func (r *vmiReconciler) boot(vmi *kubevirtv1.VirtualMachineInstance) time.Duration {
	if wait := r.pacer.wait(kindVMI, vmi, string(vmi.Status.Phase)); wait > 0 {
		return wait
	}
	if r.faults.of(vmi) == FaultCrashLoop {
		setPhase(vmi, kubevirtv1.Failed)
		setVMICondition(vmi, kubevirtv1.VirtualMachineInstanceReady, corev1.ConditionFalse,
			kubevirtv1.PodTerminatingReason, "virt-launcher pod is terminating")
		return 0
	}
	setPhase(vmi, kubevirtv1.Running)
	vmi.Status.Interfaces = interfaceStatuses(vmi)
	vmi.Status.GuestOSInfo = kubevirtv1.VirtualMachineInstanceGuestOSInfo{
		ID: "kubevirtsim", Name: "KubeVirt simulator guest", PrettyName: "KubeVirt simulator guest (not a real VM)",
		Version: "1", VersionID: "1", KernelRelease: "sim", Machine: "x86_64",
	}
	setVMICondition(vmi, kubevirtv1.VirtualMachineInstanceAgentConnected, corev1.ConditionTrue, "", "")
	if vmi.Spec.StartStrategy != nil && *vmi.Spec.StartStrategy == kubevirtv1.StartStrategyPaused {
		pause(vmi)
		return 0
	}
	setVMICondition(vmi, kubevirtv1.VirtualMachineInstanceReady, corev1.ConditionTrue, "", "")
	return 0
}

// shutdown is virt-handler stopping the guest of a deleted VMI: a running guest shuts down cleanly (Succeeded);
// a VMI that never ran loses its pod (Failed), as virt-controller reports it.
func (r *vmiReconciler) shutdown(vmi *kubevirtv1.VirtualMachineInstance) time.Duration {
	if wait := r.pacer.wait(kindVMI, vmi, "ShuttingDown"); wait > 0 {
		return wait
	}
	if vmi.IsRunning() {
		stopGuest(vmi, kubevirtv1.Succeeded)
	} else {
		stopGuest(vmi, kubevirtv1.Failed)
	}
	return 0
}

// release drops the finalizers of a final VMI: virt-controller's own once the pod is gone (at once here), and the
// VM controller's when no VM will ever look at the VMI again.
func release(vmi *kubevirtv1.VirtualMachineInstance, noOwnerVM bool) {
	controllerutil.RemoveFinalizer(vmi, kubevirtv1.VirtualMachineInstanceFinalizer)
	controllerutil.RemoveFinalizer(vmi, kubevirtv1.DeprecatedVirtualMachineInstanceFinalizer)
	if noOwnerVM {
		controllerutil.RemoveFinalizer(vmi, kubevirtv1.VirtualMachineControllerFinalizer)
	}
	vmi.Status.LauncherContainerImageVersion = ""
}

func stopGuest(vmi *kubevirtv1.VirtualMachineInstance, phase kubevirtv1.VirtualMachineInstancePhase) {
	setPhase(vmi, phase)
	removeVMICondition(vmi, kubevirtv1.VirtualMachineInstancePaused)
	removeVMICondition(vmi, kubevirtv1.VirtualMachineInstanceAgentConnected)
	setVMICondition(vmi, kubevirtv1.VirtualMachineInstanceReady, corev1.ConditionFalse,
		kubevirtv1.PodTerminatingReason, "virt-launcher pod is terminating")
}

func pause(vmi *kubevirtv1.VirtualMachineInstance) {
	setVMICondition(vmi, kubevirtv1.VirtualMachineInstancePaused, corev1.ConditionTrue, "PausedByUser", "VMI was paused by user")
	// The launcher pod's readiness gate kubevirt.io/virtual-machine-unpaused turns False, and so does Ready.
	setVMICondition(vmi, kubevirtv1.VirtualMachineInstanceReady, corev1.ConditionFalse, "ReadinessGatesNotReady",
		`corresponding condition of pod readiness gate "kubevirt.io/virtual-machine-unpaused" is False`)
}

func unpause(vmi *kubevirtv1.VirtualMachineInstance) {
	removeVMICondition(vmi, kubevirtv1.VirtualMachineInstancePaused)
	setVMICondition(vmi, kubevirtv1.VirtualMachineInstanceReady, corev1.ConditionTrue, "", "")
}

func setPhase(vmi *kubevirtv1.VirtualMachineInstance, phase kubevirtv1.VirtualMachineInstancePhase) {
	vmi.Status.Phase = phase
	vmi.Status.PhaseTransitionTimestamps = append(vmi.Status.PhaseTransitionTimestamps,
		kubevirtv1.VirtualMachineInstancePhaseTransitionTimestamp{Phase: phase, PhaseTransitionTimestamp: metav1.Now()})
}

func containerDiskImage(vmi *kubevirtv1.VirtualMachineInstance) string {
	for _, v := range vmi.Spec.Volumes {
		if v.ContainerDisk != nil {
			return v.ContainerDisk.Image
		}
	}
	return launcherImage
}

// saveVMI writes the changes. Without a status subresource (virt-operator's VMI CRD) one update writes both.
func (r *vmiReconciler) saveVMI(ctx context.Context, orig, cur *kubevirtv1.VirtualMachineInstance) error {
	metaChanged := !equality.Semantic.DeepEqual(orig.ObjectMeta, cur.ObjectMeta)
	statusChanged := !equality.Semantic.DeepEqual(orig.Status, cur.Status)
	return r.save(ctx, cur, metaChanged, statusChanged, r.api.vmiStatus, func() func() {
		status := *cur.Status.DeepCopy()
		return func() { cur.Status = status }
	})
}
