package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	snapshotv1 "kubevirt.io/api/snapshot/v1beta1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/cloudstacksim"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/kubevirtsim"
)

// customNamespace is simulated by a simulator of its own, whose step delay lets a migration be watched phase by
// phase (the suite's simulator moves at once).
const customNamespace = "e2e-custom"

var (
	customSim       sync.Once
	customSimulator *kubevirtsim.Sim
)

// customHost returns the host of customNamespace, starting its simulator once. Its kubeconfig reaches envtest
// through virtapisim (pause and unpause are served) where the suite runs on envtest.
func customHost(t *testing.T) cloudstacksim.Host {
	t.Helper()
	needsEnvtest(t)
	namespace(t, customNamespace)
	customSim.Do(func() {
		sim, err := kubevirtsim.Start(context.Background(), s.env.Config, kubevirtsim.Options{
			Namespaces: []string{customNamespace}, StepDelay: 30 * time.Millisecond,
		})
		require.NoError(t, err)
		customSimulator = sim
		cleanups = append(cleanups, func() { _ = sim.Stop() })
	})
	return virtapiHost(t, customNamespace)
}

// runCustom runs a custom action as runCustomAction does: the registered name as argv[1], the action and its
// typed parameters at the top of the payload, the Instance's VM TO without NICs.
func runCustom(t *testing.T, h cloudstacksim.Host, action string, in cloudstacksim.Instance, params map[string]any) cloudstacksim.Result {
	t.Helper()
	payload := h.Payload(action, in)
	payload["action"] = action
	if params == nil {
		params = map[string]any{}
	}
	payload["parameters"] = params
	res, err := provisioner().Run(t.Context(), action, payload, callTimeout)
	require.NoError(t, err)
	t.Logf("%s %v %s -> exit %d in %s: %s", action, params, in.Name, res.ExitCode, res.Elapsed.Round(time.Millisecond), res.Output)
	return res
}

// tableOf asserts a printmessage table answer and returns its rows.
func tableOf(t *testing.T, res cloudstacksim.Result) []map[string]any {
	t.Helper()
	requireSuccess(t, res)
	var answer struct {
		Status       string           `json:"status"`
		PrintMessage string           `json:"printmessage"`
		Message      []map[string]any `json:"message"`
	}
	require.NoError(t, json.Unmarshal([]byte(res.Output), &answer), res.Output)
	require.Equal(t, "success", answer.Status)
	require.Equal(t, "true", answer.PrintMessage, "rendered as a table by CloudStack's UI")
	require.NotNil(t, answer.Message, "a table, even an empty one")
	return answer.Message
}

// facts turns Describe's table into a map by item, and its events (whose items are their times, not unique)
// into a list, in the table's order.
func facts(t *testing.T, rows []map[string]any) (map[string]string, []string) {
	t.Helper()
	out := map[string]string{}
	var events []string
	for _, r := range rows {
		require.Len(t, r, 2, "item and value: %v", r)
		item, value := r["item"].(string), r["value"].(string)
		if strings.HasPrefix(item, "event ") {
			events = append(events, value)
			continue
		}
		out[item] = value
	}
	return out, events
}

func snapshotsIn(t *testing.T, ns string) int {
	t.Helper()
	var list snapshotv1.VirtualMachineSnapshotList
	require.NoError(t, s.client.List(t.Context(), &list, client.InNamespace(ns)))
	return len(list.Items)
}

func restoresIn(t *testing.T, ns string) []snapshotv1.VirtualMachineRestore {
	t.Helper()
	var list snapshotv1.VirtualMachineRestoreList
	require.NoError(t, s.client.List(t.Context(), &list, client.InNamespace(ns)))
	return list.Items
}

func migrationsIn(t *testing.T, ns string) int {
	t.Helper()
	var list kubevirtv1.VirtualMachineInstanceMigrationList
	require.NoError(t, s.client.List(t.Context(), &list, client.InNamespace(ns)))
	return len(list.Items)
}

