//go:build unix

package logfile

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "existing.log")
	require.NoError(t, os.WriteFile(existing, []byte("earlier\n"), 0o640))
	target := filepath.Join(dir, "target")
	require.NoError(t, os.WriteFile(target, nil, 0o600))
	link := filepath.Join(dir, "link.log")
	require.NoError(t, os.Symlink(target, link))
	fifo := filepath.Join(dir, "fifo.log")
	require.NoError(t, unix.Mkfifo(fifo, 0o600))
	tests := []struct {
		name    string
		path    string
		wantErr string
	}{
		{name: "a new file", path: filepath.Join(dir, "new.log")},
		{name: "an existing file", path: existing},
		{name: "a symbolic link", path: link, wantErr: "is a symbolic link"},
		{name: "a FIFO without a reader", path: fifo, wantErr: "opening the log file"},
		{name: "a directory", path: dir, wantErr: "opening the log file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Open(tt.path)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			_, err = f.WriteString("line\n")
			require.NoError(t, err)
			require.NoError(t, f.Close())
		})
	}
	data, err := os.ReadFile(existing)
	require.NoError(t, err)
	assert.Equal(t, "earlier\nline\n", string(data), "appended")
}
