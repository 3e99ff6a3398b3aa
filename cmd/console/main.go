// Command console is the console gateway: CloudStack's console proxy connects to it with the one-time VNC
// password getconsole handed out, and it relays the session to the VM's VNC through KubeVirt's vnc subresource.
// In direct mode it also serves a noVNC page to browsers. The gateway itself is package kube/console, and its
// listeners and shutdown package kube/console/server; this is its flags and wiring.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/cmd/internal/daemon"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/kube/console"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/kube/console/server"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

func main() {
	// kube/console/server stops on SIGTERM or an interrupt.
	if err := run(context.Background(), os.Args[1:], os.Getenv, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "console:", err)
		os.Exit(1)
	}
}

type settings struct {
	daemon.Common
	vncAddr, httpAddr, healthAddr string
	tlsCert, tlsKey               string
	namespace                     string
	novncDir                      string
	handshakeTimeout, authTimeout time.Duration
	writeTimeout                  time.Duration
	sweepInterval                 time.Duration
	maxSessions, maxHandshakes    int
	maxPerSource, maxFailures     int
	maxDirect, maxDirectPerSource int
	maxHTTPConns                  int
	trustedProxies                []netip.Prefix
	failureWindow                 time.Duration
}

// parseFlags reads flags, each defaulting to an environment variable where a Deployment sets one.
func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (settings, error) {
	fs := daemon.NewFlags("console", getenv, stderr, 20)
	var s settings
	var proxies string
	gw := console.DefaultConfig()
	fs.StringVar(&s.vncAddr, "vnc-listen", ":5900", "address of the VNC listener CloudStack's console proxy connects to; 0 disables it")
	fs.StringVar(&s.httpAddr, "http-listen", "", "address of direct mode's web console (page, noVNC, websocket), e.g. :8080; off unless set (console_mode=direct)")
	fs.StringVarEnv(&s.tlsCert, "tls-cert", "CONSOLE_TLS_CERT", "", "certificate file for the web console (HTTPS); with --tls-key")
	fs.StringVarEnv(&s.tlsKey, "tls-key", "CONSOLE_TLS_KEY", "", "key file for the web console")
	fs.StringVar(&s.healthAddr, "health-listen", ":8081", "address of /healthz, /readyz and /metrics; 0 disables it")
	fs.StringVarEnv(&s.namespace, "namespace", "CONSOLE_NAMESPACE", translate.DefaultConsoleNamespace, "namespace of the console tokens, which must hold nothing else (the gateway may read and delete every Secret in it): the extension's console_namespace detail names the same")
	fs.StringVarEnv(&s.novncDir, "novnc-dir", "NOVNC_DIR", "", "directory of the npm package @novnc/novnc, for direct mode's page")
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
	fs.StringVarEnv(&proxies, "trusted-proxies", "CONSOLE_TRUSTED_PROXIES", "", "comma-separated addresses or CIDRs of proxies (an Ingress) whose X-Forwarded-For names the browser for the direct-mode limits; none by default")
	fs.IntVar(&s.maxFailures, "max-auth-failures-per-source", gw.MaxAuthFailuresPerSource, "failed VNC authentications from one address within --auth-failure-window after which its connections are closed, before any API call")
	fs.DurationVar(&s.failureWindow, "auth-failure-window", gw.AuthFailureWindow, "the window of --max-auth-failures-per-source")
	var err error
	if s.Common, err = fs.Parse(args); err != nil {
		return s, err
	}
	if s.trustedProxies, err = console.ParseTrustedProxies(proxies); err != nil {
		return s, fmt.Errorf("--trusted-proxies: %w", err)
	}
	return s, s.validate()
}

// validate checks what the flags cannot say alone.
func (s settings) validate() error {
	if (s.tlsCert == "") != (s.tlsKey == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	if s.handshakeTimeout <= 0 || s.authTimeout <= 0 || s.writeTimeout <= 0 || s.sweepInterval <= 0 ||
		s.maxSessions <= 0 || s.maxHandshakes <= 0 || s.maxPerSource <= 0 || s.maxFailures <= 0 || s.failureWindow <= 0 ||
		s.maxDirect <= 0 || s.maxDirectPerSource <= 0 || s.maxHTTPConns <= 0 {
		return errors.New("the timeouts, --sweep-interval, --auth-failure-window and the --max-* limits must be positive")
	}
	if !server.Enabled(s.vncAddr) && !server.Enabled(s.httpAddr) {
		return errors.New("--vnc-listen and --http-listen are both disabled: nothing to serve")
	}
	return nil
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	s, err := parseFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	log := s.Logger(stderr)
	cfg, err := s.RESTConfig("cloudstack-kubevirt-console")
	if err != nil {
		return err
	}
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
	return server.Run(ctx, server.Config{
		VNCAddr: s.vncAddr, HTTPAddr: s.httpAddr, HealthAddr: s.healthAddr, TLSCert: s.tlsCert, TLSKey: s.tlsKey,
		MaxHTTPConns: s.maxHTTPConns, SweepInterval: s.sweepInterval,
		Gateway: gw, Tokens: tokens, Metrics: reg, Log: log,
	})
}
