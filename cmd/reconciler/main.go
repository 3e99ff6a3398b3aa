// Command reconciler runs in the Kubernetes cluster and keeps the CloudStack power state of every VirtualMachine
// the extension manages on the VM itself, so that `kubectl get vm -L cloudstack.apache.org/power-state` shows
// what CloudStack is told and the extension's status calls can answer from metadata.
package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/go-logr/logr"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/cmd/internal/daemon"
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
	log := set.Logger(stderr)
	ctrl.SetLogger(logr.FromSlogHandler(log.Handler()))
	restConfig, err := set.RESTConfig("cloudstack-kubevirt-reconciler")
	if err != nil {
		return err
	}
	mgr, err := powerstate.NewManager(restConfig, cfg)
	if err != nil {
		return err
	}
	log.Info("starting", "namespaces", namespacesOrAll(cfg.Namespaces), "identity", cfg.Identity,
		"heartbeat", cfg.HeartbeatNamespace+"/"+cfg.HeartbeatLease, "leaderElection", cfg.LeaderElection)
	return mgr.Start(ctrl.SetupSignalHandler())
}

type settings struct {
	daemon.Common
	config powerstate.Config
}

// parseFlags reads flags, each defaulting to an environment variable where a Deployment sets one.
func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (settings, error) {
	// client-go's default of 5 requests a second would take half an hour to label 10,000 VMs.
	fs := daemon.NewFlags("reconciler", getenv, stderr, 100)
	hostname, _ := os.Hostname()
	var set settings
	c := &set.config
	var namespaces string
	fs.StringVarEnv(&namespaces, "namespaces", "RECONCILER_NAMESPACES", "", "comma-separated namespaces to watch; empty for all")
	fs.StringVarEnv(&c.HeartbeatNamespace, "heartbeat-namespace", "POD_NAMESPACE", translate.DefaultReconcilerLease.Namespace, "namespace of the heartbeat and leader-election Leases")
	fs.StringVar(&c.HeartbeatLease, "heartbeat-lease", translate.DefaultReconcilerLease.Name, "name of the heartbeat Lease; the extension's reconciler_lease detail names the same Lease")
	fs.DurationVar(&c.HeartbeatInterval, "heartbeat-interval", 2*time.Second, "how often the leader renews the heartbeat")
	fs.DurationVar(&c.HeartbeatDuration, "heartbeat-duration", 10*time.Second, "how long a renewal vouches for the labels; bounds how stale an answer can be after the reconciler dies (at most 1m, the extension's cap)")
	fs.StringVarEnv(&c.Identity, "identity", "POD_NAME", hostname, "this replica's name in the heartbeat Lease")
	fs.BoolVar(&c.LeaderElection, "leader-elect", true, "elect a leader, so that several replicas are safe")
	fs.StringVar(&c.LeaderElectionID, "leader-election-id", "cloudstack-kubevirt-reconciler-leader", "name of the leader-election Lease")
	fs.StringVar(&c.MetricsAddr, "metrics-bind-address", ":8080", "address of the Prometheus metrics endpoint; 0 disables it")
	fs.StringVar(&c.ProbeAddr, "health-probe-bind-address", ":8081", "address of /healthz and /readyz; 0 disables them")
	fs.IntVar(&c.Workers, "max-concurrent-reconciles", 4, "VMs reconciled in parallel")
	var err error
	if set.Common, err = fs.Parse(args); err != nil {
		return set, err
	}
	c.Namespaces = splitList(namespaces)
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
