// Package testenv starts a real kube-apiserver and etcd (controller-runtime's envtest) with the KubeVirt, CDI and
// instancetype CRDs installed and KubeVirt's own admission webhooks in front of them, for unit tests, the demo and
// e2e tests.
//
// Every create and update of a KubeVirt object goes through virt-api's mutating and validating webhooks, KubeVirt
// v1.8.0's own code built from the nested module test/upstream (cmd/kubevirt-webhooks, see UpstreamBinary), with
// the cluster config read from a KubeVirt CR in namespace kubevirt (feature gates: DefaultFeatureGates). What
// KubeVirt refuses is refused here, with its message, and what it defaults is defaulted. Options.NoAdmission turns
// this off for tests that prove something else. The first Start on a machine builds the server (about 3 minutes on
// 2 cores; cached afterwards).
//
// envtest has no controllers, no garbage collector and no aggregated APIs: objects are admitted, stored and
// validated against their CRD schemas, and nothing else happens to them. Pair it with test/doubles/kubevirtsim to
// get VirtualMachines that start; it acts as virt-controller's service account (ControllerUser), which testenv
// creates and binds to cluster-admin.
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
	// AttachOutput copies the API server's, etcd's and the webhook server's output to this process's stdout and
	// stderr.
	AttachOutput bool
	// NoAdmission leaves KubeVirt's admission webhooks out: objects are only checked against the CRD schemas, as
	// before a KubeVirt was installed. For tests that prove something KubeVirt's webhooks would hide or refuse.
	NoAdmission bool
	// FeatureGates are the KubeVirt feature gates of the KubeVirt CR that KubeVirt's webhooks read. nil means
	// DefaultFeatureGates; an empty slice means none, as in KubeVirt's release CR.
	FeatureGates []string
}

// Env is a running API server. Config and Client act as the admin user (group system:masters).
type Env struct {
	// Config reaches the API server as the admin user. Copy it before changing it.
	Config *rest.Config
	// Client is a direct client (no cache: reads see every write at once) using Scheme.
	Client client.Client
	// Scheme holds the types listed at AddToScheme.
	Scheme *runtime.Scheme

	// WebhooksReadyIn is how long KubeVirt's webhook server took to answer once the API server was up (its informers'
	// sync); 0 without admission.
	WebhooksReadyIn time.Duration

	env       *envtest.Environment
	dir       string     // kubeconfig files and the webhook server's log; removed by Stop
	admission *admission // nil with Options.NoAdmission

	mu    sync.Mutex
	files int

	stopOnce sync.Once
	stopErr  error
}

// Start starts etcd and kube-apiserver, installs the CRDs and, unless opts.NoAdmission, KubeVirt's admission
// webhooks and their server. ctx bounds the search for the binaries (the script and UpstreamBinary may build them)
// and, when its deadline is close, the start of each process. Call Stop when done.
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
	dir, err := os.MkdirTemp("", "testenv-")
	if err != nil {
		return nil, fmt.Errorf("testenv: creating the kubeconfig directory: %w", err)
	}
	e := &Env{Scheme: scheme, dir: dir}
	if !opts.NoAdmission {
		if e.admission, err = startAdmission(ctx, opts, dir); err != nil {
			return nil, errors.Join(err, os.RemoveAll(dir))
		}
	}
	e.env = newEnvironment(ctx, opts, crdDirs, assets, scheme, e.admission)
	if e.Config, err = e.env.Start(); err != nil {
		// envtest leaves the control plane running when, for example, a CRD fails to install.
		return nil, errors.Join(fmt.Errorf("testenv: starting envtest with CRDs from %v: %w", crdDirs, err), e.Stop())
	}
	if err := e.init(ctx); err != nil {
		return nil, errors.Join(err, e.Stop())
	}
	return e, nil
}

func newEnvironment(ctx context.Context, opts Options, crdDirs []string, assets string, scheme *runtime.Scheme, a *admission) *envtest.Environment {
	te := &envtest.Environment{
		CRDDirectoryPaths:        crdDirs,
		ErrorIfCRDPathMissing:    true,
		Scheme:                   scheme,
		BinaryAssetsDirectory:    assets,
		AttachControlPlaneOutput: opts.AttachOutput,
	}
	if a != nil {
		// The webhook configurations are not envtest's to install: its Start would make new certificates for them,
		// and the server (started already, see startAdmission) has the old ones. startWebhooks installs them.
		te.CRDs = a.manifests.crds
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

func (e *Env) init(ctx context.Context) error {
	c, err := client.New(e.Config, client.Options{Scheme: e.Scheme})
	if err != nil {
		return fmt.Errorf("testenv: creating the client: %w", err)
	}
	e.Client = c
	if err := e.installKubeVirtAccounts(ctx); err != nil {
		return err
	}
	if e.admission == nil {
		return nil
	}
	return e.startWebhooks(ctx)
}

// Stop stops the API server and etcd and removes the kubeconfig files KubeconfigFor wrote. It is safe to call
// more than once.
func (e *Env) Stop() error {
	e.stopOnce.Do(func() {
		var errs []error
		// The webhook server first: its informers would otherwise log the API server's disappearance.
		if e.admission != nil {
			if err := e.admission.stop(); err != nil {
				errs = append(errs, err)
			}
		}
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

// ForTest starts an Env with the default Options for one test and stops it when the test ends. It fails the test
// if envtest cannot start.
func ForTest(t testing.TB) *Env {
	t.Helper()
	return ForTestWith(t, Options{})
}

// ForTestWith is ForTest with opts. When the test has failed, the end of the webhook server's log is logged
// before the Env stops.
func ForTestWith(t testing.TB, opts Options) *Env {
	t.Helper()
	e, err := Start(t.Context(), opts)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() && e.admission != nil {
			t.Logf("testenv: KubeVirt's webhook server:\n%s", e.WebhookLog(logTailLines))
		}
		if err := e.Stop(); err != nil {
			t.Errorf("testenv: %v", err)
		}
	})
	return e
}

// logTailLines is how much of the webhook server's log a failed test shows.
const logTailLines = 60

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
	use(e)
	code := m.Run()
	if code != 0 && e.admission != nil {
		fmt.Fprintf(os.Stderr, "testenv: KubeVirt's webhook server:\n%s\n", e.WebhookLog(logTailLines))
	}
	if err := e.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	return code
}