// TestSnapshots: ListSnapshots, CreateSnapshot, RestoreSnapshot and DeleteSnapshot, with their refusals.
func TestSnapshots(t *testing.T) {
	h := customHost(t)
	in := instance(map[string]string{"image": "quay.io/containerdisks/fedora:43"})
	name := vmName(in)
	requireSuccess(t, call(t, h, "create", in))

	t.Run("no snapshot yet: an empty table", func(t *testing.T) {
		assert.Empty(t, tableOf(t, runCustom(t, h, "ListSnapshots", in, nil)))
	})

	t.Run("bad parameters are refused before anything is touched", func(t *testing.T) {
		before := snapshotsIn(t, customNamespace)
		for _, tt := range []struct {
			params map[string]any
			want   string
		}{
			{map[string]any{}, "parameter snap_name is required"},
			{map[string]any{"snap_name": "Before_Upgrade"}, "lower-case letters, digits and '-' only"},
			{map[string]any{"snap_name": "Before-Upgrade"}, `use "before-upgrade"`},
			{map[string]any{"snap_name": strings.Repeat("a", 64)}, "at most 63"},
			{map[string]any{"snap_name": "x", "snap_save_memory": true}, "not the guest's memory"},
			{map[string]any{"snap_name": "x", "snap_save_memory": "perhaps"}, "snap_save_memory must be true or false"},
			{map[string]any{"snap_name": "x", "snapname": "y"}, `unknown parameter "snapname"`},
		} {
			requireFailure(t, runCustom(t, h, "CreateSnapshot", in, tt.params), tt.want)
		}
		requireFailure(t, runCustom(t, h, "RestoreSnapshot", in, map[string]any{"snap_name": "a/b"}), "lower-case letters")
		requireFailure(t, runCustom(t, h, "DeleteSnapshot", in, map[string]any{}), "snap_name is required")
		requireFailure(t, runCustom(t, h, "ListSnapshots", in, map[string]any{"all": "true"}), "ListSnapshots: the action takes no parameters")
		assert.Equal(t, before, snapshotsIn(t, customNamespace), "nothing created")
	})

	t.Run("create, of the running Instance", func(t *testing.T) {
		res := runCustom(t, h, "CreateSnapshot", in, map[string]any{"snap_name": "before-upgrade", "snap_description": "before the kernel update", "snap_save_memory": false})
		requireSuccess(t, res)
		assert.Contains(t, res.Output, "Snapshot before-upgrade of VirtualMachine "+customNamespace+"/"+name+" taken at ")
		snap := &snapshotv1.VirtualMachineSnapshot{}
		require.NoError(t, s.client.Get(t.Context(), client.ObjectKey{Namespace: customNamespace, Name: name + "-before-upgrade"}, snap))
		assert.Equal(t, "before the kernel update", snap.Annotations["cloudstack.apache.org/snapshot-description"])
		assert.Equal(t, in.UUID, snap.Labels["cloudstack.apache.org/instance-uuid"])
		assert.Contains(t, snap.Status.SourceIndications, snapshotv1.SourceIndication{Indication: snapshotv1.VMSnapshotOnlineSnapshotIndication,
			Message: "Snapshot taken while the VM was running. Consistency depends on guest-agent quiescing."})
	})

	t.Run("a second snapshot, listed in order", func(t *testing.T) {
		time.Sleep(time.Second) // creation times have whole seconds
		requireSuccess(t, runCustom(t, h, "createsnapshot", in, map[string]any{"snap_name": "daily-1"}))
		rows := tableOf(t, runCustom(t, h, "ListSnapshots", in, nil))
		require.Len(t, rows, 2)
		assert.Equal(t, "before-upgrade", rows[0]["name"])
		assert.Equal(t, "daily-1", rows[1]["name"])
		for _, r := range rows {
			assert.Equal(t, "Succeeded", r["phase"])
			assert.Equal(t, true, r["ready"])
			ts, err := time.Parse(time.RFC3339, r["time"].(string))
			require.NoError(t, err)
			assert.WithinDuration(t, time.Now(), ts, time.Minute)
			assert.Len(t, r, 4, "name, time, phase, ready")
		}
	})

	t.Run("a retry of a name the extension took waits for that snapshot again", func(t *testing.T) {
		before := snapshotsIn(t, customNamespace)
		res := runCustom(t, h, "CreateSnapshot", in, map[string]any{"snap_name": "daily-1"})
		requireSuccess(t, res)
		assert.Contains(t, res.Output, "Snapshot daily-1 of VirtualMachine "+customNamespace+"/"+name+" taken at ")
		assert.Equal(t, before, snapshotsIn(t, customNamespace), "no second snapshot")
	})

	t.Run("a name taken by a snapshot the extension did not take is refused", func(t *testing.T) {
		manual := &snapshotv1.VirtualMachineSnapshot{
			ObjectMeta: metav1.ObjectMeta{Namespace: customNamespace, Name: name + "-manual"},
			Spec: snapshotv1.VirtualMachineSnapshotSpec{Source: corev1.TypedLocalObjectReference{
				APIGroup: ptr.To("kubevirt.io"), Kind: "VirtualMachine", Name: name}},
		}
		require.NoError(t, s.client.Create(t.Context(), manual)) // as kubectl would: none of the extension's labels
		res := runCustom(t, h, "CreateSnapshot", in, map[string]any{"snap_name": "manual"})
		requireFailure(t, res, `already has a snapshot "manual" (VirtualMachineSnapshot `+customNamespace+"/"+name+"-manual")
		assert.Contains(t, res.Output, "that CloudStack did not take for this Instance: choose another name, or delete it first")
		// Not the Instance's (no UUID label): DeleteSnapshot leaves it alone, as kubectl made it.
		requireSuccess(t, runCustom(t, h, "DeleteSnapshot", in, map[string]any{"snap_name": "manual"}))
		require.NoError(t, s.client.Delete(t.Context(), manual))
		require.Eventually(t, func() bool {
			return kerrors.IsNotFound(s.client.Get(t.Context(), client.ObjectKeyFromObject(manual), manual))
		}, 10*time.Second, 50*time.Millisecond)
	})

	t.Run("restore of the running Instance is refused", func(t *testing.T) {
		requireFailure(t, runCustom(t, h, "RestoreSnapshot", in, map[string]any{"snap_name": "before-upgrade"}), "is running (its VirtualMachineInstance is Running): KubeVirt restores only a stopped VM; stop the Instance in CloudStack, then restore")
		assert.Empty(t, restoresIn(t, customNamespace), "nothing created")
	})

	t.Run("restore of an unknown snapshot is refused", func(t *testing.T) {
		requireFailure(t, runCustom(t, h, "RestoreSnapshot", in, map[string]any{"snap_name": "nope"}), `has no snapshot "nope" (ListSnapshots lists them)`)
	})

	t.Run("restore of the stopped Instance", func(t *testing.T) {
		requireSuccess(t, call(t, h, "stop", in))
		res := runCustom(t, h, "RestoreSnapshot", in, map[string]any{"snap_name": "before-upgrade"})
		requireSuccess(t, res)
		assert.Contains(t, res.Output, "restored to snapshot before-upgrade")
		vm, err := getVM(t.Context(), customNamespace, name)
		require.NoError(t, err)
		assert.True(t, strings.HasPrefix(vm.Annotations["restore.kubevirt.io/lastRestoreUID"], name+"-restore-"), "restored by the extension's VirtualMachineRestore")
		assert.Equal(t, kubevirtv1.RunStrategyHalted, *vm.Spec.RunStrategy, "still stopped: CloudStack starts it")
		requireNoRestores(t)
		requireSuccess(t, call(t, h, "start", in))
	})

	t.Run("delete", func(t *testing.T) {
		requireSuccess(t, runCustom(t, h, "DeleteSnapshot", in, map[string]any{"snap_name": "daily-1"}))
		rows := tableOf(t, runCustom(t, h, "ListSnapshots", in, nil))
		require.Len(t, rows, 1)
		assert.Equal(t, "before-upgrade", rows[0]["name"])
		res := runCustom(t, h, "DeleteSnapshot", in, map[string]any{"snap_name": "daily-1"})
		requireSuccess(t, res)
		assert.Contains(t, res.Output, "has no snapshot daily-1 (deleted already): nothing to do", "a retry after a timeout")
		requireSuccess(t, runCustom(t, h, "DeleteSnapshot", in, map[string]any{"snap_name": "before-upgrade"}))
		assert.Zero(t, snapshotsIn(t, customNamespace))
	})
	requireSuccess(t, call(t, h, "delete", in))
}

