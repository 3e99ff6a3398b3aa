// Package vncpeer drives REAL VNC peers from Debian for tests: QEMU's VNC server (qemu-system-x86, diskless, so
// SeaBIOS draws the screen) and the vncsnapshot client (from TightVNC). It is not a test double: the console
// tests use it to check the gateway against the programs CloudStack's console proxy and virt-launcher speak to.
package vncpeer

import (
	"bytes"
	"context"
	"crypto/des"
	"errors"
	"image"
	"image/jpeg"
	"math/bits"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Peers are the paths of the two programs.
type Peers struct {
	QEMU        string // qemu-system-x86_64
	VNCSnapshot string // vncsnapshot
}

// Require finds the peers on PATH. Without them the test skips, unless CONSOLE_PEERS=required (hack/test.sh
// installs them as root and then sets it), when it fails.
func Require(t testing.TB) Peers {
	t.Helper()
	qemu, err1 := exec.LookPath("qemu-system-x86_64")
	vncsnapshot, err2 := exec.LookPath("vncsnapshot")
	if err := errors.Join(err1, err2); err != nil {
		if os.Getenv("CONSOLE_PEERS") == "required" {
			t.Fatalf("the console tests need QEMU and vncsnapshot: %v", err)
		}
		t.Skipf("no real VNC peers (apt-get install qemu-system-x86 vncsnapshot; hack/test.sh does as root): %v", err)
	}
	return Peers{QEMU: qemu, VNCSnapshot: vncsnapshot}
}

// TempDir is a temporary directory, removed when the test ends, with a path short enough for unix sockets
// (~100 bytes), which t.TempDir's may not be.
func TempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "vncpeer-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// StartQEMU runs a diskless QEMU whose VNC server listens, without a password, on a unix socket in dir (as in
// virt-launcher), and returns the socket's path once it exists. QEMU is killed when the test ends.
func (p Peers) StartQEMU(t testing.TB, dir string) (socket string) {
	t.Helper()
	socket = filepath.Join(dir, "vnc.sock")
	cmd := exec.Command(p.QEMU, "-nodefaults", "-vga", "std", "-display", "none", "-vnc", "unix:"+socket, "-m", "32", "-accel", "tcg")
	var out SyncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	require.Eventually(t, func() bool { _, err := os.Stat(socket); return err == nil }, 10*time.Second, 20*time.Millisecond, "QEMU: %s", &out)
	return socket
}

// Snapshot connects vncsnapshot to host:port with password, as CloudStack's console proxy would, and returns
// the screen. When vncsnapshot fails, err says so and output is what it printed (such as "VNC authentication
// failed"); a screenshot that is not a JPEG fails the test.
func (p Peers) Snapshot(t testing.TB, host, port, password string) (img image.Image, output string, err error) {
	t.Helper()
	dir := t.TempDir()
	passwd, screen := filepath.Join(dir, "passwd"), filepath.Join(dir, "screen.jpg")
	require.NoError(t, os.WriteFile(passwd, PasswdFile(password), 0o600))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, p.VNCSnapshot, "-passwd", passwd, "-quality", "70", host+"::"+port, screen).CombinedOutput()
	t.Logf("vncsnapshot -passwd passwd -quality 70 %s::%s screen.jpg\n%s", host, port, out)
	if err != nil {
		return nil, string(out), err
	}
	data, err := os.ReadFile(screen)
	require.NoError(t, err)
	img, err = jpeg.Decode(bytes.NewReader(data))
	require.NoError(t, err, "vncsnapshot saved a JPEG")
	return img, string(out), nil
}

// vncFixedKey is the DES key every vncpasswd file is encrypted under.
var vncFixedKey = [8]byte{23, 82, 107, 6, 35, 78, 88, 7}

// PasswdFile is a password in the format of vncpasswd's files, which vncsnapshot -passwd reads: its first 8
// bytes (zero-padded) DES-encrypted under VNC's fixed key, each key byte's bits mirrored as d3des does.
func PasswdFile(password string) []byte {
	var key [8]byte
	for i, b := range vncFixedKey {
		key[i] = bits.Reverse8(b)
	}
	c, err := des.NewCipher(key[:])
	if err != nil {
		panic(err) // unreachable: the key is 8 bytes
	}
	block := make([]byte, 8)
	copy(block, password)
	c.Encrypt(block, block)
	return block
}

// SyncBuffer collects a process's (or a logger's) output while the test reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
