package e2e

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/kube/consoletoken"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/cloudstacksim"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/vncpeer"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

// consoleAnswer is getconsole's answer as CloudStack 4.22 reads it.
type consoleAnswer struct {
	Status  string
	Console struct {
		Host, Port, Password, URL, Protocol string
		PasswordOneTimeUseOnly              bool `json:"passwordonetimeuseonly"`
	}
}

func consoleHost(ns string, details map[string]string) cloudstacksim.Host {
	h := host(ns)
	for k, v := range details {
		h.Host[k] = v
	}
	return h
}

// TestGetconsole runs getconsole as CloudStack does and follows the answer the whole way: the token Secret, the
// gateway (cmd/console), virtapisim's vnc subresource, QEMU's VNC server, and vncsnapshot as the console proxy.
func TestGetconsole(t *testing.T) {
	const ns = "e2e-console"
	namespace(t, ns)
	err := s.client.Create(t.Context(), namespaceObject(translate.DefaultConsoleNamespace))
	require.True(t, err == nil || isAlreadyExists(err), "%v", err)
	in := instance(map[string]string{"image": "quay.io/containerdisks/fedora:43"})

	t.Run("refusals", func(t *testing.T) {
		requireFailure(t, call(t, host(ns), "getconsole", in), "detail console_host: not set")
		requireFailure(t, call(t, consoleHost(ns, map[string]string{"console_host": "10.0.0.5"}), "getconsole", in),
			"VirtualMachine "+ns+"/"+vmName(in)+" does not exist: the Instance has no console")
		requireFailure(t, call(t, consoleHost(ns, map[string]string{"console_mode": "direct"}), "getconsole", in), "detail console_url: not set")
	})
	requireSuccess(t, call(t, host(ns), "create", in))
	t.Run("answers", func(t *testing.T) {
		res := call(t, consoleHost(ns, map[string]string{"console_host": "10.0.0.5", "console_port": "30590"}), "getconsole", in)
		requireSuccess(t, res)
		var answer consoleAnswer
		require.NoError(t, json.Unmarshal([]byte(res.Output), &answer))
		assert.Equal(t, "success", answer.Status)
		assert.Equal(t, "10.0.0.5", answer.Console.Host)
		assert.Equal(t, "30590", answer.Console.Port, "CloudStack reads the port as a string")
		assert.Len(t, answer.Console.Password, 8)
		assert.True(t, answer.Console.PasswordOneTimeUseOnly)
		assert.Equal(t, "vnc", answer.Console.Protocol)
		log, err := os.ReadFile("/tmp/kubevirt-extension-e2e.log")
		require.NoError(t, err)
		assert.NotContains(t, string(log), answer.Console.Password, "the password is never logged")
		secrets := &corev1.SecretList{}
		require.NoError(t, s.client.List(t.Context(), secrets, client.InNamespace(translate.DefaultConsoleNamespace), client.HasLabels{consoletoken.Label}))
		found := false
		for _, sec := range secrets.Items {
			tok, err := consoletoken.FromSecret(&sec)
			require.NoError(t, err)
			if tok.Password == answer.Console.Password {
				found = true
				assert.Equal(t, consoletoken.Target{Namespace: ns, Name: vmName(in), InstanceUUID: in.UUID}, tok.Target)
				assert.Equal(t, 30*time.Second, tok.Lifetime)
			}
		}
		assert.True(t, found, "the token is a Secret in the tokens' namespace")

		res = call(t, consoleHost(ns, map[string]string{"console_mode": "direct", "console_url": "https://console.example.com/kv/"}), "getconsole", in)
		requireSuccess(t, res)
		require.NoError(t, json.Unmarshal([]byte(res.Output), &answer))
		assert.Equal(t, "direct", answer.Console.Protocol)
		assert.Regexp(t, `^https://console\.example\.com/kv/\?token=[A-Za-z0-9_-]{43}$`, answer.Console.URL)
	})

	t.Run("as the extension's ServiceAccount", func(t *testing.T) {
		// manifests/extension-rbac grants what getconsole needs, and check says whether it will work.
		needsEnvtest(t)
		applyAllRBAC(t)
		applyManifests(t, "extension-rbac/console-tokens.yaml")
		namespace(t, managedNamespace)
		kubeconfig, err := s.env.KubeconfigFor(extensionIdentity, serviceAccountGroups)
		require.NoError(t, err)
		h := host(managedNamespace)
		h.Host["kubeconfig"] = kubeconfig
		other := instance(map[string]string{"image": "quay.io/containerdisks/fedora:43"})
		requireSuccess(t, call(t, h, "create", other))
		_, lines := runCheck(t, h, h.Payload("check", other))
		assert.Equal(t, "warn", lines["console"].Result)
		assert.Contains(t, lines["console"].Detail, "detail console_host: not set")

		h.Host["console_host"] = "10.0.0.5"
		_, lines = runCheck(t, h, h.Payload("check", other))
		assert.Equal(t, "ok", lines["console"].Result, lines["console"].Detail)
		assert.Equal(t, "vnc mode via 10.0.0.5:5900; tokens in cloudstack-kubevirt-console, valid 30s", lines["console"].Detail)
		requireSuccess(t, call(t, h, "getconsole", other))
		requireSuccess(t, call(t, h, "delete", other))
	})

	t.Run("through the gateway", func(t *testing.T) {
		peers := vncpeer.Require(t)
		g := startGateway(t, ns, vmName(in))
		h := consoleHost(ns, map[string]string{"console_host": "127.0.0.1", "console_port": g.vncPort, "console_url": g.url})

		start := time.Now()
		res := call(t, h, "getconsole", in)
		requireSuccess(t, res)
		var answer consoleAnswer
		require.NoError(t, json.Unmarshal([]byte(res.Output), &answer))
		img, output, err := peers.Snapshot(t, answer.Console.Host, answer.Console.Port, answer.Console.Password)
		require.NoError(t, err, "vncsnapshot: %s", output)
		t.Logf("getconsole to screenshot: %s; %v screen", time.Since(start).Round(time.Millisecond), img.Bounds().Size())
		assert.GreaterOrEqual(t, img.Bounds().Dx(), 640, "a screen (SeaBIOS's text screen is 720x400)")

		_, output, err = peers.Snapshot(t, answer.Console.Host, answer.Console.Port, answer.Console.Password)
		require.Error(t, err, "a one-time password works once")
		assert.Contains(t, output, "VNC authentication failed")

		// Direct mode: the URL's token opens one websocket session, in which the gateway asks for no password.
		h.Host["console_mode"] = "direct"
		res = call(t, h, "getconsole", in)
		requireSuccess(t, res)
		require.NoError(t, json.Unmarshal([]byte(res.Output), &answer))
		u, err := url.Parse(answer.Console.URL)
		require.NoError(t, err)
		page, err := http.Get(answer.Console.URL)
		require.NoError(t, err)
		page.Body.Close()
		assert.Equal(t, http.StatusOK, page.StatusCode)
		ws := "ws://" + u.Host + "/websockify?token=" + u.Query().Get("token")
		assert.NotEmpty(t, directSession(t, ws), "loading the page did not use the token; the websocket did")
		assert.Equal(t, "", directSession(t, ws), "the token works once")
	})
}

