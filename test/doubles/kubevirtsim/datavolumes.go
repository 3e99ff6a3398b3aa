package kubevirtsim

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	ctrl "sigs.k8s.io/controller-runtime"
)

const kindDV = "DataVolume"

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
