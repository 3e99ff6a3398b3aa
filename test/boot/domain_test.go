package boot

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/types"
	kubevirtv1 "kubevirt.io/api/core/v1"
)

// KubeVirt's OVMF file names (kubevirt.io/kubevirt@v1.8.0/pkg/virt-launcher/virtwrap/efi/efi.go, as virt-launcher's
// image ships them) and Debian 12's for the same firmware. Secure Boot's variables are the ones with Microsoft's
// keys enrolled, as in virt-launcher's OVMF_VARS.secboot.fd, so that shim, signed by Microsoft, is trusted.
var ovmfNames = map[string]string{
	"OVMF_CODE.fd":         "/usr/share/OVMF/OVMF_CODE_4M.fd",
	"OVMF_VARS.fd":         "/usr/share/OVMF/OVMF_VARS_4M.fd",
	"OVMF_CODE.secboot.fd": "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd",
	"OVMF_VARS.secboot.fd": "/usr/share/OVMF/OVMF_VARS_4M.ms.fd",
}

var ovmfFiles = []string{ovmfNames["OVMF_CODE.fd"], ovmfNames["OVMF_VARS.fd"], ovmfNames["OVMF_CODE.secboot.fd"], ovmfNames["OVMF_VARS.secboot.fd"]}

// ovmfDir makes the directory virt-launcher's --ovmf-path names, with KubeVirt's file names linked to Debian's
// files, so that KubeVirt's own EFI detection (efi.DetectEFIEnvironment) runs unchanged on it.
func ovmfDir(dir string) (string, error) {
	dir = filepath.Join(dir, "ovmf")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	for name, file := range ovmfNames {
		if err := os.Symlink(file, filepath.Join(dir, name)); err != nil {
			return "", fmt.Errorf("linking KubeVirt's %s to Debian's %s: %w", name, file, err)
		}
		fmt.Fprintf(os.Stderr, "boot: OVMF: KubeVirt's %s is Debian's %s\n", name, file)
	}
	return dir, nil
}

// tcgCPU replaces KubeVirt's host-model CPU under TCG: QEMU's emulated CPU has no host to model, and a named model
// keeps the guest's view (threads included) stable. Nehalem is the oldest x86-64-v2 model Debian's kernel runs on.
const tcgCPU = "Nehalem"

// kubevirtDomain runs KubeVirt's converter (test/upstream/cmd/kubevirt-domain) on vmi, as virt-launcher would.
func kubevirtDomain(ctx context.Context, vmi *kubevirtv1.VirtualMachineInstance) (string, error) {
	in, err := json.Marshal(vmi)
	if err != nil {
		return "", err
	}
	args := []string{"-container-disk", s.guest.disk, "-ovmf", s.ovmf}
	if s.accel.kvm() {
		args = append(args, "-kvm")
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, s.converter, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(in), &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("KubeVirt's converter: %w: %s", err, stderr.String())
	}
	return stdout.String(), nil
}

// hostFiles says which file on this machine stands for each launcher-pod path the domain names.
type hostFiles struct {
	dir     string            // this VM's scratch directory
	volumes map[string]string // volume name → the raw file behind its PVC (what CDI imported, cloned or left blank)
}

var (
	launcherPath   = regexp.MustCompile(`/var/run/kubevirt[^"<\s]*`)
	vmiDiskPath    = regexp.MustCompile(`^/var/run/kubevirt-private/vmi-disks/([^/]+)/disk\.img$`)
	containerDisk  = regexp.MustCompile(`^/var/run/kubevirt/container-disks/disk_\d+\.img$`)
	ephemeralDisk  = regexp.MustCompile(`^/var/run/kubevirt-ephemeral-disks/disk-data/([^/]+)/disk\.qcow2$`)
	maxMemory      = regexp.MustCompile(`\s*<maxMemory[^>]*slots="0"[^>]*>[^<]*</maxMemory>`)
	maxMemoryEmpty = regexp.MustCompile(`\s*<maxMemory[^>]*slots="0"[^>]*/>`)
	hostModelCPU   = regexp.MustCompile(`<cpu mode="host-model"([^>]*)>`)
)

// rewrite turns KubeVirt's domain into one this machine runs, changing only host paths and what Debian's libvirt
// and QEMU lack; every change is logged.
func rewrite(t *testing.T, domain string, files hostFiles) (string, error) {
	t.Helper()
	var errs []string
	domain = launcherPath.ReplaceAllStringFunc(domain, func(p string) string {
		to, err := files.hostPath(p)
		if err != nil {
			errs = append(errs, err.Error())
			return p
		}
		t.Logf("rewrite: %s -> %s", p, to)
		return to
	})
	if errs != nil {
		return "", fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	for _, re := range []*regexp.Regexp{maxMemory, maxMemoryEmpty} {
		if m := re.FindString(domain); m != "" {
			// KubeVirt writes maxMemory with slots="0" as memory-hotplug headroom; libvirt 9.0 refuses 0 slots.
			t.Logf("rewrite: dropped %s (libvirt 9.0 refuses maxMemory without slots)", strings.TrimSpace(m))
			domain = re.ReplaceAllString(domain, "")
		}
	}
	if !s.accel.kvm() && hostModelCPU.MatchString(domain) {
		t.Logf("rewrite: CPU mode host-model -> model %s (TCG has no host CPU to model)", tcgCPU)
		domain = hostModelCPU.ReplaceAllString(domain, `<cpu mode="custom" match="exact"$1><model fallback="forbid">`+tcgCPU+`</model>`)
	}
	return domain, nil
}

// hostPath maps one launcher-pod path to this machine, creating what virt-launcher would have created there.
func (f hostFiles) hostPath(p string) (string, error) {
	if m := vmiDiskPath.FindStringSubmatch(p); m != nil {
		file, ok := f.volumes[m[1]]
		if !ok {
			return "", fmt.Errorf("no file for volume %s (%s)", m[1], p)
		}
		return file, nil
	}
	if containerDisk.MatchString(p) {
		return s.guest.disk, nil
	}
	if m := ephemeralDisk.FindStringSubmatch(p); m != nil {
		// virt-launcher's ephemeral overlay over the containerDisk's image, which it makes before starting the
		// domain (kubevirt.io/kubevirt@v1.8.0 pkg/container-disk/container-disk.go CreateEphemeralImages, through
		// pkg/ephemeral-disk/ephemeral-disk.go createBackingDisk: qemu-img create -f qcow2 -b <image> -F <format>;
		// the probe's image is raw).
		overlay := filepath.Join(f.dir, "containerdisk-"+m[1]+".qcow2")
		if _, err := os.Stat(overlay); err == nil {
			return overlay, nil
		}
		out, err := exec.Command("qemu-img", "create", "-f", "qcow2", "-b", s.guest.disk, "-F", "raw", overlay).CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("qemu-img create %s: %w: %s", overlay, err, out)
		}
		return overlay, nil
	}
	// Sockets, logs and NVRAM: the same name in this VM's directory (a UNIX socket's path must stay short).
	return filepath.Join(f.dir, path.Base(p)), nil
}

