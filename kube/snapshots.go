package kube

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	snapshotv1beta1 "kubevirt.io/api/snapshot/v1beta1"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

// Snapshot is one VirtualMachineSnapshot of an Instance, as the custom actions show it.
type Snapshot struct {
	Name        string // the name CloudStack knows (snap_name), or the object's for snapshots made elsewhere
	Object      string // the VirtualMachineSnapshot's name
	Time        time.Time
	Phase       string
	Ready       bool
	Description string
	Problem     string // KubeVirt's error, or why it is not ready
}

func snapshotOf(s *snapshotv1beta1.VirtualMachineSnapshot) Snapshot {
	out := Snapshot{Name: s.Name, Object: s.Name, Time: s.CreationTimestamp.Time, Description: s.Annotations[translate.AnnotationSnapshotDescription]}
	if n := s.Annotations[translate.AnnotationSnapshotName]; n != "" {
		out.Name = n
	}
	if st := s.Status; st != nil {
		out.Phase = string(st.Phase)
		out.Ready = ptr.Deref(st.ReadyToUse, false)
		if st.CreationTime != nil {
			out.Time = st.CreationTime.Time
		}
		if st.Error != nil && st.Error.Message != nil {
			out.Problem = *st.Error.Message
		} else if !out.Ready {
			out.Problem = snapshotConditions(st.Conditions)
		}
	}
	return out
}

// snapshotConditions summarises the conditions KubeVirt gives a snapshot or a restore (their reasons are
// sentences: "Source does not exist", "snapshot deadline exceeded").
func snapshotConditions(conds []snapshotv1beta1.Condition) string {
	var parts []string
	for _, c := range conds {
		if c.Reason != "" {
			parts = append(parts, fmt.Sprintf("%s=%s: %s", c.Type, c.Status, c.Reason))
		}
	}
	return strings.Join(parts, "; ")
}

// ListSnapshots lists the snapshots CloudStack took of the Instance, oldest first: those labelled with its UUID
// (a VM name is reused once an Instance is expunged, a UUID never), whose source is its VM. They outlive the VM,
// so they are listed even when it is gone.
func (in Snapshots) ListSnapshots(ctx context.Context, id Identity) ([]Snapshot, error) {
	if _, err := in.get(ctx, id); err != nil {
		return nil, err
	}
	snaps, err := in.snapshotsOf(ctx, id)
	if err != nil {
		return nil, err
	}
	out := make([]Snapshot, 0, len(snaps))
	for i := range snaps {
		out = append(out, snapshotOf(&snaps[i]))
	}
	slices.SortStableFunc(out, func(a, b Snapshot) int { return a.Time.Compare(b.Time) })
	return out, nil
}

// snapshotsOf lists, page by page, the namespace's VirtualMachineSnapshots labelled with the Instance's UUID
// whose source is its VM.
func (in Snapshots) snapshotsOf(ctx context.Context, id Identity) ([]snapshotv1beta1.VirtualMachineSnapshot, error) {
	selector, err := instanceSelector(id)
	if err != nil {
		return nil, err
	}
	var out []snapshotv1beta1.VirtualMachineSnapshot
	opts := ListOptions{Limit: listPage, LabelSelector: selector}
	for {
		list := &snapshotv1beta1.VirtualMachineSnapshotList{}
		if err := in.client.List(ctx, in.namespace, list, opts); err != nil {
			return nil, explainSnapshotAPI(err, "list VirtualMachineSnapshots in namespace "+in.namespace)
		}
		for _, s := range list.Items {
			if isSourceVM(s.Spec.Source, id.Name) {
				out = append(out, s)
			}
		}
		if opts.Continue = list.Continue; opts.Continue == "" {
			return out, nil
		}
	}
}

// instanceSelector selects the objects CloudStack made for the Instance, by its UUID.
func instanceSelector(id Identity) (string, error) {
	if id.UUID == "" {
		return "", fmt.Errorf("the payload has no virtualmachineid: the Instance's snapshots are found by its UUID")
	}
	return labels.SelectorFromSet(labels.Set{translate.LabelManagedBy: translate.ManagedBy, translate.LabelInstanceUUID: id.UUID}).String(), nil
}

// isInstances says whether obj carries the Instance's labels: CloudStack made it for that Instance.
func isInstances(obj metav1.Object, id Identity) bool {
	l := obj.GetLabels()
	return id.UUID != "" && l[translate.LabelManagedBy] == translate.ManagedBy && l[translate.LabelInstanceUUID] == id.UUID
}

