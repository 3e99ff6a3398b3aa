package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/kube"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/cloudstacksim"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

// The identities of manifests/: the reconciler's ServiceAccount and the one the extension's kubeconfig uses.
const (
	systemNamespace    = "cloudstack-kubevirt-system"
	reconcilerIdentity = "system:serviceaccount:" + systemNamespace + ":cloudstack-kubevirt-reconciler"
	extensionIdentity  = "system:serviceaccount:" + systemNamespace + ":cloudstack-extension"
	managedNamespace   = "cloudstack-host-1" // bound for the extension by manifests/examples/namespace
)

var serviceAccountGroups = []string{"system:serviceaccounts", "system:serviceaccounts:" + systemNamespace, "system:authenticated"}

// needsEnvtest skips tests that make identities or run the reconciler themselves: on a real cluster the
// reconciler is deployed from manifests/ and the suite is handed one kubeconfig.
func needsEnvtest(t *testing.T) {
	t.Helper()
	if s.env == nil {
		t.Skip("runs its own reconciler and identities: envtest only")
	}
}

// applyManifests creates what the manifests' YAML files hold (RBAC, ServiceAccounts, Namespaces), as kubectl
// apply would on a fresh cluster.
func applyManifests(t *testing.T, files ...string) {
	t.Helper()
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(repoRoot(), "manifests", f))
		require.NoError(t, err)
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for {
			obj := &unstructured.Unstructured{}
			if err := dec.Decode(&obj.Object); errors.Is(err, io.EOF) {
				break
			} else {
				require.NoError(t, err, f)
			}
			if len(obj.Object) == 0 {
				continue
			}
			if err := s.client.Create(t.Context(), obj); err != nil && !kerrors.IsAlreadyExists(err) {
				require.NoError(t, err, "%s: %s %s", f, obj.GetKind(), obj.GetName())
			}
		}
	}
}

func applyAllRBAC(t *testing.T) {
	t.Helper()
	applyManifests(t, "reconciler/namespace.yaml", "reconciler/serviceaccount.yaml", "reconciler/rbac.yaml", "reconciler/admission-policy.yaml",
		"extension-rbac/serviceaccount.yaml", "extension-rbac/clusterrole.yaml", "extension-rbac/cluster-read.yaml",
		"extension-rbac/heartbeat-read.yaml", "examples/namespace/namespace.yaml", "examples/namespace/rolebinding.yaml")
}

// runningReconciler is cmd/reconciler in a process of its own, as the given identity.
type runningReconciler struct {
	cmd  *exec.Cmd
	done chan error
	log  *bytes.Buffer
}

func startReconcilerProcess(t *testing.T, identity string, namespaces ...string) *runningReconciler {
	t.Helper()
	kubeconfig, err := s.env.KubeconfigFor(identity, serviceAccountGroups)
	require.NoError(t, err)
	r := &runningReconciler{done: make(chan error, 1), log: &bytes.Buffer{}}
	r.cmd = exec.Command(s.reconciler, "--kubeconfig="+kubeconfig, "--namespaces="+strings.Join(namespaces, ","),
		"--metrics-bind-address=0", "--health-probe-bind-address=0", "--heartbeat-interval=200ms",
		"--heartbeat-duration=2s", "--identity=e2e-reconciler", "--log-level=debug")
	r.cmd.Stdout, r.cmd.Stderr = r.log, r.log
	require.NoError(t, r.cmd.Start())
	go func() { r.done <- r.cmd.Wait() }()
	t.Cleanup(func() {
		r.signal(syscall.SIGTERM)
		if t.Failed() {
			t.Logf("reconciler log:\n%s", r.log)
		}
	})
	return r
}

// signal sends sig and waits for the process to end.
func (r *runningReconciler) signal(sig syscall.Signal) {
	if r.cmd.ProcessState != nil {
		return
	}
	_ = r.cmd.Process.Signal(sig)
	select {
	case <-r.done:
	case <-time.After(30 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
	}
}

// hostWithLog is ns's host with a log file of its own, so the test can read how each answer was decided.
func hostWithLog(t *testing.T, ns string) (cloudstacksim.Host, string) {
	h := host(ns)
	logFile := filepath.Join(t.TempDir(), "extension.log")
	h.Extension = map[string]string{"log_file": logFile}
	return h, logFile
}

// lastSource is the source of the latest status or statuses answer in the extension's log.
func lastSource(t *testing.T, logFile string) string {
	t.Helper()
	data, err := os.ReadFile(logFile)
	require.NoError(t, err)
	source := ""
	for _, line := range strings.Split(string(data), "\n") {
		if i := strings.Index(line, " source="); i >= 0 {
			source = strings.Fields(line[i+len(" source="):])[0]
		}
	}
	return source
}

func heartbeatLease(ctx context.Context, name string) (*coordinationv1.Lease, error) {
	l := &coordinationv1.Lease{}
	err := s.client.Get(ctx, client.ObjectKey{Namespace: systemNamespace, Name: name}, l)
	return l, err
}

// waitHeartbeatFresh waits until the heartbeat Lease name, in the reconciler's namespace, is fresh.
func waitHeartbeatFresh(ctx context.Context, name string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		l, err := heartbeatLease(ctx, name)
		if err == nil && kube.HeartbeatFromLease(l).FreshAt(time.Now()) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the reconciler's heartbeat %s did not turn fresh within %v", name, timeout)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func waitFreshHeartbeat(t *testing.T) {
	t.Helper()
	require.NoError(t, waitHeartbeatFresh(t.Context(), translate.DefaultReconcilerLease.Name, 60*time.Second))
}

func waitLabel(t *testing.T, ns, name string, want translate.PowerState) {
	t.Helper()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		vm, err := getVM(context.Background(), ns, name)
		require.NoError(c, err)
		assert.Equal(c, string(want), vm.Labels[translate.LabelPowerState])
	}, 30*time.Second, 50*time.Millisecond)
}