// requireNoRestores waits until the namespace holds no VirtualMachineRestore: RestoreSnapshot deletes its own
// once complete (KubeVirt's finalizer goes soon after).
func requireNoRestores(t *testing.T) {
	t.Helper()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var list snapshotv1.VirtualMachineRestoreList
		require.NoError(c, s.client.List(t.Context(), &list, client.InNamespace(customNamespace)))
		assert.Empty(c, list.Items)
	}, 10*time.Second, 50*time.Millisecond)
}

// TestSnapshotsOfADataVolumeRootDisk: a restore followed by CloudStack's start keeps the restored disks. The
// restore keeps the DataVolumes' names (InPlace), so start's spec, which names them as create did, refers to the
// restored disks, and nothing is imported again from the template's URL. Expunging the Instance deletes its
// snapshots.
func TestSnapshotsOfADataVolumeRootDisk(t *testing.T) {
	h := customHost(t)
	in := instance(map[string]string{"root_disk_url": "https://images.example/fedora-43.qcow2", "root_disk_size": "10Gi"})
	name := vmName(in)
	requireSuccess(t, call(t, h, "create", in))
	dataVolumes := func() map[string]*cdiv1.DataVolume {
		var list cdiv1.DataVolumeList
		require.NoError(t, s.client.List(t.Context(), &list, client.InNamespace(customNamespace)))
		out := map[string]*cdiv1.DataVolume{}
		for i := range list.Items {
			if dv := &list.Items[i]; dv.Labels["cloudstack.apache.org/instance-uuid"] == in.UUID || strings.HasPrefix(dv.Name, "restore-") {
				out[dv.Name] = dv
			}
		}
		return out
	}
	vm, err := getVM(t.Context(), customNamespace, name)
	require.NoError(t, err)
	require.NotEmpty(t, vm.Spec.DataVolumeTemplates)
	templates := func(vm *kubevirtv1.VirtualMachine) (names []string) {
		for _, t := range vm.Spec.DataVolumeTemplates {
			names = append(names, t.Name)
		}
		return names
	}
	created := templates(vm)
	before := dataVolumes()
	require.Len(t, before, len(created))

	requireSuccess(t, runCustom(t, h, "CreateSnapshot", in, map[string]any{"snap_name": "base"}))
	requireSuccess(t, call(t, h, "stop", in))
	requireSuccess(t, runCustom(t, h, "RestoreSnapshot", in, map[string]any{"snap_name": "base"}))
	requireNoRestores(t)
	requireSuccess(t, call(t, h, "start", in))

	vm, err = getVM(t.Context(), customNamespace, name)
	require.NoError(t, err)
	assert.Equal(t, created, templates(vm), "the VM still refers to the DataVolumes create made")
	after := dataVolumes()
	require.Len(t, after, len(before), "no DataVolume of another name: %v", after)
	for dvName, dv := range before {
		require.Contains(t, after, dvName)
		assert.Equal(t, dv.UID, after[dvName].UID, "%s is the restored DataVolume, not one imported again", dvName)
		assert.Contains(t, after[dvName].Annotations, cdiv1.AnnPrePopulated, "%s holds the snapshot's data", dvName)
	}

	requireSuccess(t, runCustom(t, h, "CreateSnapshot", in, map[string]any{"snap_name": "later"}))
	requireSuccess(t, call(t, h, "delete", in))
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var list snapshotv1.VirtualMachineSnapshotList
		require.NoError(c, s.client.List(t.Context(), &list, client.InNamespace(customNamespace), client.MatchingLabels{"cloudstack.apache.org/instance-uuid": in.UUID}))
		assert.Empty(c, list.Items, "expunge deletes the Instance's snapshots")
	}, 10*time.Second, 50*time.Millisecond)
}

