package virtapisim_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/kubevirtsim"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/testenv"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/virtapisim"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, testenv.Options{}, func(e *testenv.Env) { env = e }))
}

// fixture is a namespace with a running VM, the simulator, and the stand-in in front of envtest.
type fixture struct {
	ns     string
	sim    *kubevirtsim.Sim
	server *virtapisim.Server
}

func start(t *testing.T, vnc func(context.Context, string, string) (net.Conn, error)) fixture {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "virtapi-"}}
	require.NoError(t, env.Client.Create(t.Context(), ns))
	sim, err := kubevirtsim.Start(t.Context(), env.Config, kubevirtsim.Options{Namespaces: []string{ns.Name}})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, sim.Stop()) })
	server, err := virtapisim.Start(virtapisim.Options{Admin: env.Config, Sim: sim, VNC: vnc})
	require.NoError(t, err)
	t.Cleanup(server.Close)
	return fixture{ns: ns.Name, sim: sim, server: server}
}

func runningVM(t *testing.T, ns, name string) *kubevirtv1.VirtualMachineInstance {
	t.Helper()
	vm := &kubevirtv1.VirtualMachine{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: kubevirtv1.VirtualMachineSpec{
			RunStrategy: ptr.To(kubevirtv1.RunStrategyAlways),
			Template: &kubevirtv1.VirtualMachineInstanceTemplateSpec{Spec: kubevirtv1.VirtualMachineInstanceSpec{
				Domain: kubevirtv1.DomainSpec{Memory: &kubevirtv1.Memory{Guest: ptr.To(resource.MustParse("64Mi"))}},
			}},
		},
	}
	require.NoError(t, env.Client.Create(t.Context(), vm))
	return waitVMI(t, ns, name, func(vmi *kubevirtv1.VirtualMachineInstance) bool { return vmi.Status.Phase == kubevirtv1.Running })
}

func waitVMI(t *testing.T, ns, name string, ok func(*kubevirtv1.VirtualMachineInstance) bool) *kubevirtv1.VirtualMachineInstance {
	t.Helper()
	vmi := &kubevirtv1.VirtualMachineInstance{}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		require.NoError(c, env.Client.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: name}, vmi))
		require.True(c, ok(vmi), "VMI phase %s, conditions %v", vmi.Status.Phase, vmi.Status.Conditions)
	}, 20*time.Second, 20*time.Millisecond)
	return vmi
}

func paused(vmi *kubevirtv1.VirtualMachineInstance) bool {
	for _, c := range vmi.Status.Conditions {
		if c.Type == kubevirtv1.VirtualMachineInstancePaused {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// subresources is a REST client for subresources.kubevirt.io through the stand-in, as user.
func subresources(t *testing.T, f fixture, user string, groups ...string) rest.Interface {
	t.Helper()
	cfg, err := f.server.Config(user, groups)
	require.NoError(t, err)
	cfg.APIPath = "/apis"
	cfg.GroupVersion = &schema.GroupVersion{Group: "subresources.kubevirt.io", Version: "v1"}
	cfg.NegotiatedSerializer = serializer.NewCodecFactory(env.Scheme).WithoutConversion()
	rc, err := rest.RESTClientFor(cfg)
	require.NoError(t, err)
	return rc
}

func put(ctx context.Context, rc rest.Interface, ns, resource, name, sub string) error {
	return rc.Put().Namespace(ns).Resource(resource).Name(name).SubResource(sub).
		Body([]byte("{}")).SetHeader("Content-Type", "application/json").Do(ctx).Error()
}

func TestPauseAndUnpause(t *testing.T) {
	f := start(t, nil)
	runningVM(t, f.ns, "vm")
	admin := subresources(t, f, "admin", "system:masters")

	require.NoError(t, put(t.Context(), admin, f.ns, "virtualmachineinstances", "vm", "pause"))
	waitVMI(t, f.ns, "vm", paused)
	err := put(t.Context(), admin, f.ns, "virtualmachineinstances", "vm", "pause")
	require.True(t, apierrors.IsConflict(err), "pausing twice: %v", err)
	require.ErrorContains(t, err, "VMI is already paused")

	require.NoError(t, put(t.Context(), admin, f.ns, "virtualmachineinstances", "vm", "unpause"))
	waitVMI(t, f.ns, "vm", func(vmi *kubevirtv1.VirtualMachineInstance) bool { return !paused(vmi) })
	err = put(t.Context(), admin, f.ns, "virtualmachineinstances", "vm", "unpause")
	require.True(t, apierrors.IsConflict(err), "unpausing twice: %v", err)
	require.ErrorContains(t, err, "VMI is not paused")

	err = put(t.Context(), admin, f.ns, "virtualmachineinstances", "missing", "pause")
	require.True(t, apierrors.IsNotFound(err), "pausing a missing VMI: %v", err)
}

func TestRestartReplacesTheVMI(t *testing.T) {
	f := start(t, nil)
	old := runningVM(t, f.ns, "vm")
	admin := subresources(t, f, "admin", "system:masters")
	require.NoError(t, put(t.Context(), admin, f.ns, "virtualmachines", "vm", "restart"))
	require.Equal(t, 1, f.server.Served("restart"))
	waitVMI(t, f.ns, "vm", func(vmi *kubevirtv1.VirtualMachineInstance) bool {
		return vmi.UID != old.UID && vmi.Status.Phase == kubevirtv1.Running
	})
	err := put(t.Context(), admin, f.ns, "virtualmachines", "missing", "restart")
	require.True(t, apierrors.IsNotFound(err), "restarting a missing VM: %v", err)
}

// RBAC is the real API server's: a user may do through the stand-in exactly what its RoleBindings allow, and
// cannot claim to be someone else.
func TestCallersAreAuthorizedAsThemselves(t *testing.T) {
	f := start(t, nil)
	runningVM(t, f.ns, "vm")
	nobody := subresources(t, f, "nobody")
	err := put(t.Context(), nobody, f.ns, "virtualmachineinstances", "vm", "pause")
	require.True(t, apierrors.IsForbidden(err), "pause without RBAC: %v", err)

	cfg, err := f.server.Config("nobody", nil)
	require.NoError(t, err)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "admin", Groups: []string{"system:masters"}}
	c, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	require.NoError(t, err)
	err = c.List(t.Context(), &corev1.SecretList{}, client.InNamespace(f.ns))
	require.True(t, apierrors.IsForbidden(err), "impersonation headers from the caller must be ignored: %v", err)

	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "pauser"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"subresources.kubevirt.io"}, Resources: []string{"virtualmachineinstances/pause"}, Verbs: []string{"update"}},
			{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"list"}},
		},
	}
	require.NoError(t, env.Client.Create(t.Context(), role))
	require.NoError(t, env.Client.Create(t.Context(), &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "pauser"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "pauser"},
		Subjects:   []rbacv1.Subject{{Kind: "Group", APIGroup: "rbac.authorization.k8s.io", Name: "pausers"}},
	}))
	pauser := subresources(t, f, "someone", "pausers")
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		require.NoError(c, put(t.Context(), pauser, f.ns, "virtualmachineinstances", "vm", "pause"))
	}, 10*time.Second, 50*time.Millisecond)
	err = put(t.Context(), pauser, f.ns, "virtualmachineinstances", "vm", "unpause")
	require.True(t, apierrors.IsForbidden(err), "unpause is not granted: %v", err)

	member, err := f.server.Config("someone", []string{"pausers"})
	require.NoError(t, err)
	mc, err := client.New(member, client.Options{Scheme: env.Scheme})
	require.NoError(t, err)
	require.NoError(t, mc.List(t.Context(), &corev1.SecretList{}, client.InNamespace(f.ns)), "forwarded as the caller")
}

