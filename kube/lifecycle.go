package kube

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	instancetypev1beta1 "kubevirt.io/api/instancetype/v1beta1"
	snapshotv1beta1 "kubevirt.io/api/snapshot/v1beta1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

// Apply creates the VirtualMachine or converges an existing one of the same Instance to desired. It reports
// whether it created it. It is what makes CloudStack's retried create, and a start after an out-of-band
// deletion, idempotent. expectNew tries the create before reading (one round trip fewer for a new Instance);
// an existing VM then costs one more.
func (in Lifecycle) Apply(ctx context.Context, desired *kubevirtv1.VirtualMachine, expectNew bool) (created bool, err error) {
	if err := in.CheckReferences(ctx, desired); err != nil {
		return false, err
	}
	id := Identity{Name: desired.Name, UUID: desired.Labels[translate.LabelInstanceUUID]}
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if expectNew {
			expectNew, created = false, true
			return in.create(ctx, desired) // AlreadyExists comes back as a conflict: retried with a read
		}
		existing, err := in.get(ctx, id)
		if err != nil {
			return err
		}
		if existing == nil {
			created = true
			return in.create(ctx, desired)
		}
		created = false
		return in.converge(ctx, existing, desired)
	})
	return created, err
}

func (in Lifecycle) create(ctx context.Context, desired *kubevirtv1.VirtualMachine) error {
	if err := in.CheckCloneSources(ctx, desired); err != nil {
		return err
	}
	vm := desired.DeepCopy()
	err := in.client.Create(ctx, vm)
	switch {
	case kerrors.IsAlreadyExists(err):
		// Another call created it since the read: converge on the next round.
		return kerrors.NewConflict(kubevirtv1.Resource("virtualmachines"), vm.Name, err)
	case kerrors.IsNotFound(err):
		return fmt.Errorf("namespace %s does not exist in the cluster: create it, or fix the host's namespace detail", in.namespace)
	}
	return explain(err, "create VirtualMachine "+in.ref(vm.Name))
}

// converge updates the existing VM when what CloudStack asks for differs from it. Fields KubeVirt defaults
// (and everything it writes to status) are left alone: only what desired sets is compared.
func (in Lifecycle) converge(ctx context.Context, existing, desired *kubevirtv1.VirtualMachine) error {
	labelsMatch := true
	for k, v := range desired.Labels {
		labelsMatch = labelsMatch && existing.Labels[k] == v
	}
	if labelsMatch && equality.Semantic.DeepDerivative(desired.Spec, existing.Spec) {
		return nil
	}
	if cloneSourcesChanged(existing, desired) {
		if err := in.CheckCloneSources(ctx, desired); err != nil {
			return err
		}
	}
	// Only a write waits for KubeVirt's snapshot lock: a VM that already is what CloudStack asks for is not held up.
	existing, err := in.waitSnapshotUnlocked(ctx, existing)
	if err != nil {
		return err
	}
	updated := existing.DeepCopy()
	updated.Spec = *desired.Spec.DeepCopy()
	for k, v := range desired.Labels {
		updated.Labels[k] = v
	}
	return explain(in.client.Update(ctx, updated), "update VirtualMachine "+in.ref(existing.Name))
}

// CheckReferences makes sure the objects the VM refers to exist, so bad input fails before anything is
// created, with the detail to fix named. Clone sources are checked by CheckCloneSources (and before a create).
// The instancetype is not read again: whoever builds a VM with one has read it already (ClusterInstancetype,
// for translate.Spec.InstancetypeGives), which fails the same way when it is missing.
func (in Lifecycle) CheckReferences(ctx context.Context, vm *kubevirtv1.VirtualMachine) error {
	for _, net := range vm.Spec.Template.Spec.Networks {
		if net.Multus == nil {
			continue
		}
		ns, name := splitRef(net.Multus.NetworkName, in.namespace)
		nad := &unstructured.Unstructured{}
		nad.SetGroupVersionKind(NetworkAttachmentDefinitionGVK)
		if err := in.client.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, nad); err != nil {
			if kerrors.IsNotFound(err) {
				return fmt.Errorf("NetworkAttachmentDefinition %s/%s (for interface %s) not found: create it, or map the VLAN to an existing one with the network_map detail", ns, name, net.Name)
			}
			return explain(err, "read NetworkAttachmentDefinition "+ns+"/"+name)
		}
	}
	if pref := vm.Spec.Preference; pref != nil {
		if err := in.clusterObjectExists(ctx, &instancetypev1beta1.VirtualMachineClusterPreference{}, pref.Name, translate.DetailPreference); err != nil {
			return err
		}
	}
	return nil
}

func (in Lifecycle) clusterObjectExists(ctx context.Context, obj Object, name, detail string) error {
	err := in.client.Get(ctx, types.NamespacedName{Name: name}, obj)
	if kerrors.IsNotFound(err) {
		return fmt.Errorf("%T %q named by the detail %s does not exist in the cluster", obj, name, detail)
	}
	return explain(err, "read "+name)
}

