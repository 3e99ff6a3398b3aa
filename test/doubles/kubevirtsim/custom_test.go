package kubevirtsim_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	snapshotv1 "kubevirt.io/api/snapshot/v1beta1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/kubevirtsim"
)

func newSnapshot(ns, name, vm string) *snapshotv1.VirtualMachineSnapshot {
	return &snapshotv1.VirtualMachineSnapshot{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: snapshotv1.VirtualMachineSnapshotSpec{Source: corev1.TypedLocalObjectReference{
			APIGroup: ptr.To("kubevirt.io"), Kind: "VirtualMachine", Name: vm,
		}},
	}
}

func newRestore(ns, name, vm, snap string, policy *snapshotv1.TargetReadinessPolicy) *snapshotv1.VirtualMachineRestore {
	return &snapshotv1.VirtualMachineRestore{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: snapshotv1.VirtualMachineRestoreSpec{
			Target:                     corev1.TypedLocalObjectReference{APIGroup: ptr.To("kubevirt.io"), Kind: "VirtualMachine", Name: vm},
			VirtualMachineSnapshotName: snap, TargetReadinessPolicy: policy,
		},
	}
}

func snapshotCondition(conds []snapshotv1.Condition, t snapshotv1.ConditionType) snapshotv1.Condition {
	for _, c := range conds {
		if c.Type == t {
			return c
		}
	}
	return snapshotv1.Condition{}
}

// waitSnapshot waits until the snapshot reaches phase and returns it.
func waitSnapshot(t *testing.T, ns, name string, phase snapshotv1.VirtualMachineSnapshotPhase) *snapshotv1.VirtualMachineSnapshot {
	t.Helper()
	snap := &snapshotv1.VirtualMachineSnapshot{}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		require.NoError(c, env.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, snap))
		require.NotNil(c, snap.Status)
		assert.Equal(c, phase, snap.Status.Phase)
	}, 20*time.Second, 20*time.Millisecond)
	return snap
}

func events(t *testing.T, ns, name string) map[string]string {
	t.Helper()
	var list corev1.EventList
	require.NoError(t, env.Client.List(t.Context(), &list, client.InNamespace(ns)))
	out := map[string]string{}
	for _, e := range list.Items {
		if e.InvolvedObject.Name == name {
			out[e.Reason] = e.Message
		}
	}
	return out
}

func TestSnapshotOfARunningVM(t *testing.T) {
	_, ns := startSim(t, kubevirtsim.Options{})
	createVM(t, newVM(ns, "vm", kubevirtv1.RunStrategyAlways))
	waitFor(t, ns, "vm", running)
	require.NoError(t, env.Client.Create(t.Context(), newSnapshot(ns, "snap", "vm")))

	snap := waitSnapshot(t, ns, "snap", snapshotv1.Succeeded)
	st := snap.Status
	assert.True(t, *st.ReadyToUse)
	require.NotNil(t, st.CreationTime)
	assert.Contains(t, snap.Finalizers, "snapshot.kubevirt.io/vmsnapshot-protection")
	assert.Equal(t, corev1.ConditionTrue, snapshotCondition(st.Conditions, snapshotv1.ConditionReady).Status)
	assert.Equal(t, "Operation complete", snapshotCondition(st.Conditions, snapshotv1.ConditionProgressing).Reason)
	var indications []snapshotv1.Indication
	for _, i := range st.SourceIndications {
		indications = append(indications, i.Indication)
		assert.NotEmpty(t, i.Message)
	}
	assert.Equal(t, []snapshotv1.Indication{snapshotv1.VMSnapshotGuestAgentIndication, snapshotv1.VMSnapshotOnlineSnapshotIndication}, indications)
	assert.Equal(t, []string{"root"}, st.SnapshotVolumes.ExcludedVolumes, "no PVC: nothing to snapshot but the spec")

	content := &snapshotv1.VirtualMachineSnapshotContent{}
	require.NoError(t, env.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: *st.VirtualMachineSnapshotContentName}, content))
	assert.Equal(t, "vmsnapshot-content-"+string(snap.UID), content.Name)
	assert.Equal(t, "snap", *content.Spec.VirtualMachineSnapshotName)
	assert.Equal(t, "vm", content.Spec.Source.VirtualMachine.Name)
	assert.True(t, *content.Status.ReadyToUse)
	assert.Contains(t, events(t, ns, "snap"), "SuccessfulVirtualMachineSnapshotContentCreate")

	vm, _ := waitFor(t, ns, "vm", func(c *assert.CollectT, vm *kubevirtv1.VirtualMachine, _ *kubevirtv1.VirtualMachineInstance) {
		assert.Nil(c, vm.Status.SnapshotInProgress, "unlocked")
		assert.NotContains(c, vm.Finalizers, "snapshot.kubevirt.io/snapshot-source-protection")
	})
	assert.Equal(t, *st.SourceUID, vm.UID)

	require.NoError(t, env.Client.Delete(t.Context(), snap))
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		err := env.Client.Get(t.Context(), client.ObjectKeyFromObject(snap), &snapshotv1.VirtualMachineSnapshot{})
		assert.True(c, apierrors.IsNotFound(err), "snapshot gone: %v", err)
		err = env.Client.Get(t.Context(), client.ObjectKeyFromObject(content), &snapshotv1.VirtualMachineSnapshotContent{})
		assert.True(c, apierrors.IsNotFound(err), "content gone (deletion policy Delete): %v", err)
	}, 10*time.Second, 20*time.Millisecond)
}

