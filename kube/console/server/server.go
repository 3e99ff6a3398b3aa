// Package server runs the console gateway of package kube/console as a process: its listeners (VNC for
// CloudStack's console proxy, direct mode's web console, health and metrics), the sweep of expired tokens that
// also keeps readiness, and the shutdown on SIGTERM or an interrupt. cmd/console fills its Config from flags.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/kube/console"
)

// Gateway serves console sessions; *console.Gateway is one.
type Gateway interface {
	// ServeVNC relays the sessions of CloudStack's console proxy accepted on ln until ctx ends.
	ServeVNC(ctx context.Context, ln net.Listener) error
	// DirectHandler serves direct mode's page, noVNC and websocket.
	DirectHandler() http.Handler
}

// Sweeper deletes expired, unused console tokens; *console.Tokens is one.
type Sweeper interface {
	Sweep(ctx context.Context) (int, error)
}

// Config is what Run serves. A listen address of "" or "0" disables its listener.
type Config struct {
	VNCAddr    string // --vnc-listen: CloudStack's console proxy
	HTTPAddr   string // --http-listen: direct mode's web console
	HealthAddr string // --health-listen: /healthz, /readyz and /metrics

	// TLSCert and TLSKey, both or neither, make the web console HTTPS.
	TLSCert, TLSKey string
	// MaxHTTPConns caps the web console's open connections, sessions included.
	MaxHTTPConns int
	// SweepInterval is how often expired tokens are deleted, and readiness checked.
	SweepInterval time.Duration

	Gateway Gateway
	Tokens  Sweeper
	Metrics prometheus.Gatherer
	Log     *slog.Logger
}

// Enabled says whether a listen address names one: "" and "0" disable it.
func Enabled(addr string) bool { return addr != "" && addr != "0" }

// maxHealthConns caps the health listener's connections: the kubelet's probes and a metrics scraper need few.
const maxHealthConns = 32

// Run serves c until ctx ends, the process receives SIGTERM or an interrupt, or a listener fails; it returns
// once every listener and the sweep have stopped. Only a failure is an error: a signal is how a Pod is stopped.
func Run(ctx context.Context, c Config) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
	defer stop()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var tasks sync.WaitGroup
	start := func(task func() error) {
		tasks.Go(func() {
			if err := task(); err != nil {
				cancel(err)
			}
		})
	}
	if err := c.start(ctx, start); err != nil {
		// What started before the failing listener stops too: nothing Run started outlives it.
		cancel(err)
		tasks.Wait()
		return err
	}
	tasks.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	c.Log.Info("stopped")
	return nil
}

// start starts, each through start, a task serving each enabled address and the sweep, all until ctx ends.
func (c Config) start(ctx context.Context, start func(func() error)) error {
	var ready atomic.Bool
	if Enabled(c.VNCAddr) {
		ln, err := net.Listen("tcp", c.VNCAddr)
		if err != nil {
			return fmt.Errorf("--vnc-listen: %w", err)
		}
		start(func() error { return c.Gateway.ServeVNC(ctx, ln) })
	}
	if Enabled(c.HTTPAddr) {
		ln, err := listenHTTP(c.HTTPAddr, c.MaxHTTPConns)
		if err != nil {
			return fmt.Errorf("--http-listen: %w", err)
		}
		start(func() error { return serveHTTP(ctx, ln, c.TLSCert, c.TLSKey, c.Gateway.DirectHandler()) })
	}
	if Enabled(c.HealthAddr) {
		ln, err := listenHTTP(c.HealthAddr, maxHealthConns)
		if err != nil {
			return fmt.Errorf("--health-listen: %w", err)
		}
		start(func() error { return serveHTTP(ctx, ln, "", "", healthHandler(&ready, c.Metrics)) })
	}
	start(func() error { sweep(ctx, c.Tokens, c.SweepInterval, &ready, c.Log); return nil })
	return nil
}

// sweep deletes expired tokens, and keeps readiness: ready while the tokens can be listed.
func sweep(ctx context.Context, tokens Sweeper, every time.Duration, ready *atomic.Bool, log *slog.Logger) {
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

func healthHandler(ready *atomic.Bool, metrics prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !ready.Load() {
			http.Error(w, "console tokens not readable yet", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(metrics, promhttp.HandlerOpts{}))
	return mux
}

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
