package kubevirtsim

import (
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	snapshotv1 "kubevirt.io/api/snapshot/v1beta1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
)

// Names KubeVirt v1.9.0's snapshot controller uses (pkg/storage/snapshot).
const (
	kindSnapshot              = "VirtualMachineSnapshot"
	snapshotFinalizer         = "snapshot.kubevirt.io/vmsnapshot-protection"
	snapshotContentFinalizer  = "snapshot.kubevirt.io/vmsnapshotcontent-protection"
	snapshotSourceFinalizer   = "snapshot.kubevirt.io/snapshot-source-protection"
	snapshotDeadlineExceeded  = "snapshot deadline exceeded"
	snapshotContentCreateType = "SuccessfulVirtualMachineSnapshotContentCreate"
	snapshotRetryInterval     = 5 * time.Second
)

// Indication messages, as KubeVirt writes them in status.sourceIndications.
var indicationMessages = map[snapshotv1.Indication]string{
	snapshotv1.VMSnapshotOnlineSnapshotIndication: "Snapshot taken while the VM was running. Consistency depends on guest-agent quiescing.",
	snapshotv1.VMSnapshotGuestAgentIndication:     "Guest agent was active and attempted to quiesce the filesystem for application consistency.",
	snapshotv1.VMSnapshotNoGuestAgentIndication:   "Guest agent was not available. Snapshot is crash-consistent and may not be application-consistent.",
	snapshotv1.VMSnapshotPausedIndication:         "Snapshot taken while the VM was paused. Snapshot is crash-consistent and may not be application-consistent.",
}

// snapshotReconciler plays virt-controller's VirtualMachineSnapshot and VirtualMachineSnapshotContent
// controllers: it locks the source VM (status.snapshotInProgress and a finalizer), records the VM in a
// VirtualMachineSnapshotContent with a backup of each volume on a claim, which is ready at once (the simulator
// has no PVCs, so no VolumeSnapshots to wait for), and unlocks the VM. A snapshot whose VM does not exist stays InProgress ("Source does not exist")
// until spec.failureDeadline (5 minutes by default) has passed since its creation, then Fails.
type snapshotReconciler struct{ *Sim }

func (r *snapshotReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	snap := &snapshotv1.VirtualMachineSnapshot{}
	if err := r.client.Get(ctx, req.NamespacedName, snap); err != nil {
		if apierrors.IsNotFound(err) {
			r.pacer.forget(kindSnapshot, req.NamespacedName)
		}
		return outcome(ctx, client.IgnoreNotFound(err))
	}
	content, err := r.contentOf(ctx, snap)
	if err != nil {
		return outcome(ctx, err)
	}
	vm, err := r.sourceOf(ctx, snap)
	if err != nil {
		return outcome(ctx, err)
	}
	if snap.DeletionTimestamp != nil {
		return outcome(ctx, r.finalizeSnapshot(ctx, snap, content, vm))
	}
	if !controllerutil.ContainsFinalizer(snap, snapshotFinalizer) {
		controllerutil.AddFinalizer(snap, snapshotFinalizer)
		return outcome(ctx, r.client.Update(ctx, snap))
	}
	wait, err := r.sync(ctx, snap, content, vm)
	if err != nil {
		return outcome(ctx, err)
	}
	return ctrl.Result{RequeueAfter: wait}, nil
}

func contentName(snap *snapshotv1.VirtualMachineSnapshot) string {
	if snap.Status != nil && snap.Status.VirtualMachineSnapshotContentName != nil {
		return *snap.Status.VirtualMachineSnapshotContentName
	}
	return "vmsnapshot-content-" + string(snap.UID)
}

func (r *snapshotReconciler) contentOf(ctx context.Context, snap *snapshotv1.VirtualMachineSnapshot) (*snapshotv1.VirtualMachineSnapshotContent, error) {
	c := &snapshotv1.VirtualMachineSnapshotContent{}
	err := r.reader.Get(ctx, types.NamespacedName{Namespace: snap.Namespace, Name: contentName(snap)}, c)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	return c, err
}

// sourceOf returns the snapshot's VM, nil when it does not exist.
func (r *snapshotReconciler) sourceOf(ctx context.Context, snap *snapshotv1.VirtualMachineSnapshot) (*kubevirtv1.VirtualMachine, error) {
	if snap.Spec.Source.Kind != "VirtualMachine" {
		return nil, nil
	}
	vm := &kubevirtv1.VirtualMachine{}
	err := r.reader.Get(ctx, types.NamespacedName{Namespace: snap.Namespace, Name: snap.Spec.Source.Name}, vm)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	return vm, err
}