func splitRef(ref, defaultNamespace string) (namespace, name string) {
	for i := 0; i < len(ref); i++ {
		if ref[i] == '/' {
			return ref[:i], ref[i+1:]
		}
	}
	return defaultNamespace, ref
}

// Stop sets the VM's run strategy to Halted and waits until its VMI is gone. A VM that does not exist is
// already stopped.
func (in Lifecycle) Stop(ctx context.Context, id Identity) error {
	gone := false
	// The patch is guarded by the resourceVersion read; a concurrent write (KubeVirt's status, the
	// reconciler's label) makes it conflict, and the read is done again.
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		vm, err := in.get(ctx, id)
		if err != nil || vm == nil {
			gone = vm == nil
			return err
		}
		if vm, err = in.waitSnapshotUnlocked(ctx, vm); err != nil {
			return err
		}
		return in.setRunStrategy(ctx, vm, kubevirtv1.RunStrategyHalted)
	})
	if err != nil || gone {
		return err
	}
	return in.waitStopped(ctx, id.Name)
}

// setRunStrategy patches spec.runStrategy (clearing the deprecated spec.running), guarded by the
// resourceVersion read, as virt-api's own start and stop do.
func (in Lifecycle) setRunStrategy(ctx context.Context, vm *kubevirtv1.VirtualMachine, strategy kubevirtv1.VirtualMachineRunStrategy) error {
	if vm.Spec.RunStrategy != nil && *vm.Spec.RunStrategy == strategy && vm.Spec.Running == nil {
		return nil
	}
	// Guarded by the resourceVersion read, and clearing the deprecated spec.running.
	patch := map[string]any{
		"metadata": map[string]any{"resourceVersion": vm.ResourceVersion},
		"spec":     map[string]any{"runStrategy": strategy, "running": nil},
	}
	return explain(in.client.MergePatch(ctx, vm.DeepCopy(), patch), fmt.Sprintf("set runStrategy %s on VirtualMachine %s", strategy, in.ref(vm.Name)))
}

// Delete removes the VM, every DataVolume made for the Instance and the snapshots CloudStack took of it, and
// waits until the VM is gone. An Instance with nothing left is already deleted.
func (in Lifecycle) Delete(ctx context.Context, id Identity) error {
	if err := in.remove(ctx, id); err != nil {
		return err
	}
	if err := in.deleteSnapshots(ctx, id); err != nil {
		return err
	}
	return in.waitGone(ctx, id.Name)
}

// remove deletes the VM and the Instance's DataVolumes without waiting for KubeVirt to finish.
func (in Lifecycle) remove(ctx context.Context, id Identity) error {
	vm, err := in.get(ctx, id)
	if err != nil {
		return err
	}
	if vm != nil {
		background := metav1.DeletePropagationBackground
		err := in.client.Delete(ctx, vm, metav1.DeleteOptions{
			PropagationPolicy: &background,
			Preconditions:     &metav1.Preconditions{UID: &vm.UID},
		})
		if err != nil && !kerrors.IsNotFound(err) {
			return explain(err, "delete VirtualMachine "+in.ref(id.Name))
		}
	}
	return in.deleteDataVolumes(ctx, id)
}

// deleteDataVolumes removes the Instance's DataVolumes. KubeVirt's owner references would let the garbage
// collector do it too; doing it here also covers a VM deleted out of band and clusters without CDI.
func (in Lifecycle) deleteDataVolumes(ctx context.Context, id Identity) error {
	if id.UUID == "" {
		return nil // without the UUID there is no safe selector
	}
	selector := labels.SelectorFromSet(labels.Set{translate.LabelManagedBy: translate.ManagedBy, translate.LabelInstanceUUID: id.UUID})
	err := in.client.DeleteCollection(ctx, in.namespace, &cdiv1.DataVolume{}, selector.String())
	if err == nil || kerrors.IsNotFound(err) { // NotFound: CDI is not installed
		return nil
	}
	return explain(err, "delete the DataVolumes of Instance "+id.UUID)
}

// deleteSnapshots removes the VirtualMachineSnapshots CreateSnapshot took of the Instance (by its labels; those
// made with kubectl are left alone). They outlive the VM in KubeVirt, and once the Instance is expunged no custom
// action reaches them: kept, they would hold their VolumeSnapshots' storage for ever.
func (in Lifecycle) deleteSnapshots(ctx context.Context, id Identity) error {
	if id.UUID == "" {
		return nil // without the UUID there is no safe selector
	}
	selector := labels.SelectorFromSet(labels.Set{translate.LabelManagedBy: translate.ManagedBy, translate.LabelInstanceUUID: id.UUID})
	err := in.client.DeleteCollection(ctx, in.namespace, &snapshotv1beta1.VirtualMachineSnapshot{}, selector.String())
	if err == nil || kerrors.IsNotFound(err) { // NotFound: KubeVirt's snapshot CRDs are not installed
		return nil
	}
	return explain(err, "delete the VirtualMachineSnapshots of Instance "+id.UUID)
}

