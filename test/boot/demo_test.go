package boot

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/fixture"
)

// TestBootDemo is `make boot-demo`: one Instance, created the CloudStack way, whose serial console is shown on
// stdout as it boots, then checked as TestBoot checks it. It runs only with BOOT_DEMO=1; TestBoot boots the same
// Instance in the tests.
func TestBootDemo(t *testing.T) {
	if os.Getenv("BOOT_DEMO") != "1" {
		t.Skip("make boot-demo runs it (BOOT_DEMO=1); TestBoot boots the same Instance")
	}
	requireBoot(t)
	require.NoError(t, fixture.HostNamespace(t.Context(), s.client, ns, vlans...))
	tt := variant{name: "containerDisk, BIOS", details: map[string]string{"image": "quay.io/containerdisks/fedora:43"}, cpus: 2, memoryMB: 1024, medium: "disk", bus: "virtio"}
	in, h := tt.instance()
	fmt.Printf("== CloudStack deploys %s (%d vCPUs, %d MiB, NICs %s and %s) on a host mapped to namespace %s\n",
		in.Name, in.CPUs, in.MemoryMB, in.NICs[0].MAC, in.NICs[1].MAC, ns)
	res := call(t, h, "create", in)
	fmt.Printf("$ kubevirt-extension create <payload.json> 60\n%s\n", res.Output)
	requireSuccess(t, res)
	t.Cleanup(func() { call(t, h, "delete", in) })
	vmi := runningVMI(t, in)
	fmt.Printf("== VMI %s/%s (made by KubeVirt's VM controller) -> libvirt domain (virt-launcher's converter) -> QEMU (%s)\n", vmi.Namespace, vmi.Name, s.accel.name)
	start := time.Now()
	d := startDomain(t, vmi)
	fmt.Printf("== serial console of domain %s\n", d.name)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	out := follow(ctx, d)
	fmt.Printf("== the guest reported in %s\n", time.Since(start).Round(100*time.Millisecond))
	r, err := parseReport(out)
	require.NoError(t, err, "the guest's serial console:\n%s", out)
	assertGuest(t, tt, in, vmi, r)
}

// terminalControl matches the escape sequences firmware and boot loaders write to the serial console (clear the
// screen, move the cursor), which would otherwise act on the demo's terminal.
var terminalControl = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][0-9A-Za-z]|\r`)

// follow prints the domain's serial console as it grows, until the probe's report ends, and returns all of it.
func follow(ctx context.Context, d domain) string {
	printed := 0
	for {
		out := d.log()
		if len(out) > printed {
			fmt.Print(terminalControl.ReplaceAllString(out[printed:], ""))
			printed = len(out)
		}
		if strings.Contains(out, "probe: end") || ctx.Err() != nil {
			fmt.Println()
			return out
		}
		time.Sleep(100 * time.Millisecond)
	}
}