func snapshotProgressing(s *snapshotv1.VirtualMachineSnapshot) bool {
	return s.Status == nil || (s.Status.Phase != snapshotv1.Succeeded && s.Status.Phase != snapshotv1.Failed)
}

// deadlineLeft is how long the snapshot may still take; <0 once exceeded; 0 without a deadline.
func deadlineLeft(s *snapshotv1.VirtualMachineSnapshot) time.Duration {
	d := snapshotv1.DefaultFailureDeadline
	if s.Spec.FailureDeadline != nil {
		d = s.Spec.FailureDeadline.Duration
	}
	if d == 0 {
		return 0
	}
	left := time.Until(s.CreationTimestamp.Add(d))
	if left == 0 {
		left = -1
	}
	return left
}

// sync takes the snapshot one step further and writes its status as KubeVirt's updateSnapshotStatus does.
func (r *snapshotReconciler) sync(ctx context.Context, snap *snapshotv1.VirtualMachineSnapshot, content *snapshotv1.VirtualMachineSnapshotContent, vm *kubevirtv1.VirtualMachine) (time.Duration, error) {
	failed := snap.Status != nil && snap.Status.Phase == snapshotv1.Failed || snapshotProgressing(snap) && deadlineLeft(snap) < 0
	var wait time.Duration
	var vmi *kubevirtv1.VirtualMachineInstance
	if vm != nil {
		var err error
		if vmi, err = r.vmiOfSnapshotSource(ctx, vm); err != nil {
			return 0, err
		}
		switch {
		case snapshotProgressing(snap) && !failed && vm.Status.SnapshotInProgress != nil && *vm.Status.SnapshotInProgress != snap.Name:
			wait = snapshotRetryInterval // another snapshot holds the VM: KubeVirt retries the lock
		case snapshotProgressing(snap) && !failed && !locked(vm, snap):
			if wait = r.pacer.wait(kindSnapshot, snap, "Locking"); wait == 0 {
				if err := r.lockSource(ctx, vm, snap); err != nil {
					return 0, err
				}
				vm.Status.SnapshotInProgress = &snap.Name // for this reconcile's conditions
				controllerutil.AddFinalizer(vm, snapshotSourceFinalizer)
			}
		case snapshotProgressing(snap) && !failed && content == nil:
			if wait = r.pacer.wait(kindSnapshot, snap, "CreatingContent"); wait == 0 {
				var err error
				if content, err = r.createContent(ctx, snap, vm, vmi); err != nil {
					return 0, err
				}
			}
		case snapshotProgressing(snap) && !failed && (content.Status == nil || content.Status.CreationTime == nil):
			if wait = r.pacer.wait(kindSnapshot, snap, "SnapshottingVolumes"); wait == 0 {
				if err := r.readyContent(ctx, content); err != nil {
					return 0, err
				}
			}
		case !snapshotProgressing(snap) || failed:
			if err := r.unlockSource(ctx, vm, snap); err != nil {
				return 0, err
			}
		}
	}
	cur := snap.DeepCopy()
	r.writeSnapshotStatus(cur, content, vm, vmi, failed)
	if !equality.Semantic.DeepEqual(snap.Status, cur.Status) {
		if err := r.client.Status().Update(ctx, cur); err != nil {
			return 0, err
		}
	}
	if vm == nil && snapshotProgressing(cur) {
		return max(deadlineLeft(cur), 0), nil
	}
	if !snapshotProgressing(cur) {
		r.pacer.forget(kindSnapshot, objectKey(cur))
	}
	return wait, nil
}

func locked(vm *kubevirtv1.VirtualMachine, snap *snapshotv1.VirtualMachineSnapshot) bool {
	return vm.Status.SnapshotInProgress != nil && *vm.Status.SnapshotInProgress == snap.Name &&
		controllerutil.ContainsFinalizer(vm, snapshotSourceFinalizer)
}