// domain is one VMI's domain, defined in libvirt.
type domain struct {
	name   string
	vmi    types.UID // the VMI it runs
	dir    string
	serial string // the serial console's log file
	vnc    string // the VNC server's socket
}

// bootDomain starts vmi's domain and waits for the probe guest's report on the serial console. The domain is
// destroyed when the test ends.
func bootDomain(t *testing.T, vmi *kubevirtv1.VirtualMachineInstance) domain {
	t.Helper()
	start := time.Now()
	d := startDomain(t, vmi)
	require.Eventually(t, func() bool { return strings.Contains(d.log(), "probe: end") }, 3*time.Minute, 200*time.Millisecond,
		"the probe guest reports on its serial console; what it printed:\n%s", d.log())
	t.Logf("domain %s (VMI %s) booted and reported in %s (%s)", d.name, d.vmi, time.Since(start).Round(100*time.Millisecond), s.accel.name)
	return d
}

// startDomain defines vmi's domain and starts it.
func startDomain(t *testing.T, vmi *kubevirtv1.VirtualMachineInstance) domain {
	t.Helper()
	d := defineDomain(t, vmi)
	_, err := virsh(t.Context(), "start", d.name)
	require.NoError(t, err, "libvirt starts KubeVirt's domain")
	return d
}

// defineDomain converts vmi with KubeVirt's converter, rewrites host paths, and defines the domain in libvirt,
// which is undefined when the test ends.
func defineDomain(t *testing.T, vmi *kubevirtv1.VirtualMachineInstance) domain {
	t.Helper()
	ctx := t.Context()
	// One directory per VMI: a restart makes a new VMI (a new UID) whose domain has the same name.
	files := hostFiles{dir: filepath.Join(s.work, "vms", vmi.Name+"-"+string(vmi.UID)[:8]), volumes: populate(t, vmi)}
	require.NoError(t, os.MkdirAll(files.dir, 0o755))
	xml, err := kubevirtDomain(ctx, vmi)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(files.dir, "kubevirt-domain.xml"), []byte(xml), 0o644))
	xml, err = rewrite(t, xml, files)
	require.NoError(t, err)
	file := filepath.Join(files.dir, "domain.xml")
	require.NoError(t, os.WriteFile(file, []byte(xml), 0o644))
	d := domain{name: domainName(xml), vmi: vmi.UID, dir: files.dir, serial: serialLog(xml), vnc: vncSocket(xml)}
	require.NotEmpty(t, d.name, "the domain has a name")
	require.NotEmpty(t, d.serial, "KubeVirt logs the serial console to a file")
	_, err = virsh(ctx, "define", file)
	require.NoError(t, err, "libvirt defines KubeVirt's domain:\n%s", xml)
	t.Cleanup(func() { d.destroy() })
	return d
}

var (
	domainNameRe = regexp.MustCompile(`<name>([^<]+)</name>`)
	serialLogRe  = regexp.MustCompile(`<log file="([^"]+)"`)
	vncSocketRe  = regexp.MustCompile(`<listen type="socket" socket="([^"]+)"`)
)

func vncSocket(xml string) string {
	if m := vncSocketRe.FindStringSubmatch(xml); m != nil {
		return m[1]
	}
	return ""
}

func domainName(xml string) string {
	if m := domainNameRe.FindStringSubmatch(xml); m != nil {
		return m[1]
	}
	return ""
}

func serialLog(xml string) string {
	if m := serialLogRe.FindStringSubmatch(xml); m != nil {
		return m[1]
	}
	return ""
}

func (d domain) log() string {
	b, _ := os.ReadFile(d.serial)
	return string(b)
}

// serial is the serial console's output.
func (d domain) serialOutput(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(d.serial)
	require.NoError(t, err)
	return string(b)
}

func (d domain) destroy() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Any active state (running, paused) needs destroying: undefining an active domain only makes it transient,
	// and its QEMU would outlive the test.
	if st := domainState(ctx, d.name); st != "" && st != "shut off" {
		_, _ = virsh(ctx, "destroy", d.name)
	}
	_, _ = virsh(ctx, "undefine", "--nvram", d.name)
}
