package kubevirtsim

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	kubevirtv1 "kubevirt.io/api/core/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const (
	kindDV = "DataVolume"
	// annAllowClaimAdoption is what KubeVirt puts on the DataVolumes it creates.
	annAllowClaimAdoption = "cdi.kubevirt.io/allowClaimAdoption"
)

// syncDataVolumes is KubeVirt's handleDataVolumes: it creates the VM's missing DataVolumes and reports whether
// all of them are ready for a VMI.
func (r *vmReconciler) syncDataVolumes(ctx context.Context, st *vmState) (bool, error) {
	templates := st.vm.Spec.DataVolumeTemplates
	if len(templates) == 0 {
		return true, nil
	}
	if !r.api.dataVolumes {
		st.fail(reasonFailedCreate, errors.New("cannot create DataVolumes: the cdi.kubevirt.io/v1beta1 DataVolume CRD is not installed"))
		return false, nil
	}
	ready := true
	for _, t := range templates {
		dv := &cdiv1.DataVolume{}
		err := r.client.Get(ctx, types.NamespacedName{Namespace: st.vm.Namespace, Name: t.Name}, dv)
		switch {
		case apierrors.IsNotFound(err):
			ready = false
			if err := r.client.Create(ctx, newDataVolume(st.vm, t)); err != nil && !apierrors.IsAlreadyExists(err) {
				st.fail(reasonFailedCreate, err)
				return false, fmt.Errorf("creating DataVolume %s/%s: %w", st.vm.Namespace, t.Name, err)
			}
		case err != nil:
			return false, err
		case !dataVolumeReady(dv):
			ready = false
		}
	}
	return ready, nil
}

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

func dataVolumeReady(dv *cdiv1.DataVolume) bool {
	switch dv.Status.Phase {
	case cdiv1.Succeeded, cdiv1.WaitForFirstConsumer, cdiv1.PendingPopulation:
		return true
	}
	return false
}

// ownedDataVolumes returns the DataVolumes created from vm's templates that vm still controls.
func (r *vmReconciler) ownedDataVolumes(ctx context.Context, vm *kubevirtv1.VirtualMachine) []client.Object {
	if !r.api.dataVolumes {
		return nil
	}
	var owned []client.Object
	for _, t := range vm.Spec.DataVolumeTemplates {
		dv := &cdiv1.DataVolume{}
		if r.client.Get(ctx, types.NamespacedName{Namespace: vm.Namespace, Name: t.Name}, dv) != nil {
			continue
		}
		if ref := metav1.GetControllerOf(dv); ref != nil && ref.UID == vm.UID {
			owned = append(owned, dv)
		}
	}
	return owned
}

// deleteDataVolumes is the garbage collector's foreground deletion of the VM's DataVolumes. It returns how many
// still exist.
func (r *vmReconciler) deleteDataVolumes(ctx context.Context, st *vmState) (int, error) {
	owned := r.ownedDataVolumes(ctx, st.vm)
	var errs []error
	for _, dv := range owned {
		if dv.GetDeletionTimestamp() == nil {
			errs = append(errs, r.collect(ctx, dv))
		}
	}
	return len(owned), errors.Join(errs...)
}

// dataVolumesOf returns the DataVolumes the VM's volumes use, as far as the cache knows them.
func (r *vmReconciler) dataVolumesOf(ctx context.Context, vm *kubevirtv1.VirtualMachine) []*cdiv1.DataVolume {
	if !r.api.dataVolumes {
		return nil
	}
	var dvs []*cdiv1.DataVolume
	for _, v := range vm.Spec.Template.Spec.Volumes {
		if v.DataVolume == nil {
			continue
		}
		dv := &cdiv1.DataVolume{}
		if r.client.Get(ctx, types.NamespacedName{Namespace: vm.Namespace, Name: v.DataVolume.Name}, dv) == nil {
			dvs = append(dvs, dv)
		}
	}
	return dvs
}

// provisioning is KubeVirt's HasDataVolumeProvisioning.
func (r *vmReconciler) provisioning(ctx context.Context, vm *kubevirtv1.VirtualMachine) bool {
	for _, dv := range r.dataVolumesOf(ctx, vm) {
		if dv.Status.Phase == cdiv1.Succeeded || dv.Status.Phase == cdiv1.PendingPopulation {
			continue
		}
		if dv.Status.Phase != cdiv1.WaitForFirstConsumer || dvHasCondition(dv, cdiv1.DataVolumeBound, corev1.ConditionTrue) {
			return true
		}
	}
	return false
}

// dataVolumeError is KubeVirt's HasDataVolumeErrors.
func (r *vmReconciler) dataVolumeError(ctx context.Context, vm *kubevirtv1.VirtualMachine) bool {
	for _, dv := range r.dataVolumesOf(ctx, vm) {
		if dv.Status.Phase == cdiv1.Failed {
			return true
		}
		if c := dvCondition(dv, cdiv1.DataVolumeRunning); c != nil && c.Status == corev1.ConditionFalse &&
			(c.Reason == "Error" || c.Reason == "ImagePullFailed") {
			return true
		}
	}
	return false
}

