// Package release tests the operator's path onto a management server: the release build and the install script.
package release

import (
	"debug/elf"
	"encoding/json"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func run(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = repoRoot()
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s %v:\n%s", name, args, out)
	return string(out)
}

// TestDistAndInstall builds the release as hack/dist.sh does, checks every archive and its checksum, and
// installs the amd64 build into a temporary root twice.
func TestDistAndInstall(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiles two binaries")
	}
	dist := t.TempDir()
	run(t, []string{"VERSION=v0.0.0-test", "DIST_DIR=" + dist}, "hack/dist.sh")
	run(t, nil, "sh", "-c", "cd "+dist+" && sha256sum -c SHA256SUMS")

	extracted := t.TempDir()
	for arch, machine := range map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64} {
		archive := filepath.Join(dist, "cloudstack-kubevirt-v0.0.0-test-linux-"+arch+".tar.gz")
		listing := run(t, nil, "tar", "-tzf", archive)
		for _, f := range []string{"kubevirt-extension", "kubevirt-extension-core", "install.sh", "README.md", "docs/configuration.md", "docs/install.md"} {
			assert.Contains(t, listing, "cloudstack-kubevirt-v0.0.0-test-linux-"+arch+"/"+f)
		}
		run(t, nil, "tar", "-xzf", archive, "-C", extracted)
		for _, f := range []string{"kubevirt-extension", "kubevirt-extension-core"} {
			bin, err := elf.Open(filepath.Join(extracted, "cloudstack-kubevirt-v0.0.0-test-linux-"+arch, f))
			require.NoError(t, err)
			assert.Equal(t, machine, bin.Machine, arch)
			assert.Nil(t, bin.Section(".interp"), "%s %s: static, no dynamic loader", arch, f)
			require.NoError(t, bin.Close())
		}
	}

	pkg := filepath.Join(extracted, "cloudstack-kubevirt-v0.0.0-test-linux-amd64")
	var v struct{ Status, Version, Commit string }
	require.NoError(t, json.Unmarshal([]byte(run(t, nil, filepath.Join(pkg, "kubevirt-extension"), "version")), &v))
	assert.Equal(t, "v0.0.0-test", v.Version)
	assert.Equal(t, strings.TrimSpace(run(t, nil, "git", "rev-parse", "HEAD")), v.Commit)

	me, err := user.Current()
	require.NoError(t, err)
	group, err := user.LookupGroupId(me.Gid)
	require.NoError(t, err)
	root := t.TempDir()
	env := []string{"INSTALL_OWNER=" + me.Username + ":" + group.Name}
	first := run(t, env, filepath.Join(pkg, "install.sh"), "--root", root, "--name", "KubeVirt Prod")
	assert.Contains(t, first, "install: installed")
	second := run(t, env, filepath.Join(pkg, "install.sh"), "--root", root, "--name", "KubeVirt Prod")
	assert.Contains(t, second, "is already this build", "idempotent")

	extDir := filepath.Join(root, "usr/share/cloudstack-management/extensions/kubevirt_prod") // CloudStack's directory name
	entries, err := os.ReadDir(extDir)
	require.NoError(t, err)
	require.Len(t, entries, 2, "only the launcher and the extension: CloudStack checksums every file there")
	for _, f := range []string{"kubevirt-extension", "kubevirt-extension-core"} {
		info, err := os.Stat(filepath.Join(extDir, f))
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o755), info.Mode().Perm())
	}
	conf, err := os.Stat(filepath.Join(root, "etc/cloudstack/kubevirt"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o750), conf.Mode().Perm(), "per-server configuration outside the extension directory")

	// What CloudStack runs is the launcher, which hands what it does not answer to the extension beside it.
	installed := filepath.Join(extDir, "kubevirt-extension")
	var installedVersion struct{ Version string }
	require.NoError(t, json.Unmarshal([]byte(run(t, nil, installed, "version")), &installedVersion))
	assert.Equal(t, "v0.0.0-test", installedVersion.Version)

	// Not a management server: no cloud user.
	cmd := exec.Command(filepath.Join(pkg, "install.sh"), "--root", t.TempDir())
	cmd.Env = append(os.Environ(), "INSTALL_OWNER=no-such-user-kv:no-such-user-kv")
	out, err := cmd.CombinedOutput()
	require.Error(t, err)
	assert.Contains(t, string(out), "user no-such-user-kv does not exist")
}
