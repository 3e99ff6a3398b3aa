package console

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/kube"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/kube/consoletoken"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/kubevirtsim"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/testenv"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/virtapisim"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/vncpeer"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

// The integration tests run the gateway against real protocol peers: QEMU's VNC server (Debian's
// qemu-system-x86, no disk: SeaBIOS draws the screen) behind virtapisim's vnc subresource on envtest, and
// vncsnapshot (a VNC client from TightVNC) authenticating with the password getconsole minted.

var (
	envOnce sync.Once
	env     *testenv.Env
	envErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if env != nil {
		_ = env.Stop()
	}
	os.Exit(code)
}

// sharedEnv starts envtest for the integration tests only: the unit tests do not need it.
func sharedEnv(t *testing.T) *testenv.Env {
	t.Helper()
	envOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		env, envErr = testenv.Start(ctx, testenv.Options{})
	})
	require.NoError(t, envErr)
	return env
}

const tokenNamespace = translate.DefaultConsoleNamespace

var vmCounter atomic.Int64

// fixture is a namespace with VMs that run QEMU, the stand-in for virt-api, and a gateway with the RBAC of
// manifests/console, bound in that namespace only, as manifests/examples/namespace binds it in a host's.
type fixture struct {
	env      *testenv.Env
	ns       string
	peers    vncpeer.Peers
	api      *virtapisim.Server
	admin    kube.Consoles // getconsole's side (the extension), as admin
	tokens   *Tokens       // the gateway's
	upstream *KubeVirt     // the gateway's
	gateway  *kube.Client  // the gateway's identity
	vncAddr  string
	httpURL  string
	logs     *vncpeer.SyncBuffer

	mu      sync.Mutex
	sockets map[string]string // VM name -> its QEMU's VNC socket
	dialed  []string
}

func newFixture(t *testing.T, options ...func(*Config)) *fixture {
	t.Helper()
	peers := vncpeer.Require(t)
	e := sharedEnv(t)
	ctx := t.Context()
	f := &fixture{env: e, peers: peers, sockets: map[string]string{}, logs: &vncpeer.SyncBuffer{}}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "console-"}}
	require.NoError(t, e.Client.Create(ctx, ns))
	f.ns = ns.Name
	err := e.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: tokenNamespace}})
	require.NoError(t, client.IgnoreAlreadyExists(err))
	applyManifest(t, e, "console/rbac.yaml")
	applyManifestIn(t, e, "examples/namespace/console-rolebinding.yaml", f.ns)

	sim, err := kubevirtsim.Start(context.Background(), e.Config, kubevirtsim.Options{Namespaces: []string{f.ns}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sim.Stop() })
	f.api, err = virtapisim.Start(virtapisim.Options{Admin: e.Config, VNC: f.dialVNC})
	require.NoError(t, err)
	t.Cleanup(f.api.Close)

	c, err := kube.NewClient(e.Config)
	require.NoError(t, err)
	f.admin = kube.NewScope(c, f.ns, nil).Consoles()

	// The gateway as its ServiceAccount, through the stand-in (which serves the vnc subresource).
	cfg, err := f.api.Config("system:serviceaccount:cloudstack-kubevirt-system:cloudstack-kubevirt-console",
		[]string{"system:serviceaccounts", "system:serviceaccounts:cloudstack-kubevirt-system", "system:authenticated"})
	require.NoError(t, err)
	f.tokens, err = NewTokens(cfg, tokenNamespace)
	require.NoError(t, err)
	f.upstream, err = NewKubeVirt(cfg)
	require.NoError(t, err)
	f.gateway, err = kube.NewClient(cfg)
	require.NoError(t, err)
	gcfg := Config{Tokens: f.tokens, Upstream: f.upstream, HandshakeTimeout: 10 * time.Second, Log: slog.New(slog.NewJSONHandler(f.logs, nil))}
	for _, o := range options {
		o(&gcfg)
	}
	g := New(gcfg)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("gateway log:\n%s", f.logs)
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	f.vncAddr = ln.Addr().String()
	gctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- g.ServeVNC(gctx, ln) }()
	web := httptest.NewUnstartedServer(g.DirectHandler())
	web.Config.BaseContext = func(net.Listener) context.Context { return gctx }
	web.Start()
	f.httpURL = web.URL
	t.Cleanup(func() {
		cancel()
		web.Close()
		assert.NoError(t, <-served)
	})
	// RBAC takes effect asynchronously: wait until the gateway may read its tokens and the namespace's VMs.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.NoError(c, f.tokens.Check(ctx))
		err := f.gateway.Get(ctx, types.NamespacedName{Namespace: f.ns, Name: "none"}, &kubevirtv1.VirtualMachine{})
		assert.True(c, kerrors.IsNotFound(err), "%v", err)
	}, 10*time.Second, 50*time.Millisecond)
	return f
}