// dvReconciler plays CDI's DataVolume controller: every import succeeds. It also garbage-collects DataVolumes
// whose VM is gone.
type dvReconciler struct{ *Sim }

func (r *dvReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	dv := &cdiv1.DataVolume{}
	if err := r.client.Get(ctx, req.NamespacedName, dv); err != nil {
		if apierrors.IsNotFound(err) {
			r.pacer.forget(kindDV, req.NamespacedName)
			return ctrl.Result{}, nil
		}
		return outcome(ctx, err)
	}
	if gone, err := r.ownerGone(ctx, dv); err != nil || gone {
		if err == nil {
			err = r.collect(ctx, dv)
		}
		return outcome(ctx, err)
	}
	if dv.DeletionTimestamp != nil {
		return ctrl.Result{}, nil
	}
	cur := dv.DeepCopy()
	wait := r.step(cur)
	for r.opts.StepDelay <= 0 && cur.Status.Phase != cdiv1.Succeeded {
		r.step(cur) // without a step delay the import completes in one write
	}
	statusChanged := !equality.Semantic.DeepEqual(dv.Status, cur.Status)
	err := r.save(ctx, cur, false, statusChanged, r.api.dvStatus, func() func() { return func() {} })
	if err != nil {
		return outcome(ctx, err)
	}
	return ctrl.Result{RequeueAfter: wait}, nil
}

// step moves an import on: Pending → ImportScheduled → ImportInProgress → Succeeded.
func (r *dvReconciler) step(dv *cdiv1.DataVolume) time.Duration {
	if dv.Status.Phase == cdiv1.Succeeded {
		r.pacer.forget(kindDV, objectKey(dv))
		return 0
	}
	if dv.Status.Phase != cdiv1.PhaseUnset {
		if wait := r.pacer.wait(kindDV, dv, string(dv.Status.Phase)); wait > 0 {
			return wait
		}
	}
	dv.Status.ClaimName = dv.Name
	if _, restored := dv.Annotations[cdiv1.AnnPrePopulated]; restored {
		// A restore made its PVC from a VolumeSnapshot: CDI adopts it and imports nothing.
		dv.Status.Phase, dv.Status.Progress = cdiv1.Succeeded, "N/A"
		setDVCondition(dv, cdiv1.DataVolumeBound, corev1.ConditionTrue, "Bound", "PVC "+dv.Name+" Bound")
		setDVCondition(dv, cdiv1.DataVolumeReady, corev1.ConditionTrue, "", "")
		setDVCondition(dv, cdiv1.DataVolumeRunning, corev1.ConditionFalse, "", "")
		return 0
	}
	switch dv.Status.Phase {
	case cdiv1.PhaseUnset:
		dv.Status.Phase, dv.Status.Progress = cdiv1.Pending, "N/A"
		setDVCondition(dv, cdiv1.DataVolumeBound, corev1.ConditionFalse, "Pending", "PVC "+dv.Name+" Pending")
		setDVCondition(dv, cdiv1.DataVolumeReady, corev1.ConditionFalse, "", "")
		setDVCondition(dv, cdiv1.DataVolumeRunning, corev1.ConditionFalse, "", "")
	case cdiv1.Pending:
		dv.Status.Phase = cdiv1.ImportScheduled
		setDVCondition(dv, cdiv1.DataVolumeBound, corev1.ConditionTrue, "Bound", "PVC "+dv.Name+" Bound")
	case cdiv1.ImportScheduled:
		dv.Status.Phase, dv.Status.Progress = cdiv1.ImportInProgress, "0.00%"
		setDVCondition(dv, cdiv1.DataVolumeRunning, corev1.ConditionTrue, "Pod is running", "")
	default:
		dv.Status.Phase, dv.Status.Progress = cdiv1.Succeeded, "100.0%"
		setDVCondition(dv, cdiv1.DataVolumeReady, corev1.ConditionTrue, "", "")
		setDVCondition(dv, cdiv1.DataVolumeRunning, corev1.ConditionFalse, "Completed", "Import Complete")
	}
	return 0
}

func dvCondition(dv *cdiv1.DataVolume, t cdiv1.DataVolumeConditionType) *cdiv1.DataVolumeCondition {
	for i := range dv.Status.Conditions {
		if dv.Status.Conditions[i].Type == t {
			return &dv.Status.Conditions[i]
		}
	}
	return nil
}

func dvHasCondition(dv *cdiv1.DataVolume, t cdiv1.DataVolumeConditionType, status corev1.ConditionStatus) bool {
	c := dvCondition(dv, t)
	return c != nil && c.Status == status
}

func setDVCondition(dv *cdiv1.DataVolume, t cdiv1.DataVolumeConditionType, status corev1.ConditionStatus, reason, message string) {
	now := metav1.Now()
	cond := cdiv1.DataVolumeCondition{
		Type: t, Status: status, Reason: reason, Message: message, LastTransitionTime: now, LastHeartbeatTime: now,
	}
	if c := dvCondition(dv, t); c != nil {
		if c.Status != status || c.Reason != reason {
			*c = cond
		}
		return
	}
	dv.Status.Conditions = append(dv.Status.Conditions, cond)
}
