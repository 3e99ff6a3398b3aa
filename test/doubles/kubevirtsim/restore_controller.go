package kubevirtsim

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	snapshotv1 "kubevirt.io/api/snapshot/v1beta1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
)

// Names and messages of KubeVirt v1.9.0's restore controller (pkg/storage/snapshot/restore.go).
const (
	kindRestore           = "VirtualMachineRestore"
	restoreFinalizer      = "snapshot.kubevirt.io/vmrestore-protection"
	lastRestoreAnnotation = "restore.kubevirt.io/lastRestoreUID"
	restoreNameAnnotation = "restore.kubevirt.io/name"
	// annAllowClaimAdoption is what KubeVirt v1.8.0 puts on the DataVolumes it creates (pkg/storage/types/dv.go).
	annAllowClaimAdoption = "cdi.kubevirt.io/allowClaimAdoption"

	restoreCompleteEvent   = "VirtualMachineRestoreComplete"
	restoreErrorEvent      = "VirtualMachineRestoreError"
	restoreFailedEvent     = "Operation failed"
	restoreVMNotReadyEvent = "RestoreTargetNotReady"

	waitEventuallyMessage        = "Waiting for target VM to be powered off. Please stop the restore target to proceed with restore"
	stopTargetMessage            = "Automatically stopping restore target for restore operation"
	vmiExistsEventMessage        = "Restore target VMI still exists, please stop the restore target to proceed with restore"
	targetNotReadyFailureMessage = "Restore target VMI must be powered off before restore operation"
	errorRestoreToExistingTarget = "restore source and restore target are different but restore target already exists"

	// restoreRetry stands in for the rate-limited requeue of a restore whose sync returned an error.
	restoreRetry = time.Second
)

var (
	restoreGracePeriodExceededError = fmt.Sprintf("Restore target failed to be ready within %s. Please power off the target VM before attempting restore", snapshotv1.DefaultGracePeriod)
	waitGracePeriodMessage          = fmt.Sprintf("Waiting for target VM to be powered off. Please stop the restore target to proceed with restore, or the operation will fail after %s", snapshotv1.DefaultGracePeriod)
)

// restoreReconciler plays virt-controller's VirtualMachineRestore controller for a VirtualMachine target: it
// waits for (or, under targetReadinessPolicy StopTarget, causes) the target to stop, following the policy
// (WaitGracePeriod by default: five minutes, then Failure), checks the snapshot, marks the VM
// status.restoreInProgress, restores the backed-up volumes as spec.volumeRestorePolicy says (RandomizeNames by
// default: new names, the old DataVolumes deleted; InPlace: same names), puts the snapshot's spec back on the VM
// with those names (keeping its run strategy; a missing VM is created Halted) with the annotation
// restore.kubevirt.io/lastRestoreUID, and completes. The simulator has no PVCs: DataVolumes stand for them.
type restoreReconciler struct{ *Sim }

func (r *restoreReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	restore := &snapshotv1.VirtualMachineRestore{}
	if err := r.client.Get(ctx, req.NamespacedName, restore); err != nil {
		if apierrors.IsNotFound(err) {
			r.pacer.forget(kindRestore, req.NamespacedName)
		}
		return outcome(ctx, client.IgnoreNotFound(err))
	}
	vm, err := r.targetOf(ctx, restore)
	if err != nil {
		return outcome(ctx, err)
	}
	wait, err := r.sync(ctx, restore, vm)
	var retryable *restoreError
	if errors.As(err, &retryable) {
		return ctrl.Result{RequeueAfter: restoreRetry}, nil
	}
	if err != nil {
		return outcome(ctx, err)
	}
	return ctrl.Result{RequeueAfter: wait}, nil
}

// restoreError is an error KubeVirt records on the restore (conditions and an event) and retries.
type restoreError struct{ msg string }

func (e *restoreError) Error() string { return e.msg }

func (r *restoreReconciler) targetOf(ctx context.Context, restore *snapshotv1.VirtualMachineRestore) (*kubevirtv1.VirtualMachine, error) {
	if restore.Spec.Target.Kind != "VirtualMachine" {
		return nil, nil
	}
	vm := &kubevirtv1.VirtualMachine{}
	err := r.reader.Get(ctx, types.NamespacedName{Namespace: restore.Namespace, Name: restore.Spec.Target.Name}, vm)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	return vm, err
}

