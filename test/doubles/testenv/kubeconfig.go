package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// WriteKubeconfig writes a kubeconfig for the admin user (group system:masters) to path, for processes that only
// accept a kubeconfig file. The file holds the client certificate inline; it is written with mode 0600.
func (e *Env) WriteKubeconfig(path string) error {
	if err := os.WriteFile(path, e.env.KubeConfig, 0o600); err != nil {
		return fmt.Errorf("testenv: writing the admin kubeconfig: %w", err)
	}
	return nil
}

// ConfigFor provisions a new identity (a client certificate for user in groups) and returns a REST config for it.
// The API server authorizes it with RBAC only: without RoleBindings it may do nothing, which is what RBAC tests want.
func (e *Env) ConfigFor(user string, groups []string) (*rest.Config, error) {
	u, err := e.addUser(user, groups)
	if err != nil {
		return nil, err
	}
	return rest.CopyConfig(u.Config()), nil
}

// KubeconfigFor provisions a new identity like ConfigFor and writes a kubeconfig for it into a directory that Stop
// removes. It returns the file's path.
func (e *Env) KubeconfigFor(user string, groups []string) (string, error) {
	u, err := e.addUser(user, groups)
	if err != nil {
		return "", err
	}
	data, err := u.KubeConfig()
	if err != nil {
		return "", fmt.Errorf("testenv: kubeconfig for user %q: %w", user, err)
	}
	path := filepath.Join(e.dir, e.nextFileName(user))
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return "", fmt.Errorf("testenv: writing the kubeconfig for user %q: %w", user, err)
	}
	return path, nil
}

func (e *Env) addUser(user string, groups []string) (*envtest.AuthenticatedUser, error) {
	if user == "" {
		return nil, fmt.Errorf("testenv: empty user name")
	}
	// The same QPS as the admin config: the test API server is not worth protecting.
	base := &rest.Config{QPS: e.Config.QPS, Burst: e.Config.Burst}
	u, err := e.env.AddUser(envtest.User{Name: user, Groups: groups}, base)
	if err != nil {
		return nil, fmt.Errorf("testenv: adding user %q: %w", user, err)
	}
	return u, nil
}

// nextFileName gives each kubeconfig its own file, even for the same user name (e.g. system:serviceaccount:ns:sa).
func (e *Env) nextFileName(user string) string {
	e.mu.Lock()
	e.files++
	n := e.files
	e.mu.Unlock()
	safe := strings.Map(func(r rune) rune {
		if r == '-' || r == '_' || r == '.' || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z') || ('0' <= r && r <= '9') {
			return r
		}
		return '_'
	}, user)
	return fmt.Sprintf("%03d-%s.kubeconfig", n, safe)
}
