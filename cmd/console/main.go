// Command console is the console gateway: CloudStack's console proxy connects to it with the one-time VNC
// password getconsole handed out, and it relays the session to the VM's VNC through KubeVirt's vnc subresource.
// In direct mode it also serves a noVNC page to browsers. The gateway itself is package kube/console; this is
// its flags and wiring.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/kube/console"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "console:", err)
		os.Exit(1)
	}
}

type settings struct {
	vncAddr, httpAddr, healthAddr string
	tlsCert, tlsKey               string
	namespace                     string
	novncDir                      string
	kubeconfig                    string
	handshakeTimeout, authTimeout time.Duration
	writeTimeout                  time.Duration
	sweepInterval                 time.Duration
	maxSessions, maxHandshakes    int
	maxPerSource, maxFailures     int
	maxDirect, maxDirectPerSource int
	maxHTTPConns                  int
	trustedProxies                []netip.Prefix
	failureWindow                 time.Duration
	qps                           float64
	level                         slog.Level
}

// parseFlags reads flags, each defaulting to an environment variable where a Deployment sets one.
func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (settings, error) {
	fs := flag.NewFlagSet("console", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := func(env, fallback string) string {
		if v := getenv(env); v != "" {
			return v
		}
		return fallback
	}
	var s settings
	var level, proxies string
	gw := console.DefaultConfig()
	fs.StringVar(&s.vncAddr, "vnc-listen", ":5900", "address of the VNC listener CloudStack's console proxy connects to; 0 disables it")
	fs.StringVar(&s.httpAddr, "http-listen", "", "address of direct mode's web console (page, noVNC, websocket), e.g. :8080; off unless set (console_mode=direct)")
	fs.StringVar(&s.tlsCert, "tls-cert", def("CONSOLE_TLS_CERT", ""), "certificate file for the web console (HTTPS); with --tls-key (env CONSOLE_TLS_CERT)")
	fs.StringVar(&s.tlsKey, "tls-key", def("CONSOLE_TLS_KEY", ""), "key file for the web console (env CONSOLE_TLS_KEY)")
	fs.StringVar(&s.healthAddr, "health-listen", ":8081", "address of /healthz, /readyz and /metrics; 0 disables it")
	fs.StringVar(&s.namespace, "namespace", def("CONSOLE_NAMESPACE", translate.DefaultConsoleNamespace), "namespace of the console tokens, which must hold nothing else (the gateway may read and delete every Secret in it): the extension's console_namespace detail names the same (env CONSOLE_NAMESPACE)")
	fs.StringVar(&s.novncDir, "novnc-dir", def("NOVNC_DIR", ""), "directory of the npm package @novnc/novnc, for direct mode's page (env NOVNC_DIR)")
	fs.StringVar(&s.kubeconfig, "kubeconfig", "", "kubeconfig file when running outside the cluster (else $KUBECONFIG or in-cluster)")
	fs.DurationVar(&s.handshakeTimeout, "handshake-timeout", gw.HandshakeTimeout, "limit for everything before a session is relayed: the client's handshake, the token, the VM's VNC")
	fs.DurationVar(&s.authTimeout, "auth-timeout", gw.AuthTimeout, "limit for the client's part before authentication (version, security type, the answer to the challenge)")
	fs.DurationVar(&s.writeTimeout, "write-timeout", gw.WriteTimeout, "limit for each write to a session's peer: one that stops reading is disconnected")
	fs.DurationVar(&s.sweepInterval, "sweep-interval", 30*time.Second, "how often expired, unused tokens are deleted")
	fs.IntVar(&s.maxSessions, "max-sessions", gw.MaxSessions, "console sessions relayed at once; more are refused")
	fs.IntVar(&s.maxHandshakes, "max-handshakes", gw.MaxHandshakes, "VNC connections in their handshake at once; more are closed")
	fs.IntVar(&s.maxPerSource, "max-handshakes-per-source", gw.MaxHandshakesPerSource, "VNC connections in their handshake at once from one address; more are closed")
	fs.IntVar(&s.maxDirect, "max-direct-handshakes", gw.MaxDirectHandshakes, "direct-mode websockets in their handshake at once, apart from VNC's; more are refused")
	fs.IntVar(&s.maxDirectPerSource, "max-direct-handshakes-per-source", gw.MaxDirectHandshakesPerSource, "direct-mode websockets in their handshake at once from one browser address (see --trusted-proxies); more are refused")
	fs.IntVar(&s.maxHTTPConns, "max-http-connections", 512, "connections to --http-listen open at once, sessions included; more are closed at once")
	fs.StringVar(&proxies, "trusted-proxies", def("CONSOLE_TRUSTED_PROXIES", ""), "comma-separated addresses or CIDRs of proxies (an Ingress) whose X-Forwarded-For names the browser for the direct-mode limits; none by default (env CONSOLE_TRUSTED_PROXIES)")
	fs.IntVar(&s.maxFailures, "max-auth-failures-per-source", gw.MaxAuthFailuresPerSource, "failed VNC authentications from one address within --auth-failure-window after which its connections are closed, before any API call")
	fs.DurationVar(&s.failureWindow, "auth-failure-window", gw.AuthFailureWindow, "the window of --max-auth-failures-per-source")
	fs.Float64Var(&s.qps, "kube-api-qps", 20, "requests a second to the API server (burst twice that)")
	fs.StringVar(&level, "log-level", def("LOG_LEVEL", "info"), "debug, info, warn or error (env LOG_LEVEL)")
	if err := fs.Parse(args); err != nil {
		return s, err
	}
	if fs.NArg() > 0 {
		return s, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if err := s.level.UnmarshalText([]byte(level)); err != nil {
		return s, fmt.Errorf("--log-level %q: %w", level, err)
	}
	var err error
	if s.trustedProxies, err = console.ParseTrustedProxies(proxies); err != nil {
		return s, fmt.Errorf("--trusted-proxies: %w", err)
	}
	if (s.tlsCert == "") != (s.tlsKey == "") {
		return s, errors.New("--tls-cert and --tls-key go together")
	}
	if s.qps <= 0 || s.handshakeTimeout <= 0 || s.authTimeout <= 0 || s.writeTimeout <= 0 || s.sweepInterval <= 0 ||
		s.maxSessions <= 0 || s.maxHandshakes <= 0 || s.maxPerSource <= 0 || s.maxFailures <= 0 || s.failureWindow <= 0 ||
		s.maxDirect <= 0 || s.maxDirectPerSource <= 0 || s.maxHTTPConns <= 0 {
		return s, errors.New("--kube-api-qps, the timeouts, --sweep-interval, --auth-failure-window and the --max-* limits must be positive")
	}
	if !enabled(s.vncAddr) && !enabled(s.httpAddr) {
		return s, errors.New("--vnc-listen and --http-listen are both disabled: nothing to serve")
	}
	return s, nil
}

// enabled says whether a listen flag names an address: "" and "0" disable it.
func enabled(addr string) bool { return addr != "" && addr != "0" }

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	s, err := parseFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: s.level}))
	klog.SetLogger(logr.FromSlogHandler(log.Handler()))
	cfg, err := restConfig(s.kubeconfig)
	if err != nil {
		return fmt.Errorf("finding the cluster (in-cluster config, --kubeconfig or $KUBECONFIG): %w", err)
	}
	cfg.UserAgent = "cloudstack-kubevirt-console"
	cfg.QPS, cfg.Burst = float32(s.qps), 2*int(s.qps)
	tokens, err := console.NewTokens(cfg, s.namespace)
	if err != nil {
		return err
	}
	upstream, err := console.NewKubeVirt(cfg)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	gw := console.New(console.Config{
		Tokens: tokens, Upstream: upstream, Log: log, Metrics: console.NewMetrics(reg),
		HandshakeTimeout: s.handshakeTimeout, AuthTimeout: s.authTimeout, WriteTimeout: s.writeTimeout,
		MaxSessions: s.maxSessions, MaxHandshakes: s.maxHandshakes, NoVNCDir: s.novncDir,
		MaxHandshakesPerSource: s.maxPerSource, MaxAuthFailuresPerSource: s.maxFailures, AuthFailureWindow: s.failureWindow,
		MaxDirectHandshakes: s.maxDirect, MaxDirectHandshakesPerSource: s.maxDirectPerSource, TrustedProxies: s.trustedProxies,
	})
	log.Info("starting", "vnc", s.vncAddr, "http", s.httpAddr, "trustedProxies", fmt.Sprint(s.trustedProxies), "tls", s.tlsCert != "", "namespace", s.namespace, "novnc", s.novncDir, "server", cfg.Host)
	return serve(ctx, s, gw, tokens, reg, log)
}

