package kubevirtsim

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/testenv"
)

const (
	// controllerCommand is KubeVirt's own VM controller, built from test/upstream/cmd/kubevirt-controller.
	controllerCommand = "kubevirt-controller"
	// controllerLogEnv names a file that receives the controller's log (KubeVirt's JSON lines); "-" is stderr.
	// Without it only the end of the log is kept, for the error that reports a failed start.
	controllerLogEnv = "KUBEVIRTSIM_CONTROLLER_LOG"
	// controllerReadyTimeout bounds the wait for the controller's caches; the binary gives up on its own after
	// two minutes when a CRD it watches is missing.
	controllerReadyTimeout = 3 * time.Minute
	// controllerStopTimeout is how long a stopped controller may take to exit before it is killed.
	controllerStopTimeout = 10 * time.Second
)

// controllers holds the running VM controllers, one per API server. Two would both act on every VM (KubeVirt's
// controller watches all namespaces), so simulators of the same API server share one, and the last to stop
// stops it.
var controllers = struct {
	mu     sync.Mutex
	byHost map[string]*sharedController
}{byHost: map[string]*sharedController{}}

type sharedController struct {
	refs int
	proc *controllerProcess
}

// acquireController starts KubeVirt's VM controller against the API server at cfg, or shares the one running
// there, and returns the function that releases it.
func acquireController(ctx context.Context, cfg *rest.Config) (release func() error, err error) {
	controllers.mu.Lock()
	defer controllers.mu.Unlock()
	key := cfg.Host
	shared, ok := controllers.byHost[key]
	if ok && !shared.proc.exited() {
		shared.refs++
	} else {
		proc, err := startControllerProcess(ctx, cfg)
		if err != nil {
			return nil, err
		}
		shared = &sharedController{refs: 1, proc: proc}
		controllers.byHost[key] = shared
	}
	var once sync.Once
	return func() error {
		var err error
		once.Do(func() {
			controllers.mu.Lock()
			defer controllers.mu.Unlock()
			if shared.refs--; shared.refs > 0 {
				return
			}
			if controllers.byHost[key] == shared {
				delete(controllers.byHost, key)
			}
			err = shared.proc.stop()
		})
		return err
	}, nil
}

// controllerProcess is a running test/upstream/cmd/kubevirt-controller.
type controllerProcess struct {
	cmd  *exec.Cmd
	dir  string // holds the kubeconfig
	log  *tailWriter
	done chan struct{} // closed when the process has exited
	err  error         // how it exited, valid after done
}

