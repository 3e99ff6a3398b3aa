package main

import (
	"encoding/json"
	"os"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestActionKey(t *testing.T) {
	tests := []struct{ action, want string }{
		{"ListSnapshots", "listsnapshots"},
		{"listsnapshots", "listsnapshots"},
		{"LISTSNAPSHOTS", "listsnapshots"},
		{"Describe", "describe"},
		{"delete", "delete"},
		{"Delete", "Delete"}, // lifecycle actions are not folded: no custom action reaches them
		{"check", "check"},
		{"", ""},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, actionKey(tt.action), tt.action)
	}
	for _, name := range customActions {
		assert.NotNil(t, actions[actionKey(name)], "%s is in the actions map", name)
	}
}

// TestRegisteredCustomActions: hack/register.sh registers exactly the custom actions the extension implements.
func TestRegisteredCustomActions(t *testing.T) {
	script, err := os.ReadFile("../../hack/register.sh")
	require.NoError(t, err)
	var registered []string
	for _, m := range regexp.MustCompile(`(?m)^add_action (\S+) `).FindAllStringSubmatch(string(script), -1) {
		registered = append(registered, m[1])
	}
	assert.Equal(t, customActions, registered)
}

func TestEmptyTable(t *testing.T) {
	data, err := json.Marshal(table[snapshotRow](nil))
	require.NoError(t, err)
	assert.JSONEq(t, `{"status":"success","printmessage":"true","message":[]}`, string(data))
}
