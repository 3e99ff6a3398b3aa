package e2e

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/cloudstacksim"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

// A heartbeat Lease forged to last a year, by whoever may write Leases in the reconciler's namespace, is trusted
// for kube.MaxHeartbeatDuration (a minute) after its renewal and no longer: a stale label that says off is not
// what CloudStack is told about a running Instance.
func TestForgedHeartbeatLeaseIsCapped(t *testing.T) {
	needsEnvtest(t)
	applyAllRBAC(t)
	const ns, lease = "e2e-other", "e2e-forged-heartbeat"
	namespace(t, ns)
	h, logFile := hostWithLog(t, ns)
	h.Extension["reconciler_lease"] = systemNamespace + "/" + lease
	in := instance(map[string]string{"image": "quay.io/containerdisks/fedora:43"})
	requireSuccess(t, call(t, h, "create", in))
	forgeLabel(t, ns, vmName(in), translate.PowerOff)

	tests := []struct {
		name    string
		renewed time.Duration // before now
		want    string
		source  string
	}{
		{"renewed two minutes ago: past the cap, from the objects", 2 * time.Minute, cloudstacksim.PowerOn, "objects"},
		{"renewed now: within the cap, from the (forged) labels", 0, cloudstacksim.PowerOff, "labels"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forgeLease(t, lease, time.Now().Add(-tt.renewed), 365*24*time.Hour)
			assert.Equal(t, tt.want, cloudstacksim.ParseStatus(call(t, h, "status", in)))
			assert.Equal(t, tt.source, lastSource(t, logFile))
		})
	}
}

// forgeLabel sets the VM's power-state label to state, for its current generation, as a reconciler would.
func forgeLabel(t *testing.T, ns, name string, state translate.PowerState) {
	t.Helper()
	vm, err := getVM(t.Context(), ns, name)
	require.NoError(t, err)
	patch := client.MergeFrom(vm.DeepCopy())
	metav1.SetMetaDataLabel(&vm.ObjectMeta, translate.LabelPowerState, string(state))
	metav1.SetMetaDataAnnotation(&vm.ObjectMeta, translate.AnnotationPowerStateGeneration, strconv.FormatInt(vm.Generation, 10))
	require.NoError(t, s.client.Patch(t.Context(), vm, patch))
}

// forgeLease writes the heartbeat Lease name, covering every namespace, renewed at renewed for duration.
func forgeLease(t *testing.T, name string, renewed time.Time, duration time.Duration) {
	t.Helper()
	l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: systemNamespace, Name: name}}
	_, err := controllerutil.CreateOrUpdate(t.Context(), s.client, l, func() error {
		l.Spec.HolderIdentity = ptr.To("forger")
		l.Spec.RenewTime = &metav1.MicroTime{Time: renewed}
		l.Spec.LeaseDurationSeconds = ptr.To(int32(duration / time.Second))
		return nil
	})
	require.NoError(t, err)
}
