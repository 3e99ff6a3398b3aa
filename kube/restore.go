package kube

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	snapshotv1beta1 "kubevirt.io/api/snapshot/v1beta1"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

// RestoreSnapshot puts the Instance's VM back to its snapshot named name, and waits until KubeVirt reports the
// restore complete. KubeVirt restores only a stopped VM: with its default policy (WaitGracePeriod) a restore of
// a running one waits five minutes for someone to stop it, then fails. The extension refuses at once instead,
// and asks KubeVirt to fail at once (FailImmediate) should the VM start in between, so that CloudStack's power
// state is never changed behind its back.
//
// Volumes are restored in place (volumeRestorePolicy InPlace): KubeVirt's default, RandomizeNames, gives the
// restored PVCs and DataVolumes new names and deletes the old DataVolumes, and the next start, which puts
// CloudStack's spec back with the original DataVolume names, would have KubeVirt import them afresh from the
// template's source and orphan the restored disks. The VirtualMachineRestore is deleted once complete: it is
// only a record, and one per restore would pile up in the namespace.
func (in Snapshots) RestoreSnapshot(ctx context.Context, id Identity, name string) (Snapshot, error) {
	vm, err := in.existingVM(ctx, id)
	if err != nil {
		return Snapshot{}, err
	}
	snap, err := in.findSnapshot(ctx, Identity{Name: vm.Name, UUID: id.UUID}, name)
	if err != nil {
		return Snapshot{}, err
	}
	if snap == nil {
		return Snapshot{}, in.noSnapshot(vm.Name, name)
	}
	s := snapshotOf(snap)
	if s.Phase != string(snapshotv1beta1.Succeeded) || !s.Ready {
		return Snapshot{}, fmt.Errorf("snapshot %q of VirtualMachine %s cannot be restored: it is %s, not ready (%s)", name, in.ref(vm.Name), orUnknown(s.Phase), s.Problem)
	}
	if err := in.restorable(ctx, vm); err != nil {
		return Snapshot{}, err
	}
	restore := &snapshotv1beta1.VirtualMachineRestore{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: vm.Name + "-restore-", Namespace: in.namespace,
			Labels: map[string]string{
				translate.LabelManagedBy:    translate.ManagedBy,
				translate.LabelInstanceUUID: vm.Labels[translate.LabelInstanceUUID],
			},
			Annotations: map[string]string{translate.AnnotationSnapshotName: s.Name},
		},
		Spec: snapshotv1beta1.VirtualMachineRestoreSpec{
			Target:                     corev1.TypedLocalObjectReference{APIGroup: ptr.To(kubevirtv1.SchemeGroupVersion.Group), Kind: "VirtualMachine", Name: vm.Name},
			VirtualMachineSnapshotName: snap.Name,
			TargetReadinessPolicy:      ptr.To(snapshotv1beta1.VirtualMachineRestoreFailImmediate),
			VolumeRestorePolicy:        ptr.To(snapshotv1beta1.VolumeRestorePolicyInPlace),
		},
	}
	if err := in.client.Create(ctx, restore); err != nil {
		return Snapshot{}, explainSnapshotAPI(err, "create a VirtualMachineRestore of VirtualMachine "+in.ref(vm.Name))
	}
	if err := in.waitRestore(ctx, restore.Name); err != nil {
		return Snapshot{}, err
	}
	return s, in.deleteRestore(ctx, restore)
}

// deleteRestore deletes a completed restore (KubeVirt's finalizer only releases the VM). Kept on failure: its
// conditions say why, and the error names it.
func (in Snapshots) deleteRestore(ctx context.Context, restore *snapshotv1beta1.VirtualMachineRestore) error {
	err := in.client.Delete(ctx, restore, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &restore.UID}})
	if err == nil || kerrors.IsNotFound(err) {
		return nil
	}
	return fmt.Errorf("the VirtualMachine is restored, but its VirtualMachineRestore is left behind (delete it by hand): %w", explain(err, "delete VirtualMachineRestore "+in.ref(restore.Name)))
}

// restorable refuses a VM that runs, or that another restore holds. KubeVirt refuses a restore while any VMI
// exists, so a finished one (the guest is off: just stopped and not yet removed, or shut down under
// RerunOnFailure) is deleted and waited for first.
func (in Snapshots) restorable(ctx context.Context, vm *kubevirtv1.VirtualMachine) error {
	vmi, err := in.vmi(ctx, vm.Name)
	if err != nil {
		return err
	}
	if vmi != nil && !vmi.IsFinal() && vmi.DeletionTimestamp == nil {
		return fmt.Errorf("VirtualMachine %s is running (its VirtualMachineInstance is %s): KubeVirt restores only a stopped VM; stop the Instance in CloudStack, then restore", in.ref(vm.Name), orUnknown(string(vmi.Status.Phase)))
	}
	if vmi != nil {
		if err := in.clearFinishedVMI(ctx, vmi); err != nil {
			return err
		}
	}
	if r := vm.Status.RestoreInProgress; r != nil {
		return fmt.Errorf("VirtualMachine %s is being restored already (VirtualMachineRestore %s): wait for it to finish", in.ref(vm.Name), in.ref(*r))
	}
	return nil
}

// waitRestore waits until the restore completes, or fails (a Failure condition, which KubeVirt never clears).
func (in Snapshots) waitRestore(ctx context.Context, name string) error {
	var last snapshotv1beta1.VirtualMachineRestore
	check := func() (bool, error) {
		if err := in.client.Get(ctx, in.key(name), &last); err != nil {
			if kerrors.IsNotFound(err) {
				return false, fmt.Errorf("VirtualMachineRestore %s was deleted while restoring", in.ref(name))
			}
			return false, explain(err, "read VirtualMachineRestore "+in.ref(name))
		}
		st := last.Status
		if st == nil {
			return false, nil
		}
		if ptr.Deref(st.Complete, false) {
			return true, nil
		}
		for _, c := range st.Conditions {
			if c.Type == snapshotv1beta1.ConditionFailure && c.Status == corev1.ConditionTrue {
				return false, fmt.Errorf("KubeVirt could not restore: VirtualMachineRestore %s failed: %s", in.ref(name), c.Reason)
			}
		}
		return false, nil
	}
	describe := func() string {
		state := "not yet picked up by KubeVirt's restore controller"
		if last.Status != nil {
			state = snapshotConditions(last.Status.Conditions)
		}
		return fmt.Sprintf("VirtualMachineRestore %s is not complete (%s); it goes on in the cluster, and the Instance must stay stopped until it completes", in.ref(name), state)
	}
	return poll(ctx, check, describe)
}

func orUnknown(s string) string {
	if s == "" {
		return "in no phase yet"
	}
	return s
}

// clearFinishedVMI deletes a VMI whose guest is off (unless KubeVirt already is) and waits until it is gone.
func (in Snapshots) clearFinishedVMI(ctx context.Context, vmi *kubevirtv1.VirtualMachineInstance) error {
	if vmi.DeletionTimestamp == nil {
		err := in.client.Delete(ctx, vmi, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &vmi.UID}})
		if err != nil && !kerrors.IsNotFound(err) && !kerrors.IsConflict(err) {
			return explain(err, "delete the finished VirtualMachineInstance "+in.ref(vmi.Name)+" before the restore")
		}
	}
	check := func() (bool, error) {
		cur, err := in.vmi(ctx, vmi.Name)
		return err == nil && (cur == nil || cur.UID != vmi.UID), err
	}
	describe := func() string {
		return fmt.Sprintf("the finished VirtualMachineInstance %s is still being removed", in.ref(vmi.Name))
	}
	return poll(ctx, check, describe)
}
