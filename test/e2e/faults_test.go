package e2e

import (
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/cloudstacksim"
)

// TestAPIServerFaults: whatever the API server does, the extension answers one JSON error before CloudStack's
// timeout, for every action. Each fault is a server this test controls.
func TestAPIServerFaults(t *testing.T) {
	const timeout = 3 * time.Second
	faults := map[string]func(t *testing.T) string{ // each returns a kubeconfig
		"refusing connections": func(t *testing.T) string {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			addr := l.Addr().String()
			require.NoError(t, l.Close())
			return faultKubeconfig(t, "https://"+addr, nil)
		},
		"accepting and never answering": func(t *testing.T) string {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			var conns sync.WaitGroup
			done := make(chan struct{})
			go func() {
				for {
					c, err := l.Accept()
					if err != nil {
						return
					}
					conns.Go(func() { <-done; c.Close() }) // holds the connection, never says a word
				}
			}()
			t.Cleanup(func() { close(done); l.Close(); conns.Wait() })
			return faultKubeconfig(t, "https://"+l.Addr().String(), nil)
		},
		"answering TLS, then never answering the request": func(t *testing.T) string {
			hang := make(chan struct{})
			srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-hang:
				case <-r.Context().Done():
				}
			}))
			t.Cleanup(func() { close(hang); srv.Close() })
			return faultKubeconfig(t, srv.URL, srv.Certificate().Raw)
		},
		"failing every request (503)": func(t *testing.T) string {
			srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				http.Error(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"ServiceUnavailable","code":503}`, http.StatusServiceUnavailable)
			}))
			t.Cleanup(srv.Close)
			return faultKubeconfig(t, srv.URL, srv.Certificate().Raw)
		},
	}
	in := instance(map[string]string{"image": "quay.io/containerdisks/fedora:43"})
	for name, fault := range faults {
		t.Run(name, func(t *testing.T) {
			kubeconfig := fault(t)
			h := cloudstacksim.Host{
				Host:      map[string]string{"kubeconfig": kubeconfig, "namespace": "faults"},
				Extension: map[string]string{"log_file": filepath.Join(t.TempDir(), "extension.log")},
			}
			for _, action := range []string{"prepare", "create", "start", "stop", "reboot", "delete", "status", "statuses"} {
				res, err := provisioner().Run(t.Context(), action, h.Payload(action, in), timeout)
				require.NoError(t, err)
				assert.False(t, res.TimedOut, "%s answered before CloudStack's timeout (%v)", action, res.Elapsed)
				assert.Less(t, res.Elapsed, timeout, action)
				requireFailure(t, res, action)
				t.Logf("%s after %v: %s", action, res.Elapsed.Round(time.Millisecond), res.Output)
			}
		})
	}
}

// faultKubeconfig writes a kubeconfig for server, trusting ca (DER) when given.
func faultKubeconfig(t *testing.T, server string, ca []byte) string {
	t.Helper()
	if ca == nil {
		// Nothing there answers TLS, so no certificate is ever checked, but the kubeconfig needs a valid CA.
		srv := httptest.NewTLSServer(http.NotFoundHandler())
		ca = srv.Certificate().Raw
		srv.Close()
	}
	tlsLine := "certificate-authority-data: " + base64.StdEncoding.EncodeToString(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca}))
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: fault
  cluster:
    server: %s
    %s
users:
- name: u
  user: {token: fault-token}
contexts:
- name: c
  context: {cluster: fault, user: u}
current-context: c
`, server, tlsLine)
	path := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, os.WriteFile(path, []byte(kc), 0o600))
	return path
}