// applyManifestIn creates the objects of a file under manifests/ in namespace, as an overlay's `namespace:`
// would.
func applyManifestIn(t *testing.T, e *testenv.Env, path, namespace string) {
	t.Helper()
	for _, obj := range readManifest(t, path) {
		obj.SetNamespace(namespace)
		require.NoError(t, client.IgnoreAlreadyExists(e.Client.Create(t.Context(), obj)))
	}
}

// applyManifest creates the objects of a file under manifests/ (which names their namespaces itself).
func applyManifest(t *testing.T, e *testenv.Env, path string) {
	t.Helper()
	for _, obj := range readManifest(t, path) {
		require.NoError(t, client.IgnoreAlreadyExists(e.Client.Create(t.Context(), obj)))
	}
}

// readManifest decodes the objects of a file under manifests/.
func readManifest(t *testing.T, path string) []*unstructured.Unstructured {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	data, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "manifests", path))
	require.NoError(t, err)
	var objs []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		obj := &unstructured.Unstructured{}
		if err := dec.Decode(&obj.Object); errors.Is(err, io.EOF) {
			return objs
		} else {
			require.NoError(t, err)
		}
		if len(obj.Object) > 0 {
			objs = append(objs, obj)
		}
	}
}

// dialVNC is virt-handler's side: the VMI's QEMU VNC socket.
func (f *fixture) dialVNC(ctx context.Context, namespace, name string) (net.Conn, error) {
	f.mu.Lock()
	sock, ok := f.sockets[name]
	f.dialed = append(f.dialed, name)
	f.mu.Unlock()
	if !ok || namespace != f.ns {
		return nil, fmt.Errorf("no QEMU for %s/%s", namespace, name)
	}
	var d net.Dialer
	return d.DialContext(ctx, "unix", sock)
}

func (f *fixture) dialedVMs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.dialed...)
}

// vm creates a running VM (labelled as the extension labels them unless unmanaged) with a QEMU behind it.
func (f *fixture) vm(t *testing.T, name string, managed bool) kube.Identity {
	t.Helper()
	id := kube.Identity{Name: name, UUID: fmt.Sprintf("0d5e6c2a-8f0b-4c7e-9a51-%012d", vmCounter.Add(1))}
	labels := map[string]string{}
	if managed {
		labels = map[string]string{translate.LabelManagedBy: translate.ManagedBy, translate.LabelInstanceUUID: id.UUID}
	}
	vm := &kubevirtv1.VirtualMachine{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name, Labels: labels},
		Spec: kubevirtv1.VirtualMachineSpec{
			RunStrategy: ptr.To(kubevirtv1.RunStrategyAlways),
			Template: &kubevirtv1.VirtualMachineInstanceTemplateSpec{Spec: kubevirtv1.VirtualMachineInstanceSpec{
				Domain: kubevirtv1.DomainSpec{Memory: &kubevirtv1.Memory{Guest: ptr.To(resource.MustParse("32Mi"))}},
			}},
		},
	}
	require.NoError(t, f.env.Client.Create(t.Context(), vm))
	sock := f.peers.StartQEMU(t, vncpeer.TempDir(t))
	f.mu.Lock()
	f.sockets[name] = sock
	f.mu.Unlock()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		vmi := &kubevirtv1.VirtualMachineInstance{}
		require.NoError(c, f.env.Client.Get(t.Context(), types.NamespacedName{Namespace: f.ns, Name: name}, vmi))
		require.Equal(c, kubevirtv1.Running, vmi.Status.Phase)
	}, 20*time.Second, 20*time.Millisecond)
	return id
}

