package kube

import (
	"context"
	"fmt"

	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	kubevirtv1 "kubevirt.io/api/core/v1"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

// Scope is what every capability shares: the client, the namespace of the CloudStack host's Instances, and the
// helpers that name, read and wait for their VirtualMachines. The capabilities (Lifecycle, Snapshots, Migrations,
// Consoles, Diagnostics) are views of one Scope.
type Scope struct {
	client    *Client
	namespace string
	virtAPI   *VirtAPI         // nil where no action needs virt-api's subresources
	heartbeat *heartbeatSource // nil: power states are always computed from the full objects
}

// NewScope returns the scope of namespace. virtAPI may be nil where reboot, pause and resume are not needed.
func NewScope(c *Client, namespace string, virtAPI *VirtAPI) *Scope {
	return &Scope{client: c, namespace: namespace, virtAPI: virtAPI}
}

// Identity names a VirtualMachine and the CloudStack Instance that must own it.
type Identity struct {
	Name string // the VirtualMachine's name
	UUID string // the Instance UUID; "" skips the ownership check
}

func (in *Scope) key(name string) types.NamespacedName {
	return types.NamespacedName{Namespace: in.namespace, Name: name}
}

func (in *Scope) ref(name string) string { return in.namespace + "/" + name }

// get returns the VM, nil if there is none, or an error if it belongs to another Instance.
func (in *Scope) get(ctx context.Context, id Identity) (*kubevirtv1.VirtualMachine, error) {
	vm := &kubevirtv1.VirtualMachine{}
	if err := in.client.Get(ctx, in.key(id.Name), vm); err != nil {
		if kerrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, explain(err, "read VirtualMachine "+in.ref(id.Name))
	}
	if err := owned(vm, id); err != nil {
		return nil, err
	}
	return vm, nil
}

// vmi returns the VM's VMI, or nil when there is none.
func (in *Scope) vmi(ctx context.Context, name string) (*kubevirtv1.VirtualMachineInstance, error) {
	vmi := &kubevirtv1.VirtualMachineInstance{}
	if err := in.client.Get(ctx, in.key(name), vmi); err != nil {
		if kerrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, explain(err, "read VirtualMachineInstance "+in.ref(name))
	}
	return vmi, nil
}

// existingVM returns the Instance's VM, or an error saying that there is none.
func (in *Scope) existingVM(ctx context.Context, id Identity) (*kubevirtv1.VirtualMachine, error) {
	vm, err := in.get(ctx, id)
	if err != nil {
		return nil, err
	}
	if vm == nil {
		return nil, fmt.Errorf("the Instance has no VirtualMachine %s (never created, or deleted out of band): start the Instance first", in.ref(id.Name))
	}
	return vm, nil
}

// owned refuses to touch a VirtualMachine that CloudStack did not create for this Instance.
func owned(vm metav1.Object, id Identity) error {
	ref := vm.GetNamespace() + "/" + vm.GetName()
	labels := vm.GetLabels()
	if labels[translate.LabelManagedBy] != translate.ManagedBy {
		return fmt.Errorf("VirtualMachine %s exists but CloudStack did not create it (no %s=%s label): rename or remove it", ref, translate.LabelManagedBy, translate.ManagedBy)
	}
	if got := labels[translate.LabelInstanceUUID]; id.UUID != "" && got != id.UUID {
		return fmt.Errorf("VirtualMachine %s belongs to Instance %s, not %s: two Instances map to one name", ref, got, id.UUID)
	}
	return nil
}

// Lifecycle creates, starts, stops, reboots, pauses, resumes and deletes Instances, and reports their power states.
type Lifecycle struct{ *Scope }

// Snapshots takes, lists, restores and deletes the snapshots of Instances.
type Snapshots struct{ *Scope }

// Migrations live-migrates Instances between nodes.
type Migrations struct{ *Scope }

// Consoles opens consoles of Instances (getconsole's side; the gateway is package kube/console).
type Consoles struct{ *Scope }

// Diagnostics describes Instances and checks the cluster for the check action.
type Diagnostics struct{ *Scope }

// Lifecycle is the scope's lifecycle and power capability.
func (in *Scope) Lifecycle() Lifecycle { return Lifecycle{in} }

// Snapshots is the scope's snapshot capability.
func (in *Scope) Snapshots() Snapshots { return Snapshots{in} }

// Migrations is the scope's migration capability.
func (in *Scope) Migrations() Migrations { return Migrations{in} }

// Consoles is the scope's console capability.
func (in *Scope) Consoles() Consoles { return Consoles{in} }

// Diagnostics is the scope's describe and check capability.
func (in *Scope) Diagnostics() Diagnostics { return Diagnostics{in} }
