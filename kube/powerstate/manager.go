package powerstate

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/kube"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

// Config is everything the reconciler can be told; cmd/reconciler fills it from flags and environment.
type Config struct {
	Namespaces         []string // empty: every namespace
	HeartbeatNamespace string   // where the heartbeat and leader-election Leases live
	HeartbeatLease     string
	HeartbeatInterval  time.Duration
	HeartbeatDuration  time.Duration
	Identity           string // this replica's name in the Leases
	LeaderElection     bool
	LeaderElectionID   string
	MetricsAddr        string // "0" disables the metrics server
	ProbeAddr          string // "0" disables the probes
	Workers            int
	Registry           prometheus.Registerer // nil: controller-runtime's global registry, served on MetricsAddr
}

// Validate refuses settings the reconciler cannot honour.
func (c Config) Validate() error {
	var errs []error
	if c.HeartbeatNamespace == "" || c.HeartbeatLease == "" {
		errs = append(errs, errors.New("the heartbeat Lease needs a namespace and a name (--heartbeat-namespace, --heartbeat-lease)"))
	}
	if c.LeaderElectionID == c.HeartbeatLease {
		errs = append(errs, fmt.Errorf("the heartbeat Lease and the leader-election Lease are both %q: the extension would take the leader's renewals for heartbeats", c.HeartbeatLease))
	}
	if c.HeartbeatInterval <= 0 || c.HeartbeatDuration < 2*c.HeartbeatInterval {
		errs = append(errs, fmt.Errorf("the heartbeat duration (%v) must be at least twice its interval (%v), both positive", c.HeartbeatDuration, c.HeartbeatInterval))
	}
	if c.HeartbeatDuration > kube.MaxHeartbeatDuration {
		errs = append(errs, fmt.Errorf("the heartbeat duration (%v) may not exceed %v: the extension trusts a renewal no longer than that", c.HeartbeatDuration, kube.MaxHeartbeatDuration))
	}
	if c.HeartbeatDuration%time.Second != 0 {
		errs = append(errs, fmt.Errorf("the heartbeat duration (%v) must be whole seconds: a Lease holds seconds", c.HeartbeatDuration))
	}
	if c.Identity == "" {
		errs = append(errs, errors.New("the replica needs an identity (the pod name)"))
	}
	if c.Workers < 1 {
		errs = append(errs, fmt.Errorf("workers must be at least 1, not %d", c.Workers))
	}
	return errors.Join(errs...)
}

// Scheme holds the kinds the reconciler reads and writes.
func Scheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, coordinationv1.AddToScheme, kubevirtv1.AddToScheme} {
		if err := add(s); err != nil {
			return nil, fmt.Errorf("building the scheme: %w", err)
		}
	}
	return s, nil
}

// NewManager wires the reconciler, its heartbeat, metrics and probes into a controller-runtime manager.
func NewManager(cfg *rest.Config, c Config) (ctrl.Manager, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	scheme, err := Scheme()
	if err != nil {
		return nil, err
	}
	// The heartbeat is stamped by the API server's clock, which the extension judges it by: a skewed node
	// clock must not stretch how long the labels are trusted.
	cfg = rest.CopyConfig(cfg)
	clock := kube.NewServerClock(cfg)
	mgr, err := ctrl.NewManager(cfg, managerOptions(c, scheme))
	if err != nil {
		return nil, fmt.Errorf("creating the manager: %w", err)
	}
	reg := c.Registry
	if reg == nil {
		reg = ctrlmetrics.Registry
	}
	metrics, err := NewMetrics(reg, mgr.GetCache())
	if err != nil {
		return nil, fmt.Errorf("registering metrics: %w", err)
	}
	progress := NewProgress(maxLabelLag, time.Now)
	r := &Reconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("cloudstack-kubevirt-reconciler"),
		Metrics: metrics, Progress: progress, Now: time.Now}
	if err := r.SetupWithManager(mgr, c.Workers); err != nil {
		return nil, fmt.Errorf("setting up the power-state controller: %w", err)
	}
	hb := &Heartbeat{
		Client: mgr.GetClient(), Cache: mgr.GetCache(),
		Lease:  types.NamespacedName{Namespace: c.HeartbeatNamespace, Name: c.HeartbeatLease},
		Holder: c.Identity, Interval: c.HeartbeatInterval, Duration: c.HeartbeatDuration, Namespaces: c.Namespaces,
		Progress: progress, Metrics: metrics, Log: mgr.GetLogger().WithName("heartbeat"), Now: serverNow(clock),
	}
	if err := mgr.Add(hb); err != nil {
		return nil, err
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("cache", cacheSynced(mgr.GetCache())); err != nil {
		return nil, err
	}
	return mgr, nil
}

func managerOptions(c Config, scheme *runtime.Scheme) ctrl.Options {
	managed := labels.SelectorFromSet(labels.Set{translate.LabelManagedBy: translate.ManagedBy})
	cacheOpts := cache.Options{
		ByObject: map[client.Object]cache.ByObject{
			&kubevirtv1.VirtualMachine{}:         {Label: managed, Transform: trim},
			&kubevirtv1.VirtualMachineInstance{}: {Label: managed, Transform: trim},
		},
	}
	if len(c.Namespaces) > 0 {
		cacheOpts.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range c.Namespaces {
			cacheOpts.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	release := 10 * time.Second
	return ctrl.Options{
		Scheme: scheme,
		Cache:  cacheOpts,
		// Leases are read and written a few times a minute: a cluster-wide Lease informer would cost more.
		Client:                        client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{&coordinationv1.Lease{}}}},
		Metrics:                       metricsserver.Options{BindAddress: c.MetricsAddr},
		HealthProbeBindAddress:        c.ProbeAddr,
		LeaderElection:                c.LeaderElection,
		LeaderElectionID:              c.LeaderElectionID,
		LeaderElectionNamespace:       c.HeartbeatNamespace,
		LeaderElectionReleaseOnCancel: true,
		GracefulShutdownTimeout:       &release,
		// The name check guards metrics against two controllers of one name in a process; the tests run two
		// replicas in one process, and production runs one manager per process.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	}
}

// serverNow is the API server's time, or the local time before any response has told it.
func serverNow(clock *kube.ServerClock) func() time.Time {
	return func() time.Time {
		if now, ok := clock.Now(); ok {
			return now
		}
		return time.Now()
	}
}

// cacheSynced is ready once the informers have their first full list.
func cacheSynced(c cache.Cache) healthz.Checker {
	return func(req *http.Request) error {
		ctx, cancel := context.WithTimeout(req.Context(), 100*time.Millisecond)
		defer cancel()
		if !c.WaitForCacheSync(ctx) {
			return errors.New("informer caches not synced yet")
		}
		return nil
	}
}