func restoreProgressing(rs *snapshotv1.VirtualMachineRestore) bool {
	if rs.Status == nil {
		return true
	}
	for _, c := range rs.Status.Conditions {
		if c.Type == snapshotv1.ConditionFailure {
			return false
		}
	}
	return !ptr.Deref(rs.Status.Complete, false)
}

// sync is KubeVirt's updateVMRestore: one step per call.
func (r *restoreReconciler) sync(ctx context.Context, restore *snapshotv1.VirtualMachineRestore, vm *kubevirtv1.VirtualMachine) (time.Duration, error) {
	if restore.Status == nil {
		cur := restore.DeepCopy()
		cur.Status = &snapshotv1.VirtualMachineRestoreStatus{Complete: ptr.To(false)}
		setSnapshotCondition(&cur.Status.Conditions, snapshotv1.ConditionProgressing, corev1.ConditionTrue, "Initializing VirtualMachineRestore")
		setSnapshotCondition(&cur.Status.Conditions, snapshotv1.ConditionReady, corev1.ConditionFalse, "Initializing VirtualMachineRestore")
		return 0, r.client.Status().Update(ctx, cur)
	}
	if restore.DeletionTimestamp != nil {
		return 0, r.finalizeRestore(ctx, restore, vm)
	}
	if !restoreProgressing(restore) {
		r.pacer.forget(kindRestore, objectKey(restore))
		return 0, nil
	}
	if done, err := r.own(ctx, restore, vm); done || err != nil {
		return 0, err
	}
	if vm != nil {
		running, err := r.vmiExists(ctx, vm)
		if err != nil {
			return 0, err
		}
		if running {
			return r.targetNotReady(ctx, restore, vm)
		}
	}
	snap, err := r.readySnapshot(ctx, restore)
	if err != nil {
		return 0, r.recordError(ctx, restore, err.Error(), false)
	}
	if vm != nil && !hasLastRestore(restore, vm) && snap.Status.SourceUID != nil && vm.UID != *snap.Status.SourceUID {
		return 0, r.recordError(ctx, restore, errorRestoreToExistingTarget, false)
	}
	if vm != nil && !hasLastRestore(restore, vm) {
		if err := r.markInProgress(ctx, restore, vm); err != nil {
			return 0, err
		}
	}
	if vm == nil || !hasLastRestore(restore, vm) {
		if wait := r.pacer.wait(kindRestore, restore, "UpdatingTarget"); wait > 0 {
			return wait, nil
		}
		plan, err := r.plan(ctx, restore, snap, vm)
		if err != nil {
			return 0, r.recordError(ctx, restore, err.Error(), false)
		}
		if !equality.Semantic.DeepEqual(restore.Status.Restores, plan.restores) || !equality.Semantic.DeepEqual(restore.Status.DeletedDataVolumes, plan.deleted) {
			// KubeVirt records what it restores where before it touches anything.
			cur := restore.DeepCopy()
			cur.Status.Restores, cur.Status.DeletedDataVolumes = plan.restores, plan.deleted
			setSnapshotCondition(&cur.Status.Conditions, snapshotv1.ConditionProgressing, corev1.ConditionTrue, "Creating new PVCs")
			setSnapshotCondition(&cur.Status.Conditions, snapshotv1.ConditionReady, corev1.ConditionFalse, "Waiting for new PVCs")
			return 0, r.updateRestoreStatus(ctx, restore, cur)
		}
		if err := r.restoreDataVolumes(ctx, restore, plan, vm); err != nil {
			return 0, r.recordError(ctx, restore, err.Error(), false)
		}
		if err := r.restoreSpec(ctx, restore, plan, vm); err != nil {
			return 0, r.recordError(ctx, restore, err.Error(), false)
		}
		cur := restore.DeepCopy()
		setSnapshotCondition(&cur.Status.Conditions, snapshotv1.ConditionProgressing, corev1.ConditionTrue, "Updating target spec")
		setSnapshotCondition(&cur.Status.Conditions, snapshotv1.ConditionReady, corev1.ConditionFalse, "Waiting for target update")
		return 0, r.updateRestoreStatus(ctx, restore, cur)
	}
	if err := r.deleteObsoleteDataVolumes(ctx, restore); err != nil {
		return 0, r.recordError(ctx, restore, err.Error(), false)
	}
	if err := r.markDone(ctx, restore, vm); err != nil {
		return 0, err
	}
	r.event(ctx, restore, restoreCtrl, corev1.EventTypeNormal, restoreCompleteEvent, "Successfully completed VirtualMachineRestore "+restore.Name)
	cur := restore.DeepCopy()
	cur.Status.Complete = ptr.To(true)
	cur.Status.RestoreTime = ptr.To(metav1.Now())
	setSnapshotCondition(&cur.Status.Conditions, snapshotv1.ConditionProgressing, corev1.ConditionFalse, "Operation complete")
	setSnapshotCondition(&cur.Status.Conditions, snapshotv1.ConditionReady, corev1.ConditionTrue, "Operation complete")
	return 0, r.updateRestoreStatus(ctx, restore, cur)
}

