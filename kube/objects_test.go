package kube

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	kubevirtv1 "kubevirt.io/api/core/v1"
)

// TestClientErrorsKeepTheServersStatus: a refusal reads as the API server wrote it, an admission webhook's
// message included (KubeVirt's VM admission answers 422 with the reason), not as client-go's generic text.
func TestClientErrorsKeepTheServersStatus(t *testing.T) {
	denied := `admission webhook "virtualmachine-validator.kubevirt.io" denied the request: Cannot update vm running state until snapshot "snap" completes`
	tests := []struct {
		name   string
		status metav1.Status
		is     func(error) bool
	}{
		{
			name:   "admission refusal",
			status: metav1.Status{Status: metav1.StatusFailure, Code: http.StatusUnprocessableEntity, Reason: metav1.StatusReasonInvalid, Message: denied},
			is:     apierrors.IsInvalid,
		},
		{
			name:   "conflict",
			status: metav1.Status{Status: metav1.StatusFailure, Code: http.StatusConflict, Reason: metav1.StatusReasonConflict, Message: "the object has been modified"},
			is:     apierrors.IsConflict,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				st := tt.status
				st.APIVersion, st.Kind = "v1", "Status"
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(int(st.Code))
				_ = json.NewEncoder(w).Encode(st)
			}))
			t.Cleanup(srv.Close)
			c, err := NewClient(&rest.Config{Host: srv.URL})
			require.NoError(t, err)
			vm := &kubevirtv1.VirtualMachine{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "vm"}}

			err = c.MergePatch(t.Context(), vm, map[string]any{"spec": map[string]any{"runStrategy": "Halted"}})
			require.Error(t, err)
			assert.Equal(t, tt.status.Message, err.Error())
			assert.True(t, tt.is(err), "%v", err)

			_, err = c.Raw(t.Context(), http.MethodGet, "/version", nil)
			require.Error(t, err)
			assert.Equal(t, tt.status.Message, err.Error())
		})
	}
}
