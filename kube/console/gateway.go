// Package console is the console gateway: it speaks RFB (VNC) with VNC authentication to CloudStack's console
// proxy, and a websocket to browsers in direct mode, checks the one-time token getconsole left in the tokens'
// namespace, and relays the session to the VM's VNC through KubeVirt's vnc subresource, doing KubeVirt's side
// of the handshake itself.
package console

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/kube/consoletoken"
)

// TokenStore consumes the tokens getconsole mints; *Tokens is the real one.
type TokenStore interface {
	ConsumePassword(ctx context.Context, challenge, response []byte) (consoletoken.Target, error)
	ConsumeDirect(ctx context.Context, token string) (consoletoken.Target, error)
}

// Config configures a Gateway.
type Config struct {
	Tokens   TokenStore
	Upstream Upstream
	Log      *slog.Logger
	Metrics  *Metrics // nil: none

	// HandshakeTimeout bounds everything before the relay: the client's handshake, the token, the upstream
	// connection and its handshake. A client that dawdles (slowloris) is cut off when it runs out.
	HandshakeTimeout time.Duration
	// AuthTimeout bounds the client's part before authentication (version, security type, the answer to the
	// challenge; in direct mode the version): the console proxy takes milliseconds, so an idle connection
	// gives its handshake slot back long before HandshakeTimeout.
	AuthTimeout time.Duration
	// WriteTimeout bounds each write of the relay: a peer that stops reading ends its session instead of
	// holding it (and shutdown) for good.
	WriteTimeout time.Duration
	// MaxHandshakes bounds VNC connections still in their handshake; more are closed at once. Separate from
	// MaxSessions, so that a flood of connections that never authenticate cannot take the place of sessions.
	MaxHandshakes int
	// MaxHandshakesPerSource bounds one VNC client address's share of MaxHandshakes.
	MaxHandshakesPerSource int
	// MaxDirectHandshakes bounds direct-mode websockets still in their handshake: a pool of its own, so that
	// browsers (or whoever reaches the web console) cannot keep the console proxy out, nor the reverse.
	MaxDirectHandshakes int
	// MaxDirectHandshakesPerSource bounds one browser address's share of MaxDirectHandshakes.
	MaxDirectHandshakesPerSource int
	// TrustedProxies are the peers whose X-Forwarded-For names the browser's address for the direct-mode
	// limits; any other peer's header is ignored. None by default: every browser behind an Ingress then shares
	// the Ingress's share.
	TrustedProxies []netip.Prefix
	// MaxAuthFailuresPerSource failed VNC authentications from one address within AuthFailureWindow refuse its
	// further connections, before any API call, until the oldest failure leaves the window.
	MaxAuthFailuresPerSource int
	AuthFailureWindow        time.Duration
	// MaxSessions bounds relayed sessions.
	MaxSessions int
	// NoVNCDir holds noVNC (the npm package @novnc/novnc) for direct mode's page; "" serves a page that says
	// it is missing.
	NoVNCDir string
}

// Gateway serves consoles.
type Gateway struct {
	cfg      Config
	vnc      *pool
	direct   *pool
	sessions chan struct{}
	wg       sync.WaitGroup
	nextID   atomic.Uint64
}

// DefaultConfig holds the default timeouts and limits: New's for those left zero, and the command's flags'.
func DefaultConfig() Config {
	return Config{
		HandshakeTimeout:             15 * time.Second,
		AuthTimeout:                  5 * time.Second,
		WriteTimeout:                 30 * time.Second,
		MaxHandshakes:                64,
		MaxHandshakesPerSource:       16,
		MaxDirectHandshakes:          64,
		MaxDirectHandshakesPerSource: 16,
		MaxAuthFailuresPerSource:     30,
		AuthFailureWindow:            time.Minute,
		MaxSessions:                  256,
	}
}