func TestSnapshotOfAMissingVMFailsAtItsDeadline(t *testing.T) {
	_, ns := startSim(t, kubevirtsim.Options{})
	snap := newSnapshot(ns, "orphan", "nope")
	snap.Spec.FailureDeadline = &metav1.Duration{Duration: 2 * time.Second}
	require.NoError(t, env.Client.Create(t.Context(), snap))
	got := waitSnapshot(t, ns, "orphan", snapshotv1.InProgress)
	assert.Equal(t, "Source does not exist", snapshotCondition(got.Status.Conditions, snapshotv1.ConditionProgressing).Reason)
	assert.Equal(t, "Not ready", snapshotCondition(got.Status.Conditions, snapshotv1.ConditionReady).Reason)

	got = waitSnapshot(t, ns, "orphan", snapshotv1.Failed)
	assert.Equal(t, "snapshot deadline exceeded", snapshotCondition(got.Status.Conditions, snapshotv1.ConditionFailure).Reason)
	assert.Equal(t, "Operation failed", snapshotCondition(got.Status.Conditions, snapshotv1.ConditionProgressing).Reason)
}

func TestRestoreOfAStoppedVM(t *testing.T) {
	_, ns := startSim(t, kubevirtsim.Options{})
	createVM(t, newVM(ns, "vm", kubevirtv1.RunStrategyHalted))
	require.NoError(t, env.Client.Create(t.Context(), newSnapshot(ns, "snap", "vm")))
	waitSnapshot(t, ns, "snap", snapshotv1.Succeeded)

	// Change the VM after the snapshot; the restore puts the old spec back.
	// The simulator may still be writing the VM (the snapshot's unlock), so retry on conflicts as a client would.
	var vm *kubevirtv1.VirtualMachine
	require.NoError(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		vm, _ = fetch(t.Context(), t, ns, "vm")
		vm.Spec.Template.Spec.Domain.Memory.Guest = ptr.To(resource.MustParse("256Mi"))
		return env.Client.Update(t.Context(), vm)
	}))

	require.NoError(t, env.Client.Create(t.Context(), newRestore(ns, "restore", "vm", "snap", nil)))
	restore := &snapshotv1.VirtualMachineRestore{}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		require.NoError(c, env.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "restore"}, restore))
		require.NotNil(c, restore.Status)
		assert.True(c, ptr.Deref(restore.Status.Complete, false))
	}, 20*time.Second, 20*time.Millisecond)
	assert.NotNil(t, restore.Status.RestoreTime)
	assert.Equal(t, "Operation complete", snapshotCondition(restore.Status.Conditions, snapshotv1.ConditionReady).Reason)
	assert.Equal(t, corev1.ConditionTrue, snapshotCondition(restore.Status.Conditions, snapshotv1.ConditionReady).Status)
	require.Len(t, restore.OwnerReferences, 1)
	assert.Equal(t, vm.UID, restore.OwnerReferences[0].UID)
	assert.Contains(t, events(t, ns, "restore"), "VirtualMachineRestoreComplete")

	vm, _ = fetch(t.Context(), t, ns, "vm")
	assert.Equal(t, "128Mi", vm.Spec.Template.Spec.Domain.Memory.Guest.String(), "the snapshot's spec is back")
	assert.Equal(t, kubevirtv1.RunStrategyHalted, *vm.Spec.RunStrategy, "the run strategy is kept")
	assert.Equal(t, "restore-"+string(restore.UID), vm.Annotations["restore.kubevirt.io/lastRestoreUID"])
	assert.Nil(t, vm.Status.RestoreInProgress)
}

