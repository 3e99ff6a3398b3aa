// Package boot boots the VMs the extension creates: each Instance is created the CloudStack way (the stand-in runs
// the extension binary), KubeVirt's own admission and VM controller make its VMI on envtest, KubeVirt's own
// virt-launcher converter turns that VMI into a libvirt domain (test/upstream/cmd/kubevirt-domain), and Debian's
// libvirt and QEMU boot it with a small probe guest (hack/boot-guest.sh) whose init reports, on the serial console,
// what it sees. Only host paths are rewritten between KubeVirt's domain and libvirt, each rewrite logged.
//
// It needs root (libvirtd runs as root, as in virt-launcher's pod), Debian's libvirt, QEMU and OVMF, and the tools
// that build the guest; hack/test.sh installs them as root and sets BOOT_TESTS=required, which turns a missing
// piece into a failure. Otherwise the tests skip and say what is missing.
package boot

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/kubevirtsim"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/testenv"
)

// suite is what every test shares.
type suite struct {
	client     client.Client
	admin      *rest.Config // envtest's admin
	kubeconfig string
	extension  string // the launcher, with the extension beside it, as installed
	converter  string // test/upstream/cmd/kubevirt-domain, built
	sim        *kubevirtsim.Sim
	guest      guest
	libvirt    *libvirtd
	accel      accel
	work       string // the suite's scratch directory: disks, NVRAM, serial logs
	files      string // served on loopback: what DataVolumes import
	fileURL    string // http://127.0.0.1:<port>/
	ovmf       string // virt-launcher's --ovmf-path: KubeVirt's OVMF names, linked to Debian's files
	igb        bool   // QEMU has the igb NIC (8.0 and later)
	skip       string // why the tests cannot run here; empty when they can
}

var s suite

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	// The simulator's controllers log through controller-runtime; only their errors matter here.
	ctrllog.SetLogger(logr.FromSlogHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	cleanup, err := setUp()
	defer cleanup()
	if err != nil {
		fmt.Fprintln(os.Stderr, "boot:", err)
		return 1
	}
	return m.Run()
}

// requireBoot skips a test where the boot tests cannot run, or fails it where hack/test.sh said they must.
func requireBoot(t *testing.T) {
	t.Helper()
	if s.skip == "" {
		return
	}
	if os.Getenv("BOOT_TESTS") == "required" {
		t.Fatalf("BOOT_TESTS=required, but: %s", s.skip)
	}
	t.Skip(s.skip)
}

func setUp() (cleanup func(), err error) {
	var cleanups []func()
	cleanup = func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}
	if s.skip = missing(); s.skip != "" {
		return cleanup, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute) // a first run builds KubeVirt's binaries
	defer cancel()
	if s.work, err = os.MkdirTemp("", "kubevirt-boot-"); err != nil {
		return cleanup, err
	}
	cleanups = append(cleanups, func() { os.RemoveAll(s.work) })
	if s.ovmf, err = ovmfDir(s.work); err != nil {
		return cleanup, err
	}
	if s.guest, err = buildGuest(ctx); err != nil {
		return cleanup, err
	}
	if s.extension, err = buildExtension(ctx, s.work); err != nil {
		return cleanup, err
	}
	if s.converter, err = testenv.UpstreamBinary(ctx, "kubevirt-domain"); err != nil {
		return cleanup, err
	}
	s.accel = chooseAccel(ctx, s.guest)
	s.igb = qemuHasDevice(ctx, "igb")
	fmt.Fprintf(os.Stderr, "boot: accelerator %s (%s)\n", s.accel.name, s.accel.why)
	if s.libvirt, err = startLibvirtd(ctx, s.work); err != nil {
		return cleanup, err
	}
	cleanups = append(cleanups, s.libvirt.stop)
	if err := removeLeftovers(ctx); err != nil {
		return cleanup, err
	}
	stopFiles, err := serveFiles()
	if err != nil {
		return cleanup, err
	}
	cleanups = append(cleanups, stopFiles)
	env, err := testenv.Start(ctx, testenv.Options{})
	if err != nil {
		return cleanup, err
	}
	cleanups = append(cleanups, func() { _ = env.Stop() })
	s.client, s.admin = env.Client, env.Config
	s.kubeconfig = filepath.Join(s.work, "kubeconfig")
	if err := env.WriteKubeconfig(s.kubeconfig); err != nil {
		return cleanup, err
	}
	s.sim, err = kubevirtsim.Start(context.Background(), env.Config, kubevirtsim.Options{Namespaces: namespaces})
	if err != nil {
		return cleanup, err
	}
	cleanups = append(cleanups, func() { _ = s.sim.Stop() })
	return cleanup, nil
}

// missing says what this machine lacks for the boot tests, or "".
func missing() string {
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		return "the boot tests run on linux/amd64 only (Debian's OVMF, shim and GRUB for x86)"
	}
	if os.Geteuid() != 0 {
		return "the boot tests run libvirtd as root, as virt-launcher does in its pod: run them as root (hack/test.sh installs what they need)"
	}
	for _, tool := range []string{"libvirtd", "virsh", "qemu-system-x86_64", "qemu-img", "apt-get", "dpkg-deb", "mcopy", "mkfs.fat", "sfdisk", "cpio", "depmod", "syslinux", "xorriso"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Sprintf("no %s: apt-get install libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86 qemu-utils ovmf mtools dosfstools fdisk cpio kmod syslinux syslinux-common isolinux xorriso (hack/test.sh does, as root)", tool)
		}
	}
	for _, f := range ovmfFiles {
		if _, err := os.Stat(f); err != nil {
			return fmt.Sprintf("no %s: apt-get install ovmf", f)
		}
	}
	return ""
}

// serveFiles serves s.files on loopback: the URLs the Instances' DataVolumes import from.
func serveFiles() (stop func(), err error) {
	s.files = filepath.Join(s.work, "served")
	if err := os.MkdirAll(s.files, 0o755); err != nil {
		return func() {}, err
	}
	for name, file := range map[string]string{"disk.img": s.guest.disk, "probe.iso": s.guest.iso} {
		if err := os.Symlink(file, filepath.Join(s.files, name)); err != nil {
			return func() {}, err
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return func() {}, fmt.Errorf("listening on loopback for the images: %w", err)
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(s.files)), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	s.fileURL = "http://" + l.Addr().String() + "/"
	return func() { _ = srv.Close() }, nil
}

// qemuHasDevice says whether QEMU emulates the device (-device help lists it).
func qemuHasDevice(ctx context.Context, name string) bool {
	out, err := exec.CommandContext(ctx, "qemu-system-x86_64", "-device", "help").Output()
	return err == nil && strings.Contains(string(out), `name "`+name+`"`)
}

// buildExtension lays the extension out as hack/install.sh installs it: the launcher as kubevirt-extension, which
// CloudStack runs, and the extension beside it as kubevirt-extension-core.
func buildExtension(ctx context.Context, dir string) (string, error) {
	dir = filepath.Join(dir, "extension")
	for _, b := range []struct{ out, cmd string }{{"kubevirt-extension-core", "extension"}, {"kubevirt-extension", "launcher"}} {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(dir, b.out), "./cmd/"+b.cmd)
		cmd.Dir = repoRoot()
		if msg, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("building cmd/%s: %w\n%s", b.cmd, err, msg)
		}
	}
	return filepath.Join(dir, "kubevirt-extension"), nil
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}
