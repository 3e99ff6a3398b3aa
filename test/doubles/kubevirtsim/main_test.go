package kubevirtsim_test

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/kubevirtsim"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/testenv"
)

// env is shared by every test of the package; each test gets its own namespace and its own simulator.
var env *testenv.Env

func TestMain(m *testing.M) {
	start := time.Now()
	os.Exit(testenv.Main(m, testenv.Options{}, func(e *testenv.Env) {
		fmt.Printf("envtest started in %v\n", time.Since(start).Round(time.Millisecond))
		env = e
	}))
}

// startSim starts a simulator limited to a new namespace and returns both. The simulator stops with the test.
func startSim(t *testing.T, opts kubevirtsim.Options) (*kubevirtsim.Sim, string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "sim-"}}
	require.NoError(t, env.Client.Create(t.Context(), ns))
	opts.Namespaces = []string{ns.Name}
	opts.Logger = testr.NewWithOptions(t, testr.Options{LogTimestamp: true})
	sim, err := kubevirtsim.Start(t.Context(), env.Config, opts)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, sim.Stop()) })
	return sim, ns.Name
}

// newVM returns a small valid VM: one containerDisk, one masquerade interface on the pod network, and template
// labels and annotations that the VMI must carry.
func newVM(ns, name string, strategy kubevirtv1.VirtualMachineRunStrategy) *kubevirtv1.VirtualMachine {
	return &kubevirtv1.VirtualMachine{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"vm-label": "on-the-vm"}},
		Spec: kubevirtv1.VirtualMachineSpec{
			RunStrategy: ptr.To(strategy),
			Template: &kubevirtv1.VirtualMachineInstanceTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{
					Labels:      map[string]string{"kubevirt.io/domain": name, "app": "test"},
					Annotations: map[string]string{"vm.kubevirt.io/os": "linux"},
				},
				Spec: kubevirtv1.VirtualMachineInstanceSpec{
					Domain: kubevirtv1.DomainSpec{
						Firmware: &kubevirtv1.Firmware{UUID: "4b2c1ab0-6a4e-4b1e-9f3e-0a5c5e0d9a11"},
						Memory:   &kubevirtv1.Memory{Guest: ptr.To(resource.MustParse("128Mi"))},
						Devices: kubevirtv1.Devices{
							Disks: []kubevirtv1.Disk{{Name: "root", DiskDevice: kubevirtv1.DiskDevice{Disk: &kubevirtv1.DiskTarget{Bus: "virtio"}}}},
							Interfaces: []kubevirtv1.Interface{{
								Name: "default", MacAddress: "02:00:00:aa:bb:cc",
								InterfaceBindingMethod: kubevirtv1.InterfaceBindingMethod{Masquerade: &kubevirtv1.InterfaceMasquerade{}},
							}},
						},
					},
					Networks: []kubevirtv1.Network{*kubevirtv1.DefaultPodNetwork()},
					Volumes: []kubevirtv1.Volume{{
						Name:         "root",
						VolumeSource: kubevirtv1.VolumeSource{ContainerDisk: &kubevirtv1.ContainerDiskSource{Image: "quay.io/containerdisks/fedora:41"}},
					}},
				},
			},
		},
	}
}
