package kube

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	kubevirtv1 "kubevirt.io/api/core/v1"
)

// Pause pauses the Instance's running guest and waits until KubeVirt reports it paused. It reports false when
// the guest was paused already (nothing is done).
func (in Lifecycle) Pause(ctx context.Context, id Identity) (bool, error) {
	vmi, err := in.runningVMI(ctx, id, "pause")
	if err != nil {
		return false, err
	}
	if isPaused(vmi) {
		return false, nil
	}
	if in.virtAPI == nil {
		return false, errNoVirtAPIClient
	}
	if err := in.virtAPI.Pause(ctx, in.namespace, id.Name); err != nil {
		return false, explainSubresource(err, "pause VirtualMachineInstance "+in.ref(id.Name))
	}
	return true, in.waitPaused(ctx, id.Name, true)
}

// Resume resumes the Instance's paused guest and waits until KubeVirt reports it running. It reports false
// when the guest was not paused (nothing is done).
func (in Lifecycle) Resume(ctx context.Context, id Identity) (bool, error) {
	vmi, err := in.runningVMI(ctx, id, "resume")
	if err != nil {
		return false, err
	}
	if !isPaused(vmi) {
		return false, nil
	}
	if in.virtAPI == nil {
		return false, errNoVirtAPIClient
	}
	if err := in.virtAPI.Unpause(ctx, in.namespace, id.Name); err != nil {
		return false, explainSubresource(err, "unpause VirtualMachineInstance "+in.ref(id.Name))
	}
	return true, in.waitPaused(ctx, id.Name, false)
}

// errNoVirtAPIClient is a wiring mistake: Instances built without the subresource client.
var errNoVirtAPIClient = errors.New("internal error: no virt-api client for this action")

// runningVMI returns the Instance's VMI, or an error when the Instance has no running guest to act on.
func (in Lifecycle) runningVMI(ctx context.Context, id Identity, verb string) (*kubevirtv1.VirtualMachineInstance, error) {
	if _, err := in.existingVM(ctx, id); err != nil {
		return nil, err
	}
	vmi, err := in.vmi(ctx, id.Name)
	if err != nil {
		return nil, err
	}
	if vmi == nil || vmi.Status.Phase != kubevirtv1.Running {
		phase := "stopped"
		if vmi != nil && !vmi.IsFinal() {
			phase = orUnknown(string(vmi.Status.Phase))
		}
		return nil, fmt.Errorf("cannot %s VirtualMachine %s: its guest is %s, not running", verb, in.ref(id.Name), phase)
	}
	return vmi, nil
}

func isPaused(vmi *kubevirtv1.VirtualMachineInstance) bool {
	for _, c := range vmi.Status.Conditions {
		if c.Type == kubevirtv1.VirtualMachineInstancePaused {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// waitPaused waits until the VMI's Paused condition says paused.
func (in Lifecycle) waitPaused(ctx context.Context, name string, paused bool) error {
	check := func() (bool, error) {
		vmi, err := in.vmi(ctx, name)
		if err != nil {
			return false, err
		}
		if vmi == nil || vmi.IsFinal() {
			return false, fmt.Errorf("VirtualMachineInstance %s stopped while waiting for it to be paused=%t", in.ref(name), paused)
		}
		return isPaused(vmi) == paused, nil
	}
	describe := func() string {
		return fmt.Sprintf("virt-api accepted the request, but VirtualMachineInstance %s does not report paused=%t yet", in.ref(name), paused)
	}
	return poll(ctx, check, describe)
}

// explainSubresource explains virt-api's answers: 404 when the aggregated API is not served, 409 when the
// guest's state does not allow it.
func explainSubresource(err error, what string) error {
	switch {
	case kerrors.IsNotFound(err):
		return fmt.Errorf("%s: virt-api's subresources.kubevirt.io API is not served (is KubeVirt's virt-api running, and its APIService available?): %w", what, err)
	case kerrors.IsConflict(err):
		return fmt.Errorf("%s: KubeVirt refused it in the guest's current state: %w", what, err)
	}
	return explain(err, what)
}