// TestPauseResume: Pause and Resume through virt-api's subresources (virtapisim on envtest).
func TestPauseResume(t *testing.T) {
	h := customHost(t)
	in := instance(map[string]string{"image": "quay.io/containerdisks/fedora:43"})
	name := vmName(in)
	requireSuccess(t, call(t, h, "create", in))
	paused := func() bool {
		vmi, err := getVMI(t.Context(), customNamespace, name)
		require.NoError(t, err)
		for _, c := range vmi.Status.Conditions {
			if c.Type == kubevirtv1.VirtualMachineInstancePaused {
				return c.Status == corev1.ConditionTrue
			}
		}
		return false
	}

	requireFailure(t, runCustom(t, h, "Pause", in, map[string]any{"force": "true"}), "Pause: the action takes no parameters")
	assert.False(t, paused(), "nothing done")

	res := runCustom(t, h, "Pause", in, nil)
	requireSuccess(t, res)
	assert.Contains(t, res.Output, "VirtualMachine "+customNamespace+"/"+name+" paused")
	assert.True(t, paused())
	assert.Contains(t, runCustom(t, h, "pause", in, nil).Output, "was paused already: nothing to do")
	assert.Equal(t, cloudstacksim.PowerOn, cloudstacksim.ParseStatus(call(t, h, "status", in)), "a paused guest is on")

	res = runCustom(t, h, "Resume", in, nil)
	requireSuccess(t, res)
	assert.Contains(t, res.Output, "resumed")
	assert.False(t, paused())
	assert.Contains(t, runCustom(t, h, "Resume", in, nil).Output, "was not paused: nothing to do")

	requireSuccess(t, call(t, h, "stop", in))
	requireFailure(t, runCustom(t, h, "Pause", in, nil), "its guest is stopped, not running")
	requireFailure(t, runCustom(t, h, "Resume", in, nil), "its guest is stopped, not running")
	requireSuccess(t, call(t, h, "delete", in))
}

