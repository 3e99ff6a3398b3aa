package boot

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/cloudstacksim"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/fixture"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

// nodeAgent plays virt-handler's part for one VM: it runs a libvirt domain for the VMI KubeVirt's controller
// made, and destroys it when that VMI is gone, as virt-handler does with virt-launcher's domain
// (kubevirt.io/kubevirt@v1.8.0/pkg/virt-handler/vm.go: a VMI on its node is synced into a domain; a deleted VMI's
// domain is killed). The VMI's phase still comes from kubevirtsim, not from the domain.
type nodeAgent struct {
	vm      string
	domains map[types.UID]domain
}

// sync makes the domains follow the VMIs: the domain of a VMI that is gone (stopped, or replaced by a restart) is
// destroyed and undefined first, then a running VMI without a domain gets one. It returns the running VMI's
// domain, or nil when none runs.
func (a *nodeAgent) sync(t *testing.T) *domain {
	t.Helper()
	vmi := &kubevirtv1.VirtualMachineInstance{}
	err := s.client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: a.vm}, vmi)
	if kerrors.IsNotFound(err) {
		vmi = nil
	} else {
		require.NoError(t, err)
	}
	for uid, d := range a.domains {
		if vmi != nil && vmi.UID == uid {
			continue
		}
		require.Equal(t, "running", domainState(t.Context(), d.name), "the domain of VMI %s ran until its VMI went", uid)
		d.destroy()
		assert.Empty(t, domainState(t.Context(), d.name), "VMI %s is gone: its domain %s is destroyed and undefined", uid, d.name)
		t.Logf("agent: VMI %s gone: domain %s destroyed", uid, d.name)
		delete(a.domains, uid)
	}
	if vmi == nil || vmi.Status.Phase != kubevirtv1.Running {
		return nil
	}
	if d, ok := a.domains[vmi.UID]; ok {
		return &d
	}
	d := bootDomain(t, vmi)
	t.Logf("agent: VMI %s running: domain %s started", vmi.UID, d.name)
	a.domains[vmi.UID] = d
	return &d
}

// TestLifecycle drives an Instance through CloudStack's stop, start and reboot, with the domain following its VMI:
// each start and reboot boots the guest again, from a new VMI, with the same SMBIOS UUID and MACs; stop and delete
// end the domain.
func TestLifecycle(t *testing.T) {
	requireBoot(t)
	require.NoError(t, fixture.HostNamespace(t.Context(), s.client, ns, vlans...))
	golden := goldenPVC(t)
	tt := variant{name: "PVC clone, BIOS, scsi", host: map[string]string{"root_disk_pvc": golden}, details: map[string]string{"storage_class": "standard", "disk_bus": "scsi"},
		cpus: 2, memoryMB: 1024, medium: "disk", bus: "scsi"}
	in, h := tt.instance()
	name, err := translate.VMName(in.Name)
	require.NoError(t, err)
	agent := &nodeAgent{vm: name, domains: map[types.UID]domain{}}
	t.Cleanup(func() {
		for _, d := range agent.domains {
			d.destroy()
		}
	})

	requireSuccess(t, call(t, h, "create", in))
	first := bootedGuest(t, agent, tt, in)

	requireSuccess(t, call(t, h, "stop", in))
	assert.Nil(t, agent.sync(t), "stopped: no domain runs")
	assert.Equal(t, cloudstacksim.PowerOff, cloudstacksim.ParseStatus(call(t, h, "status", in)))

	requireSuccess(t, call(t, h, "start", in))
	started := bootedGuest(t, agent, tt, in)
	assert.NotEqual(t, first, started, "start boots a new VMI's domain")

	requireSuccess(t, call(t, h, "reboot", in))
	rebooted := bootedGuest(t, agent, tt, in)
	assert.NotEqual(t, started, rebooted, "reboot boots a new VMI's domain")

	requireSuccess(t, call(t, h, "delete", in))
	require.Eventually(t, func() bool {
		err := s.client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, &kubevirtv1.VirtualMachineInstance{})
		return kerrors.IsNotFound(err)
	}, 30*time.Second, 50*time.Millisecond)
	assert.Nil(t, agent.sync(t), "deleted: no domain runs")
}

// bootedGuest lets the agent boot the Instance's running VMI and checks the guest's report; it returns the VMI's UID.
func bootedGuest(t *testing.T, agent *nodeAgent, tt variant, in cloudstacksim.Instance) types.UID {
	t.Helper()
	vmi := runningVMI(t, in)
	d := agent.sync(t)
	require.NotNil(t, d, "a running VMI has a domain")
	require.Equal(t, vmi.UID, d.vmi)
	out := d.serialOutput(t)
	r, err := parseReport(out)
	require.NoError(t, err, "the guest's serial console:\n%s", out)
	assertGuest(t, tt, in, vmi, r)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	assert.Equal(t, "running", domainState(ctx, d.name), "the guest runs on after its report")
	return d.vmi
}
