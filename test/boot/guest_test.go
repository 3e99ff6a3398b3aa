package boot

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// guest is the probe guest's boot media, built by hack/boot-guest.sh.
type guest struct {
	disk string // raw, 64 MiB: syslinux for BIOS, shim + GRUB for UEFI
	iso  string // isolinux for BIOS, an El Torito EFI image for UEFI
}

// buildGuest builds the probe guest once per version of hack/boot-guest.sh, in the user's cache.
func buildGuest(ctx context.Context) (guest, error) {
	script := filepath.Join(repoRoot(), "hack", "boot-guest.sh")
	data, err := os.ReadFile(script)
	if err != nil {
		return guest{}, err
	}
	sum := sha256.Sum256(data)
	cache, err := os.UserCacheDir()
	if err != nil {
		return guest{}, fmt.Errorf("no cache directory for the probe guest: %w", err)
	}
	dir := filepath.Join(cache, "cloudstack-kubevirt", "boot-guest", hex.EncodeToString(sum[:8]))
	g := guest{disk: filepath.Join(dir, "disk.img"), iso: filepath.Join(dir, "probe.iso")}
	if _, err := os.Stat(g.iso); err == nil {
		return g, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, script, dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		return guest{}, fmt.Errorf("building the probe guest (hack/boot-guest.sh %s): %w\n%s", dir, err, out)
	}
	pruneGuests(filepath.Dir(dir), dir)
	return g, nil
}

// pruneGuests removes the guests earlier versions of hack/boot-guest.sh built (about 130 MB each; rebuilding one
// takes seconds), keeping the downloaded packages.
func pruneGuests(cache, keep string) {
	entries, err := os.ReadDir(cache)
	if err != nil {
		return
	}
	for _, e := range entries {
		if p := filepath.Join(cache, e.Name()); e.IsDir() && e.Name() != "debs" && p != keep {
			_ = os.RemoveAll(p)
		}
	}
}

// accel is how QEMU runs the guests: KVM where it works, TCG (emulation) otherwise.
type accel struct {
	name string // "kvm" or "tcg"
	why  string
}

func (a accel) kvm() bool { return a.name == "kvm" }

// chooseAccel boots the probe guest once under KVM, without libvirt, and keeps KVM only if the guest reports back.
// A /dev/kvm can exist and still fail firmware: on the microVMs these tests run in it is a paravirtual backend, and
// SeaBIOS stops at a KVM emulation failure. BOOT_ACCEL=kvm or tcg skips the probe.
func chooseAccel(ctx context.Context, g guest) accel {
	switch os.Getenv("BOOT_ACCEL") {
	case "kvm":
		return accel{"kvm", "BOOT_ACCEL=kvm"}
	case "tcg":
		return accel{"tcg", "BOOT_ACCEL=tcg"}
	}
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return accel{"tcg", fmt.Sprintf("no usable /dev/kvm: %v", err)}
	}
	f.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", "-machine", "q35,accel=kvm", "-cpu", "host", "-m", "256",
		"-nographic", "-no-reboot", "-drive", "file="+g.disk+",format=raw,if=virtio,snapshot=on")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return accel{"tcg", err.Error()}
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return accel{"tcg", fmt.Sprintf("starting QEMU with KVM: %v", err)}
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	verdict := accel{"tcg", "the probe guest did not boot under KVM within 30 s"}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, "probe: end") {
			return accel{"kvm", "the probe guest booted under KVM"}
		}
		if strings.Contains(line, "KVM internal error") || strings.Contains(line, "emulation failure") {
			verdict = accel{"tcg", "/dev/kvm fails the firmware: " + strings.TrimSpace(line)}
			break
		}
	}
	return verdict
}