func (r *snapshotReconciler) vmiOfSnapshotSource(ctx context.Context, vm *kubevirtv1.VirtualMachine) (*kubevirtv1.VirtualMachineInstance, error) {
	vmi := &kubevirtv1.VirtualMachineInstance{}
	if err := r.client.Get(ctx, objectKey(vm), vmi); err != nil {
		return nil, client.IgnoreNotFound(err)
	}
	return vmi, nil
}

// writeSnapshotStatus is KubeVirt's updateSnapshotStatus.
func (r *snapshotReconciler) writeSnapshotStatus(snap *snapshotv1.VirtualMachineSnapshot, content *snapshotv1.VirtualMachineSnapshotContent, vm *kubevirtv1.VirtualMachine, vmi *kubevirtv1.VirtualMachineInstance, failed bool) {
	if snap.Status == nil {
		snap.Status = &snapshotv1.VirtualMachineSnapshotStatus{ReadyToUse: ptr.To(false)}
	}
	st := snap.Status
	if vm != nil {
		st.SourceUID = ptr.To(vm.UID)
	}
	if content != nil && content.Status != nil {
		st.VirtualMachineSnapshotContentName = ptr.To(content.Name)
		st.CreationTime = content.Status.CreationTime
		st.ReadyToUse = content.Status.ReadyToUse
		st.Error = content.Status.Error
	}
	switch {
	case failed:
		st.Phase = snapshotv1.Failed
		setSnapshotCondition(&st.Conditions, snapshotv1.ConditionFailure, corev1.ConditionTrue, snapshotDeadlineExceeded)
		setSnapshotCondition(&st.Conditions, snapshotv1.ConditionProgressing, corev1.ConditionFalse, "Operation failed")
	case st.Phase == snapshotv1.Succeeded || st.CreationTime != nil:
		st.Phase = snapshotv1.Succeeded
		setSnapshotCondition(&st.Conditions, snapshotv1.ConditionProgressing, corev1.ConditionFalse, "Operation complete")
		st.SnapshotVolumes = snapshotVolumes(content)
	default:
		st.Phase = snapshotv1.InProgress
		if vm == nil {
			setSnapshotCondition(&st.Conditions, snapshotv1.ConditionProgressing, corev1.ConditionFalse, "Source does not exist")
			break
		}
		if locked(vm, snap) {
			setSnapshotCondition(&st.Conditions, snapshotv1.ConditionProgressing, corev1.ConditionTrue, "Source locked and operation in progress")
		} else {
			setSnapshotCondition(&st.Conditions, snapshotv1.ConditionProgressing, corev1.ConditionFalse, "Source not locked")
		}
		//lint:ignore SA1019 KubeVirt v1.9.0 still writes the deprecated field beside sourceIndications.
		st.Indications, st.SourceIndications = indications(vmi)
	}
	if ptr.Deref(st.ReadyToUse, false) {
		setSnapshotCondition(&st.Conditions, snapshotv1.ConditionReady, corev1.ConditionTrue, "Ready")
	} else {
		setSnapshotCondition(&st.Conditions, snapshotv1.ConditionReady, corev1.ConditionFalse, "Not ready")
	}
	if st.Error != nil {
		setSnapshotCondition(&st.Conditions, snapshotv1.ConditionProgressing, corev1.ConditionFalse, "In error state")
	}
}

// indications are KubeVirt's for an online snapshot (none for an offline one): Online, then Paused,
// GuestAgent or NoGuestAgent, sorted as KubeVirt's set sorts them.
func indications(vmi *kubevirtv1.VirtualMachineInstance) ([]snapshotv1.Indication, []snapshotv1.SourceIndication) {
	if vmi == nil {
		return nil, nil
	}
	list := []snapshotv1.Indication{snapshotv1.VMSnapshotOnlineSnapshotIndication}
	switch {
	case vmiHasCondition(vmi, kubevirtv1.VirtualMachineInstancePaused, corev1.ConditionTrue):
		list = append(list, snapshotv1.VMSnapshotPausedIndication)
	case vmiCondition(vmi, kubevirtv1.VirtualMachineInstanceAgentConnected) != nil:
		list = append(list, snapshotv1.VMSnapshotGuestAgentIndication)
	default:
		list = append(list, snapshotv1.VMSnapshotNoGuestAgentIndication)
	}
	slices.Sort(list)
	var src []snapshotv1.SourceIndication
	for _, i := range list {
		src = append(src, snapshotv1.SourceIndication{Indication: i, Message: indicationMessages[i]})
	}
	return list, src
}