// serve runs the listeners and the sweep until ctx ends or one of them fails.
func serve(ctx context.Context, s settings, gw *console.Gateway, tokens *console.Tokens, reg *prometheus.Registry, log *slog.Logger) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var ready atomic.Bool
	done := make(chan struct{}, 4)
	start := func(f func() error) {
		go func() {
			if err := f(); err != nil {
				cancel(err)
			}
			done <- struct{}{}
		}()
	}
	n := 0
	if enabled(s.vncAddr) {
		ln, err := net.Listen("tcp", s.vncAddr)
		if err != nil {
			return fmt.Errorf("--vnc-listen: %w", err)
		}
		n++
		start(func() error { return gw.ServeVNC(ctx, ln) })
	}
	if enabled(s.httpAddr) {
		ln, err := listenHTTP(s.httpAddr, s.maxHTTPConns)
		if err != nil {
			return fmt.Errorf("--http-listen: %w", err)
		}
		n++
		start(func() error { return serveHTTP(ctx, ln, s.tlsCert, s.tlsKey, gw.DirectHandler()) })
	}
	if enabled(s.healthAddr) {
		ln, err := listenHTTP(s.healthAddr, maxHealthConns)
		if err != nil {
			return fmt.Errorf("--health-listen: %w", err)
		}
		n++
		start(func() error { return serveHTTP(ctx, ln, "", "", healthHandler(&ready, reg)) })
	}
	n++
	start(func() error { sweep(ctx, tokens, s.sweepInterval, &ready, log); return nil })
	for range n {
		<-done
	}
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	log.Info("stopped")
	return nil
}

