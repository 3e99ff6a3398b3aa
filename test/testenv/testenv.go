// Package testenv starts a real kube-apiserver and etcd (controller-runtime's envtest) with the KubeVirt, CDI and
// instancetype CRDs installed, for unit tests, the demo and e2e tests.
//
// envtest has no controllers, no garbage collector, no webhooks and no aggregated APIs: objects are stored and
// validated against their CRD schemas, and nothing else happens to them. Pair it with test/kubevirtsim to get
// VirtualMachines that start.
//
// Starting takes a few seconds, so share one Env per test package from TestMain:
//
//	var env *testenv.Env
//
//	func TestMain(m *testing.M) {
//		os.Exit(testenv.Main(m, testenv.Options{}, func(e *testenv.Env) { env = e }))
//	}
//
// Tests that need a private API server use ForTest instead.
package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Options configures Start. The zero value is what most tests want.
type Options struct {
	// CRDDirs replaces the default CRD directory, <repo>/test/crds. envtest reads one level of each directory
	// (.yaml, .yml and .json files) and fails if a directory is missing.
	CRDDirs []string
	// AssetsDir holds kube-apiserver and etcd. Default: $KUBEBUILDER_ASSETS, else what hack/envtest-assets.sh
	// prints.
	AssetsDir string
	// AttachOutput copies the API server's and etcd's output to this process's stdout and stderr.
	AttachOutput bool
}

// Env is a running API server. Config and Client act as the admin user (group system:masters).
type Env struct {
	// Config reaches the API server as the admin user. Copy it before changing it.
	Config *rest.Config
	// Client is a direct client (no cache: reads see every write at once) using Scheme.
	Client client.Client
	// Scheme holds the types listed at AddToScheme.
	Scheme *runtime.Scheme

	env *envtest.Environment
	dir string // kubeconfig files; removed by Stop

	mu    sync.Mutex
	files int

	stopOnce sync.Once
	stopErr  error
}

// Start starts etcd and kube-apiserver and installs the CRDs. ctx bounds the search for the binaries (the script
// may build them) and, when its deadline is close, the start of each process. Call Stop when done.
func Start(ctx context.Context, opts Options) (*Env, error) {
	root, rootErr := repoRoot()
	crdDirs := opts.CRDDirs
	if len(crdDirs) == 0 {
		if rootErr != nil {
			return nil, fmt.Errorf("testenv: no Options.CRDDirs and %w", rootErr)
		}
		crdDirs = []string{filepath.Join(root, "test", "crds")}
	}
	assets, err := assetsDir(ctx, root, opts.AssetsDir)
	if err != nil {
		return nil, err
	}
	scheme, err := Scheme()
	if err != nil {
		return nil, err
	}
	te := newEnvironment(ctx, opts, crdDirs, assets, scheme)
	cfg, err := te.Start()
	if err != nil {
		// envtest leaves the control plane running when, for example, a CRD fails to install.
		return nil, errors.Join(fmt.Errorf("testenv: starting envtest with CRDs from %v: %w", crdDirs, err), te.Stop())
	}
	e := &Env{Config: cfg, Scheme: scheme, env: te}
	if err := e.init(); err != nil {
		return nil, errors.Join(err, e.Stop())
	}
	return e, nil
}

func newEnvironment(ctx context.Context, opts Options, crdDirs []string, assets string, scheme *runtime.Scheme) *envtest.Environment {
	te := &envtest.Environment{
		CRDDirectoryPaths:        crdDirs,
		ErrorIfCRDPathMissing:    true,
		Scheme:                   scheme,
		BinaryAssetsDirectory:    assets,
		AttachControlPlaneOutput: opts.AttachOutput,
	}
	// Explicit paths win over $KUBEBUILDER_ASSETS, which envtest would otherwise prefer to the directory we chose.
	te.ControlPlane.APIServer = &envtest.APIServer{Path: filepath.Join(assets, "kube-apiserver")}
	te.ControlPlane.Etcd = &envtest.Etcd{Path: filepath.Join(assets, "etcd")}
	// envtest's own default (20s, or $KUBEBUILDER_CONTROLPLANE_START_TIMEOUT) applies unless ctx ends sooner.
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < 20*time.Second {
		te.ControlPlaneStartTimeout = max(time.Until(deadline), time.Second)
	}
	return te
}

func (e *Env) init() error {
	c, err := client.New(e.Config, client.Options{Scheme: e.Scheme})
	if err != nil {
		return fmt.Errorf("testenv: creating the client: %w", err)
	}
	e.Client = c
	if e.dir, err = os.MkdirTemp("", "testenv-kubeconfig-"); err != nil {
		return fmt.Errorf("testenv: creating the kubeconfig directory: %w", err)
	}
	return nil
}

// Stop stops the API server and etcd and removes the kubeconfig files KubeconfigFor wrote. It is safe to call
// more than once.
func (e *Env) Stop() error {
	e.stopOnce.Do(func() {
		var errs []error
		if err := e.env.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("testenv: stopping envtest: %w", err))
		}
		if e.dir != "" {
			if err := os.RemoveAll(e.dir); err != nil {
				errs = append(errs, fmt.Errorf("testenv: removing kubeconfigs: %w", err))
			}
		}
		e.stopErr = errors.Join(errs...)
	})
	return e.stopErr
}

// ForTest starts an Env for one test and stops it when the test ends. It fails the test if envtest cannot start.
func ForTest(t testing.TB) *Env {
	t.Helper()
	e, err := Start(t.Context(), Options{})
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() {
		if err := e.Stop(); err != nil {
			t.Errorf("testenv: %v", err)
		}
	})
	return e
}

// Main shares one Env between a package's tests: it starts it, hands it to use, runs the tests and stops it.
// It returns the exit code for os.Exit; a failure to start is reported on stderr and exits 1.
func Main(m *testing.M, opts Options, use func(*Env)) int {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute) // a first run may build the binaries
	e, err := Start(ctx, opts)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() {
		if err := e.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}()
	use(e)
	return m.Run()
}
