// Package fullfs gives tests a file system that fills up: a small tmpfs, mounted for the test and filled on
// demand, so that what a full disk does to the extension's files can be tested. Only root may mount; tests skip
// elsewhere (CI runs as root).
package fullfs

import (
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/require"
)

// Mount mounts a tmpfs of size (like "128k") on a new temporary directory, unmounted when the test ends, and
// returns the directory.
func Mount(t testing.TB, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a file system to fill needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", dir).Run() })
	return dir
}

// ReadOnly remounts the file system Mount mounted on dir read-only, as the kernel does after an error.
func ReadOnly(t testing.TB, dir string) {
	t.Helper()
	out, err := exec.Command("mount", "-o", "remount,ro", dir).CombinedOutput()
	require.NoError(t, err, "%s", out)
}

// Fill writes path until its file system has no room left.
func Fill(t testing.TB, path string) {
	t.Helper()
	f, err := os.Create(path)
	require.NoError(t, err)
	defer f.Close()
	block := make([]byte, 4096)
	for {
		if _, err := f.Write(block); err != nil {
			require.ErrorContains(t, err, "no space left")
			return
		}
	}
}
