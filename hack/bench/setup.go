package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/kube"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/cloudstacksim"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/fixture"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/testenv"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

type bench struct {
	env        *testenv.Env
	work       string
	impls      impls
	runs       int
	kubeconfig string
	home       string // the management server user's home, where the extension keeps its listings
}

const opsNamespace = "bench-ops"

func sizeNamespace(n int) string { return "bench-" + strconv.Itoa(n) }

// setUp loads the API server: a namespace per size with that many managed VMs (every even one running, with
// a VMI; the odd ones Halted), each already labelled as the reconciler would, and a namespace for the
// create/stop/start/delete runs.
func (b *bench) setUp(ctx context.Context, sizes []int) error {
	b.kubeconfig = filepath.Join(b.work, "kubeconfig")
	if err := b.env.WriteKubeconfig(b.kubeconfig); err != nil {
		return err
	}
	for _, ns := range append(namespaces(sizes), opsNamespace, translate.DefaultReconcilerLease.Namespace) {
		if err := fixture.HostNamespace(ctx, b.env.Client, ns, 1577); err != nil {
			return err
		}
	}
	for _, n := range sizes {
		step("loading %d VMs into %s", n, sizeNamespace(n))
		start := time.Now()
		if err := fixture.Parallel(n, 16, func(i int) error { return b.createVM(ctx, sizeNamespace(n), i, i%2 == 0) }); err != nil {
			return err
		}
		step("  in %v", time.Since(start).Round(time.Second))
	}
	return nil
}

func namespaces(sizes []int) []string {
	var out []string
	for _, n := range sizes {
		out = append(out, sizeNamespace(n))
	}
	return out
}

// instance is the i-th CloudStack Instance of a namespace.
func instance(ns string, i int) cloudstacksim.Instance {
	id := int64(10_000_000 + i)
	return cloudstacksim.Instance{
		ID: id, Name: fmt.Sprintf("i-2-%d-VM", id), UUID: fmt.Sprintf("be9c0000-0000-4000-8000-%012d", id),
		CPUs: 2, MemoryMB: 2048, Details: map[string]string{"image": "quay.io/containerdisks/fedora:43"},
		NICs: []cloudstacksim.NIC{{MAC: fmt.Sprintf("02:be:%02x:%02x:%02x:%02x", len(ns), id>>16&255, id>>8&255, id&255), IP: "10.1.1.10", BroadcastURI: "vlan://1577"}},
	}
}

// host is a CloudStack host mapped to ns. lease is the reconciler_lease detail ("none": always the objects).
func (b *bench) host(ns, lease string) cloudstacksim.Host {
	return cloudstacksim.Host{
		Host:      map[string]string{"kubeconfig": b.kubeconfig, "namespace": ns, "wait_until_running": "false"},
		Extension: map[string]string{"log_file": filepath.Join(b.work, "extension.log"), "reconciler_lease": lease},
	}
}

// desiredVM is the VirtualMachine the extension creates for the i-th Instance of ns.
func (b *bench) desiredVM(ns string, i int) (*kubevirtv1.VirtualMachine, error) {
	data, err := cloudstacksim.GsonJSON(b.host(ns, "none").Payload("create", instance(ns, i)))
	if err != nil {
		return nil, err
	}
	p, err := translate.ParsePayload(data)
	if err != nil {
		return nil, err
	}
	spec, err := p.Details().Spec()
	if err != nil {
		return nil, err
	}
	return translate.VirtualMachine(p, ns, spec)
}

// createVM creates the i-th VM as the extension would, with the reconciler's label, and a VMI if running.
func (b *bench) createVM(ctx context.Context, ns string, i int, running bool) error {
	vm, err := b.desiredVM(ns, i)
	if err != nil {
		return err
	}
	state := translate.PowerOn
	if !running {
		vm.Spec.RunStrategy = ptrTo(kubevirtv1.RunStrategyHalted)
		state = translate.PowerOff
	}
	vm.Labels[translate.LabelPowerState] = string(state)
	vm.Annotations = map[string]string{translate.AnnotationPowerStateGeneration: "1"} // a new object's generation
	if err := b.env.Client.Create(ctx, vm); err != nil && !kerrors.IsAlreadyExists(err) {
		return err
	}
	if !running {
		return nil
	}
	vmi := &kubevirtv1.VirtualMachineInstance{
		ObjectMeta: metav1.ObjectMeta{Name: vm.Name, Namespace: ns, Labels: vm.Spec.Template.ObjectMeta.Labels},
		Spec:       vm.Spec.Template.Spec,
		Status:     kubevirtv1.VirtualMachineInstanceStatus{Phase: kubevirtv1.Running},
	}
	if err := b.env.Client.Create(ctx, vmi); err != nil && !kerrors.IsAlreadyExists(err) {
		return err
	}
	return nil
}

func ptrTo[T any](v T) *T { return &v }

// writePayload writes what CloudStack would write for the call, as Gson writes it.
func (b *bench) writePayload(name string, payload any) (string, error) {
	data, err := cloudstacksim.GsonJSON(payload)
	if err != nil {
		return "", err
	}
	path := filepath.Join(b.work, name+".json")
	return path, os.WriteFile(path, data, 0o600)
}

// writeVMJSON writes the VM the floor POSTs for create.
func (b *bench) writeVMJSON(ns string, i int) (string, error) {
	vm, err := b.desiredVM(ns, i)
	if err != nil {
		return "", err
	}
	vm.APIVersion, vm.Kind = kubevirtv1.GroupVersion.String(), "VirtualMachine"
	data, err := json.Marshal(vm)
	if err != nil {
		return "", err
	}
	path := filepath.Join(b.work, fmt.Sprintf("vm-%s-%d.json", ns, i))
	return path, os.WriteFile(path, data, 0o600)
}

// heartbeat stands in for the reconciler: it keeps its Lease fresh until ctx ends, so the extension answers
// from the labels setUp wrote.
func (b *bench) heartbeat(ctx context.Context) error {
	ref := translate.DefaultReconcilerLease
	renew := func() error {
		l := &coordinationv1.Lease{}
		err := b.env.Client.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, l)
		beat := kube.Heartbeat{Holder: "bench", Renewed: time.Now(), Duration: 10 * time.Second}
		if kerrors.IsNotFound(err) {
			l.Name, l.Namespace = ref.Name, ref.Namespace
			beat.WriteTo(l)
			return b.env.Client.Create(ctx, l)
		}
		if err != nil {
			return err
		}
		beat.WriteTo(l)
		return b.env.Client.Update(ctx, l)
	}
	if err := renew(); err != nil {
		return err
	}
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(2 * time.Second):
				_ = renew()
			}
		}
	}()
	return nil
}
