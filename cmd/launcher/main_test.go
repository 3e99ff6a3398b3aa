package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/kube/powercache"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/cloudstacksim"
)

// launcher builds this command into dir as CloudStack's executable, and puts core beside it (nil: none).
func launcher(t *testing.T, core []byte) string {
	t.Helper()
	dir := t.TempDir()
	exe := filepath.Join(dir, "kubevirt-extension")
	out, err := exec.Command("go", "build", "-o", exe, ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	if core != nil {
		require.NoError(t, os.WriteFile(filepath.Join(dir, Core), core, 0o755))
	}
	return exe
}

// fakeCore stands in for the extension: it prints its arguments and exits 3.
var fakeCore = []byte("#!/bin/sh\necho \"core $*\"\nexit 3\n")

type fixture struct {
	home, logFile, payload string
}

// listing writes a payload for a status of the Instance, and a listing for its host that says state, into a
// management server's home.
func listing(t *testing.T, state string) fixture {
	t.Helper()
	f := fixture{home: t.TempDir(), logFile: filepath.Join(t.TempDir(), "extension.log")}
	h := cloudstacksim.Host{Host: map[string]string{"kubeconfig": "/etc/k", "namespace": "tenant-a"},
		Extension: map[string]string{"log_file": f.logFile}}
	in := cloudstacksim.Instance{ID: 7, Name: "i-2-7-VM", UUID: "7e000000-0000-4000-8000-000000000007", CPUs: 1, MemoryMB: 512}
	data, err := cloudstacksim.GsonJSON(h.Payload("status", in))
	require.NoError(t, err)
	f.payload = filepath.Join(t.TempDir(), "payload.json")
	require.NoError(t, os.WriteFile(f.payload, data, 0o600))
	req, err := powercache.ParseStatusRequest(data)
	require.NoError(t, err)
	dir, err := powercache.Open(filepath.Join(f.home, ".cache", "cloudstack-kubevirt", "power"), req.HostKey())
	require.NoError(t, err)
	epoch, err := dir.Epoch()
	require.NoError(t, err)
	now := time.Now()
	require.NoError(t, dir.Store(powercache.Listing{Epoch: epoch, Taken: now, Until: now.Add(time.Minute), LogFile: f.logFile,
		Entries: []powercache.Entry{{Instance: in.Name, UUID: in.UUID, State: state}}}))
	return f
}

func run(t *testing.T, exe, home string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CACHE_HOME=")
	out, err := cmd.CombinedOutput()
	code := 0
	if exit, ok := err.(*exec.ExitError); ok {
		code = exit.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return strings.TrimSpace(string(out)), code
}

func TestAnswersFromTheListing(t *testing.T) {
	exe := launcher(t, nil) // no extension beside it: the answer must come from the launcher alone
	f := listing(t, "poweroff")
	out, code := run(t, exe, f.home, "status", f.payload, "1800")
	assert.Equal(t, 0, code)
	var answer map[string]string
	require.NoError(t, json.Unmarshal([]byte(out), &answer), out)
	assert.Equal(t, map[string]string{"status": "success", "power_state": "poweroff"}, answer)
	log, err := os.ReadFile(f.logFile)
	require.NoError(t, err)
	assert.Contains(t, string(log), "msg=status")
	assert.Contains(t, string(log), "power_state=poweroff source=labels listing=read by=launcher")
}

func TestHandsOverEverythingElse(t *testing.T) {
	exe := launcher(t, fakeCore)
	f := listing(t, "") // a listing that cannot tell this Instance's state
	tests := []struct {
		name string
		args []string
	}{
		{"a status the listing cannot answer", []string{"status", f.payload, "1800"}},
		{"a status without a listing", []string{"status", filepath.Join(t.TempDir(), "missing.json"), "60"}},
		{"a lifecycle action", []string{"stop", f.payload, "60"}},
		{"a custom action", []string{"Describe", f.payload, "60"}},
		{"version", []string{"version"}},
		{"no arguments", nil},
		{"malformed", []string{"status", f.payload}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, code := run(t, exe, f.home, tt.args...)
			assert.Equal(t, strings.TrimSpace("core "+strings.Join(tt.args, " ")), out)
			assert.Equal(t, 3, code, "the extension's exit code is the launcher's")
		})
	}
}

func TestNoExtensionBesideIt(t *testing.T) {
	exe := launcher(t, nil)
	out, code := run(t, exe, t.TempDir(), "stop", "/nonexistent.json", "60")
	assert.Equal(t, 1, code)
	var answer map[string]string
	require.NoError(t, json.Unmarshal([]byte(out), &answer), out)
	assert.Equal(t, "error", answer["status"])
	assert.Contains(t, answer["message"], Core)
}
