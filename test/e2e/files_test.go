package e2e

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The files the extension opens on the management server (issue 12): driven through CloudStack's stand-in, with
// the paths an operator's details name.

// A log_file that is a symbolic link is not followed: the call is answered as usual, without a log, and the
// link's target stays untouched.
func TestLogFileSymlinkNotFollowed(t *testing.T) {
	namespace(t, "e2e-other")
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	require.NoError(t, os.WriteFile(target, nil, 0o600))
	link := filepath.Join(dir, "extension.log")
	require.NoError(t, os.Symlink(target, link))
	h := host("e2e-other")
	h.Extension = map[string]string{"log_file": link}

	res := call(t, h, "status", instance(map[string]string{"image": "quay.io/containerdisks/fedora:43"}))
	assert.False(t, res.TimedOut)
	data, err := os.ReadFile(target)
	require.NoError(t, err)
	assert.Empty(t, string(data), "nothing written through the link")
}

// A kubeconfig in a directory that other users may write is refused, naming the directory: whoever can write it
// could replace the kubeconfig and point the extension, and its credentials, at a server of their choosing.
func TestKubeconfigInAnOpenDirectoryRefused(t *testing.T) {
	namespace(t, "e2e-other")
	open := filepath.Join(t.TempDir(), "open")
	require.NoError(t, os.Mkdir(open, 0o700))
	data, err := os.ReadFile(s.kubeconfig)
	require.NoError(t, err)
	kubeconfig := filepath.Join(open, "kubeconfig")
	require.NoError(t, os.WriteFile(kubeconfig, data, 0o600))
	require.NoError(t, os.Chmod(open, 0o777))
	h := host("e2e-other")
	h.Host["kubeconfig"] = kubeconfig

	res := call(t, h, "status", instance(map[string]string{"image": "quay.io/containerdisks/fedora:43"}))
	requireFailure(t, res, "kubeconfig directory "+open+" is writable by other users")
}
