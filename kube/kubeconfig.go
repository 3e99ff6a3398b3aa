package kube

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

// maxKubeconfig is far above any kubeconfig (a few KiB, certificates inline), and keeps a runaway file from
// costing the management server memory.
const maxKubeconfig = 4 << 20

// readKubeconfig reads the kubeconfig at path and refuses one that anyone but uid (the extension's user) or root
// could have written: whoever can write it can point the extension, and its credentials, at a server of their
// choosing. The file is opened once, without following a symbolic link, and checked on the open descriptor: a
// regular file, owned by uid or root, not writable by group or others. Its directory must not let others replace
// it: owned by uid or root, and not writable by group or others unless sticky (as /tmp is).
func readKubeconfig(path string, uid int) ([]byte, error) {
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("kubeconfig %s is not an absolute path", path)
	}
	f, err := openNoFollow(path)
	if err != nil {
		return nil, kubeconfigOpenError(path, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	if err := checkKubeconfigFile(path, info, uid); err != nil {
		return nil, err
	}
	if err := checkKubeconfigDir(filepath.Dir(path), uid); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKubeconfig+1))
	if err != nil {
		return nil, fmt.Errorf("reading kubeconfig %s: %w", path, err)
	}
	if len(data) > maxKubeconfig {
		return nil, fmt.Errorf("kubeconfig %s is larger than %d MiB: not a kubeconfig", path, maxKubeconfig>>20)
	}
	return data, nil
}

func kubeconfigOpenError(path string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("kubeconfig %s does not exist on this management server: copy it to every management server", path)
	case isSymlinkRefused(err):
		return fmt.Errorf("kubeconfig %s is a symbolic link: name the file itself in the detail %s", path, translate.DetailKubeconfig)
	default:
		return fmt.Errorf("kubeconfig %s cannot be read by the management server's user: %w", path, err)
	}
}

func checkKubeconfigFile(path string, info fs.FileInfo, uid int) error {
	if !info.Mode().IsRegular() {
		return fmt.Errorf("kubeconfig %s is not a regular file (%s)", path, info.Mode().Type())
	}
	if info.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("kubeconfig %s is writable by other users (mode %04o): chmod go-w it (0600, owned by the cloud user, is best)", path, info.Mode().Perm())
	}
	if owner, ok := fileOwner(info); ok && owner != uid && owner != 0 {
		return fmt.Errorf("kubeconfig %s is owned by uid %d, neither the management server's user (uid %d) nor root, who could rewrite it: chown it to the cloud user", path, owner, uid)
	}
	return nil
}

func checkKubeconfigDir(dir string, uid int) error {
	info, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("kubeconfig directory %s: %w", dir, err)
	}
	if info.Mode().Perm()&0o022 != 0 && info.Mode()&fs.ModeSticky == 0 {
		return fmt.Errorf("kubeconfig directory %s is writable by other users (mode %04o), who could replace the kubeconfig: chmod go-w it (0750, as hack/install.sh makes /etc/cloudstack/kubevirt, is best)", dir, info.Mode().Perm())
	}
	if owner, ok := fileOwner(info); ok && owner != uid && owner != 0 {
		return fmt.Errorf("kubeconfig directory %s is owned by uid %d, neither the management server's user (uid %d) nor root, who could replace the kubeconfig: chown it to root or the cloud user", dir, owner, uid)
	}
	return nil
}
