package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pr11601Excerpt is a payload from a real CloudStack: pasted by its author in apache/cloudstack PR #11601
// ("extension/proxmox: add console access for instances", merged for 4.22), copied verbatim from
// /work/shared/reference/payloads. The paste is cut: each of its two files ends in "...", so the test closes
// the object where the paste stops and reads only what CloudStack wrote.
const pr11601Excerpt = "testdata/verbatim_pr11601_payload_excerpt.txt"

// excerptObject returns the JSON object printed after the `cat` line naming file, up to the "..." where the
// paste was cut, closed.
func excerptObject(t *testing.T, file string) string {
	t.Helper()
	data, err := os.ReadFile(pr11601Excerpt)
	require.NoError(t, err)
	lines := strings.Split(string(data), "\n")
	start := -1
	for i, l := range lines {
		if strings.HasPrefix(l, "# cat ") && strings.Contains(l, file) {
			start = i + 1
		}
	}
	require.NotEqual(t, -1, start, "the excerpt shows %s", file)
	var obj []string
	for _, l := range lines[start:] {
		if strings.TrimSpace(l) == "..." {
			break
		}
		obj = append(obj, l)
	}
	require.NotEmpty(t, obj)
	obj[len(obj)-1] = strings.TrimSuffix(obj[len(obj)-1], ",")
	return strings.Join(obj, "\n") + "\n}\n"
}

// TestRealPayloadExcerpt feeds the excerpt to the extension's payload reader and checks the fields it reads.
func TestRealPayloadExcerpt(t *testing.T) {
	t.Run("a VM action's payload", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "5811778e-bded-4576-96bb-3d529d8c0a33.json")
		require.NoError(t, os.WriteFile(path, []byte(excerptObject(t, "5811778e-bded-4576-96bb-3d529d8c0a33.json")), 0o600))
		p, err := readPayload(path)
		require.NoError(t, err)
		assert.Equal(t, "i-2-45-VM", p.InstanceName(), "from cloudstack.vm.details.name: the excerpt has no virtualmachinename")
		assert.Equal(t, "126f4562-1f0f-4313-875e-6150cabeb72f", p.InstanceUUID())
		require.NotNil(t, p.VM)
		assert.Equal(t, int64(45), p.VM.ID)
		assert.Equal(t, "Running", p.VM.State)
		assert.Equal(t, "User", p.VM.Type)
		assert.Equal(t, 1, p.VM.CPUs)
		assert.Equal(t, int64(536870912), p.VM.MinRAM)
		assert.Equal(t, int64(536870912), p.VM.MaxRAM)
		assert.Equal(t, "x86_64", p.VM.Arch)
		assert.Equal(t, map[string]string{
			"proxmox_vmid": "103", "cpuOvercommitRatio": "2.0", "External:template_type": "template",
			"External:template_id": "101", "Message.ReservedCapacityFreed.Flag": "false",
		}, p.VM.Details)
		assert.Empty(t, p.VM.NICs, `"nics": [] outside create, start and prepare`)
		assert.Empty(t, p.ExternalDetails, "cut from the paste")
	})
	t.Run("the caller CloudStack 4.22 adds", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "02b650f6-bb98-49cb-8cac-82b7a78f43a2.json")
		require.NoError(t, os.WriteFile(path, []byte(excerptObject(t, "02b650f6-bb98-49cb-8cac-82b7a78f43a2.json")), 0o600))
		p, err := readPayload(path)
		require.NoError(t, err, "an unknown top-level object (caller) is no error")
		assert.Equal(t, "126f4562-1f0f-4313-875e-6150cabeb72f", p.InstanceUUID())
		assert.Nil(t, p.VM)
	})
}