func (f *fixture) console(t *testing.T, id kube.Identity, mode string, lifetime time.Duration) kube.Console {
	t.Helper()
	c, err := f.admin.OpenConsole(t.Context(), id, translate.ConsoleSettings{Mode: mode, Host: "127.0.0.1", Port: 5900, URL: f.httpURL, Namespace: tokenNamespace, Lifetime: lifetime})
	require.NoError(t, err)
	return c
}

// snapshot runs vncsnapshot against the gateway with password; it returns the screenshot, or the client's
// output when it fails.
func (f *fixture) snapshot(t *testing.T, password string) (image.Image, string, error) {
	t.Helper()
	host, port, err := net.SplitHostPort(f.vncAddr)
	require.NoError(t, err)
	return f.peers.Snapshot(t, host, port, password)
}

func TestConsoleWithVNCClient(t *testing.T) {
	f := newFixture(t)
	a := f.vm(t, "vm-a", true)
	b := f.vm(t, "vm-b", true)

	start := time.Now()
	ca := f.console(t, a, translate.ConsoleVNC, 30*time.Second)
	cb := f.console(t, b, translate.ConsoleVNC, 30*time.Second)
	assert.Len(t, ca.Password, 8)
	assert.NotEqual(t, ca.Password, cb.Password)

	img, output, err := f.snapshot(t, ca.Password)
	require.NoError(t, err, "vncsnapshot: %s", output)
	t.Logf("getconsole to screenshot: %s; screen %v", time.Since(start).Round(time.Millisecond), img.Bounds().Size())
	assert.GreaterOrEqual(t, img.Bounds().Dx(), 640, "SeaBIOS's screen")
	assert.GreaterOrEqual(t, img.Bounds().Dy(), 400)
	assert.Greater(t, brightPixels(img), 500, "SeaBIOS's text is on the screen")
	assert.Equal(t, []string{"vm-a"}, f.dialedVMs(), "A's password opened A, and nothing else")
	saveScreenshot(t, img)

	t.Run("the same password again is refused", func(t *testing.T) {
		_, output, err := f.snapshot(t, ca.Password)
		require.Error(t, err)
		assert.Contains(t, output, "VNC authentication failed")
		assert.Contains(t, f.logs.String(), "no console token matches")
	})
	t.Run("B's password opens B", func(t *testing.T) {
		_, output, err := f.snapshot(t, cb.Password)
		require.NoError(t, err, "vncsnapshot: %s", output)
		assert.Equal(t, []string{"vm-a", "vm-b"}, f.dialedVMs())
	})
	t.Run("a wrong password is refused", func(t *testing.T) {
		_, output, err := f.snapshot(t, "wrongpwd")
		require.Error(t, err)
		assert.Contains(t, output, "VNC authentication failed")
	})
	t.Run("an expired password is refused", func(t *testing.T) {
		c := f.console(t, a, translate.ConsoleVNC, time.Second)
		time.Sleep(2500 * time.Millisecond) // creationTimestamp and Date have one-second resolution
		_, output, err := f.snapshot(t, c.Password)
		require.Error(t, err)
		assert.Contains(t, output, "VNC authentication failed")
		assert.Contains(t, f.logs.String(), "the console token has expired")
	})
	assert.Equal(t, []string{"vm-a", "vm-b"}, f.dialedVMs(), "refused passwords opened nothing")

	t.Run("time to the first framebuffer update", func(t *testing.T) {
		for range 3 {
			start := time.Now()
			c := f.console(t, a, translate.ConsoleVNC, 30*time.Second)
			minted := time.Since(start)
			conn, err := net.Dial("tcp", f.vncAddr)
			require.NoError(t, err)
			_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
			_, _, session := rfbSession(t, conn, c.Password)
			conn.Close()
			t.Logf("vnc: getconsole's token %s, then login to first framebuffer update %s: %s in all",
				minted.Round(time.Millisecond), session.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
		}
	})
}

func TestConsoleRefusesUnmanagedVMs(t *testing.T) {
	f := newFixture(t)
	id := f.vm(t, "vm-unmanaged", false)
	_, err := f.admin.OpenConsole(t.Context(), id, translate.ConsoleSettings{Mode: translate.ConsoleVNC, Namespace: tokenNamespace, Lifetime: time.Minute})
	require.ErrorContains(t, err, "exists but CloudStack did not create it")

	// A token for it, forged by whoever may create Secrets in the tokens' namespace, opens nothing either.
	tok := consoletoken.Token{Mode: translate.ConsoleVNC, Target: consoletoken.Target{Namespace: f.ns, Name: id.Name}, Password: "forgedpw", Lifetime: time.Minute}
	require.NoError(t, f.env.Client.Create(t.Context(), tokenSecret(tok)))
	_, output, err := f.snapshot(t, "forgedpw")
	require.Error(t, err, output)
	assert.Contains(t, f.logs.String(), "is not managed by CloudStack")
	assert.Empty(t, f.dialedVMs())

	t.Run("a VM that does not run has no console", func(t *testing.T) {
		_, err := f.admin.OpenConsole(t.Context(), kube.Identity{Name: "missing"}, translate.ConsoleSettings{Mode: translate.ConsoleVNC, Namespace: tokenNamespace, Lifetime: time.Minute})
		require.ErrorContains(t, err, "does not exist")
	})
}

// tokenSecret is what OpenConsole stores, for forging.
func tokenSecret(tok consoletoken.Token) *corev1.Secret {
	return tok.Secret(tokenNamespace, "")
}

func TestDirectConsole(t *testing.T) {
	f := newFixture(t)
	a := f.vm(t, "vm-direct", true)
	start := time.Now()
	c := f.console(t, a, translate.ConsoleDirect, 30*time.Second)
	require.Len(t, c.Token, 43, "32 bytes, base64url")

	// Nothing readable in the tokens' namespace opens the console: the Secret is named by the token's hash.
	secrets := &corev1.SecretList{}
	require.NoError(t, f.env.Client.List(t.Context(), secrets, client.InNamespace(tokenNamespace), client.HasLabels{consoletoken.Label}))
	for _, s := range secrets.Items {
		assert.NotContains(t, s.Name, c.Token)
		for _, v := range s.Data {
			assert.NotContains(t, string(v), c.Token)
		}
	}

	conn := f.websocket(t, c.Token)
	width, height, session := rfbSession(t, conn, "")
	t.Logf("direct: getconsole to first framebuffer update %s (of which the session %s); screen %dx%d",
		time.Since(start).Round(time.Millisecond), session.Round(time.Millisecond), width, height)
	assert.GreaterOrEqual(t, width, 640)
	conn.Close()

	t.Run("the token works once", func(t *testing.T) {
		conn := f.websocket(t, c.Token)
		reason := rfbRefused(t, conn)
		assert.Contains(t, reason, "invalid, expired or already used")
	})
	t.Run("the page", func(t *testing.T) {
		resp, err := http.Get(f.httpURL + "/?token=x")
		require.NoError(t, err)
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		assert.Contains(t, string(body), "has no noVNC", "without --novnc-dir the page says what is missing")
		assert.Equal(t, "no-referrer", resp.Header.Get("Referrer-Policy"))
	})
}

func (f *fixture) websocket(t *testing.T, token string) net.Conn {
	t.Helper()
	u := "ws" + strings.TrimPrefix(f.httpURL, "http") + "/websockify?token=" + token
	ws, _, err := websocket.DefaultDialer.DialContext(t.Context(), u, nil)
	require.NoError(t, err)
	conn := newWSConn(ws)
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	t.Cleanup(func() { conn.Close() })
	return conn
}

// rfbSession is a VNC client as far as the first framebuffer update: RFB 3.8 with None (direct mode) or VNC
// authentication with password.
func rfbSession(t *testing.T, conn net.Conn, password string) (width, height int, elapsed time.Duration) {
	t.Helper()
	start := time.Now()
	require.NoError(t, vncSecurity(conn, password))
	_, err := conn.Write([]byte{1}) // ClientInit: shared
	require.NoError(t, err)
	var init struct {
		Width, Height uint16
		Format        [16]byte
		NameLength    uint32
	}
	require.NoError(t, binary.Read(conn, binary.BigEndian, &init))
	name := make([]byte, init.NameLength)
	_, err = io.ReadFull(conn, name)
	require.NoError(t, err)
	assert.Equal(t, "QEMU", string(name))
	// FramebufferUpdateRequest for the whole screen; no SetEncodings, so the answer is Raw.
	req := []byte{3, 0, 0, 0, 0, 0}
	req = binary.BigEndian.AppendUint16(req, init.Width)
	req = binary.BigEndian.AppendUint16(req, init.Height)
	_, err = conn.Write(req)
	require.NoError(t, err)
	header := make([]byte, 4)
	_, err = io.ReadFull(conn, header)
	require.NoError(t, err)
	require.Equal(t, byte(0), header[0], "FramebufferUpdate")
	require.NotZero(t, binary.BigEndian.Uint16(header[2:]), "rectangles")
	return int(init.Width), int(init.Height), time.Since(start)
}

func vncSecurity(conn net.Conn, password string) error {
	if _, err := io.ReadFull(conn, make([]byte, 12)); err != nil {
		return err
	}
	if _, err := conn.Write([]byte(rfbVersion)); err != nil {
		return err
	}
	types := make([]byte, 2)
	if _, err := io.ReadFull(conn, types); err != nil {
		return err
	}
	if _, err := conn.Write(types[1:]); err != nil {
		return err
	}
	if types[1] == securityVNCAuth {
		challenge := make([]byte, 16)
		if _, err := io.ReadFull(conn, challenge); err != nil {
			return err
		}
		response, _ := vncAuthResponse(password, challenge)
		if _, err := conn.Write(response); err != nil {
			return err
		}
	}
	return readSecurityResult(conn)
}

// rfbRefused reads the server's version and expects no security types, with a reason.
func rfbRefused(t *testing.T, conn net.Conn) string {
	t.Helper()
	_, err := io.ReadFull(conn, make([]byte, 12))
	require.NoError(t, err)
	_, err = conn.Write([]byte(rfbVersion))
	require.NoError(t, err)
	n := make([]byte, 1)
	_, err = io.ReadFull(conn, n)
	require.NoError(t, err)
	require.Zero(t, n[0], "no security types")
	return readReason(conn)
}

// A password presented to two replicas at once opens one session.
func TestTokensConsumedOnceAcrossReplicas(t *testing.T) {
	f := newFixture(t)
	a := f.vm(t, "vm-race", true)
	cfg, err := f.api.Config("system:serviceaccount:cloudstack-kubevirt-system:cloudstack-kubevirt-console", []string{"system:serviceaccounts"})
	require.NoError(t, err)
	other, err := NewTokens(cfg, tokenNamespace)
	require.NoError(t, err)
	for range 5 {
		c := f.console(t, a, translate.ConsoleVNC, 30*time.Second)
		challenge := bytes.Repeat([]byte{7}, 16)
		response, _ := vncAuthResponse(c.Password, challenge)
		errs := make(chan error, 2)
		for _, replica := range []*Tokens{f.tokens, other} {
			go func() {
				_, err := replica.ConsumePassword(t.Context(), challenge, response)
				errs <- err
			}()
		}
		e1, e2 := <-errs, <-errs
		require.True(t, (e1 == nil) != (e2 == nil), "exactly one wins: %v, %v", e1, e2)
		lost := errors.Join(e1, e2)
		assert.True(t, errors.Is(lost, ErrUsed) || errors.Is(lost, ErrNoToken), "%v", lost)
	}
}

func TestSweep(t *testing.T) {
	f := newFixture(t)
	a := f.vm(t, "vm-sweep", true)
	f.console(t, a, translate.ConsoleVNC, time.Second)
	live := f.console(t, a, translate.ConsoleDirect, time.Minute)
	time.Sleep(2500 * time.Millisecond)
	n, err := f.tokens.Sweep(t.Context())
	require.NoError(t, err)
	assert.GreaterOrEqual(t, n, 1)
	secret := &corev1.Secret{}
	require.NoError(t, f.env.Client.Get(t.Context(), types.NamespacedName{Namespace: tokenNamespace, Name: consoletoken.DirectSecretName(live.Token)}, secret), "an unexpired token stays")
}

// brightPixels counts the light pixels: text on SeaBIOS's black screen.
func brightPixels(img image.Image) int {
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if (r+g+bl)/3 > 0x8000 {
				n++
			}
		}
	}
	return n
}

