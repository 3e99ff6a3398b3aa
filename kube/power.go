package kube

import (
	"context"
	"fmt"

	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

// listPage bounds each list response, so a namespace of any size costs bounded memory per round trip.
const listPage = 500

// PowerState reads one Instance's VM and VMI. A VM that does not exist is off.
func (in *Instances) PowerState(ctx context.Context, id Identity) (translate.PowerState, error) {
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

// PowerStates reports every VM CloudStack manages in the namespace, keyed by CloudStack instance name.
func (in *Instances) PowerStates(ctx context.Context) (map[string]translate.PowerState, error) {
	vmis := map[string]*kubevirtv1.VirtualMachineInstance{}
	err := in.eachPage(ctx, &kubevirtv1.VirtualMachineInstanceList{}, func(list client.ObjectList) {
		for i := range list.(*kubevirtv1.VirtualMachineInstanceList).Items {
			vmi := &list.(*kubevirtv1.VirtualMachineInstanceList).Items[i]
			vmis[vmi.Name] = vmi
		}
	})
	if err != nil {
		return nil, err
	}
	states := map[string]translate.PowerState{}
	err = in.eachPage(ctx, &kubevirtv1.VirtualMachineList{}, func(list client.ObjectList) {
		for i := range list.(*kubevirtv1.VirtualMachineList).Items {
			vm := &list.(*kubevirtv1.VirtualMachineList).Items[i]
			if name := vm.Labels[translate.LabelInstanceName]; name != "" {
				states[name] = translate.PowerStateOf(vm, vmis[vm.Name])
			}
		}
	})
	return states, err
}

// eachPage lists the managed objects of the namespace page by page, handing each page to fn.
func (in *Instances) eachPage(ctx context.Context, list client.ObjectList, fn func(client.ObjectList)) error {
	opts := []client.ListOption{
		client.InNamespace(in.namespace),
		client.MatchingLabels{translate.LabelManagedBy: translate.ManagedBy},
		client.Limit(listPage),
	}
	for {
		if err := in.client.List(ctx, list, opts...); err != nil {
			return explain(err, fmt.Sprintf("list %T in namespace %s", list, in.namespace))
		}
		fn(list)
		next := list.GetContinue()
		if next == "" {
			return nil
		}
		opts = append(opts[:3], client.Continue(next))
	}
}