// TestRestoreVolumePolicies: RandomizeNames (the default) restores a DataVolume under a new name and deletes the
// old one; InPlace keeps the name and the object. Neither imports again.
func TestRestoreVolumePolicies(t *testing.T) {
	_, ns := startSim(t, kubevirtsim.Options{})
	for _, tt := range []struct {
		name   string
		policy *snapshotv1.VolumeRestorePolicy
	}{
		{"randomize", nil},
		{"inplace", ptr.To(snapshotv1.VolumeRestorePolicyInPlace)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			createVM(t, withDataVolumes(newVM(ns, tt.name, kubevirtv1.RunStrategyAlways), tt.name+"-root"))
			waitFor(t, ns, tt.name, running)
			setRunStrategy(t, ns, tt.name, kubevirtv1.RunStrategyHalted)
			waitFor(t, ns, tt.name, printable(kubevirtv1.VirtualMachineStatusStopped))
			before := &cdiv1.DataVolume{}
			require.NoError(t, env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: tt.name + "-root"}, before))

			require.NoError(t, env.Client.Create(ctx, newSnapshot(ns, tt.name+"-snap", tt.name)))
			snap := waitSnapshot(t, ns, tt.name+"-snap", snapshotv1.Succeeded)
			assert.Equal(t, []string{tt.name + "-root"}, snap.Status.SnapshotVolumes.IncludedVolumes)
			restore := newRestore(ns, tt.name+"-restore", tt.name, tt.name+"-snap", nil)
			restore.Spec.VolumeRestorePolicy = tt.policy
			require.NoError(t, env.Client.Create(ctx, restore))
			require.EventuallyWithT(t, func(c *assert.CollectT) {
				require.NoError(c, env.Client.Get(ctx, client.ObjectKeyFromObject(restore), restore))
				require.NotNil(c, restore.Status)
				assert.True(c, ptr.Deref(restore.Status.Complete, false))
			}, 20*time.Second, 20*time.Millisecond)

			want := tt.name + "-root"
			if tt.policy == nil {
				want = "restore-" + string(restore.UID) + "-" + tt.name + "-root"
				assert.Equal(t, []string{tt.name + "-root"}, restore.Status.DeletedDataVolumes)
				require.EventuallyWithT(t, func(c *assert.CollectT) {
					err := env.Client.Get(ctx, client.ObjectKeyFromObject(before), &cdiv1.DataVolume{})
					assert.True(c, apierrors.IsNotFound(err), "the old DataVolume is deleted: %v", err)
				}, 10*time.Second, 20*time.Millisecond)
			} else {
				assert.Empty(t, restore.Status.DeletedDataVolumes)
			}
			require.Len(t, restore.Status.Restores, 1)
			assert.Equal(t, want, *restore.Status.Restores[0].DataVolumeName)
			vm, _ := fetch(ctx, t, ns, tt.name)
			assert.Equal(t, want, vm.Spec.DataVolumeTemplates[0].Name)
			assert.Equal(t, want, vm.Spec.Template.Spec.Volumes[0].DataVolume.Name)

			setRunStrategy(t, ns, tt.name, kubevirtv1.RunStrategyAlways)
			waitFor(t, ns, tt.name, running)
			dv := &cdiv1.DataVolume{}
			require.NoError(t, env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: want}, dv))
			assert.Contains(t, dv.Annotations, cdiv1.AnnPrePopulated, "made from the snapshot, not imported")
			assert.Equal(t, cdiv1.Succeeded, dv.Status.Phase)
			if tt.policy != nil {
				assert.Equal(t, before.UID, dv.UID, "the same DataVolume")
			}
		})
	}
}