// saveScreenshot writes the screenshot as PNG where CONSOLE_SCREENSHOT says (for the README).
func saveScreenshot(t *testing.T, img image.Image) {
	path := os.Getenv("CONSOLE_SCREENSHOT")
	if path == "" {
		return
	}
	var buf bytes.Buffer
	require.NoError(t, png.Encode(&buf, img))
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
	t.Logf("screenshot saved to %s (%d bytes)", path, buf.Len())
}

// An extension identity without manifests/extension-rbac/console-tokens.yaml gets an error that names it.
func TestConsoleTokensNeedTheirRole(t *testing.T) {
	f := newFixture(t)
	id := f.vm(t, "vm-rbac", true)
	applyManifest(t, f.env, "extension-rbac/clusterrole.yaml")
	user := "console-rbac-" + f.ns
	require.NoError(t, f.env.Client.Create(t.Context(), &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "extension"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "cloudstack-kubevirt-extension"},
		Subjects:   []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: user}},
	}))
	cfg, err := f.env.ConfigFor(user, nil)
	require.NoError(t, err)
	c, err := kube.NewClient(cfg)
	require.NoError(t, err)
	in := kube.NewScope(c, f.ns, nil).Consoles()
	settings := translate.ConsoleSettings{Mode: translate.ConsoleVNC, Namespace: tokenNamespace, Lifetime: time.Minute}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		_, err := in.OpenConsole(t.Context(), id, settings)
		require.ErrorContains(c, err, "apply manifests/extension-rbac/console-tokens.yaml")
	}, 10*time.Second, 50*time.Millisecond)
}

