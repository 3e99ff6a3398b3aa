package main

import (
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseFlags(t *testing.T) {
	env := map[string]string{"CONSOLE_NAMESPACE": "consoles", "CONSOLE_TRUSTED_PROXIES": "10.0.0.0/8", "POD_NAMESPACE": "cloudstack-kubevirt-system", "NOVNC_DIR": "/novnc", "LOG_LEVEL": "debug"}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(t *testing.T, s settings)
		wantErr string
	}{
		{name: "defaults", env: map[string]string{"POD_NAMESPACE": "cloudstack-kubevirt-system"}, check: func(t *testing.T, s settings) {
			assert.Equal(t, ":5900", s.vncAddr)
			assert.Empty(t, s.httpAddr, "direct mode's listener is off unless asked for")
			assert.Empty(t, s.trustedProxies, "no proxy is trusted unless named")
			assert.Equal(t, 64, s.maxDirect)
			assert.Equal(t, 16, s.maxDirectPerSource)
			assert.Equal(t, 512, s.maxHTTPConns)
			assert.Equal(t, ":8081", s.healthAddr)
			assert.Equal(t, "cloudstack-kubevirt-console", s.namespace, "the tokens' own namespace, not the gateway's")
			assert.Empty(t, s.novncDir)
			assert.Equal(t, 15*time.Second, s.handshakeTimeout)
			assert.Equal(t, 5*time.Second, s.authTimeout)
			assert.Equal(t, 30*time.Second, s.writeTimeout)
			assert.Equal(t, 16, s.maxPerSource)
			assert.Equal(t, 30, s.maxFailures)
			assert.Equal(t, time.Minute, s.failureWindow)
			assert.Equal(t, slog.LevelInfo, s.Level)
		}},
		{name: "environment", env: env, check: func(t *testing.T, s settings) {
			assert.Equal(t, "consoles", s.namespace)
			assert.Equal(t, "/novnc", s.novncDir)
			assert.Equal(t, slog.LevelDebug, s.Level)
			assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, s.trustedProxies)
		}},
		{name: "direct mode", args: []string{"--http-listen=:8080", "--trusted-proxies=192.0.2.7, 10.0.0.0/8", "--max-http-connections=100"}, check: func(t *testing.T, s settings) {
			assert.Equal(t, ":8080", s.httpAddr)
			assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("192.0.2.7/32"), netip.MustParsePrefix("10.0.0.0/8")}, s.trustedProxies)
			assert.Equal(t, 100, s.maxHTTPConns)
		}},
		{name: "flags win", env: env, args: []string{"--namespace=x", "--novnc-dir=/n", "--vnc-listen=127.0.0.1:5901", "--http-listen=0"}, check: func(t *testing.T, s settings) {
			assert.Equal(t, "x", s.namespace)
			assert.Equal(t, "/n", s.novncDir)
			assert.Equal(t, "127.0.0.1:5901", s.vncAddr)
			assert.Equal(t, "0", s.httpAddr)
		}},
		{name: "certificate without key", args: []string{"--tls-cert=/c"}, wantErr: "go together"},
		{name: "nothing to serve", args: []string{"--vnc-listen=0", "--http-listen=0"}, wantErr: "nothing to serve"},
		{name: "nothing to serve by default without VNC", args: []string{"--vnc-listen=0"}, wantErr: "nothing to serve"},
		{name: "trusted proxy by name", args: []string{"--trusted-proxies=ingress.example.com"}, wantErr: `--trusted-proxies: trusted proxy "ingress.example.com"`},
		{name: "zero HTTP connections", args: []string{"--max-http-connections=0"}, wantErr: "must be positive"},
		{name: "zero direct handshakes", args: []string{"--max-direct-handshakes-per-source=0"}, wantErr: "must be positive"},
		{name: "zero timeout", args: []string{"--handshake-timeout=0s"}, wantErr: "must be positive"},
		{name: "zero auth timeout", args: []string{"--auth-timeout=0s"}, wantErr: "must be positive"},
		{name: "zero per-source limit", args: []string{"--max-handshakes-per-source=0"}, wantErr: "must be positive"},
		{name: "bad level", args: []string{"--log-level=loud"}, wantErr: "--log-level"},
		{name: "stray argument", args: []string{"serve"}, wantErr: "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := parseFlags(tt.args, func(k string) string { return tt.env[k] }, io.Discard)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			tt.check(t, s)
		})
	}
}