// TestMigrateAndDescribe: Migrate reports the phases KubeVirt went through; Describe shows where the guest
// runs, its IPs and conditions, and recent events of the VM and VMI, newest first.
func TestMigrateAndDescribe(t *testing.T) {
	h := customHost(t)
	in := instance(map[string]string{"image": "quay.io/containerdisks/fedora:43"})
	name := vmName(in)
	requireSuccess(t, call(t, h, "create", in))
	vmi, err := getVMI(t.Context(), customNamespace, name)
	require.NoError(t, err)
	recordEvents(t, name, vmi)

	t.Run("describe", func(t *testing.T) {
		f, events := facts(t, tableOf(t, runCustom(t, h, "Describe", in, nil)))
		assert.Equal(t, customNamespace+"/"+name, f["VirtualMachine"])
		assert.Equal(t, "Running", f["status"])
		assert.Equal(t, "Always", f["run strategy"])
		assert.Equal(t, "Running", f["VirtualMachineInstance phase"])
		assert.Equal(t, "sim-node-1", f["node"])
		iface := vmi.Status.Interfaces[0]
		assert.Equal(t, iface.IP+" "+iface.MAC, f["interface "+iface.Name+" ("+iface.InterfaceName+")"])
		assert.Contains(t, f["guest OS"], "KubeVirt simulator guest")
		assert.Equal(t, "True", f["condition Ready"])
		assert.Equal(t, "True", f["condition LiveMigratable"])
		// SuccessfulCreate is KubeVirt's VM controller's own (kubevirt.io/kubevirt v1.8.0,
		// pkg/virt-controller/watch/vm/vm.go, startVMI); the other two are recordEvents'.
		assert.Equal(t, []string{
			"VM Normal PowerStateChanged: poweroff -> poweron",
			"VM Normal SuccessfulCreate: Started the virtual machine by creating the new virtual machine instance " + name,
			"VMI Normal Started: VirtualMachineInstance started.",
		}, events, "both APIs' events, each once, newest first")
	})

	t.Run("describe with a bounded number of events, newest first", func(t *testing.T) {
		rows := tableOf(t, runCustom(t, h, "Describe", in, map[string]any{"events": 1}))
		last := rows[len(rows)-1]
		assert.Equal(t, "VM Normal PowerStateChanged: poweroff -> poweron", last["value"], "the newer one")
		requireFailure(t, runCustom(t, h, "Describe", in, map[string]any{"events": 51}), "whole number from 0 to 50")
	})

	t.Run("migrate", func(t *testing.T) {
		rows := tableOf(t, runCustom(t, h, "Migrate", in, nil))
		var phases []string
		for _, r := range rows {
			phases = append(phases, r["phase"].(string))
			assert.Equal(t, "sim-node-1", r["source node"])
			assert.Equal(t, "sim-node-2", r["target node"])
			_, err := time.Parse(time.RFC3339, r["time"].(string))
			assert.NoError(t, err)
		}
		assert.Equal(t, []string{"Pending", "Scheduling", "Scheduled", "PreparingTarget", "TargetReady", "Running", "Succeeded"}, phases)
		f, events := facts(t, tableOf(t, runCustom(t, h, "Describe", in, map[string]any{"events": "3"})))
		assert.Equal(t, "sim-node-2", f["node"])
		assert.Contains(t, f["last migration"], "sim-node-1 → sim-node-2, completed")
		assert.Equal(t, []string{
			"VMI Normal Migrated: The VirtualMachineInstance migrated to node sim-node-2.",
			"VMI Normal Migrating: VirtualMachineInstance is migrating.",
			"VMI Normal PreparingTarget: VirtualMachineInstance Migration Target Prepared.",
		}, events, "virt-handler's events of the migration, newest first, three as asked")
	})

	t.Run("migrate to a named node, and to where it runs", func(t *testing.T) {
		requireFailure(t, runCustom(t, h, "Migrate", in, map[string]any{"target_node": "sim-node-2"}), "already runs on node sim-node-2")
		requireFailure(t, runCustom(t, h, "Migrate", in, map[string]any{"target_node": "Node_1"}), "is not a node name")
		rows := tableOf(t, runCustom(t, h, "migrate", in, map[string]any{"target_node": "sim-node-1"}))
		assert.Equal(t, "sim-node-1", rows[len(rows)-1]["target node"])
		assert.Equal(t, 2, migrationsIn(t, customNamespace), "the refusals created nothing")
	})

	t.Run("a stopped Instance does not migrate", func(t *testing.T) {
		requireSuccess(t, call(t, h, "stop", in))
		requireFailure(t, runCustom(t, h, "Migrate", in, nil), "it is not running (only a running guest migrates); start the Instance first")
		f, events := facts(t, tableOf(t, runCustom(t, h, "Describe", in, map[string]any{"events": 0})))
		assert.Empty(t, events)
		assert.Equal(t, "none (the guest is stopped)", f["VirtualMachineInstance"])
		assert.Equal(t, "Stopped", f["status"])
	})
	requireSuccess(t, call(t, h, "delete", in))
}