// own makes the target VM the restore's controller and adds the restore's finalizer. It reports whether it
// wrote (the next step runs on the update's event).
func (r *restoreReconciler) own(ctx context.Context, restore *snapshotv1.VirtualMachineRestore, vm *kubevirtv1.VirtualMachine) (bool, error) {
	cur := restore.DeepCopy()
	if len(cur.OwnerReferences) == 0 && vm != nil {
		cur.OwnerReferences = []metav1.OwnerReference{{
			APIVersion: kubevirtv1.GroupVersion.String(), Kind: "VirtualMachine", Name: vm.Name, UID: vm.UID,
			Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
		}}
	}
	controllerutil.AddFinalizer(cur, restoreFinalizer)
	if equality.Semantic.DeepEqual(restore.ObjectMeta, cur.ObjectMeta) {
		return false, nil
	}
	return true, r.client.Update(ctx, cur)
}

func (r *restoreReconciler) vmiExists(ctx context.Context, vm *kubevirtv1.VirtualMachine) (bool, error) {
	err := r.client.Get(ctx, objectKey(vm), &kubevirtv1.VirtualMachineInstance{})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

// targetNotReady follows the restore's targetReadinessPolicy while the target VM still has a VMI.
func (r *restoreReconciler) targetNotReady(ctx context.Context, restore *snapshotv1.VirtualMachineRestore, vm *kubevirtv1.VirtualMachine) (time.Duration, error) {
	policy := snapshotv1.VirtualMachineRestoreWaitGracePeriodAndFail
	if restore.Spec.TargetReadinessPolicy != nil {
		policy = *restore.Spec.TargetReadinessPolicy
	}
	var reason string
	var wait time.Duration
	switch policy {
	case snapshotv1.VirtualMachineRestoreWaitEventually:
		reason = waitEventuallyMessage
	case snapshotv1.VirtualMachineRestoreStopTarget:
		if err := r.stopTarget(ctx, vm); err != nil {
			return 0, r.recordError(ctx, restore, err.Error(), false)
		}
		cur := restore.DeepCopy()
		r.event(ctx, restore, restoreCtrl, corev1.EventTypeWarning, restoreVMNotReadyEvent, stopTargetMessage)
		setSnapshotCondition(&cur.Status.Conditions, snapshotv1.ConditionProgressing, corev1.ConditionFalse, stopTargetMessage)
		setSnapshotCondition(&cur.Status.Conditions, snapshotv1.ConditionReady, corev1.ConditionFalse, stopTargetMessage)
		return restoreRetry, r.updateRestoreStatus(ctx, restore, cur)
	case snapshotv1.VirtualMachineRestoreWaitGracePeriodAndFail:
		left := time.Until(restore.CreationTimestamp.Add(snapshotv1.DefaultGracePeriod))
		if left < 0 {
			return 0, r.recordError(ctx, restore, restoreGracePeriodExceededError, true)
		}
		reason, wait = waitGracePeriodMessage, left
	case snapshotv1.VirtualMachineRestoreFailImmediate:
		return 0, r.recordError(ctx, restore, targetNotReadyFailureMessage, true)
	default:
		return 0, fmt.Errorf("unknown targetReadinessPolicy: %v", policy)
	}
	cur := restore.DeepCopy()
	setSnapshotCondition(&cur.Status.Conditions, snapshotv1.ConditionProgressing, corev1.ConditionFalse, reason)
	setSnapshotCondition(&cur.Status.Conditions, snapshotv1.ConditionReady, corev1.ConditionFalse, reason)
	if !equality.Semantic.DeepEqual(restore.Status, cur.Status) {
		r.event(ctx, restore, restoreCtrl, corev1.EventTypeWarning, restoreVMNotReadyEvent, vmiExistsEventMessage)
	}
	// The VMI's deletion would wake KubeVirt's controller; the simulator polls.
	return min(max(wait, time.Millisecond), restoreRetry), r.updateRestoreStatus(ctx, restore, cur)
}

// stopTarget is virt-api's stop subresource: Halted, or a stop request under Manual.
func (r *restoreReconciler) stopTarget(ctx context.Context, vm *kubevirtv1.VirtualMachine) error {
	return r.updateVM(ctx, objectKey(vm), func(vm *kubevirtv1.VirtualMachine) (bool, bool, error) {
		strategy, err := vm.RunStrategy()
		if err != nil {
			return false, false, err
		}
		if strategy == kubevirtv1.RunStrategyManual {
			vmi := &kubevirtv1.VirtualMachineInstance{}
			if err := r.reader.Get(ctx, objectKey(vm), vmi); err != nil {
				return false, false, client.IgnoreNotFound(err)
			}
			vm.Status.StateChangeRequests = append(vm.Status.StateChangeRequests,
				kubevirtv1.VirtualMachineStateChangeRequest{Action: kubevirtv1.StopRequest, UID: ptr.To(vmi.UID)})
			return false, true, nil
		}
		if strategy == kubevirtv1.RunStrategyHalted {
			return false, false, nil
		}
		vm.Spec.Running = nil
		vm.Spec.RunStrategy = ptr.To(kubevirtv1.RunStrategyHalted)
		return true, false, nil
	})
}

// readySnapshot is KubeVirt's getVMSnapshot and getSnapshotContent checks.
func (r *restoreReconciler) readySnapshot(ctx context.Context, restore *snapshotv1.VirtualMachineRestore) (*snapshotv1.VirtualMachineSnapshot, error) {
	key := restore.Namespace + "/" + restore.Spec.VirtualMachineSnapshotName
	snap := &snapshotv1.VirtualMachineSnapshot{}
	err := r.reader.Get(ctx, types.NamespacedName{Namespace: restore.Namespace, Name: restore.Spec.VirtualMachineSnapshotName}, snap)
	switch {
	case apierrors.IsNotFound(err):
		return nil, fmt.Errorf("VMSnapshot %s does not exist", key)
	case err != nil:
		return nil, err
	case snap.Status != nil && snap.Status.Phase == snapshotv1.Failed:
		return nil, fmt.Errorf("VMSnapshot %s failed and is invalid to use", key)
	case snap.Status == nil || !ptr.Deref(snap.Status.ReadyToUse, false):
		return nil, fmt.Errorf("VMSnapshot %s not ready", key)
	case snap.Status.VirtualMachineSnapshotContentName == nil:
		return nil, fmt.Errorf("no snapshot content name in %s", key)
	}
	return snap, nil
}

func restoreAnnotation(restore *snapshotv1.VirtualMachineRestore) string {
	return restore.Name + "-" + string(restore.UID)
}

func hasLastRestore(restore *snapshotv1.VirtualMachineRestore, vm *kubevirtv1.VirtualMachine) bool {
	return vm.Annotations[lastRestoreAnnotation] == restoreAnnotation(restore)
}

// markInProgress sets the VM's status.restoreInProgress, refusing when another restore holds it.
func (r *restoreReconciler) markInProgress(ctx context.Context, restore *snapshotv1.VirtualMachineRestore, vm *kubevirtv1.VirtualMachine) error {
	return r.updateVM(ctx, objectKey(vm), func(vm *kubevirtv1.VirtualMachine) (bool, bool, error) {
		if p := vm.Status.RestoreInProgress; p != nil {
			if *p != restore.Name {
				return false, false, fmt.Errorf("vm restore %s in progress", *p)
			}
			return false, false, nil
		}
		vm.Status.RestoreInProgress = ptr.To(restore.Name)
		return false, true, nil
	})
}

// markDone clears the VM's status.restoreInProgress.
func (r *restoreReconciler) markDone(ctx context.Context, restore *snapshotv1.VirtualMachineRestore, vm *kubevirtv1.VirtualMachine) error {
	if vm == nil {
		return nil
	}
	return r.updateVM(ctx, objectKey(vm), func(vm *kubevirtv1.VirtualMachine) (bool, bool, error) {
		if vm.Status.RestoreInProgress == nil || *vm.Status.RestoreInProgress != restore.Name {
			return false, false, nil
		}
		vm.Status.RestoreInProgress = nil
		return false, true, nil
	})
}

// restorePlan is what a restore puts back: the snapshot's VM spec with its volumes renamed as the restore's
// volumeRestorePolicy says, where each backed-up volume goes, and the VM's DataVolumes the new spec drops.
type restorePlan struct {
	spec     kubevirtv1.VirtualMachineSpec
	labels   map[string]string
	annots   map[string]string
	restores []snapshotv1.VolumeRestore
	deleted  []string
}

// restoreVolumeName is KubeVirt's: an override, the claim's own name under InPlace, "<target>-<volume>" under
// PrefixTargetName, and "restore-<restore UID>-<volume>" under RandomizeNames (the default).
func restoreVolumeName(restore *snapshotv1.VirtualMachineRestore, volume, claim string) string {
	for _, o := range restore.Spec.VolumeRestoreOverrides {
		if o.VolumeName == volume && o.RestoreName != "" {
			return o.RestoreName
		}
	}
	switch ptr.Deref(restore.Spec.VolumeRestorePolicy, snapshotv1.VolumeRestorePolicyRandomizeNames) {
	case snapshotv1.VolumeRestorePolicyInPlace:
		return claim
	case snapshotv1.VolumeRestorePolicyPrefixTargetName:
		return restore.Spec.Target.Name + "-" + volume
	}
	return fmt.Sprintf("restore-%s-%s", restore.UID, volume)
}

// plan is KubeVirt's reconcileVolumeRestores and generateRestoredVMSpec: a backed-up volume of a DataVolume
// template keeps a template under its restored name, one of a DataVolume without template becomes a PVC
// volume, and a PVC volume gets the restored claim.
func (r *restoreReconciler) plan(ctx context.Context, restore *snapshotv1.VirtualMachineRestore, snap *snapshotv1.VirtualMachineSnapshot, vm *kubevirtv1.VirtualMachine) (restorePlan, error) {
	content := &snapshotv1.VirtualMachineSnapshotContent{}
	key := types.NamespacedName{Namespace: snap.Namespace, Name: *snap.Status.VirtualMachineSnapshotContentName}
	if err := r.reader.Get(ctx, key, content); err != nil {
		if apierrors.IsNotFound(err) {
			return restorePlan{}, fmt.Errorf("VMSnapshotContent %s does not exist", key)
		}
		return restorePlan{}, err
	}
	source := content.Spec.Source.VirtualMachine
	if source == nil {
		return restorePlan{}, fmt.Errorf("unexpected snapshot source")
	}
	plan := restorePlan{spec: *source.Spec.DeepCopy(), labels: source.Labels, annots: source.Annotations}
	for _, b := range content.Spec.VolumeBackups {
		name := restoreVolumeName(restore, b.VolumeName, b.PersistentVolumeClaim.Name)
		vr := snapshotv1.VolumeRestore{VolumeName: b.VolumeName, PersistentVolumeClaimName: name, VolumeSnapshotName: ptr.Deref(b.VolumeSnapshotName, "")}
		if t := plan.spec.Template; t != nil {
			for i := range t.Spec.Volumes {
				v := &t.Spec.Volumes[i]
				if v.Name != b.VolumeName {
					continue
				}
				switch {
				case v.DataVolume != nil && templateIndex(plan.spec, v.DataVolume.Name) >= 0:
					plan.spec.DataVolumeTemplates[templateIndex(plan.spec, v.DataVolume.Name)].Name = name
					v.DataVolume.Name, vr.DataVolumeName = name, ptr.To(name)
				case v.DataVolume != nil:
					v.VolumeSource = kubevirtv1.VolumeSource{PersistentVolumeClaim: &kubevirtv1.PersistentVolumeClaimVolumeSource{
						PersistentVolumeClaimVolumeSource: corev1.PersistentVolumeClaimVolumeSource{ClaimName: name}}}
				case v.PersistentVolumeClaim != nil:
					v.PersistentVolumeClaim.ClaimName = name
				}
			}
		}
		plan.restores = append(plan.restores, vr)
	}
	if vm != nil {
		for _, t := range vm.Spec.DataVolumeTemplates {
			if templateIndex(plan.spec, t.Name) < 0 {
				plan.deleted = append(plan.deleted, t.Name)
			}
		}
	}
	return plan, nil
}

func templateIndex(spec kubevirtv1.VirtualMachineSpec, name string) int {
	return slices.IndexFunc(spec.DataVolumeTemplates, func(t kubevirtv1.DataVolumeTemplateSpec) bool { return t.Name == name })
}

// restoreDataVolumes stands in for KubeVirt's PVCs made from the VolumeSnapshots (the simulator has no PVCs):
// under InPlace the DataVolume keeps its name and is marked pre-populated (KubeVirt deletes its PVC and makes
// it again from the snapshot); otherwise a pre-populated DataVolume of the restored name is created, which CDI
// adopts without importing. Nothing is imported either way.
func (r *restoreReconciler) restoreDataVolumes(ctx context.Context, restore *snapshotv1.VirtualMachineRestore, plan restorePlan, vm *kubevirtv1.VirtualMachine) error {
	for _, vr := range plan.restores {
		if vr.DataVolumeName == nil {
			continue
		}
		name := *vr.DataVolumeName
		dv := &cdiv1.DataVolume{}
		err := r.client.Get(ctx, types.NamespacedName{Namespace: restore.Namespace, Name: name}, dv)
		switch {
		case err == nil:
			if _, ok := dv.Annotations[cdiv1.AnnPrePopulated]; ok {
				continue
			}
			if dv.Annotations == nil {
				dv.Annotations = map[string]string{}
			}
			dv.Annotations[cdiv1.AnnPrePopulated] = restore.Name
			if err := r.client.Update(ctx, dv); err != nil {
				return err
			}
		case apierrors.IsNotFound(err):
			t := plan.spec.DataVolumeTemplates[templateIndex(plan.spec, name)]
			created := &cdiv1.DataVolume{ObjectMeta: *t.ObjectMeta.DeepCopy(), Spec: *t.Spec.DeepCopy()}
			if vm != nil {
				created = newDataVolume(vm, t)
			}
			created.Namespace = restore.Namespace
			if created.Annotations == nil {
				created.Annotations = map[string]string{}
			}
			created.Annotations[restoreNameAnnotation] = restore.Name
			created.Annotations[cdiv1.AnnPrePopulated] = "true"
			if err := r.client.Create(ctx, created); err != nil && !apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("failed to create restore DataVolume: %w", err)
			}
		default:
			return err
		}
	}
	return nil
}

