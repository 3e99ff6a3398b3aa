package vncpeer

import (
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestPasswdFile(t *testing.T) {
	tests := []struct {
		name     string
		password string
		want     string // hex; "" skips
		same     string // another password with the same file
	}{
		// The classic vector, as kube/console's TestVNCAuthResponse also derives it.
		{name: "vncpasswd of password", password: "password", want: "dbd83cfd727a1458", same: "password9"},
		{name: "only 8 bytes count", password: "abcdefgh", same: "abcdefghIGNORED"},
		{name: "short passwords are zero-padded", password: "abc", same: "abc\x00\x00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := PasswdFile(tt.password)
			assert.Len(t, got, 8)
			if tt.want != "" {
				assert.Equal(t, tt.want, hex.EncodeToString(got))
			}
			assert.Equal(t, got, PasswdFile(tt.same))
		})
	}
}
