package testenv_test

import (
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	snapshotv1beta1 "kubevirt.io/api/snapshot/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/testenv"
)

// vmiSpec is a small VMI spec KubeVirt accepts: one containerDisk on virtio, one masquerade interface on the pod
// network.
func vmiSpec() kubevirtv1.VirtualMachineInstanceSpec {
	return kubevirtv1.VirtualMachineInstanceSpec{
		Domain: kubevirtv1.DomainSpec{
			Resources: kubevirtv1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi")},
			},
			Devices: kubevirtv1.Devices{
				Disks: []kubevirtv1.Disk{{
					Name:       "root",
					DiskDevice: kubevirtv1.DiskDevice{Disk: &kubevirtv1.DiskTarget{Bus: kubevirtv1.DiskBusVirtio}},
				}},
				Interfaces: []kubevirtv1.Interface{{
					Name:                   "default",
					InterfaceBindingMethod: kubevirtv1.InterfaceBindingMethod{Masquerade: &kubevirtv1.InterfaceMasquerade{}},
				}},
			},
		},
		Networks: []kubevirtv1.Network{{Name: "default", NetworkSource: kubevirtv1.NetworkSource{Pod: &kubevirtv1.PodNetwork{}}}},
		Volumes: []kubevirtv1.Volume{{
			Name:         "root",
			VolumeSource: kubevirtv1.VolumeSource{ContainerDisk: &kubevirtv1.ContainerDiskSource{Image: "quay.io/containerdisks/fedora:43"}},
		}},
	}
}

func newVM(ns, name string, change func(*kubevirtv1.VirtualMachineInstanceSpec)) *kubevirtv1.VirtualMachine {
	spec := vmiSpec()
	if change != nil {
		change(&spec)
	}
	return &kubevirtv1.VirtualMachine{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: kubevirtv1.VirtualMachineSpec{
			RunStrategy: ptr.To(kubevirtv1.RunStrategyHalted),
			Template:    &kubevirtv1.VirtualMachineInstanceTemplateSpec{Spec: spec},
		},
	}
}

func newVMI(ns, name string, labels map[string]string) *kubevirtv1.VirtualMachineInstance {
	return newVMIWith(ns, name, labels, nil)
}

func newVMIWith(ns, name string, labels map[string]string, change func(*kubevirtv1.VirtualMachineInstanceSpec)) *kubevirtv1.VirtualMachineInstance {
	spec := vmiSpec()
	if change != nil {
		change(&spec)
	}
	return &kubevirtv1.VirtualMachineInstance{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec:       spec,
	}
}

func armBIOS(s *kubevirtv1.VirtualMachineInstanceSpec) {
	s.Architecture = "arm64"
	s.Domain.Firmware = &kubevirtv1.Firmware{Bootloader: &kubevirtv1.Bootloader{BIOS: &kubevirtv1.BIOS{}}}
}

func newSnapshot(ns, name, vm string) *snapshotv1beta1.VirtualMachineSnapshot {
	return &snapshotv1beta1.VirtualMachineSnapshot{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: snapshotv1beta1.VirtualMachineSnapshotSpec{
			Source: corev1.TypedLocalObjectReference{APIGroup: ptr.To(kubevirtv1.SchemeGroupVersion.Group), Kind: "VirtualMachine", Name: vm},
		},
	}
}

func newNamespace(t *testing.T, env *testenv.Env) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "admission-"}}
	require.NoError(t, env.Client.Create(t.Context(), ns))
	return ns.Name
}

