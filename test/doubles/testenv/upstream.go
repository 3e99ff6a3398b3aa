package testenv

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// upstreamDir is the test-only nested module that builds KubeVirt's own code (test/upstream/go.mod).
const upstreamDir = "test/upstream"

// upstreamEnv names, for each command, a variable that may point at a prebuilt binary (CI can build once).
func upstreamEnv(name string) string {
	return "UPSTREAM_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// UpstreamBinary returns the path of command name of the test/upstream module (KubeVirt's own code, built as a
// binary because it cannot link into this module), building it when its sources changed. Binaries are cached
// by a hash of the module's files in the user's cache directory; a lock keeps parallel test packages from
// building the same binary twice. A cold build takes about 3 minutes on 2 cores.
func UpstreamBinary(ctx context.Context, name string) (string, error) {
	if p := os.Getenv(upstreamEnv(name)); p != "" {
		return p, nil
	}
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	mod := filepath.Join(root, upstreamDir)
	sum, err := hashTree(mod)
	if err != nil {
		return "", fmt.Errorf("testenv: hashing %s: %w", mod, err)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("testenv: no cache directory for the upstream binaries: %w", err)
	}
	dir := filepath.Join(cache, "cloudstack-kubevirt", "upstream")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("testenv: %w", err)
	}
	bin := filepath.Join(dir, name+"-"+sum[:16])
	if isExecutable(bin) {
		return bin, nil
	}
	unlock, err := lockFile(ctx, filepath.Join(dir, name+".lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if isExecutable(bin) { // built by another process while we waited
		return bin, nil
	}
	return bin, buildUpstream(ctx, mod, name, bin)
}

func buildUpstream(ctx context.Context, mod, name, bin string) error {
	fmt.Fprintf(os.Stderr, "testenv: building %s from %s (KubeVirt's own code; minutes the first time)\n", name, upstreamDir)
	tmp := bin + ".tmp"
	var stderr bytes.Buffer
	// No -trimpath: the build then shares its cache with `go vet` and `go test` of the module (hack/test.sh), so a
	// fresh machine compiles KubeVirt once, not twice.
	cmd := exec.CommandContext(ctx, "go", "build", "-o", tmp, "./cmd/"+name)
	cmd.Dir = mod
	// KubeVirt v1.8.0 pulls a github.com/rhobs module the checksum database does not list.
	cmd.Env = append(os.Environ(), "GONOSUMDB=github.com/rhobs", "GOWORK=off")
	cmd.Stdout = io.Discard
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("testenv: building %s in %s: %w: %s", name, mod, err, tail(stderr.String(), 3000))
	}
	if err := os.Rename(tmp, bin); err != nil {
		return fmt.Errorf("testenv: %w", err)
	}
	pruneUpstream(filepath.Dir(bin), name, bin)
	return nil
}

// pruneUpstream removes the binaries of command name built from other versions of the module more than a day ago
// (each is about 70 MB). Younger ones stay: another checkout of the repository may be using them.
func pruneUpstream(dir, name, keep string) {
	old, _ := filepath.Glob(filepath.Join(dir, name+"-*"))
	for _, p := range old {
		if p == keep || strings.HasSuffix(p, ".tmp") {
			continue
		}
		if fi, err := os.Stat(p); err == nil && time.Since(fi.ModTime()) > 24*time.Hour {
			_ = os.Remove(p)
		}
	}
}

// hashTree hashes what go build reads under dir (go.mod, go.sum and the Go files other than tests: names and
// contents), in a stable order.
func hashTree(dir string) (string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		base := filepath.Base(p)
		if d.Type().IsRegular() && (base == "go.mod" || base == "go.sum" ||
			strings.HasSuffix(base, ".go") && !strings.HasSuffix(base, "_test.go")) {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	sort.Strings(files)
	h := sha256.New()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		rel, _ := filepath.Rel(dir, f)
		fmt.Fprintf(h, "%s\x00%d\x00", rel, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// lockFile takes an exclusive flock on path, polling so that it can give up when ctx ends.
func lockFile(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("testenv: %w", err)
	}
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil // closing releases the lock
		}
		if err != unix.EWOULDBLOCK {
			f.Close()
			return nil, fmt.Errorf("testenv: locking %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("testenv: waiting for %s (another process is building): %w", path, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