// deleteObsoleteDataVolumes is KubeVirt's deleteObsoleteVolumes: the DataVolumes the restored spec dropped.
func (r *restoreReconciler) deleteObsoleteDataVolumes(ctx context.Context, restore *snapshotv1.VirtualMachineRestore) error {
	for _, name := range restore.Status.DeletedDataVolumes {
		dv := &cdiv1.DataVolume{ObjectMeta: metav1.ObjectMeta{Namespace: restore.Namespace, Name: name}}
		if err := r.client.Delete(ctx, dv); client.IgnoreNotFound(err) != nil {
			return err
		}
	}
	return nil
}

// restoreSpec puts the planned spec back: an existing VM keeps its run strategy; a missing one is created
// Halted with the snapshot's labels and annotations.
func (r *restoreReconciler) restoreSpec(ctx context.Context, restore *snapshotv1.VirtualMachineRestore, plan restorePlan, vm *kubevirtv1.VirtualMachine) error {
	if vm == nil {
		created := &kubevirtv1.VirtualMachine{
			ObjectMeta: metav1.ObjectMeta{Name: restore.Spec.Target.Name, Namespace: restore.Namespace, Labels: plan.labels,
				Annotations: map[string]string{}},
			Spec: *plan.spec.DeepCopy(),
		}
		for k, v := range plan.annots {
			created.Annotations[k] = v
		}
		created.Annotations[lastRestoreAnnotation] = restoreAnnotation(restore)
		created.Spec.Running, created.Spec.RunStrategy = nil, ptr.To(kubevirtv1.RunStrategyHalted)
		return r.client.Create(ctx, created)
	}
	return r.updateVM(ctx, objectKey(vm), func(vm *kubevirtv1.VirtualMachine) (bool, bool, error) {
		strategy, err := vm.RunStrategy()
		if err != nil {
			return false, false, err
		}
		running := vm.Spec.Running
		vm.Spec = *plan.spec.DeepCopy()
		if running != nil {
			vm.Spec.Running, vm.Spec.RunStrategy = ptr.To(false), nil
		} else {
			vm.Spec.Running, vm.Spec.RunStrategy = nil, ptr.To(strategy)
		}
		if vm.Annotations == nil {
			vm.Annotations = map[string]string{}
		}
		vm.Annotations[lastRestoreAnnotation] = restoreAnnotation(restore)
		return true, false, nil
	})
}