func TestAnonymousCallersAreRefused(t *testing.T) {
	f := start(t, nil)
	cfg, err := f.server.Config("x", nil)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(cfg.CAData))
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := hc.Get(f.server.URL() + "/api/v1/namespaces")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
}

// The vnc subresource relays raw bytes both ways between a websocket and the guest's VNC stream.
func TestVNCRelaysTheGuestStream(t *testing.T) {
	var dialled []string
	f := start(t, func(_ context.Context, ns, name string) (net.Conn, error) {
		dialled = append(dialled, ns+"/"+name)
		server, guest := net.Pipe()
		go func() { // an echo "guest" that greets first, as an RFB server does
			defer guest.Close()
			if _, err := guest.Write([]byte("RFB 003.008\n")); err != nil {
				return
			}
			_, _ = io.Copy(guest, guest)
		}()
		return server, nil
	})
	runningVM(t, f.ns, "vm")
	cfg, err := f.server.Config("admin", []string{"system:masters"})
	require.NoError(t, err)
	ws := dialVNC(t, cfg, f.server.URL(), f.ns, "vm")
	_, greeting, err := ws.ReadMessage()
	require.NoError(t, err)
	require.Equal(t, "RFB 003.008\n", string(greeting))
	require.NoError(t, ws.WriteMessage(websocket.BinaryMessage, []byte("ping")))
	_, echo, err := ws.ReadMessage()
	require.NoError(t, err)
	require.Equal(t, "ping", string(echo))
	require.Equal(t, []string{f.ns + "/vm"}, dialled)
	require.Equal(t, "plain.kubevirt.io", ws.Subprotocol())

	nobody, err := f.server.Config("nobody", nil)
	require.NoError(t, err)
	_, resp, err := dialer(t, nobody).Dial(vncURL(f.server.URL(), f.ns, "vm"), nil)
	require.Error(t, err)
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
}

func vncURL(base, ns, name string) string {
	return fmt.Sprintf("wss://%s/apis/subresources.kubevirt.io/v1/namespaces/%s/virtualmachineinstances/%s/vnc", base[len("https://"):], ns, name)
}

func dialer(t *testing.T, cfg *rest.Config) *websocket.Dialer {
	t.Helper()
	tlsCfg, err := rest.TLSConfigFor(cfg)
	require.NoError(t, err)
	return &websocket.Dialer{TLSClientConfig: tlsCfg, Subprotocols: []string{"plain.kubevirt.io"}, HandshakeTimeout: 5 * time.Second}
}

func dialVNC(t *testing.T, cfg *rest.Config, base, ns, name string) *websocket.Conn {
	t.Helper()
	ws, resp, err := dialer(t, cfg).Dial(vncURL(base, ns, name), nil)
	require.NoError(t, err)
	resp.Body.Close()
	t.Cleanup(func() { ws.Close() })
	return ws
}
