// Command bench measures the extension's whole-process cost beside two references, against a local API server
// (envtest) loaded with managed VMs: the floor (hack/floor: the one API request each action needs, from the
// standard library) and what an operator would otherwise write (hack/kubectl-extension.sh: kubectl and jq, the
// way CloudStack's Proxmox sample extension is written). It prints a Markdown report.
//
//	make bench    # or: ENVTEST_WITH_KUBECTL=1 KUBEBUILDER_ASSETS=$(hack/envtest-assets.sh) go run ./hack/bench
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/testenv"
)

type options struct {
	hold     bool
	baseline string
	svg      string
	runs     int
	sizes    []int
	out      string
	kubect   string
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() error {
	var o options
	var sizes string
	flag.IntVar(&o.runs, "runs", 20, "runs of each case and implementation (statuses at 10,000 VMs: a quarter, at least 5)")
	flag.StringVar(&sizes, "sizes", "100,1000,10000", "namespace sizes for statuses")
	flag.StringVar(&o.out, "out", "", "also write the report to this file")
	flag.StringVar(&o.svg, "svg", "", "draw time against VM count into this SVG file")
	flag.StringVar(&o.baseline, "baseline", baselineRevision, "git revision of the extension the ping round is compared with (\"\" for none)")
	flag.BoolVar(&o.hold, "hold", false, "load the API server, print where its kubeconfig and payloads are, and wait for an interrupt: for profiling by hand")
	flag.StringVar(&o.kubect, "kubectl", "", "kubectl for the script reference (default: $KUBEBUILDER_ASSETS/kubectl)")
	flag.Parse()
	for _, s := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return fmt.Errorf("-sizes: %q is not a positive number", s)
		}
		o.sizes = append(o.sizes, n)
	}
	if o.kubect == "" {
		o.kubect = filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kubectl")
	}
	if _, err := exec.LookPath(o.kubect); err != nil {
		return fmt.Errorf("kubectl for the script reference: %w (run with ENVTEST_WITH_KUBECTL=1 hack/envtest-assets.sh, or -kubectl)", err)
	}
	if _, err := exec.LookPath("jq"); err != nil {
		return fmt.Errorf("jq for the script reference: %w (apt-get install jq)", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Hour)
	defer cancel()
	work, err := os.MkdirTemp("", "kubevirt-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	step("building the extension and the floor")
	impls, err := buildImpls(work, o.kubect)
	if err != nil {
		return err
	}
	if impls.baseline.exe, err = buildBaseline(work, o.baseline); err != nil {
		return err
	}
	impls.baseline.name = "before (" + o.baseline + ")"
	step("starting envtest")
	env, err := testenv.Start(ctx, testenv.Options{})
	if err != nil {
		return err
	}
	defer func() { _ = env.Stop() }()
	b := &bench{env: env, work: work, impls: impls, runs: o.runs, home: filepath.Join(work, "home")}
	if err := b.setUp(ctx, o.sizes); err != nil {
		return err
	}
	if o.hold {
		return b.hold(ctx, o.sizes)
	}
	// Loading thousands of objects leaves the API server and etcd busy for a while (compaction, caches);
	// the first case would pay for it.
	step("letting the API server settle")
	time.Sleep(15 * time.Second)
	report, err := b.measure(ctx, o.sizes)
	if err != nil {
		return err
	}
	text := report.markdown()
	fmt.Print(text)
	if o.svg != "" {
		if err := os.WriteFile(o.svg, []byte(report.svg()), 0o644); err != nil {
			return err
		}
	}
	if o.out != "" {
		return os.WriteFile(o.out, []byte(text), 0o644)
	}
	return nil
}

// hold keeps the loaded API server, and a fresh heartbeat, until an interrupt, and says how to run the
// extension against it.
func (b *bench) hold(ctx context.Context, sizes []int) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()
	if err := b.heartbeat(ctx); err != nil {
		return err
	}
	for _, n := range sizes {
		ns := sizeNamespace(n)
		status, err := b.writePayload(fmt.Sprintf("hold-status-%d", n), b.host(ns, "").Payload("status", instance(ns, 0)))
		if err != nil {
			return err
		}
		statuses, err := b.writePayload(fmt.Sprintf("hold-statuses-%d", n), b.host(ns, "").StatusesPayload())
		if err != nil {
			return err
		}
		fmt.Printf("%d VMs in %s:\n  %s status %s 60\n  %s statuses %s 60\n", n, ns, b.impls.extension.exe, status, b.impls.extension.exe, statuses)
	}
	fmt.Printf("kubeconfig: %s\nholding until interrupted\n", b.kubeconfig)
	<-ctx.Done()
	return nil
}

func step(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}