// recordError is KubeVirt's doUpdateErrorWithFailure: conditions and a Warning event; fail adds the Failure
// condition, which ends the restore. Without fail the restore is retried.
func (r *restoreReconciler) recordError(ctx context.Context, restore *snapshotv1.VirtualMachineRestore, msg string, fail bool) error {
	cur := restore.DeepCopy()
	reason, eventMsg := restoreErrorEvent, "VirtualMachineRestore encountered error "+msg
	setSnapshotCondition(&cur.Status.Conditions, snapshotv1.ConditionProgressing, corev1.ConditionFalse, msg)
	setSnapshotCondition(&cur.Status.Conditions, snapshotv1.ConditionReady, corev1.ConditionFalse, msg)
	if fail {
		reason, eventMsg = restoreFailedEvent, "VirtualMachineRestore failed "+msg
		setSnapshotCondition(&cur.Status.Conditions, snapshotv1.ConditionFailure, corev1.ConditionTrue, msg)
	}
	if !equality.Semantic.DeepEqual(restore.Status, cur.Status) {
		r.event(ctx, restore, restoreCtrl, corev1.EventTypeWarning, reason, eventMsg)
	}
	if err := r.updateRestoreStatus(ctx, restore, cur); err != nil {
		return err
	}
	if fail {
		return nil
	}
	return &restoreError{msg}
}

