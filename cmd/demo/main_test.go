package main

import (
	"bytes"
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
