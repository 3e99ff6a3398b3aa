package cloudstacksim

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestPrepare(t *testing.T) {
	tests := []struct {
		name   string
		run    Result
		ok     bool
		logged string
		patch  string
	}{
		{"an empty answer", Result{}, true, "", ""},
		{"a merge patch", Result{Output: `{"details":{"External:a":"b"}}`}, true, "", `{"details":{"External:a":"b"}}`},
		{"exit 1", Result{ExitCode: 1, Output: `{"status":"error","message":"prepare: detail image: not set"}`}, false,
			`Unexpected answer received for PrepareExternalProvisioningCommand: [result: false, details: Exit code: 1, Output: {"status":"error","message":"prepare: detail image: not set"}]`, ""},
		{"not JSON", Result{Output: "ready"}, false,
			"Unexpected answer received for PrepareExternalProvisioningCommand: [result: false, details: Failed to parse VM]", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := Prepare(tt.run)
			assert.Equal(t, tt.ok, o.OK)
			assert.Equal(t, tt.logged, o.Logged)
			assert.Equal(t, tt.patch, string(o.Patch))
			if !tt.ok {
				assert.Equal(t, "Failed to prepare VM", o.UserError, "the user never sees the extension's answer")
			}
		})
	}
}
