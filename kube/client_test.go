//go:build unix

package kube

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

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
	relativeCA := write("relative-ca", "certificate-authority: ca.crt", 0o600)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "ca.crt"), []byte("a CA certificate"), 0o600))
	link := filepath.Join(dir, "link")
	require.NoError(t, os.Symlink(verified, link))
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, unix.Mkfifo(fifo, 0o600))
	openDir, inOpenDir := kubeconfigIn(t, dir, "open", 0o777)
	groupDir, inGroupDir := kubeconfigIn(t, dir, "group", 0o770)
	_, inStickyDir := kubeconfigIn(t, dir, "sticky", 0o777|os.ModeSticky)
	tests := []struct {
		name     string
		conn     translate.Connection
		wantErr  string
		insecure bool
		caFile   string
	}{
		{name: "a private kubeconfig that verifies TLS", conn: translate.Connection{Kubeconfig: verified}},
		{name: "missing", conn: translate.Connection{Kubeconfig: filepath.Join(dir, "nope")}, wantErr: "does not exist on this management server"},
		{name: "a directory", conn: translate.Connection{Kubeconfig: dir}, wantErr: "is not a regular file"},
		{name: "writable by every user", conn: translate.Connection{Kubeconfig: worldWritable}, wantErr: "writable by other users (mode 0666)"},
		{name: "writable by the group", conn: translate.Connection{Kubeconfig: groupWritable}, wantErr: "writable by other users (mode 0620)"},
		{name: "a symbolic link", conn: translate.Connection{Kubeconfig: link}, wantErr: "is a symbolic link: name the file itself"},
		{name: "a FIFO", conn: translate.Connection{Kubeconfig: fifo}, wantErr: "is not a regular file (p---------)"},
		{name: "in a directory others may write", conn: translate.Connection{Kubeconfig: inOpenDir}, wantErr: "directory " + openDir + " is writable by other users (mode 0777)"},
		{name: "in a directory the group may write", conn: translate.Connection{Kubeconfig: inGroupDir}, wantErr: "directory " + groupDir + " is writable by other users (mode 0770)"},
		{name: "in a sticky directory others may write, as /tmp", conn: translate.Connection{Kubeconfig: inStickyDir}},
		{name: "relative certificate paths, from the kubeconfig's directory", conn: translate.Connection{Kubeconfig: relativeCA}, caFile: filepath.Join(dir, "ca.crt")},
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
			assert.Equal(t, tt.caFile, cfg.CAFile)
		})
	}
}

// kubeconfigIn writes a kubeconfig into a new directory of dir with mode, and returns both paths.
func kubeconfigIn(t *testing.T, dir, name string, mode os.FileMode) (sub, kubeconfig string) {
	t.Helper()
	sub = filepath.Join(dir, name)
	require.NoError(t, os.Mkdir(sub, 0o700))
	kubeconfig = filepath.Join(sub, "kubeconfig")
	ca := base64.StdEncoding.EncodeToString([]byte("a CA certificate"))
	require.NoError(t, os.WriteFile(kubeconfig, []byte(fmt.Sprintf(kubeconfigTemplate, "certificate-authority-data: "+ca)), 0o600))
	require.NoError(t, os.Chmod(sub, mode))
	return sub, kubeconfig
}

// A kubeconfig, or its directory, owned by another user who is not root is refused: that user could rewrite or
// replace it. As root the test hands them to another uid; otherwise it tells readKubeconfig to expect another.
func TestReadKubeconfigChecksTheOwner(t *testing.T) {
	const stranger = 4242
	uid := os.Geteuid()
	if uid != 0 {
		uid++ // the files below are owned by this process's user, a stranger to uid
	}
	dir := t.TempDir()
	ownFile, foreignFile := filepath.Join(dir, "own"), filepath.Join(dir, "foreign")
	for _, p := range []string{ownFile, foreignFile} {
		require.NoError(t, os.WriteFile(p, []byte("apiVersion: v1\nkind: Config\n"), 0o600))
	}
	foreignDir, inForeignDir := kubeconfigIn(t, dir, "foreign-dir", 0o755)
	if os.Geteuid() == 0 {
		require.NoError(t, os.Chown(foreignFile, stranger, stranger))
		require.NoError(t, os.Chown(foreignDir, stranger, stranger))
	}
	tests := []struct {
		name, path, wantErr string
		rootOnly            bool
	}{
		{name: "owned by another user", path: foreignFile, wantErr: "is owned by uid"},
		{name: "in a directory of another user", path: inForeignDir, wantErr: "kubeconfig directory " + foreignDir + " is owned by uid", rootOnly: true},
		{name: "owned by the extension's user, or root", path: ownFile, rootOnly: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.rootOnly && os.Geteuid() != 0 {
				t.Skip("needs root to hand a file to another user")
			}
			_, err := readKubeconfig(tt.path, uid)
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.wantErr)
			assert.Contains(t, err.Error(), "chown")
		})
	}
}
