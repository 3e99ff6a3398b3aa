package kube

import (
	"context"
	"fmt"
	"strconv"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	kubevirtv1 "kubevirt.io/api/core/v1"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/kube/powercache"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

// Page sizes bound each list response, so a namespace of any size costs bounded memory per round trip. Metadata
// is streamed item by item (StreamMetadata), so its pages can be large: every page costs the API server a
// consistent read, and at 10,000 VMs ten pages took 1.7× as long as one.
const (
	listPage     = 500
	metadataPage = 10000
)

// staleLimit is how many out-of-date labels a statuses call reads one by one before it reads the whole
// namespace instead.
const staleLimit = 20

// Source says how a power state was decided, for the log: from the reconciler's labels or from the objects.
type Source string

const (
	FromLabels  Source = "labels"
	FromObjects Source = "objects"
)

// heartbeatSource is where the reconciler's heartbeat is read, and the clock it is judged by.
type heartbeatSource struct {
	lease types.NamespacedName
	clock *ServerClock
}

// TrustHeartbeat lets status calls answer from the reconciler's labels while its heartbeat Lease is fresh.
// clock must observe the responses of the Instances' client.
func (in *Scope) TrustHeartbeat(lease translate.LeaseRef, clock *ServerClock) {
	in.heartbeat = &heartbeatSource{lease: types.NamespacedName{Namespace: lease.Namespace, Name: lease.Name}, clock: clock}
}

// PowerState reports one Instance's power state. A VM that does not exist is off.
func (in Lifecycle) PowerState(ctx context.Context, id Identity) (translate.PowerState, Source, error) {
	if in.heartbeat != nil {
		if state, ok, err := in.labelledPowerState(ctx, id); err != nil || ok {
			return state, FromLabels, err
		}
	}
	state, err := in.computedPowerState(ctx, id)
	return state, FromObjects, err
}

// PowerStates reports every VM CloudStack manages in the namespace, keyed by CloudStack instance name.
func (in Lifecycle) PowerStates(ctx context.Context) (map[string]translate.PowerState, Source, error) {
	if in.heartbeat != nil && in.heartbeatFresh(ctx) {
		if states, ok, err := in.labelledPowerStates(ctx); err != nil || ok {
			return states, FromLabels, err
		}
	}
	states, err := in.computedPowerStates(ctx)
	return states, FromObjects, err
}

// computedPowerState reads the VM and its VMI and decides.
func (in Lifecycle) computedPowerState(ctx context.Context, id Identity) (translate.PowerState, error) {
	vm, err := in.get(ctx, id)
	if err != nil || vm == nil {
		return translate.PowerOff, err
	}
	vmi, err := in.vmi(ctx, id.Name)
	if err != nil {
		return "", err
	}
	return translate.PowerStateOf(vm, vmi), nil
}

// labelledPowerState answers from the VM's metadata when the heartbeat vouches for its label; ok is false
// when the full objects must decide. The two reads go one after the other on one HTTP/1.1 connection: reading
// them side by side would cost a second TLS handshake, more than the round trip it saves.
func (in Lifecycle) labelledPowerState(ctx context.Context, id Identity) (state translate.PowerState, ok bool, err error) {
	if !in.heartbeatFresh(ctx) {
		return "", false, nil
	}
	meta := vmMetadata()
	err = in.client.Get(ctx, in.key(id.Name), meta)
	if kerrors.IsNotFound(err) {
		return translate.PowerOff, true, nil
	}
	if err != nil {
		return "", false, explain(err, "read VirtualMachine "+in.ref(id.Name))
	}
	if err := owned(meta, id); err != nil {
		return "", false, err
	}
	state, ok = labelledState(meta)
	return state, ok, nil
}

// labelledPowerStates answers from a metadata-only list, reading the full objects of the few VMs whose label
// is out of date. ok is false when too many are, and the whole namespace must be read.
func (in Lifecycle) labelledPowerStates(ctx context.Context) (map[string]translate.PowerState, bool, error) {
	states := map[string]translate.PowerState{}
	var stale []Identity
	err := in.eachMetadata(ctx, func(meta *metav1.PartialObjectMetadata) {
		name := meta.Labels[translate.LabelInstanceName]
		if name == "" {
			return
		}
		if state, ok := labelledState(meta); ok {
			states[name] = state
		} else if len(stale) <= staleLimit {
			stale = append(stale, Identity{Name: meta.Name})
			states[name] = ""
		}
	})
	if err != nil || len(stale) > staleLimit {
		return nil, false, err
	}
	for _, id := range stale {
		vm := &kubevirtv1.VirtualMachine{}
		if err := in.client.Get(ctx, in.key(id.Name), vm); kerrors.IsNotFound(err) {
			continue // deleted since the list: no longer in the namespace
		} else if err != nil {
			return nil, false, explain(err, "read VirtualMachine "+in.ref(id.Name))
		}
		name := vm.Labels[translate.LabelInstanceName]
		if vm.Labels[translate.LabelManagedBy] != translate.ManagedBy || name == "" {
			continue // no longer CloudStack's since the list
		}
		vmi, err := in.vmi(ctx, id.Name)
		if err != nil {
			return nil, false, err
		}
		states[name] = translate.PowerStateOf(vm, vmi)
	}
	for name, state := range states {
		if state == "" {
			delete(states, name)
		}
	}
	return states, true, nil
}

// PowerListing reads every managed VM's metadata for the status calls of a ping round to share
// (kube/powercache): the state is the reconciler's label where it is current, "" where the VM must be read. It
// reads nothing and returns a zero fresh when the heartbeat does not hold, as nothing then vouches for the
// labels; fresh is how much longer it holds, by the API server's clock as of the Lease's reading.
func (in Lifecycle) PowerListing(ctx context.Context) (entries []powercache.Entry, fresh time.Duration, err error) {
	if in.heartbeat == nil {
		return nil, 0, nil
	}
	if fresh = in.heartbeatRemaining(ctx); fresh <= 0 {
		return nil, 0, nil
	}
	err = in.eachMetadata(ctx, func(meta *metav1.PartialObjectMetadata) {
		name := meta.Labels[translate.LabelInstanceName]
		if vm, err := translate.VMName(name); err != nil || vm != meta.Name {
			return // not the Instance's own VM (labels copied to another), which a status reads by name
		}
		state, _ := labelledState(meta)
		entries = append(entries, powercache.Entry{Instance: name, UUID: meta.Labels[translate.LabelInstanceUUID], State: string(state)})
	})
	if err != nil {
		return nil, 0, err
	}
	return entries, fresh, nil
}

// eachMetadata hands fn the metadata of every managed VM of the namespace, as it streams in.
func (in Lifecycle) eachMetadata(ctx context.Context, fn func(*metav1.PartialObjectMetadata)) error {
	opts := ListOptions{LabelSelector: managedSelector, Limit: metadataPage}
	for {
		cont, err := in.client.StreamMetadata(ctx, in.namespace, vmMetadataList(), opts, fn)
		if err != nil {
			return explain(err, "list VirtualMachines in namespace "+in.namespace)
		}
		if opts.Continue = cont; cont == "" {
			return nil
		}
	}
}

// labelledState trusts the reconciler's label only when it was computed from the VM's current spec. A VM
// being deleted is off whatever its label says, as translate.PowerStateOf decides.
func labelledState(meta *metav1.PartialObjectMetadata) (translate.PowerState, bool) {
	if meta.DeletionTimestamp != nil {
		return translate.PowerOff, true
	}
	label := translate.PowerState(meta.Labels[translate.LabelPowerState])
	if label != translate.PowerOn && label != translate.PowerOff {
		return "", false
	}
	if meta.Annotations[translate.AnnotationPowerStateGeneration] != strconv.FormatInt(meta.Generation, 10) {
		return "", false
	}
	return label, true
}

// heartbeatFresh reads the reconciler's Lease. Any failure to read it, RBAC included, means not fresh: the
// answer then costs more, but is never wrong.
func (in *Scope) heartbeatFresh(ctx context.Context) bool {
	return in.heartbeatRemaining(ctx) > 0
}

// heartbeatRemaining reads the reconciler's Lease and says how much longer it vouches for the labels of the
// namespace; 0 when it does not, or cannot be read.
func (in *Scope) heartbeatRemaining(ctx context.Context) time.Duration {
	lease := &coordinationv1.Lease{}
	if err := in.client.Get(ctx, in.heartbeat.lease, lease); err != nil {
		return 0
	}
	now, ok := in.heartbeat.clock.Now()
	if !ok {
		return 0
	}
	h := HeartbeatFromLease(lease)
	if !h.Covers(in.namespace) {
		return 0
	}
	return h.Remaining(now)
}

func vmMetadata() *metav1.PartialObjectMetadata {
	meta := &metav1.PartialObjectMetadata{}
	meta.SetGroupVersionKind(kubevirtv1.VirtualMachineGroupVersionKind)
	return meta
}

func vmMetadataList() *metav1.PartialObjectMetadataList {
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(kubevirtv1.VirtualMachineGroupVersionKind.GroupVersion().WithKind("VirtualMachineList"))
	return list
}

// computedPowerStates lists VMIs then VMs of the namespace and decides each.
func (in Lifecycle) computedPowerStates(ctx context.Context) (map[string]translate.PowerState, error) {
	vmis := map[string]*kubevirtv1.VirtualMachineInstance{}
	newVMIs := func() runtime.Object { return &kubevirtv1.VirtualMachineInstanceList{} }
	err := in.eachPage(ctx, newVMIs, listPage, func(page runtime.Object) {
		list := page.(*kubevirtv1.VirtualMachineInstanceList)
		for i := range list.Items {
			vmis[list.Items[i].Name] = &list.Items[i]
		}
	})
	if err != nil {
		return nil, err
	}
	states := map[string]translate.PowerState{}
	newVMs := func() runtime.Object { return &kubevirtv1.VirtualMachineList{} }
	err = in.eachPage(ctx, newVMs, listPage, func(page runtime.Object) {
		list := page.(*kubevirtv1.VirtualMachineList)
		for i := range list.Items {
			vm := &list.Items[i]
			if name := vm.Labels[translate.LabelInstanceName]; name != "" {
				states[name] = translate.PowerStateOf(vm, vmis[vm.Name])
			}
		}
	})
	return states, err
}

// managedSelector selects what the product manages.
const managedSelector = translate.LabelManagedBy + "=" + translate.ManagedBy

// eachPage lists the managed objects of the namespace page by page, each into a fresh list from newList, and
// hands each page to fn.
func (in Lifecycle) eachPage(ctx context.Context, newList func() runtime.Object, pageSize int64, fn func(runtime.Object)) error {
	opts := ListOptions{LabelSelector: managedSelector, Limit: pageSize}
	for {
		list := newList()
		if err := in.client.List(ctx, in.namespace, list, opts); err != nil {
			return explain(err, fmt.Sprintf("list %s in namespace %s", listKind(list), in.namespace))
		}
		fn(list)
		opts.Continue = list.(metav1.ListInterface).GetContinue()
		if opts.Continue == "" {
			return nil
		}
	}
}

// listKind names a list in an error message.
func listKind(list runtime.Object) string {
	switch list.(type) {
	case *kubevirtv1.VirtualMachineInstanceList:
		return "VirtualMachineInstances"
	default:
		return "VirtualMachines"
	}
}
