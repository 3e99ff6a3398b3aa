package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDemo runs the README's first command as a user would and checks that every step of the lifecycle
// succeeded, as its transcript shows.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an API server and runs a lifecycle")
	}
	var out bytes.Buffer
	require.NoError(t, run(t.Context(), &out, false), out.String())
	text := out.String()
	for _, step := range []string{"check", "prepare", "create", "status", "statuses", "stop", "start", "reboot", "delete"} {
		assert.Contains(t, text, "$ kubevirt-extension "+step+" <payload.json> 60")
	}
	assert.Equal(t, 11, strings.Count(text, "   exit 0 in "), "every call succeeded:\n%s", text)
	assert.NotContains(t, text, "exit 1")
	assert.Contains(t, text, "CloudStack reads PowerOn")
	assert.Contains(t, text, "CloudStack reads PowerOff")
	assert.Contains(t, text, "vmi phase=Running")
}

// TestDemoKeep: with -keep, the lifecycle is followed by another Instance's deploy, left running for kubectl
// until Ctrl-C (here: the context ends once the demo says what it kept).
func TestDemoKeep(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an API server and runs a lifecycle")
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out := &untilWritten{marker: "Ctrl-C to stop both", done: cancel}
	require.NoError(t, run(ctx, out, true), out.String())
	text := out.String()
	assert.Equal(t, 13, strings.Count(text, "   exit 0 in "), "the lifecycle and the second deploy succeeded:\n%s", text)
	_, kept, found := strings.Cut(text, "keep: deploy another Instance: create")
	require.True(t, found, text)
	assert.Contains(t, kept, "kubectl: vm/i-2-46-vm runStrategy=Always status=Running; vmi phase=Running")
	assert.Contains(t, kept, "== kept: Instance i-2-46-VM runs as VirtualMachine cloudstack-host-1/i-2-46-vm")
	assert.Contains(t, kept, "kubectl get vm -n cloudstack-host-1")
}

// untilWritten is the demo's output; it calls done once the output holds marker.
type untilWritten struct {
	bytes.Buffer
	marker string
	done   func()
}

func (w *untilWritten) Write(p []byte) (int, error) {
	n, err := w.Buffer.Write(p)
	if strings.Contains(w.String(), w.marker) {
		w.done()
	}
	return n, err
}