// TestLeastPrivilege runs every action as the identities manifests/ creates, and shows what they are refused.
func TestLeastPrivilege(t *testing.T) {
	needsEnvtest(t)
	applyAllRBAC(t)
	namespace(t, managedNamespace) // as admin: the NetworkAttachmentDefinitions the NICs use
	rec := startReconcilerProcess(t, reconcilerIdentity, managedNamespace)

	kubeconfig, err := s.env.KubeconfigFor(extensionIdentity, serviceAccountGroups)
	require.NoError(t, err)
	h, logFile := hostWithLog(t, managedNamespace)
	h.Host["kubeconfig"] = kubeconfig
	in := instance(map[string]string{"image": "quay.io/containerdisks/fedora:41"})
	name := vmName(in)

	t.Run("the extension's identity runs every action", func(t *testing.T) {
		requireSuccess(t, call(t, h, "prepare", in))
		requireSuccess(t, call(t, h, "create", in))
		waitLabel(t, managedNamespace, name, translate.PowerOn)
		waitFreshHeartbeat(t)
		assert.Equal(t, cloudstacksim.PowerOn, cloudstacksim.ParseStatus(call(t, h, "status", in)))
		assert.Equal(t, "labels", lastSource(t, logFile), "the heartbeat Lease is readable by the extension")
		requireSuccess(t, call(t, h, "stop", in))
		waitLabel(t, managedNamespace, name, translate.PowerOff)
		assert.Equal(t, map[string]string{in.Name: cloudstacksim.PowerOff}, statuses(t, h))
		requireSuccess(t, call(t, h, "start", in))
		requireSuccess(t, call(t, h, "reboot", in))
		requireSuccess(t, call(t, h, "delete", in))
		assert.Zero(t, managedObjects(t, managedNamespace, in.UUID))
	})

	t.Run("the extension's identity runs every custom action", func(t *testing.T) {
		leastPrivilegeCustomActions(t, h)
	})

	t.Run("the extension's identity is refused outside its namespaces", func(t *testing.T) {
		namespace(t, "e2e-other")
		other := host("e2e-other")
		other.Host["kubeconfig"] = kubeconfig
		res := call(t, other, "create", instance(map[string]string{"image": "quay.io/containerdisks/fedora:41"}))
		requireFailure(t, res, "forbidden")
		c := clientAs(t, extensionIdentity)
		err := c.List(t.Context(), &corev1.SecretList{}, client.InNamespace(managedNamespace))
		assert.True(t, kerrors.IsForbidden(err), "Secrets: %v", err)
		err = c.Update(t.Context(), &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: systemNamespace, Name: translate.DefaultReconcilerLease.Name}})
		assert.True(t, kerrors.IsForbidden(err), "writing the heartbeat: %v", err)
	})

	t.Run("the reconciler's identity may label VMs but not change them", func(t *testing.T) {
		c := clientAs(t, reconcilerIdentity)
		var vms kubevirtv1.VirtualMachineList
		require.NoError(t, c.List(t.Context(), &vms, client.InNamespace(managedNamespace)))
		err := c.Create(t.Context(), &kubevirtv1.VirtualMachine{ObjectMeta: metav1.ObjectMeta{Namespace: managedNamespace, Name: "intruder"}})
		assert.True(t, kerrors.IsForbidden(err), "creating a VM: %v", err)
		err = c.DeleteAllOf(t.Context(), &kubevirtv1.VirtualMachine{}, client.InNamespace(managedNamespace))
		assert.True(t, kerrors.IsForbidden(err), "deleting VMs: %v", err)
		err = c.List(t.Context(), &corev1.SecretList{}, client.InNamespace(systemNamespace))
		assert.True(t, kerrors.IsForbidden(err), "Secrets: %v", err)
		err = c.Get(t.Context(), client.ObjectKey{Namespace: "kube-system", Name: "other-lease"}, &coordinationv1.Lease{})
		assert.True(t, kerrors.IsForbidden(err), "other Leases: %v", err)
	})
	assert.NotContains(t, rec.log.String(), "forbidden", "the reconciler never hit a permission it lacks")
}

