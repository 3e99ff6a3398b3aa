package e2e

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/cloudstacksim"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

// TestManyManagementServers: CloudStack runs on several management servers, each running the extension for
// its jobs. 50 creates of distinct Instances and 10 of the same Instance, all at once, all succeed and leave
// exactly one VM per Instance.
func TestManyManagementServers(t *testing.T) {
	if testing.Short() {
		t.Skip("60 concurrent processes")
	}
	const ns = "e2e-concurrency"
	namespace(t, ns)
	h := host(ns)
	distinct := make([]cloudstacksim.Instance, 50)
	for i := range distinct {
		distinct[i] = instance(map[string]string{"image": "quay.io/containerdisks/fedora:43"})
	}
	same := instance(map[string]string{"image": "quay.io/containerdisks/fedora:43"})
	calls := append(append([]cloudstacksim.Instance{}, distinct...), repeat(same, 10)...)

	results := make([]cloudstacksim.Result, len(calls))
	var wg sync.WaitGroup
	for i, in := range calls {
		wg.Go(func() {
			res, err := provisioner().Run(t.Context(), "create", h.Payload("create", in), callTimeout)
			assert.NoError(t, err)
			results[i] = res
		})
	}
	wg.Wait()
	for i, res := range results {
		assert.True(t, res.Succeeded(), "call %d (%s): %s", i, calls[i].Name, res.Details())
	}

	var vms kubevirtv1.VirtualMachineList
	require.NoError(t, s.client.List(t.Context(), &vms, client.InNamespace(ns)))
	perInstance := map[string]int{}
	for _, vm := range vms.Items {
		perInstance[vm.Labels[translate.LabelInstanceUUID]]++
	}
	require.Len(t, perInstance, len(distinct)+1)
	for _, in := range append(distinct, same) {
		assert.Equal(t, 1, perInstance[in.UUID], in.Name)
	}
	for _, in := range append(distinct, same) {
		requireSuccess(t, call(t, h, "delete", in))
	}
}

func repeat(in cloudstacksim.Instance, n int) []cloudstacksim.Instance {
	out := make([]cloudstacksim.Instance, n)
	for i := range out {
		out[i] = in
	}
	return out
}