func TestRestoreOfARunningVM(t *testing.T) {
	_, ns := startSim(t, kubevirtsim.Options{})
	createVM(t, newVM(ns, "vm", kubevirtv1.RunStrategyAlways))
	waitFor(t, ns, "vm", running)
	require.NoError(t, env.Client.Create(t.Context(), newSnapshot(ns, "snap", "vm")))
	waitSnapshot(t, ns, "snap", snapshotv1.Succeeded)

	restoreState := func(name string, policy *snapshotv1.TargetReadinessPolicy, check func(*assert.CollectT, *snapshotv1.VirtualMachineRestore)) {
		require.NoError(t, env.Client.Create(t.Context(), newRestore(ns, name, "vm", "snap", policy)))
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			r := &snapshotv1.VirtualMachineRestore{}
			require.NoError(c, env.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, r))
			require.NotNil(c, r.Status)
			check(c, r)
		}, 20*time.Second, 20*time.Millisecond)
	}
	// KubeVirt's admission refuses a restore while another of the same target is not complete, a failed one too
	// (pkg/storage/admitters/vmrestore.go, "VirtualMachineRestore %q in progress"): each case deletes its restore
	// and waits until the restore controller has released it.
	deleteRestore := func(name string) {
		r := &snapshotv1.VirtualMachineRestore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		require.NoError(t, env.Client.Delete(t.Context(), r))
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			err := env.Client.Get(t.Context(), client.ObjectKeyFromObject(r), &snapshotv1.VirtualMachineRestore{})
			assert.True(c, apierrors.IsNotFound(err), "restore %s still exists: %v", name, err)
		}, 20*time.Second, 20*time.Millisecond)
	}
	t.Run("the default policy waits for the VM to stop", func(t *testing.T) {
		restoreState("wait", nil, func(c *assert.CollectT, r *snapshotv1.VirtualMachineRestore) {
			assert.Contains(c, snapshotCondition(r.Status.Conditions, snapshotv1.ConditionProgressing).Reason, "Waiting for target VM to be powered off")
			assert.False(c, ptr.Deref(r.Status.Complete, true))
		})
		deleteRestore("wait")
	})
	t.Run("FailImmediate fails", func(t *testing.T) {
		restoreState("fail", ptr.To(snapshotv1.VirtualMachineRestoreFailImmediate), func(c *assert.CollectT, r *snapshotv1.VirtualMachineRestore) {
			assert.Equal(c, "Restore target VMI must be powered off before restore operation", snapshotCondition(r.Status.Conditions, snapshotv1.ConditionFailure).Reason)
		})
		deleteRestore("fail")
	})
	t.Run("StopTarget stops the VM and restores", func(t *testing.T) {
		restoreState("stop", ptr.To(snapshotv1.VirtualMachineRestoreStopTarget), func(c *assert.CollectT, r *snapshotv1.VirtualMachineRestore) {
			assert.True(c, ptr.Deref(r.Status.Complete, false))
		})
		vm, vmi := fetch(t.Context(), t, ns, "vm")
		assert.Equal(t, kubevirtv1.RunStrategyHalted, *vm.Spec.RunStrategy)
		assert.Nil(t, vmi)
	})
}

