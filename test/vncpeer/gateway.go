package vncpeer

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Gateway is a console gateway (cmd/console, the product) running on loopback for a test, the peer the console
// proxy and browsers talk to.
type Gateway struct {
	VNCPort, HTTPPort string
}

// StartGateway runs the gateway binary bin with kubeconfig, its tokens in tokenNamespace, on free loopback ports;
// it returns once the gateway is ready, and stops it (logging its output) when the test ends.
func StartGateway(t testing.TB, bin, kubeconfig, tokenNamespace string) Gateway {
	t.Helper()
	vncPort, httpPort, healthPort := FreePort(t), FreePort(t), FreePort(t)
	var logs SyncBuffer
	cmd := exec.Command(bin, "--kubeconfig", kubeconfig, "--vnc-listen", "127.0.0.1:"+vncPort, "--http-listen", "127.0.0.1:"+httpPort,
		"--health-listen", "127.0.0.1:"+healthPort, "--namespace", tokenNamespace)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		t.Logf("gateway log:\n%s", logs.String())
	})
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://127.0.0.1:" + healthPort + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 20*time.Second, 50*time.Millisecond, "the gateway gets ready once it may list its tokens")
	return Gateway{VNCPort: vncPort, HTTPPort: httpPort}
}

// FreePort is a loopback TCP port no one listens on.
func FreePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	_, port, err := net.SplitHostPort(l.Addr().String())
	require.NoError(t, err)
	return port
}
