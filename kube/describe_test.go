package kube

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	kubevirtv1 "kubevirt.io/api/core/v1"
)

func TestEventFacts(t *testing.T) {
	base := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	core := func(rv, reason string, at time.Time, count int32) corev1.Event {
		return corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{ResourceVersion: rv},
			InvolvedObject: corev1.ObjectReference{Kind: "VirtualMachineInstance"},
			Type:           "Normal", Reason: reason, Message: "m", LastTimestamp: metav1.NewTime(at), Count: count,
		}
	}
	// Recorded through events.k8s.io: eventTime in microseconds, a series when repeated.
	modern := corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{ResourceVersion: "9"},
		InvolvedObject: corev1.ObjectReference{Kind: "VirtualMachine"},
		Type:           "Warning", Reason: "PowerStateChanged", Message: "poweron -> poweroff",
		EventTime: metav1.NewMicroTime(base.Add(1500 * time.Millisecond)),
		Series:    &corev1.EventSeries{Count: 3, LastObservedTime: metav1.NewMicroTime(base.Add(time.Second + 200*time.Millisecond))},
	}
	evs := []corev1.Event{
		core("5", "Old", base.Add(-time.Hour), 1),
		core("12", "SameSecondNewer", base.Add(time.Second), 1),
		modern,
		core("7", "Started", base, 2),
	}
	got := eventFacts(evs, 3)
	assert.Equal(t, []Fact{
		{"event 2026-11-25T10:00:01Z", "VMI Normal SameSecondNewer: m"},
		{"event 2026-11-25T10:00:01Z", "VM Warning PowerStateChanged: poweron -> poweroff (×3)"},
		{"event 2026-11-25T10:00:00Z", "VMI Normal Started: m (×2)"},
	}, got, "newest first to the second, ties by resourceVersion, at most 3")
	assert.Equal(t, []Fact{{"events", "none recorded (the API server keeps them for an hour by default)"}}, eventFacts(nil, 3))
}

func TestVMIFacts(t *testing.T) {
	assert.Equal(t, []Fact{{"VirtualMachineInstance", "none (the guest is stopped)"}}, vmiFacts(nil))
	vmi := &kubevirtv1.VirtualMachineInstance{Status: kubevirtv1.VirtualMachineInstanceStatus{
		Phase: kubevirtv1.Running, NodeName: "worker-2",
		Interfaces: []kubevirtv1.VirtualMachineInstanceNetworkInterface{
			{Name: "nic0", InterfaceName: "eth0", IP: "10.1.1.245", IPs: []string{"10.1.1.245", "fd00::5"}, MAC: "02:01:00:cc:00:01"},
			{Name: "nic1", MAC: "02:01:00:cc:00:02"},
		},
		GuestOSInfo: kubevirtv1.VirtualMachineInstanceGuestOSInfo{PrettyName: "Fedora Linux 43", KernelRelease: "6.17.1"},
		Conditions: []kubevirtv1.VirtualMachineInstanceCondition{
			{Type: kubevirtv1.VirtualMachineInstancePaused, Status: corev1.ConditionTrue, Reason: "PausedByUser", Message: "VMI was paused by user"},
		},
		MigrationState: &kubevirtv1.VirtualMachineInstanceMigrationState{SourceNode: "worker-1", TargetNode: "worker-2", Failed: true, FailureReason: "target pod evicted"},
	}}
	assert.Equal(t, []Fact{
		{"VirtualMachineInstance phase", "Running"},
		{"node", "worker-2"},
		{"interface nic0 (eth0)", "10.1.1.245, fd00::5 02:01:00:cc:00:01"},
		{"interface nic1", "02:01:00:cc:00:02"},
		{"guest OS", "Fedora Linux 43 (kernel 6.17.1)"},
		{"condition Paused", "True, PausedByUser: VMI was paused by user"},
		{"last migration", "worker-1 → worker-2, failed: target pod evicted"},
	}, vmiFacts(vmi))
}

// pagedEvents is a test double of the API server's Event list: total events of one VM, served in name order
// (as the API server lists them) in pages of the asked limit, the newest having the names that sort last.
type pagedEvents struct {
	total  int
	limits []string
}

func (p *pagedEvents) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if r.URL.Path != "/api/v1/namespaces/ns/events" || q.Get("fieldSelector") != "involvedObject.name=vm" {
		http.NotFound(w, r)
		return
	}
	p.limits = append(p.limits, q.Get("limit"))
	limit, _ := strconv.Atoi(q.Get("limit"))
	from, _ := strconv.Atoi(q.Get("continue"))
	base := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	list := corev1.EventList{TypeMeta: metav1.TypeMeta{Kind: "EventList", APIVersion: "v1"}}
	for i := from; i < min(from+limit, p.total); i++ {
		at := metav1.NewTime(base.Add(time.Duration(i) * time.Second))
		list.Items = append(list.Items, corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{Name: fmt.Sprintf("vm.%06d", i), Namespace: "ns", ResourceVersion: strconv.Itoa(i + 1)},
			InvolvedObject: corev1.ObjectReference{Kind: "VirtualMachine", Name: "vm"},
			Type:           "Normal", Reason: "Tick", Message: strconv.Itoa(i), LastTimestamp: at, Count: 1,
		})
	}
	if from+limit < p.total {
		list.Continue = strconv.Itoa(from + limit)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(list)
}

func TestEventsKeepsTheNewest(t *testing.T) {
	for _, tt := range []struct {
		name        string
		total       int
		newest      string
		pages, read int
	}{
		{"more pages than the oldest few", 2603, "2602", 6, 2603},
		{"more than the bound: the first maxEvents are read", 6000, "4999", 10, maxEvents},
	} {
		t.Run(tt.name, func(t *testing.T) {
			api := &pagedEvents{total: tt.total}
			srv := httptest.NewServer(api)
			defer srv.Close()
			c, err := NewClient(&rest.Config{Host: srv.URL})
			require.NoError(t, err)
			in := NewScope(c, "ns", nil).Diagnostics()

			evs, err := in.events(t.Context(), "vm")
			require.NoError(t, err)
			assert.Len(t, evs, tt.read)
			assert.Len(t, api.limits, tt.pages)
			facts := eventFacts(evs, 2)
			require.Len(t, facts, 2)
			assert.Equal(t, "VM Normal Tick: "+tt.newest, facts[0].Value, "the newest event, from the last page")
		})
	}
}
