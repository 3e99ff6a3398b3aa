package manifests

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/kube/powerstate"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/testenv"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

const (
	systemNamespace = "cloudstack-kubevirt-system"
	reconcilerUser  = "system:serviceaccount:" + systemNamespace + ":cloudstack-kubevirt-reconciler"
)

// TestReconcilerPolicy applies manifests/reconciler to an API server and acts as the reconciler's ServiceAccount
// (impersonated): RBAC lets it patch any VirtualMachine, and the ValidatingAdmissionPolicy holds it to the
// power-state label and annotations of the VMs CloudStack manages, while the admin stays unaffected. The real
// reconciler, under that identity, still labels a VM.
func TestReconcilerPolicy(t *testing.T) {
	// KubeVirt's webhooks are left out: what is refused here is refused by the policy alone.
	env := testenv.ForTestWith(t, testenv.Options{NoAdmission: true})
	createAll(t, env, render(t, "reconciler"))
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "policy-"}}
	require.NoError(t, env.Client.Create(t.Context(), ns))
	managed := createVM(t, env, ns.Name, "managed", map[string]string{
		translate.LabelManagedBy: translate.ManagedBy, translate.LabelInstanceName: "i-2-45-VM",
	})
	unmanaged := createVM(t, env, ns.Name, "unmanaged", nil)
	reconciler, err := client.New(reconcilerConfig(env), client.Options{Scheme: env.Scheme})
	require.NoError(t, err)

	// The API server loads policies and RBAC bindings through informers: wait until both are in force. Each try
	// changes the spec anew: a change that slipped through before the policy was loaded would make the same patch a
	// no-op, which the policy rightly lets through.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.NoError(c, mergePatch(t, reconciler, managed, labelPatch("poweroff", "1")), "RBAC allows the reconciler's own patch")
		assert.ErrorContains(c, mergePatch(t, reconciler, managed, specPatch()), "may not change a VirtualMachine's spec")
	}, 20*time.Second, 100*time.Millisecond, "the policy is enforced")

	tests := []struct {
		name    string
		as      client.Client
		vm      types.NamespacedName
		patch   string
		wantErr string
	}{
		{"its label and annotations", reconciler, managed, labelPatch("poweron", "2"), ""},
		{"the spec", reconciler, managed, specPatch(), "may not change a VirtualMachine's spec"},
		{"another label", reconciler, managed, `{"metadata":{"labels":{"` + translate.LabelInstanceName + `":"i-2-46-VM"}}}`, "may change no label but " + translate.LabelPowerState},
		{"a new label", reconciler, managed, `{"metadata":{"labels":{"team":"x"}}}`, "may change no label but"},
		{"CloudStack's mark removed", reconciler, managed, `{"metadata":{"labels":{"` + translate.LabelManagedBy + `":null}}}`, "may change no label but"},
		{"another annotation", reconciler, managed, `{"metadata":{"annotations":{"kubevirt.io/latest-observed-api-version":"v1"}}}`, "may change no annotation but"},
		{"a finalizer", reconciler, managed, `{"metadata":{"finalizers":["example.com/hold"]}}`, "may change no metadata but"},
		{"its label on a VM CloudStack does not manage", reconciler, unmanaged, labelPatch("poweron", "1"), "only the VirtualMachines CloudStack manages"},
		{"the admin: the spec", env.Client, managed, specPatch(), ""},
		{"the admin: another label", env.Client, managed, `{"metadata":{"labels":{"team":"x"}}}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := mergePatch(t, tt.as, tt.vm, tt.patch)
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.wantErr)
			assert.Contains(t, err.Error(), "ValidatingAdmissionPolicy 'cloudstack-kubevirt-reconciler'")
		})
	}

	t.Run("the reconciler labels a VM under the policy", func(t *testing.T) {
		runReconciler(t, reconcilerConfig(env))
		fresh := createVM(t, env, ns.Name, "fresh", map[string]string{translate.LabelManagedBy: translate.ManagedBy})
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			vm := &kubevirtv1.VirtualMachine{}
			require.NoError(c, env.Client.Get(t.Context(), fresh, vm))
			assert.Equal(c, string(translate.PowerOff), vm.Labels[translate.LabelPowerState])
		}, 30*time.Second, 100*time.Millisecond)
	})
}

// createAll creates what kustomize rendered, Namespaces first, as kubectl apply orders them.
func createAll(t *testing.T, env *testenv.Env, objs []*unstructured.Unstructured) {
	t.Helper()
	for _, pass := range []bool{true, false} {
		for _, o := range objs {
			if (o.GetKind() == "Namespace") != pass {
				continue
			}
			require.NoError(t, env.Client.Create(t.Context(), o), "%s %s", o.GetKind(), o.GetName())
		}
	}
}

func createVM(t *testing.T, env *testenv.Env, ns, name string, labels map[string]string) types.NamespacedName {
	t.Helper()
	vm := &kubevirtv1.VirtualMachine{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec: kubevirtv1.VirtualMachineSpec{
			RunStrategy: ptr.To(kubevirtv1.RunStrategyHalted),
			Template: &kubevirtv1.VirtualMachineInstanceTemplateSpec{Spec: kubevirtv1.VirtualMachineInstanceSpec{
				Domain: kubevirtv1.DomainSpec{Resources: kubevirtv1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi")},
				}},
			}},
		},
	}
	require.NoError(t, env.Client.Create(t.Context(), vm))
	return client.ObjectKeyFromObject(vm)
}

// reconcilerConfig reaches the API server as the reconciler's ServiceAccount, with the groups the API server gives
// a ServiceAccount: the admin impersonates it, so RBAC and the policy judge the reconciler, not the admin.
func reconcilerConfig(env *testenv.Env) *rest.Config {
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{
		UserName: reconcilerUser,
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + systemNamespace, "system:authenticated"},
	}
	return cfg
}

// labelPatch is the reconciler's own merge patch (kube/powerstate's Reconciler.patch), without its
// resourceVersion precondition.
func labelPatch(state, generation string) string {
	body, _ := json.Marshal(map[string]any{"metadata": map[string]any{
		"labels": map[string]string{translate.LabelPowerState: state},
		"annotations": map[string]string{
			translate.AnnotationPowerStateGeneration: generation,
			translate.AnnotationPowerStateChanged:    "2026-11-30T00:00:00Z",
		},
	}})
	return string(body)
}

// specPatch changes the VM's spec to a value it never had: an annotation of its VMI template.
func specPatch() string {
	return fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{"example.com/change":"%d"}}}}}`, time.Now().UnixNano())
}

func mergePatch(t *testing.T, c client.Client, key types.NamespacedName, patch string) error {
	vm := &kubevirtv1.VirtualMachine{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}
	return c.Patch(t.Context(), vm, client.RawPatch(types.MergePatchType, []byte(patch)))
}

// runReconciler runs the reconciler with the manifests' Lease names (the only ones its Role lets it renew) until
// the test ends.
func runReconciler(t *testing.T, cfg *rest.Config) {
	t.Helper()
	mgr, err := powerstate.NewManager(cfg, powerstate.Config{
		HeartbeatNamespace: systemNamespace, HeartbeatLease: translate.DefaultReconcilerLease.Name,
		HeartbeatInterval: 200 * time.Millisecond, HeartbeatDuration: 2 * time.Second,
		Identity: "reconciler-0", LeaderElection: true, LeaderElectionID: "cloudstack-kubevirt-reconciler-leader",
		MetricsAddr: "0", ProbeAddr: "0", Workers: 1, Registry: prometheus.NewRegistry(),
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, <-done)
	})
}