func TestMigration(t *testing.T) {
	_, ns := startSim(t, kubevirtsim.Options{StepDelay: 20 * time.Millisecond})
	createVM(t, newVM(ns, "vm", kubevirtv1.RunStrategyAlways))
	_, vmi := waitFor(t, ns, "vm", running, func(c *assert.CollectT, _ *kubevirtv1.VirtualMachine, vmi *kubevirtv1.VirtualMachineInstance) {
		require.NotNil(c, vmi)
		require.NotNil(c, vmiCondition(vmi, kubevirtv1.VirtualMachineInstanceIsMigratable))
	})
	assert.Equal(t, corev1.ConditionTrue, vmiCondition(vmi, kubevirtv1.VirtualMachineInstanceIsMigratable).Status, "masquerade and a containerDisk migrate")
	assert.Equal(t, "sim-node-1", vmi.Status.NodeName)

	m := &kubevirtv1.VirtualMachineInstanceMigration{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "move"},
		Spec:       kubevirtv1.VirtualMachineInstanceMigrationSpec{VMIName: "vm"},
	}
	require.NoError(t, env.Client.Create(t.Context(), m))
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		require.NoError(c, env.Client.Get(t.Context(), client.ObjectKeyFromObject(m), m))
		assert.Equal(c, kubevirtv1.MigrationSucceeded, m.Status.Phase)
		assert.Empty(c, m.Finalizers, "released once final")
	}, 20*time.Second, 20*time.Millisecond)
	var phases []kubevirtv1.VirtualMachineInstanceMigrationPhase
	for _, p := range m.Status.PhaseTransitionTimestamps {
		phases = append(phases, p.Phase)
	}
	assert.Equal(t, []kubevirtv1.VirtualMachineInstanceMigrationPhase{
		kubevirtv1.MigrationPending, kubevirtv1.MigrationScheduling, kubevirtv1.MigrationScheduled, kubevirtv1.MigrationPreparingTarget,
		kubevirtv1.MigrationTargetReady, kubevirtv1.MigrationRunning, kubevirtv1.MigrationSucceeded,
	}, phases)
	assert.Equal(t, "vm", m.Labels[kubevirtv1.MigrationSelectorLabel])
	require.NotNil(t, m.Status.MigrationState, "written with the phase")
	assert.True(t, m.Status.MigrationState.Completed)

	_, vmi = fetch(t.Context(), t, ns, "vm")
	assert.Equal(t, "sim-node-2", vmi.Status.NodeName)
	assert.Equal(t, "sim-node-2", vmi.Labels[kubevirtv1.NodeNameLabel])
	st := vmi.Status.MigrationState
	assert.Equal(t, m.UID, st.MigrationUID)
	assert.Equal(t, "sim-node-1", st.SourceNode)
	assert.Equal(t, "sim-node-2", st.TargetNode)
	assert.NotNil(t, st.StartTimestamp)
	assert.NotNil(t, st.EndTimestamp)
	assert.Equal(t, "The VirtualMachineInstance migrated to node sim-node-2.", events(t, ns, "vm")["Migrated"])
	assert.Contains(t, events(t, ns, "move"), "SuccessfulMigration")
}

// TestMigrationRefused: KubeVirt's admission refuses a migration of a VMI that does not exist or cannot migrate
// (pkg/virt-api/webhooks/validating-webhook/admitters/migration-create-admitter.go, v1.8.0), which it reads from
// the LiveMigratable condition the simulator writes.
func TestMigrationRefused(t *testing.T) {
	_, ns := startSim(t, kubevirtsim.Options{})
	vm := newVM(ns, "bridged", kubevirtv1.RunStrategyAlways)
	vm.Spec.Template.Spec.Domain.Devices.Interfaces[0].InterfaceBindingMethod = kubevirtv1.InterfaceBindingMethod{Bridge: &kubevirtv1.InterfaceBridge{}}
	createVM(t, vm)
	_, vmi := waitFor(t, ns, "bridged", running, func(c *assert.CollectT, _ *kubevirtv1.VirtualMachine, vmi *kubevirtv1.VirtualMachineInstance) {
		require.NotNil(c, vmi)
		require.NotNil(c, vmiCondition(vmi, kubevirtv1.VirtualMachineInstanceIsMigratable))
	})
	c := vmiCondition(vmi, kubevirtv1.VirtualMachineInstanceIsMigratable)
	assert.Equal(t, corev1.ConditionFalse, c.Status)
	assert.Equal(t, "InterfaceNotLiveMigratable", c.Reason)

	tests := []struct {
		name, vmi, refusal string
	}{
		{"no-vmi", "nope", `the VMI "` + ns + `/nope" does not exist`},
		{"bridged", "bridged", "Cannot migrate VMI, Reason: InterfaceNotLiveMigratable, Message: cannot migrate VMI which does not use masquerade or a migratable plugin to connect to the pod network"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &kubevirtv1.VirtualMachineInstanceMigration{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: tt.name},
				Spec:       kubevirtv1.VirtualMachineInstanceMigrationSpec{VMIName: tt.vmi},
			}
			err := env.Client.Create(t.Context(), m)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.refusal)
		})
	}
}
