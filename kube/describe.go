package kube

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
)

// Fact is one line of Describe's table.
type Fact struct {
	Item  string `json:"item"`
	Value string `json:"value"`
}

// maxEvents bounds how many events of the VM are read: a VM that flaps can have thousands. The API server lists
// them in name order, not time order, so all of them (up to this bound) are read and the newest kept.
const maxEvents = 5000

// Describe gathers what Kubernetes knows of the Instance: its VM, its VMI (node, IPs per interface, phase,
// guest OS, conditions) and the most recent Events of both (at most events), newest first.
func (in Diagnostics) Describe(ctx context.Context, id Identity, events int) ([]Fact, error) {
	vm, err := in.existingVM(ctx, id)
	if err != nil {
		return nil, err
	}
	vmi, err := in.vmi(ctx, id.Name)
	if err != nil {
		return nil, err
	}
	facts := vmFacts(in.ref(vm.Name), vm, vmi)
	facts = append(facts, vmiFacts(vmi)...)
	if events > 0 {
		evs, err := in.events(ctx, vm.Name)
		if err != nil {
			return nil, err
		}
		facts = append(facts, eventFacts(evs, events)...)
	}
	return facts, nil
}

func vmFacts(ref string, vm *kubevirtv1.VirtualMachine, vmi *kubevirtv1.VirtualMachineInstance) []Fact {
	strategy, _ := vm.RunStrategy()
	facts := []Fact{
		{"VirtualMachine", ref},
		{"status", orUnknown(string(vm.Status.PrintableStatus))},
		{"run strategy", string(strategy)},
		{"created", FormatTime(vm.CreationTimestamp.Time)},
	}
	for _, c := range vm.Status.Conditions {
		// KubeVirt copies the VMI's conditions to the VM: show only those that say something more.
		if vmi != nil && slices.ContainsFunc(vmi.Status.Conditions, func(v kubevirtv1.VirtualMachineInstanceCondition) bool {
			return string(v.Type) == string(c.Type) && v.Status == c.Status
		}) {
			continue
		}
		facts = append(facts, Fact{"VM condition " + string(c.Type), condition(string(c.Status), c.Reason, c.Message)})
	}
	if r := vm.Status.RestoreInProgress; r != nil {
		facts = append(facts, Fact{"restore in progress", *r})
	}
	if s := vm.Status.SnapshotInProgress; s != nil {
		facts = append(facts, Fact{"snapshot in progress", *s})
	}
	return facts
}

func vmiFacts(vmi *kubevirtv1.VirtualMachineInstance) []Fact {
	if vmi == nil {
		return []Fact{{"VirtualMachineInstance", "none (the guest is stopped)"}}
	}
	facts := []Fact{
		{"VirtualMachineInstance phase", orUnknown(string(vmi.Status.Phase))},
		{"node", vmi.Status.NodeName},
	}
	for _, iface := range vmi.Status.Interfaces {
		name := iface.Name
		if iface.InterfaceName != "" {
			name += " (" + iface.InterfaceName + ")"
		}
		ips := strings.Join(iface.IPs, ", ")
		if ips == "" {
			ips = iface.IP
		}
		facts = append(facts, Fact{"interface " + name, strings.TrimSpace(strings.Join([]string{ips, iface.MAC}, " "))})
	}
	if os := vmi.Status.GuestOSInfo; os.PrettyName != "" || os.Name != "" {
		facts = append(facts, Fact{"guest OS", strings.TrimSpace(cmp.Or(os.PrettyName, os.Name) + " " + kernel(os))})
	}
	for _, c := range vmi.Status.Conditions {
		facts = append(facts, Fact{"condition " + string(c.Type), condition(string(c.Status), c.Reason, c.Message)})
	}
	if st := vmi.Status.MigrationState; st != nil {
		result := "in progress"
		switch {
		case st.Completed:
			result = "completed"
		case st.Failed:
			result = "failed: " + st.FailureReason
		}
		if end := FormatTime(timeOf(st.EndTimestamp)); end != "" {
			result += " " + end
		}
		facts = append(facts, Fact{"last migration", fmt.Sprintf("%s → %s, %s", st.SourceNode, st.TargetNode, result)})
	}
	return facts
}

func kernel(os kubevirtv1.VirtualMachineInstanceGuestOSInfo) string {
	if os.KernelRelease == "" {
		return ""
	}
	return "(kernel " + os.KernelRelease + ")"
}

func condition(status, reason, message string) string {
	out := status
	if reason != "" {
		out += ", " + reason
	}
	if message != "" {
		out += ": " + message
	}
	return out
}

// events reads the Events of the VM and of its VMI (same name) from core/v1, page by page, every page up to
// maxEvents events read: the caller sorts them and keeps the newest.
func (in Diagnostics) events(ctx context.Context, name string) ([]corev1.Event, error) {
	var out []corev1.Event
	opts := ListOptions{FieldSelector: "involvedObject.name=" + name, Limit: listPage}
	for read := 0; read < maxEvents; {
		opts.Limit = min(listPage, int64(maxEvents-read))
		list := &corev1.EventList{}
		if err := in.client.List(ctx, in.namespace, list, opts); err != nil {
			return nil, explain(err, "list the Events of "+in.ref(name))
		}
		read += len(list.Items)
		for _, e := range list.Items {
			kind := e.InvolvedObject.Kind
			if kind == "VirtualMachine" || kind == "VirtualMachineInstance" {
				out = append(out, e)
			}
		}
		if opts.Continue = list.Continue; opts.Continue == "" || len(list.Items) == 0 {
			break
		}
	}
	return out, nil
}

// eventFacts renders the newest n events, newest first.
func eventFacts(evs []corev1.Event, n int) []Fact {
	// Newest first. core/v1 times have whole seconds (events.k8s.io's microseconds), so times are compared to
	// the second and ties broken by resourceVersion, which etcd hands out in increasing order (best effort:
	// Kubernetes does not promise it).
	slices.SortStableFunc(evs, func(a, b corev1.Event) int {
		if c := eventTime(b).Truncate(time.Second).Compare(eventTime(a).Truncate(time.Second)); c != 0 {
			return c
		}
		return cmp.Compare(resourceVersion(b), resourceVersion(a))
	})
	if len(evs) == 0 {
		return []Fact{{"events", "none recorded (the API server keeps them for an hour by default)"}}
	}
	facts := make([]Fact, 0, min(n, len(evs)))
	for _, e := range evs[:min(n, len(evs))] {
		kind := "VM"
		if e.InvolvedObject.Kind == "VirtualMachineInstance" {
			kind = "VMI"
		}
		value := fmt.Sprintf("%s %s %s: %s", kind, e.Type, e.Reason, e.Message)
		if c := eventCount(e); c > 1 {
			value += fmt.Sprintf(" (×%d)", c)
		}
		facts = append(facts, Fact{"event " + FormatTime(eventTime(e)), value})
	}
	return facts
}

// eventTime is when an event last happened, whichever API recorded it: core/v1 recorders set lastTimestamp,
// events.k8s.io ones eventTime and series.
func eventTime(e corev1.Event) time.Time {
	switch {
	case e.Series != nil && !e.Series.LastObservedTime.IsZero():
		return e.Series.LastObservedTime.Time
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	}
	return e.CreationTimestamp.Time
}

func eventCount(e corev1.Event) int32 {
	if e.Series != nil {
		return e.Series.Count
	}
	return e.Count
}

func timeOf(t *metav1.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.Time
}

func resourceVersion(e corev1.Event) uint64 {
	v, _ := strconv.ParseUint(e.ResourceVersion, 10, 64)
	return v
}