// TestAdmission shows that creates go through KubeVirt's own webhooks: what virt-api refuses is refused with its
// message (the CRD schemas alone accept all of it, see TestNoAdmission), and what its mutators default is set.
func TestAdmission(t *testing.T) {
	start := time.Now()
	env := testenv.ForTest(t)
	t.Logf("envtest with KubeVirt's webhooks started in %v (webhook server ready in %v)",
		time.Since(start).Round(time.Millisecond), env.WebhooksReadyIn.Round(time.Millisecond))
	ctx := t.Context()
	ns := newNamespace(t, env)
	controller, err := client.New(env.ControllerConfig(), client.Options{Scheme: env.Scheme})
	require.NoError(t, err)

	tests := []struct {
		name    string
		as      client.Client // default: the admin
		obj     client.Object
		refusal string // "" if KubeVirt admits it
	}{
		{
			name: "a plain VM",
			obj:  newVM(ns, "plain", nil),
		},
		{
			name: "a disk on an unknown bus",
			obj: newVM(ns, "floppy", func(s *kubevirtv1.VirtualMachineInstanceSpec) {
				s.Domain.Devices.Disks[0].Disk.Bus = "floppy"
			}),
			refusal: "spec.template.spec.domain.devices.disks[0] is set with an unrecognized bus floppy, must be one of: [virtio scsi sata usb]",
		},
		{
			name: "two interfaces of the same name",
			obj: newVM(ns, "two-nics", func(s *kubevirtv1.VirtualMachineInstanceSpec) {
				s.Domain.Devices.Interfaces = append(s.Domain.Devices.Interfaces, s.Domain.Devices.Interfaces[0])
			}),
			refusal: "Only one interface can be connected to one specific network",
		},
		{
			// The VM admitter leaves the checks per architecture to the VMI's (vmi-create-admitter.go): the VM is
			// stored, and its VMI is refused when virt-controller creates it.
			name: "a VM with BIOS boot on arm64",
			obj:  newVM(ns, "arm-bios", armBIOS),
		},
		{
			name:    "its VMI, from virt-controller's service account",
			as:      controller,
			obj:     newVMIWith(ns, "arm-bios", nil, armBIOS),
			refusal: "Arm64 does not support bios boot, please change to uefi boot",
		},
		{
			name:    "a VMI with a label reserved to KubeVirt, from a user",
			obj:     newVMI(ns, "user-vmi", map[string]string{kubevirtv1.CreatedByLabel: "someone"}),
			refusal: "creation of the following reserved kubevirt.io/ labels on a VMI object is prohibited",
		},
		{
			name: "the same VMI from virt-controller's service account",
			as:   controller,
			obj:  newVMI(ns, "controller-vmi", map[string]string{kubevirtv1.CreatedByLabel: "someone"}),
		},
		{
			name: "a snapshot of a VM (feature gate Snapshot on by default)",
			obj:  newSnapshot(ns, "snap", "plain"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.as
			if c == nil {
				c = env.Client
			}
			err := c.Create(ctx, tt.obj)
			if tt.refusal == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.True(t, apierrors.IsInvalid(err) || apierrors.IsBadRequest(err), "want Invalid or BadRequest, got %v", err)
			assert.Contains(t, err.Error(), `admission webhook "`)
			assert.Contains(t, err.Error(), tt.refusal)
		})
	}

	t.Run("the VM mutator sets defaults", func(t *testing.T) {
		var vm kubevirtv1.VirtualMachine
		require.NoError(t, env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "plain"}, &vm))
		spec := vm.Spec.Template.Spec
		// virt-api's own architecture unless the cluster config says otherwise (pkg/defaults/defaults.go).
		assert.Equal(t, runtime.GOARCH, spec.Architecture)
		require.NotNil(t, spec.Domain.Machine)
		if runtime.GOARCH == "amd64" {
			assert.Equal(t, "q35", spec.Domain.Machine.Type)
		}
		require.NotNil(t, spec.Domain.Firmware)
		assert.NotEmpty(t, spec.Domain.Firmware.UUID)
		assert.NotEmpty(t, spec.Domain.Firmware.Serial)
	})

	t.Run("a VMI's status is written only by KubeVirt's service accounts", func(t *testing.T) {
		// The VMI mutator puts back the old status when anyone else changes it (vmi-mutator.go).
		for _, tc := range []struct {
			name string
			c    client.Client
			want kubevirtv1.VirtualMachineInstancePhase
		}{
			{"admin", env.Client, kubevirtv1.Pending}, // as the VMI mutator set it on create
			{"virt-controller", controller, kubevirtv1.Scheduling},
		} {
			vmi := newVMI(ns, "status-"+tc.name, nil)
			require.NoError(t, env.Client.Create(ctx, vmi))
			vmi.Status.Phase = kubevirtv1.Scheduling
			require.NoError(t, tc.c.Update(ctx, vmi), tc.name)
			require.NoError(t, env.Client.Get(ctx, client.ObjectKeyFromObject(vmi), vmi))
			assert.Equal(t, tc.want, vmi.Status.Phase, tc.name)
		}
	})

	t.Run("the cluster config follows the KubeVirt CR", func(t *testing.T) {
		var kv kubevirtv1.KubeVirt
		require.NoError(t, env.Client.Get(ctx, client.ObjectKey{Namespace: testenv.KubeVirtNamespace, Name: "kubevirt"}, &kv))
		gates := kv.Spec.Configuration.DeveloperConfiguration.FeatureGates
		require.Equal(t, testenv.DefaultFeatureGates, gates)
		kv.Spec.Configuration.DeveloperConfiguration.FeatureGates = []string{}
		require.NoError(t, env.Client.Update(ctx, &kv))
		t.Cleanup(func() {
			require.NoError(t, env.Client.Get(ctx, client.ObjectKeyFromObject(&kv), &kv))
			kv.Spec.Configuration.DeveloperConfiguration.FeatureGates = gates
			require.NoError(t, env.Client.Update(ctx, &kv))
		})
		// virt-api's informer sees the change a moment later.
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			snap := newSnapshot(ns, "", "plain")
			snap.GenerateName = "snap-without-gate-"
			err := env.Client.Create(ctx, snap)
			if err == nil {
				assert.NoError(c, env.Client.Delete(ctx, snap))
			}
			require.Error(c, err)
			assert.Contains(c, err.Error(), "snapshot feature gate not enabled")
		}, 10*time.Second, 50*time.Millisecond)
	})
}

// TestNoAdmission shows the opt-out: without KubeVirt's webhooks the CRD schemas accept what KubeVirt refuses, and
// nothing is defaulted.
func TestNoAdmission(t *testing.T) {
	env := testenv.ForTestWith(t, testenv.Options{NoAdmission: true})
	ctx := t.Context()
	ns := newNamespace(t, env)
	assert.Empty(t, env.WebhookLog(10))

	floppy := newVM(ns, "floppy", func(s *kubevirtv1.VirtualMachineInstanceSpec) {
		s.Domain.Devices.Disks[0].Disk.Bus = "floppy"
	})
	require.NoError(t, env.Client.Create(ctx, floppy))
	assert.Empty(t, floppy.Spec.Template.Spec.Architecture)
	require.NoError(t, env.Client.Create(ctx, newVMI(ns, "user-vmi", map[string]string{kubevirtv1.CreatedByLabel: "someone"})))

	// KubeVirt's namespace and service accounts are there all the same: the simulator acts as virt-controller.
	controller, err := client.New(env.ControllerConfig(), client.Options{Scheme: env.Scheme})
	require.NoError(t, err)
	require.NoError(t, controller.List(ctx, &kubevirtv1.VirtualMachineInstanceList{}, client.InNamespace(ns)))
}
