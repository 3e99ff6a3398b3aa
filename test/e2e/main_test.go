// Package e2e drives the extension executable exactly as CloudStack does, through the Instance lifecycle, on a
// real API server: envtest with the KubeVirt simulator by default, or any cluster with KubeVirt given
// E2E_KUBECONFIG (then nothing is simulated).
package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/kube"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/cloudstacksim"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/kubevirtsim"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/testenv"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/virtapisim"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

// unservedNamespace has no room for VMs: its VMIs are never scheduled, as on a cluster without capacity
// (kubevirtsim.Options.Unschedulable; their VMs show ErrorUnschedulable, and can be deleted).
const unservedNamespace = "e2e-unserved"

// suite is what every test shares: one API server, the extension binary, and an admin client.
type suite struct {
	kubeconfig string
	client     client.Client
	extension  string
	payloads   string
	home       string             // the management server user's home, where the extension keeps its cache
	sim        *kubevirtsim.Sim   // nil on a real cluster
	env        *testenv.Env       // nil on a real cluster
	reconciler string             // the reconciler binary
	virtapi    *virtapisim.Server // KubeVirt's subresources in front of envtest; nil on a real cluster
	vnc        vncBackends        // the guests' VNC streams behind virtapi
}

var s suite

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	if err := setUp(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer tearDown()
	return m.Run()
}

var cleanups []func()

func tearDown() {
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
}

// setUp builds the extension and connects to E2E_KUBECONFIG's cluster, or starts envtest and the simulator.
func setUp() error {
	work, err := os.MkdirTemp("", "kubevirt-e2e-")
	if err != nil {
		return err
	}
	cleanups = append(cleanups, func() { os.RemoveAll(work) })
	s.payloads = filepath.Join(work, "payloads")
	s.home = filepath.Join(work, "management")
	if s.extension, err = installExtension(work); err != nil {
		return err
	}
	if s.reconciler, err = build(work, "reconciler"); err != nil {
		return err
	}
	if kc := os.Getenv("E2E_KUBECONFIG"); kc != "" {
		s.kubeconfig = kc
		cfg, err := kube.RESTConfig(translate.Connection{Kubeconfig: kc})
		if err != nil {
			return err
		}
		s.client, err = newAdminClient(cfg)
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute) // a first run builds the binaries
	defer cancel()
	env, err := testenv.Start(ctx, testenv.Options{})
	if err != nil {
		return err
	}
	cleanups = append(cleanups, func() { _ = env.Stop() })
	s.env, s.client = env, env.Client
	s.kubeconfig = filepath.Join(work, "kubeconfig")
	if err := env.WriteKubeconfig(s.kubeconfig); err != nil {
		return err
	}
	s.sim, err = kubevirtsim.Start(context.Background(), env.Config, kubevirtsim.Options{
		Namespaces:    servedNamespaces,
		FailImagePull: []string{badImage},
	})
	if err != nil {
		return err
	}
	cleanups = append(cleanups, func() { _ = s.sim.Stop() })
	unserved, err := kubevirtsim.Start(context.Background(), env.Config, kubevirtsim.Options{
		Namespaces:    []string{unservedNamespace},
		Unschedulable: true,
	})
	if err != nil {
		return err
	}
	cleanups = append(cleanups, func() { _ = unserved.Stop() })
	s.virtapi, err = virtapisim.Start(virtapisim.Options{Admin: env.Config, Sim: s.sim, VNC: s.vnc.dial})
	if err != nil {
		return err
	}
	cleanups = append(cleanups, s.virtapi.Close)
	return nil
}

func newAdminClient(cfg *rest.Config) (client.Client, error) {
	scheme, err := testenv.Scheme()
	if err != nil {
		return nil, err
	}
	return client.New(cfg, client.Options{Scheme: scheme})
}

// installExtension lays the extension out as install.sh does: the launcher as kubevirt-extension, which
// CloudStack runs, and the extension beside it. Every call of the suite goes through the launcher.
func installExtension(work string) (string, error) {
	dir := filepath.Join(work, "extension")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if _, err := buildAs(filepath.Join(dir, "kubevirt-extension-core"), "extension"); err != nil {
		return "", err
	}
	return buildAs(filepath.Join(dir, "kubevirt-extension"), "launcher")
}

// build builds cmd/<name> once for the whole suite.
func build(dir, name string) (string, error) {
	return buildAs(filepath.Join(dir, name), name)
}

func buildAs(out, name string) (string, error) {
	cmd := exec.Command("go", "build", "-o", out, "./cmd/"+name)
	cmd.Dir = repoRoot()
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building cmd/%s: %v\n%s", name, err, msg)
	}
	return out, nil
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// provisioner is CloudStack's side of one host.
func provisioner() *cloudstacksim.Provisioner {
	return &cloudstacksim.Provisioner{Executable: s.extension, PayloadDir: s.payloads, Home: s.home}
}

// callTimeout is what the tests pass as CloudStack's wait; the real default is 1800 s.
const callTimeout = 60 * time.Second
