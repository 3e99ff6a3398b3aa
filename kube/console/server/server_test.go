package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The web console's listener closes connections beyond its cap at once, and serves again when one ends.
func TestHTTPListenerCap(t *testing.T) {
	ln, err := listenHTTP("127.0.0.1:0", 1)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() {
		served <- serveHTTP(ctx, ln, "", "", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }))
	}()
	defer func() {
		cancel()
		assert.NoError(t, <-served)
	}()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		return c
	}
	held := dial() // says nothing: holds the only slot
	extra := dial()
	defer extra.Close()
	_, err = io.ReadFull(extra, make([]byte, 1))
	require.ErrorIs(t, err, io.EOF, "closed at once")

	held.Close()
	assert.EventuallyWithT(t, func(c *assert.CollectT) {
		resp, err := http.Get("http://" + ln.Addr().String())
		require.NoError(c, err)
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		assert.Equal(c, "ok", string(body))
	}, 10*time.Second, 50*time.Millisecond, "the slot came back")
}

func TestEnabled(t *testing.T) {
	for addr, want := range map[string]bool{"": false, "0": false, ":5900": true, "127.0.0.1:0": true} {
		assert.Equal(t, want, Enabled(addr), addr)
	}
}

// fakeGateway serves VNC by closing each connection, and direct mode with a fixed page.
type fakeGateway struct{}

func (fakeGateway) ServeVNC(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		conn.Close()
	}
}

func (fakeGateway) DirectHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "page") })
}

// fakeTokens fails its sweeps while readable is false.
type fakeTokens struct{ readable atomic.Bool }

func (f *fakeTokens) Sweep(context.Context) (int, error) {
	if !f.readable.Load() {
		return 0, errors.New("forbidden")
	}
	return 0, nil
}

// freeAddr is a loopback address no one listens on, for a while.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

func get(url string) (int, string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// Run serves every enabled listener, is ready while the tokens can be swept, and stops cleanly when its
// context ends.
func TestRun(t *testing.T) {
	tokens := &fakeTokens{}
	var logs strings.Builder // slog's handler serializes writes; read once Run has returned
	c := Config{VNCAddr: freeAddr(t), HTTPAddr: freeAddr(t), HealthAddr: freeAddr(t), MaxHTTPConns: 8,
		SweepInterval: 20 * time.Millisecond, Gateway: fakeGateway{}, Tokens: tokens, Metrics: prometheus.NewRegistry(),
		Log: slog.New(slog.NewJSONHandler(&logs, nil))}
	ctx, cancel := context.WithCancel(t.Context())
	ran := make(chan error, 1)
	go func() { ran <- Run(ctx, c) }()

	health := "http://" + c.HealthAddr
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		code, body, err := get(health + "/healthz")
		require.NoError(c, err)
		assert.Equal(c, http.StatusOK, code)
		assert.Equal(c, "ok\n", body)
	}, 10*time.Second, 20*time.Millisecond, "alive")
	code, body, err := get(health + "/readyz")
	require.NoError(t, err)
	assert.Equal(t, http.StatusServiceUnavailable, code, "not ready while the tokens cannot be read")
	assert.Contains(t, body, "console tokens not readable yet")

	tokens.readable.Store(true)
	assert.EventuallyWithT(t, func(c *assert.CollectT) {
		code, _, err := get(health + "/readyz")
		require.NoError(c, err)
		assert.Equal(c, http.StatusOK, code)
	}, 10*time.Second, 20*time.Millisecond, "ready once a sweep succeeds")
	code, _, err = get(health + "/metrics")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, code)
	code, body, err = get("http://" + c.HTTPAddr)
	require.NoError(t, err)
	assert.Equal(t, "page", body)
	assert.Equal(t, http.StatusOK, code)
	vnc, err := net.Dial("tcp", c.VNCAddr)
	require.NoError(t, err)
	vnc.Close()

	cancel()
	select {
	case err := <-ran:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop")
	}
	assert.Contains(t, logs.String(), "console tokens unreadable")
	assert.Contains(t, logs.String(), `"msg":"stopped"`)
}

// A listener that cannot listen fails Run, naming its flag, and stops what was already started.
func TestRunListenError(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	tests := []struct {
		name    string
		c       Config
		wantErr string
	}{
		{name: "vnc", c: Config{VNCAddr: busy.Addr().String()}, wantErr: "--vnc-listen: "},
		{name: "http", c: Config{VNCAddr: freeAddr(t), HTTPAddr: busy.Addr().String()}, wantErr: "--http-listen: "},
		{name: "health", c: Config{VNCAddr: "0", HTTPAddr: freeAddr(t), HealthAddr: busy.Addr().String()}, wantErr: "--health-listen: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.c.Gateway, tt.c.Tokens, tt.c.Log = fakeGateway{}, &fakeTokens{}, slog.New(slog.DiscardHandler)
			tt.c.SweepInterval, tt.c.MaxHTTPConns, tt.c.Metrics = time.Second, 1, prometheus.NewRegistry()
			err := Run(t.Context(), tt.c)
			require.ErrorContains(t, err, tt.wantErr)
			assert.ErrorContains(t, err, "address already in use")
		})
	}
}