type gateway struct {
	vncPort string
	url     string // direct mode's base URL
}

// startGateway runs cmd/console. On envtest it runs as its ServiceAccount (the RBAC of manifests/console)
// through virtapisim, whose vnc subresource reaches a diskless QEMU for namespace/name; on a real cluster it
// runs with the suite's kubeconfig against virt-api and the VM's own VNC.
func startGateway(t *testing.T, namespace, name string) gateway {
	t.Helper()
	dir := vncpeer.TempDir(t) // short: unix socket paths are limited
	kubeconfig := s.kubeconfig
	if s.virtapi != nil {
		sock := vncpeer.Require(t).StartQEMU(t, dir)
		s.vnc.set(t, namespace, name, func(ctx context.Context) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		})
		applyManifests(t, "console/rbac.yaml")
		bindGateway(t, namespace)
		var err error
		kubeconfig, err = s.virtapi.KubeconfigFor(dir, "system:serviceaccount:cloudstack-kubevirt-system:cloudstack-kubevirt-console", []string{"system:serviceaccounts", "system:authenticated"})
		require.NoError(t, err)
	}
	bin, err := build(dir, "console")
	require.NoError(t, err)
	g := vncpeer.StartGateway(t, bin, kubeconfig, translate.DefaultConsoleNamespace)
	return gateway{vncPort: g.VNCPort, url: "http://127.0.0.1:" + g.HTTPPort}
}

// bindGateway grants the gateway its rules in namespace, as manifests/examples/namespace does in a host's: it
// is bound per managed namespace, not cluster-wide.
func bindGateway(t *testing.T, namespace string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(), "manifests", "examples", "namespace", "console-rolebinding.yaml"))
	require.NoError(t, err)
	rb := &rbacv1.RoleBinding{}
	require.NoError(t, yaml.UnmarshalStrict(data, rb))
	rb.Namespace = namespace
	if err := s.client.Create(t.Context(), rb); !kerrors.IsAlreadyExists(err) {
		require.NoError(t, err)
	}
}

// directSession opens a direct-mode websocket and returns the desktop name from ServerInit, or "" when the
// gateway refuses before security (as for a used token).
func directSession(t *testing.T, wsURL string) string {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.DialContext(t.Context(), wsURL, nil)
	require.NoError(t, err)
	defer ws.Close()
	_ = ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	r := &wsReader{ws: ws}
	send := func(b []byte) { require.NoError(t, ws.WriteMessage(websocket.BinaryMessage, b)) }
	version := make([]byte, 12)
	_, err = io.ReadFull(r, version)
	require.NoError(t, err)
	send([]byte("RFB 003.008\n"))
	n := make([]byte, 1)
	_, err = io.ReadFull(r, n)
	require.NoError(t, err)
	if n[0] == 0 {
		return ""
	}
	types := make([]byte, n[0])
	_, err = io.ReadFull(r, types)
	require.NoError(t, err)
	require.Equal(t, []byte{1}, types, "security None: the token was the authentication")
	send([]byte{1})
	var result uint32
	require.NoError(t, binary.Read(r, binary.BigEndian, &result))
	require.Zero(t, result)
	send([]byte{1}) // ClientInit
	init := make([]byte, 24)
	_, err = io.ReadFull(r, init)
	require.NoError(t, err)
	name := make([]byte, binary.BigEndian.Uint32(init[20:]))
	_, err = io.ReadFull(r, name)
	require.NoError(t, err)
	return string(name)
}

type wsReader struct {
	ws *websocket.Conn
	r  io.Reader
}

func (w *wsReader) Read(p []byte) (int, error) {
	for {
		if w.r == nil {
			_, r, err := w.ws.NextReader()
			if err != nil {
				return 0, err
			}
			w.r = r
		}
		n, err := w.r.Read(p)
		if errors.Is(err, io.EOF) {
			w.r = nil
			if n == 0 {
				continue
			}
			err = nil
		}
		return n, err
	}
}
