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
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/testenv"
)

type options struct {
	runs   int
	sizes  []int
	out    string
	kubect string
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
	step("starting envtest")
	env, err := testenv.Start(ctx, testenv.Options{})
	if err != nil {
		return err
	}
	defer func() { _ = env.Stop() }()
	b := &bench{env: env, work: work, impls: impls, runs: o.runs}
	if err := b.setUp(ctx, o.sizes); err != nil {
		return err
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
	if o.out != "" {
		return os.WriteFile(o.out, []byte(text), 0o644)
	}
	return nil
}

func step(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}
