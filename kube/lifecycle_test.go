package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

// flakyAPI is a test double of the API server for one VM: it throttles the first read (429 with Retry-After)
// and makes the first write conflict (409), as a busy API server and a concurrent writer would.
type flakyAPI struct {
	gets, patches atomic.Int32
	halted        atomic.Bool
}

func (f *flakyAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	const vmPath = "/apis/kubevirt.io/v1/namespaces/ns/virtualmachines/i-2-45-vm"
	status := func(code int, reason string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		fmt.Fprintf(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":%q,"code":%d}`, reason, code)
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == vmPath:
		if f.gets.Add(1) == 1 {
			w.Header().Set("Retry-After", "1")
			status(http.StatusTooManyRequests, "TooManyRequests")
			return
		}
		f.writeVM(w)
	case r.Method == http.MethodPatch && r.URL.Path == vmPath:
		if f.patches.Add(1) == 1 {
			status(http.StatusConflict, "Conflict")
			return
		}
		f.halted.Store(true)
		f.writeVM(w)
	case r.Method == http.MethodGet: // the VMI: gone
		status(http.StatusNotFound, "NotFound")
	default:
		status(http.StatusMethodNotAllowed, "MethodNotAllowed")
	}
}

func (f *flakyAPI) writeVM(w http.ResponseWriter) {
	strategy := kubevirtv1.RunStrategyAlways
	if f.halted.Load() {
		strategy = kubevirtv1.RunStrategyHalted
	}
	vm := kubevirtv1.VirtualMachine{
		TypeMeta: metav1.TypeMeta{APIVersion: "kubevirt.io/v1", Kind: "VirtualMachine"},
		ObjectMeta: metav1.ObjectMeta{Name: "i-2-45-vm", Namespace: "ns", ResourceVersion: fmt.Sprint(f.gets.Load()),
			Labels: map[string]string{translate.LabelManagedBy: translate.ManagedBy}},
		Spec: kubevirtv1.VirtualMachineSpec{RunStrategy: ptr.To(strategy)},
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(vm)
}

// A stop against a throttling API server and a concurrent writer still succeeds, within its deadline.
func TestStopRetriesThrottlingAndConflicts(t *testing.T) {
	api := &flakyAPI{}
	srv := httptest.NewServer(api)
	defer srv.Close()
	c, err := NewClient(&rest.Config{Host: srv.URL})
	require.NoError(t, err)
	in := NewScope(c, "ns", nil).Lifecycle()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	require.NoError(t, in.Stop(ctx, Identity{Name: "i-2-45-vm"}))
	assert.True(t, api.halted.Load(), "runStrategy Halted written")
	assert.Equal(t, int32(2), api.patches.Load(), "the conflicting patch was read again and retried")
	assert.GreaterOrEqual(t, api.gets.Load(), int32(3), "the throttled read was retried after Retry-After")
	assert.GreaterOrEqual(t, time.Since(start), time.Second, "Retry-After was honoured")
}
