package kubevirtsim

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	snapshotv1 "kubevirt.io/api/snapshot/v1beta1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/testenv"
)

// DefaultStepDelay is a pace that looks real in a demo. Tests usually leave Options.StepDelay at 0.
const DefaultStepDelay = 50 * time.Millisecond

// Options configures the simulator. The zero value simulates every namespace as fast as possible.
type Options struct {
	// StepDelay is how long each intermediate state lasts: every VMI phase before Running, every DataVolume phase
	// before Succeeded, and the guest's shutdown after its VMI is deleted. 0 moves on at once and skips the
	// intermediate writes: a new VMI goes to Running, and a DataVolume to Succeeded, in one update (the VMI's
	// phaseTransitionTimestamps still list every phase). Use a delay to watch Starting or Stopping.
	StepDelay time.Duration
	// Namespaces limits the simulator to these namespaces. Empty means all.
	Namespaces []string
	// Workers is the number of concurrent reconciles per kind. Default 8.
	Workers int
	// NodeName is the node every VMI is scheduled to. Default "sim-node-1".
	NodeName string
	// MigrationNodes are the nodes a live migration moves VMIs between: to the one named by the migration's
	// addedNodeSelector (kubernetes.io/hostname), or to the next in the list. Default NodeName and "sim-node-2".
	MigrationNodes []string
	// Unschedulable keeps every VMI in Scheduling with condition PodScheduled=False (reason Unschedulable), as
	// on a cluster without room for its launcher pod; the VM shows printableStatus ErrorUnschedulable. Deleting
	// such a VMI still works.
	Unschedulable bool
	// FailImagePull lists containerDisk images that never pull: a VMI using one stays in Scheduling with
	// condition Synchronized=False (reason ErrImagePull), and its VM shows printableStatus ErrImagePull.
	FailImagePull []string
	// Logger receives the controllers' logs. Default: discarded.
	Logger logr.Logger
}

func (o Options) withDefaults() Options {
	if o.Workers <= 0 {
		o.Workers = 8
	}
	if o.NodeName == "" {
		o.NodeName = "sim-node-1"
	}
	if len(o.MigrationNodes) == 0 {
		o.MigrationNodes = []string{o.NodeName, "sim-node-2"}
	}
	if o.Logger.GetSink() == nil {
		o.Logger = logr.Discard()
	}
	return o
}

// Fault makes a VM's next VMIs fail to start. See Sim.SetFault.
type Fault string

const (
	// FaultNone clears a fault.
	FaultNone Fault = ""
	// FaultErrImagePull keeps the VMI in Scheduling with Synchronized=False (reason ErrImagePull), as when the
	// launcher pod cannot pull a containerDisk; the VM shows printableStatus ErrImagePull.
	FaultErrImagePull Fault = "ErrImagePull"
	// FaultUnschedulable keeps the VMI in Scheduling with condition PodScheduled=False (reason Unschedulable), as
	// when no node has room for the launcher pod; the VM shows printableStatus ErrorUnschedulable.
	FaultUnschedulable Fault = "Unschedulable"
	// FaultCrashLoop fails the VMI (phase Failed) after Scheduled, before it ever runs, as when virt-launcher
	// crashes. Under Always, RerunOnFailure and Once KubeVirt's VM controller records status.startFailure and
	// shows printableStatus CrashLoopBackOff while it waits to retry: n²×10 s plus up to half again at random
	// for the n-th failure in a row, at most 5 minutes (vm.go, calculateStartBackoffTime).
	FaultCrashLoop Fault = "CrashLoop"
)

// Sim is a running simulator. Its methods are safe for concurrent use.
type Sim struct {
	opts   Options
	client client.Client // reads from the manager's cache, writes to the API server
	reader client.Reader // reads from the API server, for decisions a stale cache must not make
	api    apiInfo
	pacer  *pacer
	faults *faults
	pokes  chan event.GenericEvent // requests a VMI reconcile when a fault changes

	releaseController func() error // KubeVirt's VM controller, shared with other simulators of the API server

	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// Start starts KubeVirt's VM controller (or shares the one already running against the same API server, see
// upstream.go) and the simulator against the API server at cfg, and returns once both have synced their
// caches. It runs until ctx is cancelled or Stop is called; stop it before its API server, or kube-apiserver,
// still serving the controller's watches, may outlast envtest's stop timeout. cfg needs the
// KubeVirt CRDs (the kubevirts CRD is installed as virt-operator defines it where missing); without the
// DataVolume CRD KubeVirt cannot create DataVolumes from templates. A first run builds the controller from
// test/upstream, which takes minutes. If cfg sets no QPS, the simulator uses 500 (burst 1000), so that thousands
// of VMs are not throttled by client-go's default of 5; the controller keeps KubeVirt's own 200 (burst 400).
func Start(ctx context.Context, cfg *rest.Config, opts Options) (*Sim, error) {
	opts = opts.withDefaults()
	cfg = rest.CopyConfig(cfg)
	// Act as virt-controller's service account, as KubeVirt's controllers do: KubeVirt's webhooks keep a VMI's
	// status, its spec and its reserved labels for KubeVirt's own service accounts (kubevirt.io/kubevirt v1.8.0,
	// pkg/virt-api/webhooks/mutating-webhook/mutators/vmi-mutator.go and validating-webhook/admitters/
	// vmi-create-admitter.go, vmi-update-admitter.go). cfg's user must be allowed to impersonate (testenv's admin
	// is), and the service account needs RBAC (testenv binds it to cluster-admin). A cfg that impersonates already
	// keeps its identity.
	if cfg.Impersonate.UserName == "" {
		cfg.Impersonate = rest.ImpersonationConfig{UserName: testenv.ControllerUser}
	}
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = 500, 1000
	}
	api, err := discover(cfg)
	if err != nil {
		return nil, err
	}
	scheme, err := newScheme()
	if err != nil {
		return nil, err
	}
	mgr, err := manager.New(cfg, managerOptions(opts, scheme))
	if err != nil {
		return nil, fmt.Errorf("kubevirtsim: creating the manager: %w", err)
	}
	s := &Sim{
		opts:   opts,
		client: mgr.GetClient(),
		reader: mgr.GetAPIReader(),
		api:    api,
		pacer:  newPacer(opts.StepDelay),
		faults: newFaults(opts.FailImagePull, opts.Unschedulable),
		pokes:  make(chan event.GenericEvent, 1024),
		done:   make(chan struct{}),
	}
	if err := s.setup(ctx, mgr); err != nil {
		return nil, err
	}
	if s.releaseController, err = acquireController(ctx, cfg); err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(ctx)
	// client-go's informers log through the context; without a logger there, they would use
	// controller-runtime's global one, which complains when it was never set.
	runCtx = logr.NewContext(runCtx, opts.Logger)
	s.cancel = cancel
	go func() {
		defer close(s.done)
		s.err = mgr.Start(runCtx)
		// KubeVirt's VM controller stops with the last simulator of its API server.
		s.err = errors.Join(s.err, s.releaseController())
	}()
	if err := s.waitForCaches(ctx, mgr.GetCache()); err != nil {
		return nil, errors.Join(err, s.Stop())
	}
	return s, nil
}

