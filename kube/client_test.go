package kube

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

const kubeconfigTemplate = `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: https://127.0.0.1:6443
    %s
users:
- name: u
  user: {token: s3cr3t-token-value}
contexts:
- name: ctx
  context: {cluster: c, user: u}
current-context: ctx
`

func TestRESTConfigChecksTheKubeconfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, tls string, mode os.FileMode) string {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, []byte(fmt.Sprintf(kubeconfigTemplate, tls)), 0o600))
		require.NoError(t, os.Chmod(path, mode))
		return path
	}
	testCA := base64.StdEncoding.EncodeToString([]byte("a CA certificate"))
	verified := write("verified", "certificate-authority-data: "+testCA, 0o600)
	insecure := write("insecure", "insecure-skip-tls-verify: true", 0o600)
	worldWritable := write("world-writable", "certificate-authority-data: "+testCA, 0o666)
	groupWritable := write("group-writable", "certificate-authority-data: "+testCA, 0o620)
	link := filepath.Join(dir, "link")
	require.NoError(t, os.Symlink(verified, link))
	tests := []struct {
		name     string
		conn     translate.Connection
		wantErr  string
		insecure bool
	}{
		{name: "a private kubeconfig that verifies TLS", conn: translate.Connection{Kubeconfig: verified}},
		{name: "missing", conn: translate.Connection{Kubeconfig: filepath.Join(dir, "nope")}, wantErr: "does not exist on this management server"},
		{name: "a directory", conn: translate.Connection{Kubeconfig: dir}, wantErr: "is not a regular file"},
		{name: "writable by every user", conn: translate.Connection{Kubeconfig: worldWritable}, wantErr: "writable by other users (mode 0666)"},
		{name: "writable by the group", conn: translate.Connection{Kubeconfig: groupWritable}, wantErr: "writable by other users (mode 0620)"},
		{name: "a symbolic link", conn: translate.Connection{Kubeconfig: link}, wantErr: "is not a regular file"},
		{name: "relative", conn: translate.Connection{Kubeconfig: "kubeconfig"}, wantErr: "not an absolute path"},
		{name: "TLS verification off, not accepted", conn: translate.Connection{Kubeconfig: insecure}, wantErr: "turns TLS verification off"},
		{name: "TLS verification off, accepted by the detail", conn: translate.Connection{Kubeconfig: insecure, InsecureTLS: true}, insecure: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := RESTConfig(tt.conn)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				assert.NotContains(t, err.Error(), "s3cr3t", "no credential in the message")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.insecure, cfg.Insecure)
			assert.Equal(t, []string{"http/1.1"}, cfg.NextProtos)
		})
	}
}