func clientAs(t *testing.T, user string) client.Client {
	t.Helper()
	cfg, err := s.env.ConfigFor(user, serviceAccountGroups)
	require.NoError(t, err)
	c, err := newAdminClient(cfg)
	require.NoError(t, err)
	return c
}

// TestStatusFromLabels shows both paths of status and statuses: from the reconciler's labels while its
// heartbeat is fresh, and from the objects otherwise, including after the reconciler is killed.
func TestStatusFromLabels(t *testing.T) {
	needsEnvtest(t)
	applyAllRBAC(t)
	const ns = "e2e-labels"
	namespace(t, ns)
	h, logFile := hostWithLog(t, ns)
	running := instance(map[string]string{"image": "quay.io/containerdisks/fedora:41", "run_strategy": "RerunOnFailure"})
	stopped := instance(map[string]string{"image": "quay.io/containerdisks/fedora:41"})
	for _, in := range []cloudstacksim.Instance{running, stopped} {
		requireSuccess(t, call(t, h, "create", in))
	}
	requireSuccess(t, call(t, h, "stop", stopped))
	truth := map[string]string{running.Name: cloudstacksim.PowerOn, stopped.Name: cloudstacksim.PowerOff}

	t.Run("no reconciler: from the objects", func(t *testing.T) {
		assert.Equal(t, truth, statuses(t, h))
		assert.Equal(t, "objects", lastSource(t, logFile))
	})

	rec := startReconcilerProcess(t, reconcilerIdentity, ns)
	waitLabel(t, ns, vmName(running), translate.PowerOn)
	waitLabel(t, ns, vmName(stopped), translate.PowerOff)
	waitFreshHeartbeat(t)

	t.Run("fresh heartbeat: from the labels, same answer", func(t *testing.T) {
		assert.Equal(t, truth, statuses(t, h))
		assert.Equal(t, "labels", lastSource(t, logFile))
		assert.Equal(t, cloudstacksim.PowerOff, cloudstacksim.ParseStatus(call(t, h, "status", stopped)))
		assert.Equal(t, "labels", lastSource(t, logFile))
	})

	t.Run("a start the reconciler has not labelled yet is seen at once", func(t *testing.T) {
		// start changes the VM's generation: a label from the older generation is not trusted, whatever the lag.
		requireSuccess(t, call(t, h, "start", stopped))
		assert.Equal(t, cloudstacksim.PowerOn, cloudstacksim.ParseStatus(call(t, h, "status", stopped)))
		assert.Equal(t, map[string]string{running.Name: cloudstacksim.PowerOn, stopped.Name: cloudstacksim.PowerOn}, statuses(t, h))
	})

	t.Run("reconciler killed: from the objects once its heartbeat lapses", func(t *testing.T) {
		rec.signal(syscall.SIGKILL)
		killed := time.Now()
		// Out of band, with nobody to label it: the guest shuts itself down.
		require.NoError(t, s.sim.GuestShutdown(t.Context(), ns, vmName(running)))
		want := map[string]string{running.Name: cloudstacksim.PowerOff, stopped.Name: cloudstacksim.PowerOn}
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			assert.Equal(c, want, statuses(t, h))
		}, 10*time.Second, 200*time.Millisecond)
		assert.Equal(t, "objects", lastSource(t, logFile))
		assert.Less(t, time.Since(killed), 2*time.Second+2*time.Second, "within the heartbeat duration and the clock tolerance")
		vm, err := getVM(t.Context(), ns, vmName(running))
		require.NoError(t, err)
		assert.Equal(t, string(translate.PowerOn), vm.Labels[translate.LabelPowerState], "the stale label is still there")
	})

	t.Run("clean stop: the heartbeat is released at once", func(t *testing.T) {
		rec := startReconcilerProcess(t, reconcilerIdentity, ns)
		waitLabel(t, ns, vmName(running), translate.PowerOff)
		waitFreshHeartbeat(t)
		statuses(t, h)
		assert.Equal(t, "labels", lastSource(t, logFile))
		rec.signal(syscall.SIGTERM)
		l, err := heartbeatLease(t.Context(), translate.DefaultReconcilerLease.Name)
		require.NoError(t, err)
		assert.False(t, kube.HeartbeatFromLease(l).FreshAt(time.Now()), "released")
		statuses(t, h)
		assert.Equal(t, "objects", lastSource(t, logFile))
	})

	t.Run("a heartbeat for other namespaces does not count", func(t *testing.T) {
		rec := startReconcilerProcess(t, reconcilerIdentity, "e2e-elsewhere")
		waitFreshHeartbeat(t)
		statuses(t, h)
		assert.Equal(t, "objects", lastSource(t, logFile))
		rec.signal(syscall.SIGTERM)
	})
	for _, in := range []cloudstacksim.Instance{running, stopped} {
		requireSuccess(t, call(t, h, "delete", in))
	}
}