// recordEvents records an event on the VMI through core/v1, as KubeVirt's recorders do, and a newer one on the
// VM through events.k8s.io/v1, as the reconciler does.
func recordEvents(t *testing.T, name string, vmi *kubevirtv1.VirtualMachineInstance) {
	t.Helper()
	vm, err := getVM(t.Context(), customNamespace, name)
	require.NoError(t, err)
	then := metav1.NewTime(time.Now().Add(-time.Minute))
	require.NoError(t, s.client.Create(t.Context(), &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Namespace: customNamespace, Name: name + ".started"},
		InvolvedObject: corev1.ObjectReference{Kind: "VirtualMachineInstance", APIVersion: "kubevirt.io/v1", Namespace: customNamespace,
			Name: name, UID: vmi.UID},
		Reason: "Started", Message: "VirtualMachineInstance started.", Type: corev1.EventTypeNormal,
		FirstTimestamp: then, LastTimestamp: then, Count: 1, Source: corev1.EventSource{Component: "virt-handler"},
	}))
	require.NoError(t, s.client.Create(t.Context(), &eventsv1.Event{
		ObjectMeta: metav1.ObjectMeta{Namespace: customNamespace, Name: name + ".powerstatechanged"},
		EventTime:  metav1.NewMicroTime(time.Now()), ReportingController: "cloudstack.apache.org/reconciler", ReportingInstance: "e2e",
		Action: "Reconcile", Reason: "PowerStateChanged", Note: "poweroff -> poweron", Type: corev1.EventTypeNormal,
		Regarding: corev1.ObjectReference{Kind: "VirtualMachine", APIVersion: "kubevirt.io/v1", Namespace: customNamespace, Name: name, UID: vm.UID},
	}))
}