// snapshotVolumes lists the VM's volumes: those on a claim are included (backed up), the others (a
// containerDisk, cloud-init) excluded.
func snapshotVolumes(content *snapshotv1.VirtualMachineSnapshotContent) *snapshotv1.SnapshotVolumesLists {
	if content == nil || content.Spec.Source.VirtualMachine == nil || content.Spec.Source.VirtualMachine.Spec.Template == nil {
		return nil
	}
	lists := &snapshotv1.SnapshotVolumesLists{}
	for _, v := range content.Spec.Source.VirtualMachine.Spec.Template.Spec.Volumes {
		if slices.ContainsFunc(content.Spec.VolumeBackups, func(b snapshotv1.VolumeBackup) bool { return b.VolumeName == v.Name }) {
			lists.IncludedVolumes = append(lists.IncludedVolumes, v.Name)
		} else {
			lists.ExcludedVolumes = append(lists.ExcludedVolumes, v.Name)
		}
	}
	return lists
}

// setSnapshotCondition is KubeVirt's updateCondition: a condition is replaced only when its status or reason
// changes.
func setSnapshotCondition(conds *[]snapshotv1.Condition, t snapshotv1.ConditionType, status corev1.ConditionStatus, reason string) {
	c := snapshotv1.Condition{Type: t, Status: status, Reason: reason, LastTransitionTime: metav1.Now()}
	for i := range *conds {
		if (*conds)[i].Type == t {
			if (*conds)[i].Status != status || (*conds)[i].Reason != reason {
				(*conds)[i] = c
			}
			return
		}
	}
	*conds = append(*conds, c)
}

// lockSource marks the VM as being snapshotted: status.snapshotInProgress and the source finalizer.
func (r *snapshotReconciler) lockSource(ctx context.Context, vm *kubevirtv1.VirtualMachine, snap *snapshotv1.VirtualMachineSnapshot) error {
	return r.updateVM(ctx, objectKey(vm), func(vm *kubevirtv1.VirtualMachine) (bool, bool, error) {
		if vm.Status.SnapshotInProgress != nil && *vm.Status.SnapshotInProgress != snap.Name {
			return false, false, fmt.Errorf("snapshot %q in progress", *vm.Status.SnapshotInProgress)
		}
		statusChanged := vm.Status.SnapshotInProgress == nil
		vm.Status.SnapshotInProgress = ptr.To(snap.Name)
		metaChanged := controllerutil.AddFinalizer(vm, snapshotSourceFinalizer)
		return metaChanged, statusChanged, nil
	})
}

// unlockSource undoes lockSource once the snapshot is final.
func (r *snapshotReconciler) unlockSource(ctx context.Context, vm *kubevirtv1.VirtualMachine, snap *snapshotv1.VirtualMachineSnapshot) error {
	if vm.Status.SnapshotInProgress == nil || *vm.Status.SnapshotInProgress != snap.Name {
		return nil
	}
	return r.updateVM(ctx, objectKey(vm), func(vm *kubevirtv1.VirtualMachine) (bool, bool, error) {
		if vm.Status.SnapshotInProgress == nil || *vm.Status.SnapshotInProgress != snap.Name {
			return false, false, nil
		}
		vm.Status.SnapshotInProgress = nil
		return controllerutil.RemoveFinalizer(vm, snapshotSourceFinalizer), true, nil
	})
}

// updateVM reads the VM from the API server, mutates it and writes what changed, retrying on conflicts with
// the VM controller.
func (s *Sim) updateVM(ctx context.Context, key types.NamespacedName, mutate func(*kubevirtv1.VirtualMachine) (meta, status bool, err error)) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		vm := &kubevirtv1.VirtualMachine{}
		if err := s.reader.Get(ctx, key, vm); err != nil {
			return err
		}
		meta, status, err := mutate(vm)
		if err != nil {
			return err
		}
		keep := vm.Status.DeepCopy()
		return s.save(ctx, vm, meta, status, s.api.vmStatus, func() func() { return func() { vm.Status = *keep } })
	})
}

