package translate

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// params builds Params from JSON text, as ParsePayload would decode them.
func params(t *testing.T, js string) Params {
	t.Helper()
	p, err := ParsePayload([]byte(`{"parameters":` + js + `}`))
	require.NoError(t, err)
	return p.Parameters
}

func TestCustomActionPayloadParameters(t *testing.T) {
	data, err := os.ReadFile("testdata/custom_action_payload.json")
	require.NoError(t, err)
	p, err := ParsePayload(data)
	require.NoError(t, err)
	assert.Equal(t, "CreateSnapshot", p.Action)
	name, err := p.Parameters.SnapshotName()
	require.NoError(t, err)
	assert.Equal(t, "before-upgrade", name)
	// The sample is Proxmox's, which saves memory; KubeVirt cannot.
	_, err = p.Parameters.CreateSnapshotParams()
	assert.ErrorContains(t, err, "snap_save_memory=true cannot be honoured")
}

func TestCreateSnapshotParams(t *testing.T) {
	long := strings.Repeat("a", 64)
	tests := []struct {
		name, js string
		want     SnapshotRequest
		wantErr  string
	}{
		{name: "name only", js: `{"snap_name":"before-upgrade"}`, want: SnapshotRequest{Name: "before-upgrade"}},
		{name: "with description", js: `{"snap_name":"s1","snap_description":"before the kernel update"}`,
			want: SnapshotRequest{Name: "s1", Description: "before the kernel update"}},
		{name: "memory false (BOOLEAN)", js: `{"snap_name":"s1","snap_save_memory":false}`, want: SnapshotRequest{Name: "s1"}},
		{name: "memory false (undeclared string)", js: `{"snap_name":"s1","snap_save_memory":"false"}`, want: SnapshotRequest{Name: "s1"}},
		{name: "63 characters", js: `{"snap_name":"` + long[:63] + `"}`, want: SnapshotRequest{Name: long[:63]}},
		{name: "missing name", js: `{}`, wantErr: "parameter snap_name is required"},
		{name: "empty name", js: `{"snap_name":""}`, wantErr: "parameter snap_name is required"},
		{name: "null name", js: `{"snap_name":null}`, wantErr: "parameter snap_name is required"},
		{name: "number as name", js: `{"snap_name":12}`, wantErr: "parameter snap_name must be a string"},
		{name: "64 characters", js: `{"snap_name":"` + long + `"}`, wantErr: "is 64 characters long; at most 63"},
		{name: "upper case", js: `{"snap_name":"Before-Upgrade"}`, wantErr: `use "before-upgrade"`},
		{name: "underscore", js: `{"snap_name":"before_upgrade"}`, wantErr: "lower-case letters, digits and '-' only"},
		{name: "dot", js: `{"snap_name":"v1.2"}`, wantErr: "lower-case letters, digits and '-' only"},
		{name: "leading dash", js: `{"snap_name":"-x"}`, wantErr: "lower-case letters, digits and '-' only"},
		{name: "slash", js: `{"snap_name":"a/b"}`, wantErr: "lower-case letters, digits and '-' only"},
		{name: "memory true", js: `{"snap_name":"s1","snap_save_memory":true}`, wantErr: "not the guest's memory"},
		{name: "memory not a boolean", js: `{"snap_name":"s1","snap_save_memory":"yes"}`, wantErr: "snap_save_memory must be true or false"},
		{name: "description too long", js: `{"snap_name":"s1","snap_description":"` + strings.Repeat("é", 1025) + `"}`, wantErr: "1025 characters long; at most 1024"},
		{name: "misspelt parameter", js: `{"snap_name":"s1","snap_nmae":"x"}`, wantErr: `unknown parameter "snap_nmae"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := params(t, tt.js).CreateSnapshotParams()
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestSnapshotNameParams(t *testing.T) {
	name, err := params(t, `{"snap_name":"daily-1"}`).SnapshotNameParams()
	require.NoError(t, err)
	assert.Equal(t, "daily-1", name)
	_, err = params(t, `{"snap_name":"daily-1","snap_description":"x"}`).SnapshotNameParams()
	assert.EqualError(t, err, `the action takes only snap_name; unknown parameter "snap_description"`)
	_, err = params(t, `{}`).SnapshotNameParams()
	assert.ErrorContains(t, err, "snap_name is required")
}

func TestNoParams(t *testing.T) {
	assert.NoError(t, params(t, `{}`).NoParams())
	assert.NoError(t, Params(nil).NoParams())
	err := params(t, `{"force":"true","b":"1"}`).NoParams()
	assert.EqualError(t, err, `the action takes no parameters; unknown parameter "b", "force"`)
}

func TestMigrateParams(t *testing.T) {
	tests := []struct{ js, want, wantErr string }{
		{js: `{}`, want: ""},
		{js: `{"target_node":""}`, want: ""},
		{js: `{"target_node":"worker-2.example.internal"}`, want: "worker-2.example.internal"},
		{js: `{"target_node":"Worker_2"}`, wantErr: `parameter target_node "Worker_2" is not a node name`},
		{js: `{"target_node":true}`, wantErr: "target_node must be a string"},
		{js: `{"node":"w2"}`, wantErr: `the action takes only target_node; unknown parameter "node"`},
	}
	for _, tt := range tests {
		t.Run(tt.js, func(t *testing.T) {
			got, err := params(t, tt.js).MigrateParams()
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestDescribeParams(t *testing.T) {
	tests := []struct {
		js      string
		want    int
		wantErr string
	}{
		{js: `{}`, want: DefaultEvents},
		{js: `{"events":5}`, want: 5},
		{js: `{"events":5.0}`, want: 5},
		{js: `{"events":"20"}`, want: 20},
		{js: `{"events":""}`, want: DefaultEvents},
		{js: `{"events":0}`, want: 0},
		{js: `{"events":50}`, want: 50},
		{js: `{"events":51}`, wantErr: "whole number from 0 to 50"},
		{js: `{"events":-1}`, wantErr: "whole number from 0 to 50"},
		{js: `{"events":2.5}`, wantErr: "whole number from 0 to 50"},
		{js: `{"events":"many"}`, wantErr: "whole number from 0 to 50"},
		{js: `{"events":1e300}`, wantErr: "whole number from 0 to 50"},
	}
	for _, tt := range tests {
		t.Run(tt.js, func(t *testing.T) {
			got, err := params(t, tt.js).DescribeParams()
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestSnapshotObjectName(t *testing.T) {
	vm := strings.Repeat("v", 63)
	snap := strings.Repeat("s", MaxSnapshotName)
	name := SnapshotObjectName(vm, snap)
	assert.Empty(t, dns1123Subdomain(name), "the longest names still make an object name")
	assert.Equal(t, "i-2-45-vm-daily", SnapshotObjectName("i-2-45-vm", "daily"))
}

func TestTruncateParam(t *testing.T) {
	assert.Equal(t, "short", truncateParam("short"))
	s := truncateParam(strings.Repeat("é", 100))
	assert.True(t, strings.HasSuffix(s, "..."))
	assert.LessOrEqual(t, len(s), 67)
}