func managerOptions(opts Options, scheme *runtime.Scheme) manager.Options {
	var namespaces map[string]cache.Config
	if len(opts.Namespaces) > 0 {
		namespaces = make(map[string]cache.Config, len(opts.Namespaces))
		for _, ns := range opts.Namespaces {
			namespaces[ns] = cache.Config{}
		}
	}
	return manager.Options{
		Scheme: scheme,
		Logger: opts.Logger,
		Cache: cache.Options{
			DefaultNamespaces: namespaces,
			// Thousands of VMs: keep the cache small.
			DefaultTransform: cache.TransformStripManagedFields(),
		},
		Controller: config.Controller{
			MaxConcurrentReconciles: opts.Workers,
			// Tests start several simulators in one process; the names need not be unique.
			SkipNameValidation: ptr.To(true),
			RecoverPanic:       ptr.To(true),
		},
		Metrics:                 metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress:  "0",
		GracefulShutdownTimeout: ptr.To(10 * time.Second),
	}
}

func newScheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	builder := runtime.NewSchemeBuilder(clientgoscheme.AddToScheme, kubevirtv1.AddToScheme, cdiv1.AddToScheme, snapshotv1.AddToScheme)
	if err := builder.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("kubevirtsim: building the scheme: %w", err)
	}
	return s, nil
}

// waitForCaches waits until the informers the controllers registered have synced, so that a test's first object
// is seen at once.
func (s *Sim) waitForCaches(ctx context.Context, c cache.Cache) error {
	// An identity that may not list VMs would otherwise wait forever.
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	synced := make(chan bool, 1)
	go func() { synced <- c.WaitForCacheSync(ctx) }()
	select {
	case ok := <-synced:
		if !ok {
			return fmt.Errorf("kubevirtsim: caches did not sync: %w", ctx.Err())
		}
		return nil
	case <-s.done:
		return fmt.Errorf("kubevirtsim: manager stopped while starting: %w", s.err)
	}
}

// Wait blocks until the simulator has stopped and returns the manager's error, if any.
func (s *Sim) Wait() error {
	<-s.done
	return s.err
}

// Stop stops the simulator and waits for it. It is safe to call more than once.
func (s *Sim) Stop() error {
	s.cancel()
	return s.Wait()
}

// SetFault makes the VMI named namespace/name (a VM's VMI has the VM's name) fail the next time it starts, until
// the fault is cleared with FaultNone. A VMI already past the failing step is not affected; a VMI stuck in
// ErrImagePull proceeds once the fault is cleared, as if the pull had been retried.
func (s *Sim) SetFault(namespace, name string, f Fault) {
	key := types.NamespacedName{Namespace: namespace, Name: name}
	s.faults.set(key, f)
	vmi := &kubevirtv1.VirtualMachineInstance{}
	vmi.Namespace, vmi.Name = namespace, name
	select {
	case s.pokes <- event.GenericEvent{Object: vmi}:
	case <-s.done:
	}
}

// faults records the injected faults.
type faults struct {
	mu            sync.RWMutex
	byName        map[types.NamespacedName]Fault
	images        map[string]bool
	unschedulable bool
}

func newFaults(images []string, unschedulable bool) *faults {
	f := &faults{byName: map[types.NamespacedName]Fault{}, images: map[string]bool{}, unschedulable: unschedulable}
	for _, img := range images {
		f.images[img] = true
	}
	return f
}

func (f *faults) set(key types.NamespacedName, fault Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if fault == FaultNone {
		delete(f.byName, key)
		return
	}
	f.byName[key] = fault
}

func (f *faults) of(vmi *kubevirtv1.VirtualMachineInstance) Fault {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if fault, ok := f.byName[types.NamespacedName{Namespace: vmi.Namespace, Name: vmi.Name}]; ok {
		return fault
	}
	if f.unschedulable {
		return FaultUnschedulable
	}
	for _, v := range vmi.Spec.Volumes {
		if v.ContainerDisk != nil && f.images[v.ContainerDisk.Image] {
			return FaultErrImagePull
		}
	}
	return FaultNone
}
