package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/cloudstacksim"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/fixture"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/testenv"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

const (
	scaleNamespace = "e2e-scale" // served by nothing: the test writes the state it wants
	scaleVMs       = 5000
)

var scaleOnce sync.Once

// scale is where the 5,000 VMs live: on envtest, an API server of their own that no controller serves, because
// KubeVirt's VM controller serves every namespace of the suite's API server and would spend minutes on them,
// queuing the VMs of every test after; on a real cluster, the suite's.
var scale struct {
	client     client.Client
	kubeconfig string
}

// scaleHost is host(scaleNamespace) on the scale tests' API server.
func scaleHost() cloudstacksim.Host {
	h := host(scaleNamespace)
	h.Host["kubeconfig"] = scale.kubeconfig
	return h
}

// startScaleServer starts the scale tests' own API server, stopped with the suite.
func startScaleServer(ctx context.Context) error {
	if s.env == nil {
		scale.client, scale.kubeconfig = s.client, s.kubeconfig
		return nil
	}
	env, err := testenv.Start(ctx, testenv.Options{NoAdmission: true})
	if err != nil {
		return err
	}
	cleanups = append(cleanups, func() { _ = env.Stop() })
	scale.client, scale.kubeconfig = env.Client, filepath.Join(filepath.Dir(s.payloads), "scale-kubeconfig")
	return env.WriteKubeconfig(scale.kubeconfig)
}

// populateScale creates scaleVMs VirtualMachines as the extension would (full specs, so lists cost what they
// cost in production); every even one has a running VMI, every odd one is Halted.
func populateScale(tb testing.TB) {
	scaleOnce.Do(func() {
		ctx := context.Background()
		if err := startScaleServer(ctx); err != nil {
			tb.Fatal(err)
		}
		if err := scale.client.Create(ctx, namespaceObject(scaleNamespace)); err != nil && !isAlreadyExists(err) {
			tb.Fatal(err)
		}
		if err := fixture.Parallel(scaleVMs, 16, func(i int) error {
			in := scaleInstance(i)
			if i%2 == 1 {
				return createVMWithVMI(ctx, scale.client, scaleNamespace, in, "")
			}
			return createVMWithVMI(ctx, scale.client, scaleNamespace, in, kubevirtv1.Running)
		}); err != nil {
			tb.Fatal(err)
		}
	})
}

func scaleInstance(i int) cloudstacksim.Instance {
	in := instance(map[string]string{"image": "quay.io/containerdisks/fedora:43"})
	in.ID = int64(100000 + i)
	in.Name = fmt.Sprintf("i-2-%d-VM", in.ID)
	in.UUID = fmt.Sprintf("5ca1ab1e-0000-4000-8000-%012d", in.ID)
	return in
}

// createVMWithVMI creates the VM the extension would create for in with a VMI in phase, as KubeVirt would;
// an empty phase makes a Halted VM with no VMI.
func createVMWithVMI(ctx context.Context, c client.Client, ns string, in cloudstacksim.Instance, phase kubevirtv1.VirtualMachineInstancePhase) error {
	p, err := translate.ParsePayload(mustGson(host(ns).Payload("create", in)))
	if err != nil {
		return err
	}
	spec, err := p.Details().Spec()
	if err != nil {
		return err
	}
	if phase == "" {
		spec.RunStrategy = kubevirtv1.RunStrategyHalted
	}
	vm, err := translate.VirtualMachine(p, ns, spec)
	if err != nil {
		return err
	}
	if err := c.Create(ctx, vm); err != nil || phase == "" {
		return err
	}
	vmi := &kubevirtv1.VirtualMachineInstance{
		ObjectMeta: metav1.ObjectMeta{Name: vm.Name, Namespace: vm.Namespace, Labels: vm.Spec.Template.ObjectMeta.Labels},
		Spec:       vm.Spec.Template.Spec,
		Status:     kubevirtv1.VirtualMachineInstanceStatus{Phase: phase}, // no status subresource on VMIs
	}
	return c.Create(ctx, vmi)
}

func mustGson(v any) []byte {
	data, err := cloudstacksim.GsonJSON(v)
	if err != nil {
		return nil // ParsePayload reports the empty payload
	}
	return data
}

// TestStatusesAtScale: a namespace of 5,000 VMs answers in one process, although the answer is more than
// twice the 64 KiB a pipe holds by default and CloudStack reads nothing until the process has exited.
func TestStatusesAtScale(t *testing.T) {
	if testing.Short() {
		t.Skip("creates 5,000 VirtualMachines")
	}
	populateScale(t)
	res, err := provisioner().Run(t.Context(), "statuses", scaleHost().StatusesPayload(), callTimeout)
	require.NoError(t, err)
	t.Logf("statuses of %d VMs: exit %d in %s, %d bytes", scaleVMs, res.ExitCode, res.Elapsed, len(res.Output))
	assert.Greater(t, len(res.Output), 64<<10, "the answer exceeds the default pipe size")
	states, err := cloudstacksim.ParseStatuses(res)
	require.NoError(t, err)
	require.Len(t, states, scaleVMs)
	for i := range scaleVMs {
		want := cloudstacksim.PowerOn
		if i%2 == 1 {
			want = cloudstacksim.PowerOff
		}
		require.Equal(t, want, states[scaleInstance(i).Name], "VM %d", i)
	}
}

// BenchmarkStatuses measures one whole statuses process over a namespace of 5,000 VMs, as CloudStack 4.22
// runs it on every host ping.
func BenchmarkStatuses(b *testing.B) {
	populateScale(b)
	payload := scaleHost().StatusesPayload()
	for b.Loop() {
		res, err := provisioner().Run(b.Context(), "statuses", payload, callTimeout)
		if err != nil || !res.Succeeded() {
			b.Fatalf("%v %s", err, res.Details())
		}
	}
}

// BenchmarkStatus measures one whole status process, as CloudStack 4.21 runs it for every VM on every ping.
func BenchmarkStatus(b *testing.B) {
	populateScale(b)
	payload := scaleHost().Payload("status", scaleInstance(0))
	for b.Loop() {
		res, err := provisioner().Run(b.Context(), "status", payload, callTimeout)
		if err != nil || cloudstacksim.ParseStatus(res) != cloudstacksim.PowerOn {
			b.Fatalf("%v %s", err, res.Details())
		}
	}
}
