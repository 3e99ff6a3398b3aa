package daemon

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    Common
		wantErr string
	}{
		{name: "defaults", want: Common{QPS: 20, Level: slog.LevelInfo}},
		{name: "environment", env: map[string]string{"KUBECONFIG": "/env", "LOG_LEVEL": "debug"},
			want: Common{Kubeconfig: "/env", QPS: 20, Level: slog.LevelDebug}},
		{name: "empty environment is unset", env: map[string]string{"KUBECONFIG": "", "LOG_LEVEL": ""},
			want: Common{QPS: 20, Level: slog.LevelInfo}},
		{name: "flags win over environment", env: map[string]string{"KUBECONFIG": "/env", "LOG_LEVEL": "debug"},
			args: []string{"--kubeconfig=/flag", "--log-level=warn", "--kube-api-qps=0.5"},
			want: Common{Kubeconfig: "/flag", QPS: 0.5, Level: slog.LevelWarn}},
		{name: "bad level", args: []string{"--log-level=loud"}, wantErr: `--log-level "loud"`},
		{name: "bad level from environment", env: map[string]string{"LOG_LEVEL": "loud"}, wantErr: `--log-level "loud"`},
		{name: "zero rate", args: []string{"--kube-api-qps=0"}, wantErr: "--kube-api-qps must be positive, not 0"},
		{name: "negative rate", args: []string{"--kube-api-qps=-1"}, wantErr: "--kube-api-qps must be positive, not -1"},
		{name: "stray argument", args: []string{"--log-level=info", "serve"}, wantErr: `unexpected arguments ["serve"]`},
		{name: "unknown flag", args: []string{"--nope"}, wantErr: "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := NewFlags("test", func(k string) string { return tt.env[k] }, io.Discard, 20)
			got, err := f.Parse(tt.args)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestStringVarEnv(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{name: "unset", want: "fallback"},
		{name: "empty", env: map[string]string{"NAME": ""}, want: "fallback"},
		{name: "set", env: map[string]string{"NAME": "env"}, want: "env"},
		{name: "flag wins", env: map[string]string{"NAME": "env"}, args: []string{"--name=flag"}, want: "flag"},
		{name: "flag may be empty", env: map[string]string{"NAME": "env"}, args: []string{"--name="}, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := NewFlags("test", func(k string) string { return tt.env[k] }, io.Discard, 20)
			var got string
			f.StringVarEnv(&got, "name", "NAME", "fallback", "what it is")
			_, err := f.Parse(tt.args)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, "what it is (env NAME)", f.Lookup("name").Usage, "--help names the variable")
		})
	}
}

// A kubeconfig file's cluster, with the daemon's user agent and rate; no file means in-cluster, and never
// ~/.kube/config.
func TestRESTConfig(t *testing.T) {
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	require.NoError(t, os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://file.example:6443"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`), 0o600))
	// A home whose kubeconfig names another cluster: controller-runtime's GetConfig would fall back to it.
	home := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(home, ".kube"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(home, ".kube", "config"), []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://home.example:6443"}}]
contexts: [{name: x, context: {cluster: c}}]
current-context: x
`), 0o600))
	t.Setenv("HOME", home)
	t.Setenv("KUBECONFIG", "")
	t.Setenv("KUBERNETES_SERVICE_HOST", "") // not in a Pod, whatever runs the tests

	tests := []struct {
		name     string
		c        Common
		wantHost string
		wantErr  error
		errText  string
	}{
		{name: "kubeconfig file", c: Common{Kubeconfig: kubeconfig, QPS: 20}, wantHost: "https://file.example:6443"},
		{name: "missing file", c: Common{Kubeconfig: filepath.Join(dir, "missing"), QPS: 20}, wantErr: os.ErrNotExist,
			errText: "finding the cluster (--kubeconfig, $KUBECONFIG or the in-cluster config)"},
		{name: "in-cluster, not ~/.kube/config", c: Common{QPS: 20}, wantErr: rest.ErrNotInCluster,
			errText: "finding the cluster"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := tt.c.RESTConfig("agent")
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				assert.ErrorContains(t, err, tt.errText)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.wantHost, cfg.Host)
			assert.Equal(t, "agent", cfg.UserAgent)
			assert.InDelta(t, 20, cfg.QPS, 0)
			assert.Equal(t, 40, cfg.Burst, "bursts of twice the rate")
		})
	}
}

func TestLogger(t *testing.T) {
	tests := []struct {
		level slog.Level
		want  []string
	}{
		{level: slog.LevelInfo, want: []string{"info", "warn"}},
		{level: slog.LevelDebug, want: []string{"debug", "info", "warn"}},
		{level: slog.LevelError, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.level.String(), func(t *testing.T) {
			var buf bytes.Buffer
			log := Common{Level: tt.level}.Logger(&buf)
			log.Debug("debug")
			log.Info("info")
			log.Warn("warn")
			var got []string
			dec := json.NewDecoder(&buf)
			for dec.More() {
				var line struct{ Msg string }
				require.NoError(t, dec.Decode(&line), "every line is JSON")
				got = append(got, line.Msg)
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

// client-go logs through klog: its lines come out as the daemon's own JSON.
func TestLoggerRoutesKlog(t *testing.T) {
	var buf bytes.Buffer
	Common{Level: slog.LevelInfo}.Logger(&buf)
	t.Cleanup(klog.ClearLogger)
	klog.InfoS("from client-go", "key", "value")
	var line struct{ Msg, Key string }
	require.NoError(t, json.Unmarshal(buf.Bytes(), &line), buf.String())
	assert.Equal(t, "from client-go", line.Msg)
	assert.Equal(t, "value", line.Key)
}