// createContent records the VM as KubeVirt does: metadata without managed fields, and the spec (the status
// only for an offline VM, emptied).
func (r *snapshotReconciler) createContent(ctx context.Context, snap *snapshotv1.VirtualMachineSnapshot, vm *kubevirtv1.VirtualMachine, vmi *kubevirtv1.VirtualMachineInstance) (*snapshotv1.VirtualMachineSnapshotContent, error) {
	meta := *vm.ObjectMeta.DeepCopy()
	meta.ManagedFields = nil
	source := &snapshotv1.VirtualMachine{ObjectMeta: meta, Spec: *vm.Spec.DeepCopy()}
	content := &snapshotv1.VirtualMachineSnapshotContent{
		ObjectMeta: metav1.ObjectMeta{Name: contentName(snap), Namespace: snap.Namespace, Finalizers: []string{snapshotContentFinalizer}},
		Spec: snapshotv1.VirtualMachineSnapshotContentSpec{
			VirtualMachineSnapshotName: ptr.To(snap.Name),
			Source:                     snapshotv1.SourceSpec{VirtualMachine: source},
			VolumeBackups:              volumeBackups(snap, vm),
		},
	}
	_ = vmi // an online snapshot records the VM's controller revision in KubeVirt; the simulator keeps the spec
	if err := r.client.Create(ctx, content); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, err
	}
	r.event(ctx, snap, snapshotCtrl, corev1.EventTypeNormal, snapshotContentCreateType, "Successfully created VirtualMachineSnapshotContent "+content.Name)
	return content, nil
}

// volumeBackups records a backup of each volume on a claim (a DataVolume's or a PVC), as if every storage class
// had a VolumeSnapshotClass; the VolumeSnapshots are named as KubeVirt names them but not created.
func volumeBackups(snap *snapshotv1.VirtualMachineSnapshot, vm *kubevirtv1.VirtualMachine) []snapshotv1.VolumeBackup {
	if vm.Spec.Template == nil {
		return nil
	}
	var out []snapshotv1.VolumeBackup
	for _, v := range vm.Spec.Template.Spec.Volumes {
		claim := claimOf(v)
		if claim == "" {
			continue
		}
		out = append(out, snapshotv1.VolumeBackup{
			VolumeName:            v.Name,
			PersistentVolumeClaim: snapshotv1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: claim, Namespace: vm.Namespace}},
			VolumeSnapshotName:    ptr.To(fmt.Sprintf("vmsnapshot-%s-volume-%s", snap.UID, v.Name)),
		})
	}
	return out
}

// claimOf is the PVC behind a volume: a DataVolume's PVC has its name. "" for volumes on no claim.
func claimOf(v kubevirtv1.Volume) string {
	switch {
	case v.DataVolume != nil:
		return v.DataVolume.Name
	case v.PersistentVolumeClaim != nil:
		return v.PersistentVolumeClaim.ClaimName
	}
	return ""
}

// readyContent is the content controller with no volumes to snapshot: created and ready at once.
func (r *snapshotReconciler) readyContent(ctx context.Context, content *snapshotv1.VirtualMachineSnapshotContent) error {
	now := metav1.Now()
	content.Status = &snapshotv1.VirtualMachineSnapshotContentStatus{CreationTime: &now, ReadyToUse: ptr.To(true)}
	return r.client.Status().Update(ctx, content)
}

// finalizeSnapshot deletes the content (deletion policy Delete, the default, or a content never ready),
// unlocks the VM and releases the snapshot's finalizer.
func (r *snapshotReconciler) finalizeSnapshot(ctx context.Context, snap *snapshotv1.VirtualMachineSnapshot, content *snapshotv1.VirtualMachineSnapshotContent, vm *kubevirtv1.VirtualMachine) error {
	if content != nil {
		retain := snap.Spec.DeletionPolicy != nil && *snap.Spec.DeletionPolicy == snapshotv1.VirtualMachineSnapshotContentRetain &&
			content.Status != nil && ptr.Deref(content.Status.ReadyToUse, false)
		if controllerutil.RemoveFinalizer(content, snapshotContentFinalizer) {
			if err := r.client.Update(ctx, content); err != nil {
				return err
			}
		}
		if !retain {
			if err := r.client.Delete(ctx, content); client.IgnoreNotFound(err) != nil {
				return err
			}
		}
	}
	if vm != nil {
		if err := r.unlockSource(ctx, vm, snap); err != nil {
			return err
		}
	}
	if controllerutil.RemoveFinalizer(snap, snapshotFinalizer) {
		return r.client.Update(ctx, snap)
	}
	return nil
}
