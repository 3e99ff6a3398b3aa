package kube

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	kubevirtv1 "kubevirt.io/api/core/v1"
	instancetypev1beta1 "kubevirt.io/api/instancetype/v1beta1"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

// ClusterInstancetype reads the VirtualMachineClusterInstancetype name and returns the CPUs and memory it gives
// the guest, for translate.CheckInstancetype to compare with what CloudStack accounts.
func (in Lifecycle) ClusterInstancetype(ctx context.Context, name string) (translate.Resources, error) {
	it := &instancetypev1beta1.VirtualMachineClusterInstancetype{}
	if err := in.client.Get(ctx, types.NamespacedName{Name: name}, it); err != nil {
		if kerrors.IsNotFound(err) {
			return translate.Resources{}, fmt.Errorf("VirtualMachineClusterInstancetype %q named by the detail %s does not exist in the cluster: create it, or fix the detail", name, translate.DetailInstancetype)
		}
		return translate.Resources{}, explain(err, "read VirtualMachineClusterInstancetype "+name+" (detail "+translate.DetailInstancetype+")")
	}
	return translate.Resources{CPUs: it.Spec.CPU.Guest, Memory: it.Spec.Memory.Guest}, nil
}

// CheckCloneSources reads every PVC the VM's DataVolumes clone and refuses the call unless the operator shared
// it (label cloudstack.apache.org/shared-source=true) and it is no Instance's disk. CDI clones whatever PVC of a
// namespace the creator may read, so without this check an Instance detail could copy another Instance's root
// disk out of the namespace the host's accounts share.
func (in Lifecycle) CheckCloneSources(ctx context.Context, vm *kubevirtv1.VirtualMachine) error {
	for _, dv := range vm.Spec.DataVolumeTemplates {
		if dv.Spec.Source == nil || dv.Spec.Source.PVC == nil {
			continue
		}
		if err := in.checkCloneSource(ctx, dv.Spec.Source.PVC.Namespace, dv.Spec.Source.PVC.Name); err != nil {
			return err
		}
	}
	return nil
}

func (in Lifecycle) checkCloneSource(ctx context.Context, namespace, name string) error {
	if namespace == "" {
		namespace = in.namespace
	}
	ref := namespace + "/" + name
	pvc := &corev1.PersistentVolumeClaim{}
	if err := in.client.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, pvc); err != nil {
		if kerrors.IsNotFound(err) {
			return fmt.Errorf("detail %s: PersistentVolumeClaim %s does not exist: fix the detail, or create the source PVC", translate.DetailRootDiskPVC, ref)
		}
		return explain(err, "read PersistentVolumeClaim "+ref+", the clone source named by the detail "+translate.DetailRootDiskPVC)
	}
	l := pvc.Labels
	if l[translate.LabelManagedBy] == translate.ManagedBy || l[translate.LabelInstanceUUID] != "" || l[translate.LabelInstanceName] != "" {
		return fmt.Errorf("detail %s: PersistentVolumeClaim %s is a disk of Instance %s: an Instance's disk is never a clone source; name a PVC the operator shares", translate.DetailRootDiskPVC, ref, orUnknown(l[translate.LabelInstanceName]))
	}
	if l[translate.LabelSharedSource] != "true" {
		return fmt.Errorf("detail %s: PersistentVolumeClaim %s is not a shared clone source: the operator shares one by labelling it %s=true", translate.DetailRootDiskPVC, ref, translate.LabelSharedSource)
	}
	return nil
}

// cloneSourcesChanged says whether desired clones a PVC that existing does not: a converge must check it as a
// create would (KubeVirt clones anew any DataVolume that is missing).
func cloneSourcesChanged(existing, desired *kubevirtv1.VirtualMachine) bool {
	had := map[string]bool{}
	for _, dv := range existing.Spec.DataVolumeTemplates {
		if dv.Spec.Source != nil && dv.Spec.Source.PVC != nil {
			had[dv.Name+"="+dv.Spec.Source.PVC.Namespace+"/"+dv.Spec.Source.PVC.Name] = true
		}
	}
	for _, dv := range desired.Spec.DataVolumeTemplates {
		if dv.Spec.Source != nil && dv.Spec.Source.PVC != nil && !had[dv.Name+"="+dv.Spec.Source.PVC.Namespace+"/"+dv.Spec.Source.PVC.Name] {
			return true
		}
	}
	return false
}