func isSourceVM(ref corev1.TypedLocalObjectReference, vm string) bool {
	return ref.Kind == "VirtualMachine" && ref.Name == vm && (ref.APIGroup == nil || *ref.APIGroup == kubevirtv1.SchemeGroupVersion.Group)
}

// explainSnapshotAPI adds what to do when the snapshot API is not served at all: a list, or a create in a
// namespace that holds the VM, answers NotFound only then.
func explainSnapshotAPI(err error, what string) error {
	if kerrors.IsNotFound(err) {
		return fmt.Errorf("%s: the snapshot.kubevirt.io/v1beta1 API is not served: KubeVirt's snapshot CRDs are missing (is KubeVirt installed?): %w", what, err)
	}
	return explain(err, what)
}

// lookupSnapshot returns the snapshot that takes the name: the extension's object (VM name, then name) or, for
// snapshots made elsewhere, the object of that exact name, whose source is the VM; whoever took it. nil when
// there is none.
func (in Snapshots) lookupSnapshot(ctx context.Context, vm, name string) (*snapshotv1beta1.VirtualMachineSnapshot, error) {
	for _, object := range []string{translate.SnapshotObjectName(vm, name), name} {
		s := &snapshotv1beta1.VirtualMachineSnapshot{}
		err := in.client.Get(ctx, in.key(object), s)
		if kerrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, explain(err, "read VirtualMachineSnapshot "+in.ref(object))
		}
		if isSourceVM(s.Spec.Source, vm) {
			return s, nil
		}
	}
	return nil, nil
}

// findSnapshot returns the Instance's snapshot named name: one CloudStack took of this Instance (its UUID
// label), not merely one of a VM of the same name. nil when there is none.
func (in Snapshots) findSnapshot(ctx context.Context, id Identity, name string) (*snapshotv1beta1.VirtualMachineSnapshot, error) {
	if _, err := instanceSelector(id); err != nil {
		return nil, err
	}
	s, err := in.lookupSnapshot(ctx, id.Name, name)
	if err != nil || s == nil || !isInstances(s, id) {
		return nil, err
	}
	return s, nil
}

// noSnapshot is the error for a snapshot name the Instance has none of.
func (in Snapshots) noSnapshot(vm, name string) error {
	return fmt.Errorf("VirtualMachine %s has no snapshot %q (ListSnapshots lists them)", in.ref(vm), name)
}

// CreateSnapshot snapshots the Instance's VM (running or not) and waits until KubeVirt reports it ready.
func (in Snapshots) CreateSnapshot(ctx context.Context, id Identity, req translate.SnapshotRequest) (Snapshot, error) {
	vm, err := in.existingVM(ctx, id)
	if err != nil {
		return Snapshot{}, err
	}
	existing, err := in.lookupSnapshot(ctx, vm.Name, req.Name)
	if err != nil {
		return Snapshot{}, err
	}
	if existing != nil {
		return in.retrySnapshot(ctx, vm, req.Name, existing)
	}
	snap := &snapshotv1beta1.VirtualMachineSnapshot{
		ObjectMeta: metav1.ObjectMeta{
			Name: translate.SnapshotObjectName(vm.Name, req.Name), Namespace: in.namespace,
			Labels: map[string]string{
				translate.LabelManagedBy:    translate.ManagedBy,
				translate.LabelInstanceUUID: vm.Labels[translate.LabelInstanceUUID],
			},
			Annotations: map[string]string{translate.AnnotationSnapshotName: req.Name},
		},
		Spec: snapshotv1beta1.VirtualMachineSnapshotSpec{
			Source: corev1.TypedLocalObjectReference{APIGroup: ptr.To(kubevirtv1.SchemeGroupVersion.Group), Kind: "VirtualMachine", Name: vm.Name},
		},
	}
	if req.Description != "" {
		snap.Annotations[translate.AnnotationSnapshotDescription] = req.Description
	}
	if err := in.client.Create(ctx, snap); err != nil {
		if kerrors.IsAlreadyExists(err) {
			return Snapshot{}, fmt.Errorf("VirtualMachineSnapshot %s already exists: choose another name, or delete it first", in.ref(snap.Name))
		}
		return Snapshot{}, explainSnapshotAPI(err, "create VirtualMachineSnapshot "+in.ref(snap.Name))
	}
	return in.waitSnapshot(ctx, snap.Name)
}