// TestCustomActionsOnAMissingInstance: each action on an Instance whose VM does not exist answers one error an
// admin can act on (ListSnapshots lists none), and creates nothing.
func TestCustomActionsOnAMissingInstance(t *testing.T) {
	h := customHost(t)
	in := instance(map[string]string{"image": "quay.io/containerdisks/fedora:43"})
	before := snapshotsIn(t, customNamespace) + migrationsIn(t, customNamespace) + len(restoresIn(t, customNamespace))
	assert.Empty(t, tableOf(t, runCustom(t, h, "ListSnapshots", in, nil)))
	for action, params := range map[string]map[string]any{
		"CreateSnapshot":  {"snap_name": "s1"},
		"RestoreSnapshot": {"snap_name": "s1"},
		"Pause":           nil,
		"Resume":          nil,
		"Migrate":         nil,
		"Describe":        nil,
	} {
		requireFailure(t, runCustom(t, h, action, in, params), "the Instance has no VirtualMachine "+customNamespace+"/"+vmName(in)+" (never created, or deleted out of band)")
	}
	assert.Contains(t, runCustom(t, h, "DeleteSnapshot", in, map[string]any{"snap_name": "s1"}).Output, `"status":"success"`)
	after := snapshotsIn(t, customNamespace) + migrationsIn(t, customNamespace) + len(restoresIn(t, customNamespace))
	assert.Equal(t, before, after, "nothing created")
}

// TestMigrateRefusesANonMigratableInstance: a VM whose disk is not on shared storage is refused with KubeVirt's
// reason, as virt-api's admission would refuse its migration.
func TestMigrateRefusesANonMigratableInstance(t *testing.T) {
	h := customHost(t)
	in := instance(map[string]string{"root_disk_url": "https://images.example/fedora-43.qcow2", "root_disk_size": "10Gi"})
	requireSuccess(t, call(t, h, "create", in))
	before := migrationsIn(t, customNamespace)
	requireFailure(t, runCustom(t, h, "Migrate", in, nil), "KubeVirt reports it not live-migratable (DisksNotLiveMigratable: cannot migrate VMI: PVC "+vmName(in)+"-root is not shared")
	assert.Equal(t, before, migrationsIn(t, customNamespace), "nothing created")
	requireSuccess(t, call(t, h, "delete", in))
}