// New returns a gateway; zero limits take DefaultConfig's.
func New(cfg Config) *Gateway {
	def := DefaultConfig()
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = def.HandshakeTimeout
	}
	if cfg.AuthTimeout <= 0 {
		cfg.AuthTimeout = def.AuthTimeout
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = def.WriteTimeout
	}
	if cfg.MaxHandshakes <= 0 {
		cfg.MaxHandshakes = def.MaxHandshakes
	}
	if cfg.MaxHandshakesPerSource <= 0 {
		cfg.MaxHandshakesPerSource = def.MaxHandshakesPerSource
	}
	if cfg.MaxDirectHandshakes <= 0 {
		cfg.MaxDirectHandshakes = def.MaxDirectHandshakes
	}
	if cfg.MaxDirectHandshakesPerSource <= 0 {
		cfg.MaxDirectHandshakesPerSource = def.MaxDirectHandshakesPerSource
	}
	if cfg.MaxAuthFailuresPerSource <= 0 {
		cfg.MaxAuthFailuresPerSource = def.MaxAuthFailuresPerSource
	}
	if cfg.AuthFailureWindow <= 0 {
		cfg.AuthFailureWindow = def.AuthFailureWindow
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = def.MaxSessions
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	direct := newSourceLimits(cfg.MaxDirectHandshakesPerSource, cfg.MaxAuthFailuresPerSource, cfg.AuthFailureWindow)
	direct.flag = "--max-direct-handshakes-per-source"
	return &Gateway{cfg: cfg, sessions: make(chan struct{}, cfg.MaxSessions),
		vnc: newPool(cfg.MaxHandshakes, "--max-handshakes",
			newSourceLimits(cfg.MaxHandshakesPerSource, cfg.MaxAuthFailuresPerSource, cfg.AuthFailureWindow)),
		direct: newPool(cfg.MaxDirectHandshakes, "--max-direct-handshakes", direct)}
}

// ServeVNC accepts VNC clients on ln until ctx ends, then closes ln and waits for the sessions it started to end
// (they end when their peers do; cancel ctx to end them too). Temporary accept errors (out of file descriptors,
// a connection aborted before it was accepted) are retried after a growing pause; any other ends it.
func (g *Gateway) ServeVNC(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var backoff acceptBackoff
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() == nil && temporaryAcceptError(err) {
				delay := backoff.next()
				g.cfg.Log.Warn("accepting a VNC connection failed: retrying", "error", err.Error(), "delay", delay.String())
				if sleep(ctx, delay) {
					continue
				}
			}
			if ctx.Err() != nil {
				g.wg.Wait()
				return nil
			}
			return fmt.Errorf("accepting VNC connections: %w", err)
		}
		backoff.reset()
		g.admitVNC(ctx, conn)
	}
}

// admitVNC starts conn's handshake if its source and the VNC pool have a slot for it, else closes it.
func (g *Gateway) admitVNC(ctx context.Context, conn net.Conn) {
	// The source's limits first: one host must not use up the shared slots.
	source := sourceOf(conn.RemoteAddr())
	release, reason, err := g.vnc.admit(source)
	if err != nil {
		g.cfg.Metrics.refused("vnc", reason)
		g.cfg.Log.Warn("connection refused", "mode", "vnc", "client", conn.RemoteAddr().String(), "error", err.Error())
		conn.Close()
		return
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		g.serveVNC(ctx, conn, source, release)
	}()
}

func (g *Gateway) acquire(sem chan struct{}) bool {
	select {
	case sem <- struct{}{}:
		return true
	default:
		return false
	}
}

// session is one client's connection, for the log.
type session struct {
	mode  string
	start time.Time
	log   *slog.Logger
}

func (g *Gateway) newSession(mode, client string) *session {
	id := g.nextID.Add(1)
	return &session{mode: mode, start: time.Now(),
		log: g.cfg.Log.With("session", id, "mode", mode, "client", client)}
}

// serveVNC is one console proxy connection: handshake with VNC authentication, then the relay. It holds its
// handshake slots (given back by release) until the relay starts, and takes a session slot before it tries the
// password, so that a busy gateway refuses without using up the password. source is
// sourceOf(conn.RemoteAddr()), which admitVNC admitted.
func (g *Gateway) serveVNC(ctx context.Context, conn net.Conn, source string, release func()) {
	s := g.newSession("vnc", conn.RemoteAddr().String())
	defer release() // once: also given back when the relay starts
	hctx, cancel := context.WithTimeout(ctx, g.cfg.HandshakeTimeout)
	defer cancel()
	deadline, _ := hctx.Deadline()
	_ = conn.SetDeadline(g.authDeadline(s.start, deadline))
	minor, challenge, response, err := vncChallenge(conn)
	if err != nil {
		g.fail(s, "handshake", err)
		conn.Close()
		return
	}
	_ = conn.SetDeadline(deadline)
	// Checked again now: failures of this source's other connections may have come in meanwhile.
	if err := g.vnc.sources.blocked(source); err != nil {
		g.fail(s, "too many failures", err)
		_ = securityResult(conn, minor, false, "too many failed authentications from this address: try again later")
		conn.Close()
		return
	}
	if !g.acquire(g.sessions) {
		g.fail(s, "too many sessions", fmt.Errorf("%d sessions already run", g.cfg.MaxSessions))
		_ = securityResult(conn, minor, false, "the console gateway is busy: try again later")
		conn.Close()
		return
	}
	defer func() { <-g.sessions }()
	up, reason := g.open(hctx, s, func(ctx context.Context) (consoletoken.Target, error) {
		target, err := g.cfg.Tokens.ConsumePassword(ctx, challenge, response)
		if authFailure(err) {
			g.vnc.sources.failed(source)
		}
		return target, err
	})
	if up == nil {
		_ = securityResult(conn, minor, false, reason)
		conn.Close()
		return
	}
	if err := securityResult(conn, minor, true, ""); err != nil {
		g.fail(s, "handshake", err)
		up.Close()
		conn.Close()
		return
	}
	release()
	_ = conn.SetDeadline(time.Time{})
	g.relay(ctx, s, conn, up)
}

