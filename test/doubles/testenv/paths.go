package testenv

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

const (
	modulePath = "github.com/cloudstack-kubevirt/cloudstack-kubevirt"
	// assetsScript is the repo's script that prints a directory holding kube-apiserver and etcd.
	assetsScript = "hack/envtest-assets.sh"
	// assetsEnv is the variable envtest and setup-envtest use for that directory.
	assetsEnv = "KUBEBUILDER_ASSETS"
)

// repoRoot finds the module root: first from this file's location, which works for every `go test` of the
// module; then, for binaries built with -trimpath (whose file names are not absolute), by walking up from the
// working directory.
func repoRoot() (string, error) {
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		if root := filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", "..")); isRepoRoot(root) {
			return root, nil
		}
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("testenv: finding the repository root: %w", err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if isRepoRoot(dir) {
			return dir, nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("testenv: no go.mod of module %s above %s", modulePath, wd)
		}
	}
}

func isRepoRoot(dir string) bool {
	f, err := os.Open(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
			return strings.Trim(strings.TrimSpace(rest), `"`) == modulePath
		}
	}
	return false
}

// assetsDir returns a directory holding kube-apiserver and etcd: dir if given, else $KUBEBUILDER_ASSETS, else
// what the repo's script prints (it may build the binaries the first time, which takes minutes).
func assetsDir(ctx context.Context, root, dir string) (string, error) {
	if dir != "" {
		if err := hasBinaries(dir); err != nil {
			return "", fmt.Errorf("testenv: Options.AssetsDir: %w", err)
		}
		return dir, nil
	}
	if dir := os.Getenv(assetsEnv); dir != "" && hasBinaries(dir) == nil {
		return dir, nil
	}
	if root == "" {
		return "", fmt.Errorf("testenv: %s is not set and the repository (and its %s) was not found", assetsEnv, assetsScript)
	}
	dir, err := runAssetsScript(ctx, root)
	if err != nil {
		return "", fmt.Errorf("testenv: no envtest binaries: set %s to a directory holding kube-apiserver and etcd, "+
			"or fix %s: %w", assetsEnv, filepath.Join(root, assetsScript), err)
	}
	return dir, nil
}

// runAssetsScript runs hack/envtest-assets.sh. Its progress (stderr) is shown, because a first run builds the
// binaries for several minutes; its stdout is only the directory.
func runAssetsScript(ctx context.Context, root string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, filepath.Join(root, assetsScript))
	cmd.Dir = root
	cmd.Stdout = &stdout
	cmd.Stderr = io.MultiWriter(os.Stderr, &stderr)
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s: %w: %s", assetsScript, err, tail(stderr.String(), 2000))
	}
	dir := strings.TrimSpace(stdout.String())
	if i := strings.LastIndexByte(dir, '\n'); i >= 0 {
		dir = strings.TrimSpace(dir[i+1:])
	}
	if err := hasBinaries(dir); err != nil {
		return "", fmt.Errorf("%s printed %q: %w", assetsScript, dir, err)
	}
	return dir, nil
}

func hasBinaries(dir string) error {
	var errs []error
	for _, name := range []string{"kube-apiserver", "etcd"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		switch {
		case err != nil:
			errs = append(errs, err)
		case fi.IsDir() || fi.Mode()&0o111 == 0:
			errs = append(errs, fmt.Errorf("%s is not an executable file", filepath.Join(dir, name)))
		}
	}
	return errors.Join(errs...)
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