func (r *restoreReconciler) updateRestoreStatus(ctx context.Context, orig, cur *snapshotv1.VirtualMachineRestore) error {
	if equality.Semantic.DeepEqual(orig.Status, cur.Status) {
		return nil
	}
	return r.client.Status().Update(ctx, cur)
}

// finalizeRestore releases the VM and the restore's finalizer.
func (r *restoreReconciler) finalizeRestore(ctx context.Context, restore *snapshotv1.VirtualMachineRestore, vm *kubevirtv1.VirtualMachine) error {
	if !controllerutil.ContainsFinalizer(restore, restoreFinalizer) {
		return nil
	}
	if err := r.markDone(ctx, restore, vm); err != nil {
		return err
	}
	cur := restore.DeepCopy()
	setSnapshotCondition(&cur.Status.Conditions, snapshotv1.ConditionProgressing, corev1.ConditionFalse, "VM restore is deleting")
	setSnapshotCondition(&cur.Status.Conditions, snapshotv1.ConditionReady, corev1.ConditionFalse, "VM restore is deleting")
	if !equality.Semantic.DeepEqual(restore.Status, cur.Status) {
		return r.client.Status().Update(ctx, cur)
	}
	controllerutil.RemoveFinalizer(cur, restoreFinalizer)
	return r.client.Update(ctx, cur)
}

// newDataVolume is the DataVolume KubeVirt's VM controller makes from a template
// (kubevirt.io/kubevirt@v1.8.0/pkg/virt-controller/watch/util/util.go, CreateDataVolumeManifest): labelled with
// the VM's UID, marked for claim adoption, and controlled by the VM. A restore makes its DataVolumes so, ahead
// of the controller.
func newDataVolume(vm *kubevirtv1.VirtualMachine, t kubevirtv1.DataVolumeTemplateSpec) *cdiv1.DataVolume {
	dv := &cdiv1.DataVolume{ObjectMeta: *t.ObjectMeta.DeepCopy(), Spec: *t.Spec.DeepCopy()}
	dv.Namespace = vm.Namespace
	dv.Labels = maps.Clone(t.Labels)
	if dv.Labels == nil {
		dv.Labels = map[string]string{}
	}
	dv.Labels[kubevirtv1.CreatedByLabel] = string(vm.UID)
	dv.Annotations = maps.Clone(t.Annotations)
	if dv.Annotations == nil {
		dv.Annotations = map[string]string{}
	}
	dv.Annotations[annAllowClaimAdoption] = "true"
	dv.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(vm, kubevirtv1.VirtualMachineGroupVersionKind)}
	return dv
}
