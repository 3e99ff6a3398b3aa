package main

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseFlags(t *testing.T) {
	env := map[string]string{"POD_NAMESPACE": "ops", "POD_NAME": "reconciler-0", "RECONCILER_NAMESPACES": "a, b,,", "LOG_LEVEL": "debug"}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(t *testing.T, s settings)
		wantErr string
	}{
		{name: "defaults", env: map[string]string{"POD_NAME": "p"}, check: func(t *testing.T, s settings) {
			assert.Empty(t, s.config.Namespaces)
			assert.Equal(t, "cloudstack-kubevirt-system", s.config.HeartbeatNamespace)
			assert.Equal(t, "cloudstack-kubevirt-reconciler", s.config.HeartbeatLease)
			assert.True(t, s.config.LeaderElection)
			assert.Equal(t, 10*time.Second, s.config.HeartbeatDuration)
			assert.Equal(t, slog.LevelInfo, s.Level)
		}},
		{name: "environment", env: env, check: func(t *testing.T, s settings) {
			assert.Equal(t, []string{"a", "b"}, s.config.Namespaces)
			assert.Equal(t, "ops", s.config.HeartbeatNamespace)
			assert.Equal(t, "reconciler-0", s.config.Identity)
			assert.Equal(t, slog.LevelDebug, s.Level)
		}},
		{name: "flags win over environment", env: env, args: []string{"--namespaces=c", "--heartbeat-namespace=x", "--leader-elect=false", "--kubeconfig=/k"},
			check: func(t *testing.T, s settings) {
				assert.Equal(t, []string{"c"}, s.config.Namespaces)
				assert.Equal(t, "x", s.config.HeartbeatNamespace)
				assert.False(t, s.config.LeaderElection)
				assert.Equal(t, "/k", s.Kubeconfig)
			}},
		{name: "duration shorter than two intervals", env: env, args: []string{"--heartbeat-interval=5s", "--heartbeat-duration=6s"}, wantErr: "at least twice its interval"},
		{name: "duration above the extension's cap", env: env, args: []string{"--heartbeat-duration=2m"}, wantErr: "may not exceed 1m0s"},
		{name: "duration not whole seconds", env: env, args: []string{"--heartbeat-duration=10500ms"}, wantErr: "whole seconds"},
		{name: "no workers", env: env, args: []string{"--max-concurrent-reconciles=0"}, wantErr: "workers must be at least 1"},
		{name: "bad log level", env: env, args: []string{"--log-level=loud"}, wantErr: `--log-level "loud"`},
		{name: "stray argument", env: env, args: []string{"extra"}, wantErr: "unexpected arguments"},
		{name: "unknown flag", env: env, args: []string{"--nope"}, wantErr: "flag provided but not defined"},
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