// startControllerProcess builds (or reuses) the controller binary, starts it with a kubeconfig for cfg, and
// waits until it reports that its caches are in sync.
func startControllerProcess(ctx context.Context, cfg *rest.Config) (*controllerProcess, error) {
	bin, err := testenv.UpstreamBinary(ctx, controllerCommand)
	if err != nil {
		return nil, fmt.Errorf("kubevirtsim: KubeVirt's VM controller: %w", err)
	}
	dir, err := os.MkdirTemp("", "kubevirtsim-controller-")
	if err != nil {
		return nil, fmt.Errorf("kubevirtsim: %w", err)
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := writeKubeconfig(cfg, kubeconfig); err != nil {
		return nil, errors.Join(err, os.RemoveAll(dir))
	}
	p := &controllerProcess{dir: dir, log: &tailWriter{max: 16 << 10}, done: make(chan struct{})}
	logOut, closeLog, err := controllerLog(p.log)
	if err != nil {
		return nil, errors.Join(err, os.RemoveAll(dir))
	}
	// The kubevirts CRD is installed as virt-operator defines it where the API server lacks it: the
	// controller's KubeVirt informer would never sync without it.
	p.cmd = exec.Command(bin, "--kubeconfig", kubeconfig, "--install-kubevirt-crd")
	p.cmd.Stderr = logOut
	p.cmd.SysProcAttr = childProcAttr()
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, errors.Join(fmt.Errorf("kubevirtsim: %w", err), closeLog(), os.RemoveAll(dir))
	}
	if err := p.cmd.Start(); err != nil {
		return nil, errors.Join(fmt.Errorf("kubevirtsim: starting %s: %w", bin, err), closeLog(), os.RemoveAll(dir))
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.TrimSpace(sc.Text()) == "ready" {
				close(ready)
				break
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		p.err = p.cmd.Wait()
		_ = closeLog()
		close(p.done)
	}()
	timer := time.NewTimer(controllerReadyTimeout)
	defer timer.Stop()
	select {
	case <-ready:
		return p, nil
	case <-p.done:
		return nil, errors.Join(fmt.Errorf("kubevirtsim: KubeVirt's VM controller exited before it was ready (%v): %s",
			p.err, p.log.String()), os.RemoveAll(dir))
	case <-timer.C:
		return nil, errors.Join(fmt.Errorf("kubevirtsim: KubeVirt's VM controller not ready after %v: %s",
			controllerReadyTimeout, p.log.String()), p.stop())
	case <-ctx.Done():
		return nil, errors.Join(fmt.Errorf("kubevirtsim: waiting for KubeVirt's VM controller: %w", ctx.Err()), p.stop())
	}
}

func (p *controllerProcess) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, which the controller handles, and kills it if it does not exit in time.
func (p *controllerProcess) stop() error {
	if !p.exited() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(controllerStopTimeout):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	var exitErr *exec.ExitError
	err := p.err
	if errors.As(err, &exitErr) && !exitErr.Exited() {
		err = nil // ended by the signal or the kill
	}
	if err != nil {
		err = fmt.Errorf("kubevirtsim: KubeVirt's VM controller: %w: %s", err, p.log.String())
	}
	return errors.Join(err, os.RemoveAll(p.dir))
}

// controllerLog returns where the controller's stderr goes: always the tail, and the file $KUBEVIRTSIM_CONTROLLER_LOG
// names, appended to.
func controllerLog(tail *tailWriter) (io.Writer, func() error, error) {
	switch path := os.Getenv(controllerLogEnv); path {
	case "":
		return tail, func() error { return nil }, nil
	case "-":
		return io.MultiWriter(tail, os.Stderr), func() error { return nil }, nil
	default:
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, nil, fmt.Errorf("kubevirtsim: %s: %w", controllerLogEnv, err)
		}
		return io.MultiWriter(tail, f), f.Close, nil
	}
}

// writeKubeconfig writes a kubeconfig that reaches the API server as cfg does: the same server, TLS settings,
// credentials and impersonation.
func writeKubeconfig(cfg *rest.Config, path string) error {
	const name = "kubevirtsim"
	kc := clientcmdapi.NewConfig()
	kc.Clusters[name] = &clientcmdapi.Cluster{
		Server:                   cfg.Host + cfg.APIPath,
		CertificateAuthority:     cfg.CAFile,
		CertificateAuthorityData: cfg.CAData,
		InsecureSkipTLSVerify:    cfg.Insecure,
		TLSServerName:            cfg.ServerName,
	}
	kc.AuthInfos[name] = &clientcmdapi.AuthInfo{
		ClientCertificate:     cfg.CertFile,
		ClientCertificateData: cfg.CertData,
		ClientKey:             cfg.KeyFile,
		ClientKeyData:         cfg.KeyData,
		Token:                 cfg.BearerToken,
		TokenFile:             cfg.BearerTokenFile,
		Username:              cfg.Username,
		Password:              cfg.Password,
		Impersonate:           cfg.Impersonate.UserName,
		ImpersonateUID:        cfg.Impersonate.UID,
		ImpersonateGroups:     cfg.Impersonate.Groups,
		ImpersonateUserExtra:  cfg.Impersonate.Extra,
	}
	kc.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
	kc.CurrentContext = name
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		return fmt.Errorf("kubevirtsim: writing the controller's kubeconfig: %w", err)
	}
	return nil
}

// tailWriter keeps the last max bytes written to it.
type tailWriter struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (w *tailWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	if over := len(w.buf) - w.max; over > 0 {
		w.buf = append(w.buf[:0], w.buf[over:]...)
	}
	return len(p), nil
}

func (w *tailWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.TrimSpace(string(w.buf))
}
