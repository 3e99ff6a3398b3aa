package main

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFind(t *testing.T) {
	tests := []struct{ action, want string }{
		{"ListSnapshots", "ListSnapshots"},
		{"listsnapshots", "ListSnapshots"},
		{"LISTSNAPSHOTS", "ListSnapshots"},
		{"Describe", "Describe"},
		{"delete", "delete"},
		{"Delete", ""}, // lifecycle actions are not folded: no custom action reaches them
		{"check", "check"},
		{"Check", ""},
		{"", ""},
	}
	for _, tt := range tests {
		a, ok := find(catalog(), tt.action)
		assert.Equal(t, tt.want != "", ok, tt.action)
		assert.Equal(t, tt.want, a.Name, tt.action)
	}
}

func TestEmptyTable(t *testing.T) {
	data, err := json.Marshal(table[snapshotRow](nil))
	require.NoError(t, err)
	assert.JSONEq(t, `{"status":"success","printmessage":"true","message":[]}`, string(data))
}
