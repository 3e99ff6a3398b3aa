// Command reconciler runs in the Kubernetes cluster and keeps the CloudStack power state of every VirtualMachine
// the extension manages on the VM itself, so that `kubectl get vm -L cloudstack.apache.org/power-state` shows
// what CloudStack is told and the extension's status calls can answer from metadata.
package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/kube/powerstate"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "reconciler:", err)
		os.Exit(1)
	}
}

func run(args []string, stderr io.Writer) error {
	set, err := parseFlags(args, os.Getenv, stderr)
	if err != nil {
		return err
	}
	cfg := set.config
	logger := logr.FromSlogHandler(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: set.level}))
	ctrl.SetLogger(logger)
	klog.SetLogger(logger)

	restConfig, err := restConfig(set.kubeconfig)
	if err != nil {
		return fmt.Errorf("finding the cluster (in-cluster config, --kubeconfig or $KUBECONFIG): %w", err)
	}
	restConfig.UserAgent = "cloudstack-kubevirt-reconciler"
	// client-go's default of 5 requests a second would take half an hour to label 10,000 VMs.
	restConfig.QPS, restConfig.Burst = set.qps, 2*int(set.qps)
	mgr, err := powerstate.NewManager(restConfig, cfg)
	if err != nil {
		return err
	}
	logger.Info("starting", "namespaces", namespacesOrAll(cfg.Namespaces), "identity", cfg.Identity,
		"heartbeat", cfg.HeartbeatNamespace+"/"+cfg.HeartbeatLease, "leaderElection", cfg.LeaderElection)
	return mgr.Start(ctrl.SetupSignalHandler())
}

// restConfig is the --kubeconfig file's, else controller-runtime's usual search ($KUBECONFIG, in-cluster,
// ~/.kube/config).
func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		return clientcmd.BuildConfigFromFlags("", kubeconfig)
	}
	return ctrl.GetConfig()
}

type settings struct {
	qps        float32
	config     powerstate.Config
	level      slog.Level
	kubeconfig string
}

// parseFlags reads flags, each defaulting to an environment variable where a Deployment sets one.
func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (settings, error) {
	fs := flag.NewFlagSet("reconciler", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := func(env, fallback string) string {
		if v := getenv(env); v != "" {
			return v
		}
		return fallback
	}
	hostname, _ := os.Hostname()
	var set settings
	c := &set.config
	var namespaces, level string
	fs.StringVar(&namespaces, "namespaces", def("RECONCILER_NAMESPACES", ""), "comma-separated namespaces to watch; empty for all (env RECONCILER_NAMESPACES)")
	fs.StringVar(&c.HeartbeatNamespace, "heartbeat-namespace", def("POD_NAMESPACE", translate.DefaultReconcilerLease.Namespace), "namespace of the heartbeat and leader-election Leases (env POD_NAMESPACE)")
	fs.StringVar(&c.HeartbeatLease, "heartbeat-lease", translate.DefaultReconcilerLease.Name, "name of the heartbeat Lease; the extension's reconciler_lease detail names the same Lease")
	fs.DurationVar(&c.HeartbeatInterval, "heartbeat-interval", 2*time.Second, "how often the leader renews the heartbeat")
	fs.DurationVar(&c.HeartbeatDuration, "heartbeat-duration", 10*time.Second, "how long a renewal vouches for the labels; bounds how stale an answer can be after the reconciler dies (at most 1m, the extension's cap)")
	fs.StringVar(&c.Identity, "identity", def("POD_NAME", hostname), "this replica's name in the heartbeat Lease (env POD_NAME)")
	fs.BoolVar(&c.LeaderElection, "leader-elect", true, "elect a leader, so that several replicas are safe")
	fs.StringVar(&c.LeaderElectionID, "leader-election-id", "cloudstack-kubevirt-reconciler-leader", "name of the leader-election Lease")
	fs.StringVar(&c.MetricsAddr, "metrics-bind-address", ":8080", "address of the Prometheus metrics endpoint; 0 disables it")
	fs.StringVar(&c.ProbeAddr, "health-probe-bind-address", ":8081", "address of /healthz and /readyz; 0 disables them")
	fs.IntVar(&c.Workers, "max-concurrent-reconciles", 4, "VMs reconciled in parallel")
	fs.StringVar(&level, "log-level", def("LOG_LEVEL", "info"), "debug, info, warn or error (env LOG_LEVEL)")
	qps := fs.Float64("kube-api-qps", 100, "requests a second to the API server (burst twice that); API Priority and Fairness still applies")
	fs.StringVar(&set.kubeconfig, "kubeconfig", "", "kubeconfig file when running outside the cluster (else $KUBECONFIG or in-cluster)")
	if err := fs.Parse(args); err != nil {
		return set, err
	}
	if fs.NArg() > 0 {
		return set, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	c.Namespaces = splitList(namespaces)
	if *qps <= 0 {
		return set, fmt.Errorf("--kube-api-qps must be positive, not %v", *qps)
	}
	set.qps = float32(*qps)
	if err := set.level.UnmarshalText([]byte(level)); err != nil {
		return set, fmt.Errorf("--log-level %q: %w", level, err)
	}
	return set, c.Validate()
}

func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

func namespacesOrAll(ns []string) string {
	if len(ns) == 0 {
		return "all"
	}
	return strings.Join(ns, ",")
}