// authDeadline is when the client's part before authentication must be done: AuthTimeout after start, and no
// later than the whole handshake's deadline.
func (g *Gateway) authDeadline(start, handshake time.Time) time.Time {
	if d := start.Add(g.cfg.AuthTimeout); d.Before(handshake) {
		return d
	}
	return handshake
}

// authFailure is a wrong, used or expired token: the client's doing, unlike an API server that failed.
func authFailure(err error) bool {
	return errors.Is(err, ErrNoToken) || errors.Is(err, ErrUsed) || errors.Is(err, ErrExpired)
}

// vncChallenge does the handshake up to the client's answer to a fresh VNC authentication challenge.
func vncChallenge(conn net.Conn) (minor int, challenge, response []byte, err error) {
	if minor, err = serverVersion(conn); err != nil {
		return 0, nil, nil, err
	}
	if err = offerSecurity(conn, minor, securityVNCAuth); err != nil {
		return 0, nil, nil, err
	}
	challenge = make([]byte, 16)
	_, _ = rand.Read(challenge)
	if _, err = conn.Write(challenge); err != nil {
		return 0, nil, nil, err
	}
	response = make([]byte, 16)
	if _, err = io.ReadFull(conn, response); err != nil {
		return 0, nil, nil, fmt.Errorf("reading the VNC authentication response: %w", err)
	}
	return minor, challenge, response, nil
}

// open consumes the client's token and opens its VM's VNC. On failure it returns the reason to tell the
// client, which never says more than that authentication failed or which VM is unavailable.
func (g *Gateway) open(ctx context.Context, s *session, consume func(context.Context) (consoletoken.Target, error)) (net.Conn, string) {
	target, err := consume(ctx)
	if err != nil {
		g.fail(s, "authentication", err)
		return nil, "authentication failed"
	}
	s.log = s.log.With("vm", target.String())
	up, err := g.cfg.Upstream.Open(ctx, target)
	if err != nil {
		g.fail(s, "upstream", err)
		return nil, "the console of " + target.String() + " is unavailable"
	}
	return up, ""
}

// fail logs why a connection ended before its relay.
func (g *Gateway) fail(s *session, stage string, err error) {
	g.cfg.Metrics.refused(s.mode, stage)
	s.log.Warn("console refused", "stage", stage, "error", fmt.Sprint(err), "elapsed", since(s.start))
}

// relay copies both ways until either side ends or ctx does, then closes both and logs the session. Each write
// has a deadline: a peer that stops reading fails it, which ends the session.
func (g *Gateway) relay(ctx context.Context, s *session, client, vm net.Conn) {
	g.cfg.Metrics.started(s.mode)
	s.log.Info("console session started", "handshake", since(s.start))
	relayStart := time.Now()
	var once sync.Once
	closeBoth := func() { once.Do(func() { client.Close(); vm.Close() }) }
	stop := context.AfterFunc(ctx, closeBoth)
	defer stop()
	var toVM, toClient atomic.Int64
	done := make(chan struct{}, 2)
	pump := func(dst, src net.Conn, n *atomic.Int64) {
		buf := make([]byte, 32<<10)
		for {
			k, err := src.Read(buf)
			if k > 0 {
				_ = dst.SetWriteDeadline(time.Now().Add(g.cfg.WriteTimeout))
				if _, werr := dst.Write(buf[:k]); werr != nil {
					break
				}
				n.Add(int64(k))
			}
			if err != nil {
				break
			}
		}
		closeBoth()
		done <- struct{}{}
	}
	go pump(vm, client, &toVM)
	go pump(client, vm, &toClient)
	<-done
	<-done
	g.cfg.Metrics.ended(s.mode, toVM.Load(), toClient.Load())
	s.log.Info("console session ended", "duration", since(relayStart),
		"bytesFromClient", toVM.Load(), "bytesToClient", toClient.Load())
}

// since is a duration for the log, readable in JSON (slog writes a time.Duration as nanoseconds).
func since(t time.Time) string { return time.Since(t).Round(time.Millisecond).String() }
