package main

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runCaptured runs the process contract in-process with stdout on a pipe, as CloudStack does, and returns the
// exit code and everything written.
func runCaptured(t *testing.T, args ...string) (int, string) {
	t.Helper()
	r, w, err := os.Pipe()
	require.NoError(t, err)
	code := run(args, w, time.Now())
	require.NoError(t, w.Close())
	out, err := io.ReadAll(r)
	require.NoError(t, err)
	return code, string(out)
}

func writePayload(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "payload.json")
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

func TestContractErrors(t *testing.T) {
	const secret = "tok-3f9a"
	valid := writePayload(t, `{"externaldetails":{"host":{"namespace":"ns","kubeconfig":"/nonexistent/kubeconfig","token":"`+secret+`"}},"virtualmachinename":"i-2-45-VM","virtualmachineid":"u-1"}`)
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantMsg  string
	}{
		{"no arguments", nil, exitUsage, "usage: extension <action> <payload-file> <timeout-seconds>"},
		{"too many arguments", []string{"status", valid, "60", "x"}, exitUsage, "got 4 arguments"},
		{"timeout not a number", []string{"status", valid, "soon"}, exitUsage, `timeout "soon"`},
		{"timeout zero", []string{"status", valid, "0"}, exitUsage, `timeout "0"`},
		{"payload missing", []string{"status", "/nonexistent/p.json", "60"}, exitFailed, "reading the payload file"},
		{"payload not JSON", []string{"status", writePayload(t, "{"+secret), "60"}, exitFailed, "payload is not CloudStack's JSON"},
		{"unknown action", []string{"hibernate", valid, "60"}, exitFailed, `unsupported action "hibernate"`},
		{"the custom actions are listed", []string{"hibernate", valid, "60"}, exitFailed, "check, ListSnapshots, CreateSnapshot, RestoreSnapshot, DeleteSnapshot, Pause, Resume, Migrate, Describe"},
		{"custom actions in any case", []string{"MIGRATE", valid, "60"}, exitFailed, "kubeconfig /nonexistent/kubeconfig does not exist"},
		{"lifecycle actions only in lower case", []string{"Delete", valid, "60"}, exitFailed, `unsupported action "Delete"`},
		{"forwarded agent command", []string{"com.cloud.agent.api.ModifyStoragePoolCommand@5e1f3b", writePayload(t, `{"action":"x"}`), "60"}, exitFailed, `unsupported action "com.cloud.agent.api.ModifyStoragePoolCommand@5e1f3b"`},
		{"getconsole is an action (4.22)", []string{"getconsole", valid, "60"}, exitFailed, "kubeconfig /nonexistent/kubeconfig does not exist"},
		{"no kubeconfig detail", []string{"status", writePayload(t, `{"externaldetails":{"host":{"namespace":"ns"}}}`), "60"}, exitFailed, "detail kubeconfig: not set"},
		{"kubeconfig file missing", []string{"status", valid, "60"}, exitFailed, "kubeconfig /nonexistent/kubeconfig does not exist on this management server"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out := runCaptured(t, tt.args...)
			assert.Equal(t, tt.wantCode, code)
			require.True(t, strings.HasSuffix(out, "}\n") && strings.Count(out, "\n") == 1, "one JSON line: %q", out)
			var answer map[string]string
			require.NoError(t, json.Unmarshal([]byte(out), &answer), out)
			assert.Equal(t, "error", answer["status"])
			assert.Contains(t, answer["message"], tt.wantMsg)
			assert.NotContains(t, out, secret, "no secret from the payload is echoed")
		})
	}
}

func TestLogFileUnwritableIsNotFatal(t *testing.T) {
	payload := writePayload(t, `{"externaldetails":{"extension":{"log_file":"/proc/forbidden/kv.log"},"host":{"namespace":"ns"}}}`)
	code, out := runCaptured(t, "status", payload, "60")
	assert.Equal(t, exitFailed, code)
	assert.Contains(t, out, "detail kubeconfig", "the real problem is reported, not the log file")
}

func TestLogFileReceivesDiagnostics(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "kv.log")
	payload := writePayload(t, `{"externaldetails":{"extension":{"log_file":"`+logPath+`"},"host":{"namespace":"ns"}},"virtualmachinename":"i-2-45-VM"}`)
	_, _ = runCaptured(t, "status", payload, "60")
	data, err := os.ReadFile(logPath)
	require.NoError(t, err)
	assert.Contains(t, string(data), "action=status")
	assert.Contains(t, string(data), "instance=i-2-45-VM")
	assert.Contains(t, string(data), "detail kubeconfig")
}

func TestMargin(t *testing.T) {
	tests := []struct{ timeout, want time.Duration }{
		{time.Second, 500 * time.Millisecond},
		{5 * time.Second, time.Second},
		{60 * time.Second, 6 * time.Second},
		{1800 * time.Second, 10 * time.Second},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, margin(tt.timeout), tt.timeout)
	}
}

// TestLargeAnswerDoesNotBlock writes an answer several times the default pipe size with nobody reading, as
// CloudStack does until the process exits.
func TestLargeAnswerDoesNotBlock(t *testing.T) {
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	states := map[string]string{}
	for i := range 10000 {
		states["i-2-"+strconv.Itoa(100000+i)+"-VM"] = "poweron"
	}
	done := make(chan error, 1)
	go func() { done <- newAnswerer(w).write(powerAnswer{Status: "success", PowerState: states}) }()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("writing the answer blocked on a full pipe")
	}
	require.NoError(t, w.Close())
	data, err := io.ReadAll(r)
	require.NoError(t, err)
	assert.Greater(t, len(data), 3*65536, "well over the default pipe size")
	var answer struct {
		PowerState map[string]string `json:"power_state"`
	}
	require.NoError(t, json.Unmarshal(data, &answer))
	assert.Len(t, answer.PowerState, 10000)
}

func TestVersion(t *testing.T) {
	code, out := runCaptured(t, "version")
	assert.Equal(t, exitOK, code)
	var v versionAnswer
	require.NoError(t, json.Unmarshal([]byte(out), &v), out)
	assert.Equal(t, "success", v.Status)
	assert.Equal(t, "dev", v.Version, "unstamped builds say so")
	assert.True(t, strings.HasPrefix(v.Go, "go"))
}