// leastPrivilegeCustomActions runs every custom action as the extension's identity of manifests/ (h's
// kubeconfig), through virtapisim, which checks the pause and unpause subresources against RBAC as the
// aggregator does. Part of TestLeastPrivilege.
func leastPrivilegeCustomActions(t *testing.T, h cloudstacksim.Host) {
	t.Helper()
	kc, err := s.virtapi.KubeconfigFor(t.TempDir(), extensionIdentity, serviceAccountGroups)
	require.NoError(t, err)
	h.Host["kubeconfig"] = kc
	in := instance(map[string]string{"image": "quay.io/containerdisks/fedora:41"})
	requireSuccess(t, call(t, h, "create", in))
	requireSuccess(t, runCustom(t, h, "CreateSnapshot", in, map[string]any{"snap_name": "s1"}))
	assert.Len(t, tableOf(t, runCustom(t, h, "ListSnapshots", in, nil)), 1)
	requireSuccess(t, runCustom(t, h, "Pause", in, nil))
	requireSuccess(t, runCustom(t, h, "Resume", in, nil))
	rows := tableOf(t, runCustom(t, h, "Migrate", in, nil))
	assert.Equal(t, "Succeeded", rows[len(rows)-1]["phase"])
	f, _ := facts(t, tableOf(t, runCustom(t, h, "Describe", in, nil)))
	assert.Equal(t, "sim-node-2", f["node"])
	requireSuccess(t, call(t, h, "stop", in))
	requireSuccess(t, runCustom(t, h, "RestoreSnapshot", in, map[string]any{"snap_name": "s1"}))
	requireSuccess(t, runCustom(t, h, "DeleteSnapshot", in, map[string]any{"snap_name": "s1"}))
	requireSuccess(t, runCustom(t, h, "CreateSnapshot", in, map[string]any{"snap_name": "s2"}))
	requireSuccess(t, call(t, h, "delete", in))
	var restores snapshotv1.VirtualMachineRestoreList
	require.NoError(t, s.client.List(t.Context(), &restores, client.InNamespace(h.Host["namespace"])))
	for _, r := range restores.Items {
		assert.NotNil(t, r.DeletionTimestamp, "RestoreSnapshot deleted VirtualMachineRestore %s", r.Name)
	}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var snaps snapshotv1.VirtualMachineSnapshotList
		require.NoError(c, s.client.List(t.Context(), &snaps, client.InNamespace(h.Host["namespace"]), client.MatchingLabels{"cloudstack.apache.org/instance-uuid": in.UUID}))
		assert.Empty(c, snaps.Items, "delete removed the Instance's snapshots")
	}, 10*time.Second, 50*time.Millisecond)
}

// KubeVirt refuses a restore while any VMI exists. A guest that shut itself down under RerunOnFailure leaves a
// finished VMI behind (as does a stop, for the moment KubeVirt takes to remove it): RestoreSnapshot removes it
// first rather than refusing an Instance CloudStack shows as stopped.
func TestRestoreAfterGuestShutdown(t *testing.T) {
	h := customHost(t)
	in := instance(map[string]string{"image": "quay.io/containerdisks/fedora:43", "run_strategy": "RerunOnFailure"})
	name := vmName(in)
	requireSuccess(t, call(t, h, "create", in))
	requireSuccess(t, runCustom(t, h, "CreateSnapshot", in, map[string]any{"snap_name": "base"}))
	require.NoError(t, customSimulator.GuestShutdown(t.Context(), customNamespace, name))
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		vmi, err := getVMI(t.Context(), customNamespace, name)
		require.NoError(c, err)
		assert.Equal(c, kubevirtv1.Succeeded, vmi.Status.Phase)
	}, 20*time.Second, 20*time.Millisecond, "the finished VMI stays")
	assert.Equal(t, cloudstacksim.PowerOff, cloudstacksim.ParseStatus(call(t, h, "status", in)))

	res := runCustom(t, h, "RestoreSnapshot", in, map[string]any{"snap_name": "base"})
	requireSuccess(t, res)
	_, err := getVMI(t.Context(), customNamespace, name)
	assert.True(t, kerrors.IsNotFound(err), "the finished VMI was removed: %v", err)
	requireSuccess(t, call(t, h, "start", in))
	requireSuccess(t, call(t, h, "delete", in))
}
