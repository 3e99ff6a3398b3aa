package boot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// qemuConf is the QEMU driver's configuration libvirtd reads at start. As in virt-launcher's pod, QEMU runs as root
// and libvirt leaves file ownership alone (kubevirt.io/kubevirt@v1.8.0/pkg/virt-launcher/virtwrap/util/
// libvirt_helper.go SetupLibvirt writes the pod's qemu.conf); the serial console's log is written by QEMU itself
// (stdio_handler "file"), since no virtlogd runs here.
const qemuConf = `# Written by cloudstack-kubevirt's test/boot: the QEMU driver as the boot tests run it.
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
stdio_handler = "file"
`

const qemuConfPath = "/etc/libvirt/qemu.conf"

// libvirtdPidFile is where a libvirtd these tests started keeps its process id, whichever run started it, so that
// the last run out can stop it.
const libvirtdPidFile = "/run/cloudstack-kubevirt-boot-libvirtd.pid"

// libvirtd is the libvirt daemon the tests use: cmd is the one this run started, nil when it found one running.
type libvirtd struct {
	cmd *exec.Cmd
}

// startLibvirtd starts libvirtd as root with qemuConf, unless one answers already.
func startLibvirtd(ctx context.Context, work string) (*libvirtd, error) {
	if err := writeQEMUConf(); err != nil {
		return nil, err
	}
	if err := ensureQEMUUser(ctx); err != nil {
		return nil, err
	}
	if _, err := virsh(ctx, "version"); err == nil {
		return &libvirtd{}, nil
	}
	if err := os.MkdirAll("/var/log/libvirt/qemu", 0o755); err != nil {
		return nil, err
	}
	conf := filepath.Join(work, "libvirtd.conf")
	if err := os.WriteFile(conf, []byte("log_outputs = \"3:stderr\"\n"), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command("libvirtd", "--config", conf, "--pid-file", libvirtdPidFile)
	log, err := os.Create(filepath.Join(work, "libvirtd.log"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting libvirtd: %w", err)
	}
	d := &libvirtd{cmd: cmd}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := virsh(ctx, "version")
		if err == nil {
			return d, nil
		}
		if time.Now().After(deadline) {
			d.stop()
			msg, _ := os.ReadFile(log.Name())
			return nil, fmt.Errorf("libvirtd did not answer within 30 s: %w\n%s", err, msg)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// writeQEMUConf writes qemuConf, refusing to overwrite a qemu.conf the tests did not write.
func writeQEMUConf() error {
	old, err := os.ReadFile(qemuConfPath)
	switch {
	case err == nil && string(old) == qemuConf:
		return nil
	case err == nil && !bytes.HasPrefix(old, []byte("# Written by cloudstack-kubevirt's test/boot")):
		if bytes.Contains(old, []byte("\ndynamic_ownership = 0")) && bytes.Contains(old, []byte("\nstdio_handler = \"file\"")) {
			return nil
		}
		return fmt.Errorf("%s is not the boot tests' own: set user and group root, dynamic_ownership = 0, remember_owner = 0 and stdio_handler = \"file\" in it, or remove it", qemuConfPath)
	case err != nil && !errors.Is(err, os.ErrNotExist):
		return err
	}
	if err := os.MkdirAll(filepath.Dir(qemuConfPath), 0o755); err != nil {
		return err
	}
	return os.WriteFile(qemuConfPath, []byte(qemuConf), 0o644)
}

// ensureQEMUUser creates the system user and group Debian's QEMU driver is built to run as (libvirt-qemu), as
// libvirt-daemon-system's postinst would: libvirtd resolves them before it reads qemu.conf, and refuses to start
// the driver without them, even though qemu.conf then runs QEMU as root.
func ensureQEMUUser(ctx context.Context) error {
	if err := exec.CommandContext(ctx, "getent", "passwd", "libvirt-qemu").Run(); err == nil {
		return nil
	}
	for _, args := range [][]string{
		{"groupadd", "--system", "libvirt-qemu"},
		{"useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "--gid", "libvirt-qemu", "libvirt-qemu"},
	} {
		if out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput(); err != nil && !bytes.Contains(out, []byte("already exists")) {
			return fmt.Errorf("creating libvirt's QEMU user (%s): %w: %s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}

// stop stops the libvirtd the tests started, this run or another, unless another run's domains still use it: runs
// on one machine share it, and the last one out stops it. A libvirtd the tests did not start is left alone.
func (d *libvirtd) stop() {
	if d == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := virsh(ctx, "list", "--all", "--name"); err == nil && strings.TrimSpace(out) != "" {
		fmt.Fprintf(os.Stderr, "boot: leaving libvirtd running for the domains of another run: %s\n", strings.Join(strings.Fields(out), ", "))
		return
	}
	if d.cmd != nil {
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = d.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = d.cmd.Process.Kill()
			<-done
		}
		return
	}
	pid := testsLibvirtd()
	if pid == 0 {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	for deadline := time.Now().Add(10 * time.Second); processAlive(pid) && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
}

// testsLibvirtd is the process id of a running libvirtd another run of these tests started, or 0.
func testsLibvirtd() int {
	b, err := os.ReadFile(libvirtdPidFile)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil || strings.TrimSpace(string(comm)) != "libvirtd" {
		return 0
	}
	return pid
}

// virsh runs one virsh command against the system libvirtd.
func virsh(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "virsh", append([]string{"-c", "qemu:///system", "-q"}, args...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("virsh %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// removeLeftovers destroys and undefines the domains an interrupted run of these tests left: those in a
// namespace of a run (boot-<pid>) whose process is gone. A run still going keeps its own.
func removeLeftovers(ctx context.Context) error {
	out, err := virsh(ctx, "list", "--all", "--name")
	if err != nil {
		return err
	}
	for _, name := range strings.Fields(out) {
		run, _, ok := strings.Cut(strings.TrimPrefix(name, nsPrefix), "_")
		pid, err := strconv.Atoi(run)
		if !strings.HasPrefix(name, nsPrefix) || !ok || err != nil || processAlive(pid) {
			continue
		}
		fmt.Fprintf(os.Stderr, "boot: removing domain %s, left by an earlier run (process %d is gone)\n", name, pid)
		domain{name: name}.destroy()
	}
	return nil
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// domainState is virsh domstate's answer: "running", "shut off", ..., or "" when no such domain is defined.
func domainState(ctx context.Context, name string) string {
	out, err := virsh(ctx, "domstate", name)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(out)
}