// Reboot restarts a running VM: KubeVirt's restart subresource where virt-api serves it, otherwise (envtest, a
// cluster without virt-api) by deleting the VMI, which KubeVirt recreates. It waits for the new VMI to run.
func (in Lifecycle) Reboot(ctx context.Context, id Identity) error {
	vm, err := in.get(ctx, id)
	if err != nil {
		return err
	}
	if vm == nil {
		return fmt.Errorf("VirtualMachine %s does not exist: start the Instance to recreate it", in.ref(id.Name))
	}
	vmi, err := in.vmi(ctx, id.Name)
	if err != nil {
		return err
	}
	if translate.PowerStateOf(vm, vmi) == translate.PowerOff || vmi == nil {
		return fmt.Errorf("VirtualMachine %s is not running: start the Instance instead", in.ref(id.Name))
	}
	if err := in.restartVMI(ctx, vmi); err != nil {
		return err
	}
	return in.waitRunning(ctx, id.Name, vmi.UID)
}

func (in Lifecycle) restartVMI(ctx context.Context, vmi *kubevirtv1.VirtualMachineInstance) error {
	if in.virtAPI != nil {
		err := in.virtAPI.Restart(ctx, in.namespace, vmi.Name)
		if err == nil {
			return nil
		}
		if !kerrors.IsNotFound(err) {
			return explain(err, "restart VirtualMachine "+in.ref(vmi.Name))
		}
	}
	err := in.client.Delete(ctx, vmi, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &vmi.UID}})
	if err != nil && !kerrors.IsNotFound(err) {
		return explain(err, "delete VirtualMachineInstance "+in.ref(vmi.Name)+" to restart it")
	}
	return nil
}

// Start converges the VM to desired (which runs it) and, if wait, waits until it runs. Creating is Start
// with rollback: see Create.
func (in Lifecycle) Start(ctx context.Context, desired *kubevirtv1.VirtualMachine, wait bool) error {
	if _, err := in.Apply(ctx, desired, false); err != nil {
		return err
	}
	// Apply made the VM's run strategy desired's: only RerunOnFailure may need asking, so only it costs the reads.
	if ptr.Deref(desired.Spec.RunStrategy, "") == kubevirtv1.RunStrategyRerunOnFailure {
		if err := in.requestStart(ctx, desired.Name); err != nil {
			return err
		}
	}
	if !wait {
		return nil
	}
	return in.waitRunning(ctx, desired.Name, "")
}

// Create is Start for a new Instance; when it fails after creating the VM, it removes what it created, so
// CloudStack's retry (maybe on another host, so another namespace) does not leave an orphan behind. The
// rollback gets its own short deadline: the call's may be what just expired.
func (in Lifecycle) Create(ctx context.Context, desired *kubevirtv1.VirtualMachine, wait bool, rollbackTimeout time.Duration) error {
	created, err := in.Apply(ctx, desired, true)
	if err != nil || !wait {
		return err
	}
	err = in.waitRunning(ctx, desired.Name, "")
	if err == nil || !created {
		return err
	}
	rbCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
	defer cancel()
	id := Identity{Name: desired.Name, UUID: desired.Labels[translate.LabelInstanceUUID]}
	// Not waiting for the guest to go: the answer, with the real cause, must reach CloudStack before its timeout.
	if rbErr := in.remove(rbCtx, id); rbErr != nil {
		return fmt.Errorf("%w; removing the VirtualMachine again also failed: %v", err, rbErr)
	}
	return fmt.Errorf("%w (the VirtualMachine is being removed again)", err)
}

// requestStart asks KubeVirt to start a VM that its run strategy alone does not start: under RerunOnFailure,
// once the guest has shut itself down, KubeVirt keeps the finished VMI and starts no other until asked. It asks
// as virt-api's start subresource does: state-change requests Stop (of the finished VMI) then Start, written
// to the VM's status with its resourceVersion, so a concurrent change is retried on fresh state.
func (in Lifecycle) requestStart(ctx context.Context, name string) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		vm := &kubevirtv1.VirtualMachine{}
		if err := in.client.Get(ctx, in.key(name), vm); err != nil {
			return explain(err, "read VirtualMachine "+in.ref(name))
		}
		vmi, err := in.vmi(ctx, name)
		if err != nil {
			return err
		}
		if ptr.Deref(vm.Spec.RunStrategy, "") != kubevirtv1.RunStrategyRerunOnFailure ||
			(vmi != nil && vmi.Status.Phase != kubevirtv1.Succeeded) || translate.PowerStateOf(vm, vmi) == translate.PowerOn {
			return nil // running, restarting after a failure, or a start is already due
		}
		var reqs []kubevirtv1.VirtualMachineStateChangeRequest
		if vmi != nil {
			reqs = append(reqs, kubevirtv1.VirtualMachineStateChangeRequest{Action: kubevirtv1.StopRequest, UID: &vmi.UID})
		}
		reqs = append(reqs, kubevirtv1.VirtualMachineStateChangeRequest{Action: kubevirtv1.StartRequest})
		patch := map[string]any{
			"metadata": map[string]any{"resourceVersion": vm.ResourceVersion},
			"status":   map[string]any{"stateChangeRequests": reqs},
		}
		return explain(in.client.MergePatchStatus(ctx, vm, patch), "ask KubeVirt to start VirtualMachine "+in.ref(name))
	})
}
