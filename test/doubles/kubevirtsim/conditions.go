package kubevirtsim

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
)

// The helpers follow KubeVirt's condition managers: a condition is replaced only when its status or reason
// changes, so that repeated reconciles do not rewrite timestamps.

func vmiCondition(vmi *kubevirtv1.VirtualMachineInstance, t kubevirtv1.VirtualMachineInstanceConditionType) *kubevirtv1.VirtualMachineInstanceCondition {
	if vmi == nil {
		return nil
	}
	for i := range vmi.Status.Conditions {
		if vmi.Status.Conditions[i].Type == t {
			return &vmi.Status.Conditions[i]
		}
	}
	return nil
}

func vmiHasCondition(vmi *kubevirtv1.VirtualMachineInstance, t kubevirtv1.VirtualMachineInstanceConditionType, status corev1.ConditionStatus) bool {
	c := vmiCondition(vmi, t)
	return c != nil && c.Status == status
}

func setVMICondition(vmi *kubevirtv1.VirtualMachineInstance, t kubevirtv1.VirtualMachineInstanceConditionType, status corev1.ConditionStatus, reason, message string) {
	now := metav1.Now()
	cond := kubevirtv1.VirtualMachineInstanceCondition{
		Type: t, Status: status, Reason: reason, Message: message, LastProbeTime: now, LastTransitionTime: now,
	}
	if c := vmiCondition(vmi, t); c != nil {
		if c.Status != status || c.Reason != reason {
			*c = cond
		}
		return
	}
	vmi.Status.Conditions = append(vmi.Status.Conditions, cond)
}

func removeVMICondition(vmi *kubevirtv1.VirtualMachineInstance, t kubevirtv1.VirtualMachineInstanceConditionType) {
	conds := vmi.Status.Conditions[:0]
	for _, c := range vmi.Status.Conditions {
		if c.Type != t {
			conds = append(conds, c)
		}
	}
	vmi.Status.Conditions = conds
}