// sweep deletes expired tokens, and keeps readiness: ready while the tokens can be listed.
func sweep(ctx context.Context, tokens *console.Tokens, every time.Duration, ready *atomic.Bool, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		sctx, cancel := context.WithTimeout(ctx, every)
		n, err := tokens.Sweep(sctx)
		cancel()
		ready.Store(err == nil)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Error("console tokens unreadable: the gateway cannot check passwords (RBAC on Secrets in the tokens' namespace, --namespace?)", "error", err.Error())
		case n > 0:
			log.Info("expired console tokens deleted", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func healthHandler(ready *atomic.Bool, reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !ready.Load() {
			http.Error(w, "console tokens not readable yet", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return mux
}

// maxHealthConns caps the health listener's connections: the kubelet's probes and a metrics scraper need few.
const maxHealthConns = 32

// listenHTTP listens on addr, holding at most max connections open: more are closed at once, so that a flood
// of idle connections runs into the cap and not into the process's file descriptors.
func listenHTTP(addr string, max int) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return console.LimitListener(ln, max), nil
}

// serveHTTP serves h on ln until ctx ends. The header timeout keeps slow clients from holding connections;
// net/http retries temporary accept errors itself.
func serveHTTP(ctx context.Context, ln net.Listener, cert, key string, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12},
		// Requests, websockets included, end with ctx: a hijacked connection outlives Shutdown and Close.
		BaseContext: func(net.Listener) context.Context { return ctx }}
	stop := context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		_ = srv.Close()
	})
	defer stop()
	var err error
	if cert != "" {
		err = srv.ServeTLS(ln, cert, key)
	} else {
		err = srv.Serve(ln)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("%s: %w", ln.Addr(), err)
}

// restConfig is the --kubeconfig file's, else $KUBECONFIG's, else the in-cluster config.
func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig == "" {
		kubeconfig = os.Getenv("KUBECONFIG")
	}
	if kubeconfig != "" {
		return clientcmd.BuildConfigFromFlags("", kubeconfig)
	}
	return rest.InClusterConfig()
}
