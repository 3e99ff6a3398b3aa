package boot

import (
	"context"
	"encoding/json"
	"image"
	"image/png"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/fixture"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/virtapisim"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/vncpeer"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

// gatewayIdentity is the console gateway's ServiceAccount (manifests/console).
const gatewayIdentity = "system:serviceaccount:cloudstack-kubevirt-system:cloudstack-kubevirt-console"

// TestConsole follows getconsole to a booted guest's screen: the extension's one-time password, the console
// gateway (cmd/console, as its ServiceAccount), virt-api's vnc subresource (virtapisim, which opens the domain's
// VNC socket as virt-handler would), QEMU's VNC server, and vncsnapshot as CloudStack's console proxy. With
// BOOT_SCREENSHOT=<file.png> the screen is saved (docs/console.md shows it).
func TestConsole(t *testing.T) {
	requireBoot(t)
	peers := vncpeer.Require(t)
	ctx := t.Context()
	require.NoError(t, fixture.HostNamespace(ctx, s.client, ns, vlans...))
	tt := variant{name: "containerDisk, BIOS", details: map[string]string{"image": "quay.io/containerdisks/fedora:43"}, cpus: 2, memoryMB: 1024, medium: "disk", bus: "virtio"}
	in, h := tt.instance()
	requireSuccess(t, call(t, h, "create", in))
	t.Cleanup(func() { call(t, h, "delete", in) })
	vmi := runningVMI(t, in)
	dom := bootDomain(t, vmi)

	api, err := virtapisim.Start(virtapisim.Options{Admin: s.admin, VNC: func(ctx context.Context, namespace, name string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", dom.vnc)
	}})
	require.NoError(t, err)
	t.Cleanup(api.Close)
	for _, n := range []string{"cloudstack-kubevirt-system", translate.DefaultConsoleNamespace} {
		if err := s.client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n}}); client.IgnoreAlreadyExists(err) != nil {
			require.NoError(t, err)
		}
	}
	require.NoError(t, fixture.ApplyManifest(ctx, s.client, filepath.Join(repoRoot(), "manifests", "console", "rbac.yaml")))
	binding := filepath.Join(dom.dir, "console-rolebinding.yaml")
	require.NoError(t, rebind(filepath.Join(repoRoot(), "manifests", "examples", "namespace", "console-rolebinding.yaml"), binding))
	require.NoError(t, fixture.ApplyManifest(ctx, s.client, binding))
	kubeconfig, err := api.KubeconfigFor(dom.dir, gatewayIdentity, []string{"system:serviceaccounts", "system:authenticated"})
	require.NoError(t, err)
	vncPort := startGateway(t, kubeconfig, dom.dir)

	h.Host["console_host"], h.Host["console_port"] = "127.0.0.1", vncPort
	res := call(t, h, "getconsole", in)
	requireSuccess(t, res)
	var answer struct {
		Console struct{ Host, Port, Password string }
	}
	require.NoError(t, json.Unmarshal([]byte(res.Output), &answer))
	img, output, err := peers.Snapshot(t, answer.Console.Host, answer.Console.Port, answer.Console.Password)
	require.NoError(t, err, "vncsnapshot through the gateway: %s", output)
	t.Logf("the guest's screen through the gateway: %v", img.Bounds().Size())
	assert.GreaterOrEqual(t, img.Bounds().Dx(), 640, "a screen (VGA text mode is 720x400)")
	assert.Greater(t, lit(img), 0.01, "the screen shows text (the probe's report), not a blank screen")
	if file := os.Getenv("BOOT_SCREENSHOT"); file != "" {
		require.NoError(t, writePNG(file, img))
		t.Logf("screenshot saved to %s", file)
	}
}

// rebind writes the example RoleBinding that lets the gateway open a namespace's consoles, for ns.
func rebind(example, to string) error {
	data, err := os.ReadFile(example)
	if err != nil {
		return err
	}
	return os.WriteFile(to, []byte(strings.Replace(string(data), "namespace: cloudstack-host-1", "namespace: "+ns, 1)), 0o644)
}

// startGateway runs cmd/console with kubeconfig and returns its VNC port once it is ready.
func startGateway(t *testing.T, kubeconfig, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "console")
	build := exec.Command("go", "build", "-o", bin, "./cmd/console")
	build.Dir = repoRoot()
	out, err := build.CombinedOutput()
	require.NoError(t, err, "building cmd/console: %s", out)
	return vncpeer.StartGateway(t, bin, kubeconfig, translate.DefaultConsoleNamespace).VNCPort
}

// lit is the share of the screen's pixels that are not the background (the top-left pixel's colour).
func lit(img image.Image) float64 {
	b := img.Bounds()
	bg := gray(img, b.Min.X, b.Min.Y)
	n := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if d := gray(img, x, y) - bg; d > 40 || d < -40 {
				n++
			}
		}
	}
	return float64(n) / float64(b.Dx()*b.Dy())
}

func gray(img image.Image, x, y int) int {
	r, g, b, _ := img.At(x, y).RGBA()
	return int((r + g + b) / 3 >> 8)
}

func writePNG(file string, img image.Image) error {
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