// The gateway's rules are bound per namespace (manifests/examples/namespace/console-rolebinding.yaml): it opens
// the consoles of its namespace's VMs, and may not even read a VM in a namespace without the binding, whatever a
// token says. (Bound cluster-wide, a compromised gateway read every VM's spec and opened every console.)
func TestConsoleRBACIsPerNamespace(t *testing.T) {
	f := newFixture(t)
	id := f.vm(t, "vm-bound", true)
	c := f.console(t, id, translate.ConsoleVNC, 30*time.Second)
	_, output, err := f.snapshot(t, c.Password)
	require.NoError(t, err, "its own namespace: vncsnapshot: %s", output)

	// Another namespace with a VM that looks like CloudStack's, and a token for it (forged: the extension
	// would refuse a namespace it is not bound in).
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "console-unbound-"}}
	require.NoError(t, f.env.Client.Create(t.Context(), ns))
	uuid := fmt.Sprintf("0d5e6c2a-8f0b-4c7e-9a51-%012d", vmCounter.Add(1))
	vm := &kubevirtv1.VirtualMachine{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "vm-unbound",
			Labels: map[string]string{translate.LabelManagedBy: translate.ManagedBy, translate.LabelInstanceUUID: uuid}},
		Spec: kubevirtv1.VirtualMachineSpec{
			RunStrategy: ptr.To(kubevirtv1.RunStrategyHalted),
			Template: &kubevirtv1.VirtualMachineInstanceTemplateSpec{Spec: kubevirtv1.VirtualMachineInstanceSpec{
				Domain: kubevirtv1.DomainSpec{Memory: &kubevirtv1.Memory{Guest: ptr.To(resource.MustParse("32Mi"))}},
			}},
		},
	}
	require.NoError(t, f.env.Client.Create(t.Context(), vm))
	target := consoletoken.Target{Namespace: ns.Name, Name: vm.Name, InstanceUUID: uuid}

	_, err = f.upstream.Open(t.Context(), target)
	require.Error(t, err)
	assert.True(t, kerrors.IsForbidden(err), "the gateway may not read the VM: %v", err)

	tok := consoletoken.Token{Mode: translate.ConsoleVNC, Target: target, Password: "unbound1", Lifetime: time.Minute}
	require.NoError(t, f.env.Client.Create(t.Context(), tokenSecret(tok)))
	_, output, err = f.snapshot(t, "unbound1")
	require.Error(t, err, output)
	assert.Contains(t, output, "VNC authentication failed")
	assert.Contains(t, f.logs.String(), "forbidden: the gateway's ServiceAccount is not bound in namespace "+ns.Name)
	assert.Equal(t, []string{"vm-bound"}, f.dialedVMs(), "nothing opened outside the namespace")
}
