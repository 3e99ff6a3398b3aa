// Package daemon is what the project's two in-cluster daemons, cmd/console and cmd/reconciler, share: flags that
// default to environment variables, the flags every daemon has (--kubeconfig, --kube-api-qps, --log-level), their
// JSON logging, and the one rule by which a daemon finds its cluster.
//
// It sits under cmd/internal because only commands may use it: it parses command lines and sets klog's logger,
// which no library should do. It talks to no API server, so it is not part of kube.
package daemon

import (
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
)

// Flags is a daemon's command line: a flag.FlagSet whose string flags may default to environment variables, so a
// Deployment can set them from the downward API or a ConfigMap (a flag given on the command line still wins), and
// which defines the flags every daemon has.
type Flags struct {
	*flag.FlagSet
	getenv     func(string) string
	kubeconfig string
	level      string
	qps        float64
}

// NewFlags returns the flag set of the daemon name, reading the environment through getenv (os.Getenv, or a
// map's lookup in tests) and writing usage and parse errors to output. qps is --kube-api-qps's default.
func NewFlags(name string, getenv func(string) string, output io.Writer, qps float64) *Flags {
	f := &Flags{FlagSet: flag.NewFlagSet(name, flag.ContinueOnError), getenv: getenv}
	f.SetOutput(output)
	f.StringVarEnv(&f.kubeconfig, "kubeconfig", "KUBECONFIG", "", "kubeconfig file when running outside the cluster; in-cluster config when unset")
	f.Float64Var(&f.qps, "kube-api-qps", qps, "requests a second to the API server (burst twice that); API Priority and Fairness still applies")
	f.StringVarEnv(&f.level, "log-level", "LOG_LEVEL", "info", "debug, info, warn or error")
	return f
}

// fromEnv is the environment variable name's value, or fallback when it is unset or empty: a Deployment that sets
// a variable to "" means "not set".
func (f *Flags) fromEnv(name, fallback string) string {
	if v := f.getenv(name); v != "" {
		return v
	}
	return fallback
}

// StringVarEnv defines a string flag whose default is the environment variable env, else fallback, and names env in
// its usage.
func (f *Flags) StringVarEnv(p *string, name, env, fallback, usage string) {
	f.StringVar(p, name, f.fromEnv(env, fallback), usage+" (env "+env+")")
}

// Parse parses args and returns the common flags' values, checked. It replaces flag.FlagSet's Parse so that no
// daemon can skip the checks. A daemon takes no arguments, only flags: a stray word is most likely a flag whose
// dashes were lost, and ignoring it would hide that.
func (f *Flags) Parse(args []string) (Common, error) {
	if err := f.FlagSet.Parse(args); err != nil {
		return Common{}, err
	}
	if f.NArg() > 0 {
		return Common{}, fmt.Errorf("unexpected arguments %q", f.Args())
	}
	c := Common{Kubeconfig: f.kubeconfig, QPS: f.qps}
	if err := c.Level.UnmarshalText([]byte(f.level)); err != nil {
		return Common{}, fmt.Errorf("--log-level %q: %w", f.level, err)
	}
	// client-go reads zero as its default of 5 and a negative rate as no limit: neither is what the flag says.
	if c.QPS <= 0 {
		return Common{}, fmt.Errorf("--kube-api-qps must be positive, not %v", c.QPS)
	}
	return c, nil
}

// Common is what every daemon is told the same way.
type Common struct {
	// Kubeconfig is the file --kubeconfig names, else $KUBECONFIG; empty means the in-cluster config. It is one
	// file: unlike kubectl, a daemon merges no list of them.
	Kubeconfig string
	// QPS is the rate of requests to the API server; bursts may reach twice it.
	QPS float64
	// Level is the least level logged.
	Level slog.Level
}

// RESTConfig is the daemon's client configuration: the kubeconfig file Kubeconfig names, else the in-cluster
// config (the Pod's ServiceAccount), with userAgent and the rate limit set.
//
// There is deliberately no third place. controller-runtime's GetConfig, which the reconciler used, falls back to
// ~/.kube/config: in a Deployment whose ServiceAccount token is not mounted that would be whatever file the image
// holds, and on a workstation it is the current context of whoever runs it, possibly another cluster than the one
// meant. A daemon run outside the cluster is told where to go, as kubectl users already do.
func (c Common) RESTConfig(userAgent string) (*rest.Config, error) {
	cfg, err := c.load()
	if err != nil {
		// The ways there are to name the cluster, since the error is often that none was.
		return nil, fmt.Errorf("finding the cluster (--kubeconfig, $KUBECONFIG or the in-cluster config): %w", err)
	}
	cfg.UserAgent = userAgent
	cfg.QPS, cfg.Burst = float32(c.QPS), 2*int(c.QPS)
	return cfg, nil
}

func (c Common) load() (*rest.Config, error) {
	if c.Kubeconfig != "" {
		return clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	}
	return rest.InClusterConfig()
}

// Logger returns a logger writing JSON lines to w from Level up, and makes klog (client-go's own logging) write
// through it, so that every line a daemon writes is JSON a log pipeline can parse.
func (c Common) Logger(w io.Writer) *slog.Logger {
	log := slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: c.Level}))
	klog.SetLogger(logr.FromSlogHandler(log.Handler()))
	return log
}