// retrySnapshot handles a CreateSnapshot whose name is taken. The extension's own snapshot of that name for this
// Instance is what an earlier attempt started (CloudStack retries after a timeout, while KubeVirt goes on): it
// is waited for again. Any other (another Instance's, or one made with kubectl) is refused.
func (in Snapshots) retrySnapshot(ctx context.Context, vm *kubevirtv1.VirtualMachine, name string, existing *snapshotv1beta1.VirtualMachineSnapshot) (Snapshot, error) {
	s := snapshotOf(existing)
	ours := isInstances(existing, Identity{Name: vm.Name, UUID: vm.Labels[translate.LabelInstanceUUID]}) &&
		existing.Annotations[translate.AnnotationSnapshotName] == name
	switch {
	case !ours:
		return Snapshot{}, fmt.Errorf("VirtualMachine %s already has a snapshot %q (VirtualMachineSnapshot %s, taken %s, %s) that CloudStack did not take for this Instance: choose another name, or delete it first", in.ref(vm.Name), name, in.ref(existing.Name), FormatTime(s.Time), orUnknown(s.Phase))
	case existing.DeletionTimestamp != nil:
		return Snapshot{}, fmt.Errorf("snapshot %q of VirtualMachine %s is being deleted (VirtualMachineSnapshot %s): wait until ListSnapshots no longer shows it, then take it again", name, in.ref(vm.Name), in.ref(existing.Name))
	}
	got, err := in.waitSnapshot(ctx, existing.Name)
	if err != nil && s.Phase == string(snapshotv1beta1.Failed) {
		return got, fmt.Errorf("%w; delete it (DeleteSnapshot) to take it again", err)
	}
	return got, err
}

// waitSnapshot waits until the snapshot succeeds (and is ready to use) or fails.
func (in Snapshots) waitSnapshot(ctx context.Context, object string) (Snapshot, error) {
	var last Snapshot
	check := func() (bool, error) {
		s := &snapshotv1beta1.VirtualMachineSnapshot{}
		if err := in.client.Get(ctx, in.key(object), s); err != nil {
			if kerrors.IsNotFound(err) {
				return false, fmt.Errorf("VirtualMachineSnapshot %s was deleted while it was being taken", in.ref(object))
			}
			return false, explain(err, "read VirtualMachineSnapshot "+in.ref(object))
		}
		last = snapshotOf(s)
		switch {
		case last.Phase == string(snapshotv1beta1.Failed):
			return false, fmt.Errorf("KubeVirt could not snapshot: VirtualMachineSnapshot %s failed: %s", in.ref(object), last.Problem)
		case last.Phase == string(snapshotv1beta1.Succeeded) && last.Ready:
			return true, nil
		}
		return false, nil
	}
	describe := func() string {
		phase := last.Phase
		if phase == "" {
			phase = "not yet picked up by KubeVirt's snapshot controller"
		}
		return fmt.Sprintf("VirtualMachineSnapshot %s is %s (%s); it goes on in the cluster (ListSnapshots shows when it is ready)", in.ref(object), phase, last.Problem)
	}
	return last, poll(ctx, check, describe)
}

// DeleteSnapshot deletes the Instance's snapshot named name (and, by KubeVirt's deletion policy, its content)
// and waits until it is gone. found is false when there is no such snapshot: already deleted, which is what a
// retry after a timeout finds.
func (in Snapshots) DeleteSnapshot(ctx context.Context, id Identity, name string) (s Snapshot, found bool, err error) {
	if _, err := in.get(ctx, id); err != nil {
		return Snapshot{}, false, err
	}
	snap, err := in.findSnapshot(ctx, id, name)
	if err != nil || snap == nil {
		return Snapshot{Name: name}, false, err
	}
	uid := snap.UID
	err = in.client.Delete(ctx, snap, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil && !kerrors.IsNotFound(err) {
		return Snapshot{}, true, explain(err, "delete VirtualMachineSnapshot "+in.ref(snap.Name))
	}
	check := func() (bool, error) {
		err := in.client.Get(ctx, in.key(snap.Name), &snapshotv1beta1.VirtualMachineSnapshot{})
		if kerrors.IsNotFound(err) {
			return true, nil
		}
		return false, explain(err, "read VirtualMachineSnapshot "+in.ref(snap.Name))
	}
	describe := func() string {
		return fmt.Sprintf("VirtualMachineSnapshot %s is being deleted but still exists (KubeVirt's finalizer is pending)", in.ref(snap.Name))
	}
	return snapshotOf(snap), true, poll(ctx, check, describe)
}

// formatTime renders a time for CloudStack's tables: UTC, to the second; "" for none.
func FormatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
