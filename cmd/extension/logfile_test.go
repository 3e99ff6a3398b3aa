//go:build unix

package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// The logger writes nothing through a symbolic link or into a FIFO with a reader: whoever can write the log's
// directory cannot make the extension write to a file, or a process, of their choosing.
func TestLoggerWritesOnlyToARegularFile(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	require.NoError(t, os.WriteFile(target, nil, 0o600))
	link := filepath.Join(dir, "link.log")
	require.NoError(t, os.Symlink(target, link))
	fifo := filepath.Join(dir, "fifo.log")
	require.NoError(t, unix.Mkfifo(fifo, 0o600))
	// A reader on the FIFO, so that a write-only open of it would succeed rather than fail.
	reader, err := os.OpenFile(fifo, os.O_RDONLY|unix.O_NONBLOCK, 0)
	require.NoError(t, err)
	t.Cleanup(func() { _ = reader.Close() })

	tests := []struct {
		name string
		path string
		read func() []byte
	}{
		{name: "symbolic link", path: link, read: func() []byte {
			data, err := os.ReadFile(target)
			require.NoError(t, err)
			return data
		}},
		{name: "FIFO", path: fifo, read: func() []byte {
			buf := make([]byte, 4096)
			require.NoError(t, reader.SetReadDeadline(time.Now().Add(100*time.Millisecond)))
			n, _ := reader.Read(buf)
			return buf[:n]
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logger(tt.path).Info("planted")
			assert.Empty(t, tt.read())
		})
	}
}
