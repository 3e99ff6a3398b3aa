package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// baselineRevision is the last commit before status calls shared a listing (issue 14): "today" in the ping
// round's comparison.
const baselineRevision = "297ccc9"

// buildBaseline builds the extension as it was at rev into work, from a git worktree of the repository; "" when
// rev is empty or the repository has no such commit (a release tarball).
func buildBaseline(work, rev string) (string, error) {
	if rev == "" {
		return "", nil
	}
	if err := exec.Command("git", "cat-file", "-e", rev+"^{commit}").Run(); err != nil {
		step("no commit %s here: the ping round is measured without the baseline", rev)
		return "", nil
	}
	tree := filepath.Join(work, "baseline-tree")
	if out, err := exec.Command("git", "worktree", "add", "--detach", tree, rev).CombinedOutput(); err != nil {
		return "", fmt.Errorf("checking out %s: %v: %s", rev, err, out)
	}
	defer func() { _ = exec.Command("git", "worktree", "remove", "--force", tree).Run() }()
	exe := filepath.Join(work, "kubevirt-extension-"+rev)
	cmd := exec.Command("go", "build", "-trimpath", "-o", exe, "./cmd/extension")
	cmd.Dir = tree
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the extension at %s: %v: %s", rev, err, out)
	}
	return exe, nil
}

// roundVariant is one way of answering a ping round: calls is how many of the round's n calls are made (the
// rest are extrapolated from them), args the argv after the executable for the i-th Instance.
type roundVariant struct {
	name  string
	impl  impl
	calls func(n int) int
	args  func(i int) []string
}

// pingRoundCase runs a ping round of 4.21 and 4.22.0 on each namespace: one status process per Instance, one
// after another, each for another Instance, as ExternalPathPayloadProvisioner.getHostVmStateReport calls them.
func (b *bench) pingRoundCase(ctx context.Context, r *report, sizes []int) error {
	for _, n := range sizes {
		ns := sizeNamespace(n)
		payloads := make([]string, min(n, 1000))
		plain := make([]string, len(payloads))
		for i := range payloads {
			var err error
			if payloads[i], err = b.writePayload(fmt.Sprintf("round-%d-%d", n, i), b.host(ns, "").Payload("status", instance(ns, i))); err != nil {
				return err
			}
			h := b.host(ns, "")
			h.Extension["status_cache"] = "off"
			if plain[i], err = b.writePayload(fmt.Sprintf("round-plain-%d-%d", n, i), h.Payload("status", instance(ns, i))); err != nil {
				return err
			}
		}
		status := func(p []string) func(int) []string {
			return func(i int) []string { return []string{"status", p[i%len(p)], "60"} }
		}
		sampled := func(k int) func(int) int { return func(n int) int { return min(n, k) } }
		variants := []roundVariant{
			{name: "extension", impl: b.impls.extension, calls: func(n int) int { return n }, args: status(payloads)},
			{name: "extension, no listing", impl: b.impls.extension, calls: sampled(1000), args: status(plain)},
			{name: "process start (version)", impl: b.impls.extension, calls: sampled(1000), args: func(int) []string { return []string{"version"} }},
			{name: "process start, extension alone", impl: b.impls.core, calls: sampled(1000), args: func(int) []string { return []string{"version"} }},
			{name: "floor", impl: b.impls.floor, calls: sampled(1000), args: status(plain)},
			{name: "kubectl+jq", impl: b.impls.script, calls: sampled(30), args: status(plain)},
		}
		if b.impls.baseline.exe != "" {
			variants = append(variants[:2], append([]roundVariant{{name: "before (" + baselineRevision + ")", impl: b.impls.baseline, calls: sampled(1000), args: status(payloads)}}, variants[2:]...)...)
		}
		for _, v := range variants {
			if err := b.round(ctx, r, n, v); err != nil {
				return err
			}
		}
	}
	return nil
}

// round runs v's calls of a round of n and records each call and the round's total.
func (b *bench) round(ctx context.Context, r *report, n int, v roundVariant) error {
	calls := v.calls(n)
	step("ping round, %d VMs: %s x%d", n, v.name, calls)
	// A listing left by an earlier variant or round must not serve this one.
	if err := os.RemoveAll(filepath.Join(b.home, ".cache")); err != nil {
		return err
	}
	var total time.Duration
	for i := range calls {
		cmd := exec.CommandContext(ctx, v.impl.exe, v.args(i)...)
		cmd.Env = append(append(os.Environ(), v.impl.env...), "HOME="+b.home)
		start := time.Now()
		out, err := cmd.CombinedOutput()
		wall := time.Since(start)
		if err != nil {
			return fmt.Errorf("%s: %v: %s", v.name, err, truncate(string(out), 300))
		}
		if len(v.args(i)) > 1 && !strings.Contains(string(out), "power") {
			return fmt.Errorf("%s: no power state in %q", v.name, truncate(string(out), 300))
		}
		total += wall
		r.add("ping call", n, v.name, sample{wall: wall})
	}
	r.rounds = append(r.rounds, roundResult{n: n, name: v.name, calls: calls, total: total})
	return nil
}

// roundResult is one ping round: total is the time of the calls made; the round's time is extrapolated to n.
type roundResult struct {
	n, calls int
	name     string
	total    time.Duration
}

func (rr roundResult) estimate() time.Duration {
	return time.Duration(float64(rr.total) / float64(rr.calls) * float64(rr.n))
}

// coldStartCase measures the first call after the page cache is dropped (root only): the binary is read from
// disk, as after a management server's reboot or a long idle time.
func (b *bench) coldStartCase(ctx context.Context, r *report, ns string) error {
	if os.Geteuid() != 0 {
		step("cold start: not measured (dropping the page cache needs root)")
		return nil
	}
	hit, err := b.writePayload("cold-status", b.host(ns, "").Payload("status", instance(ns, 0)))
	if err != nil {
		return err
	}
	cases := []struct {
		name string
		args []string
	}{
		{"process start (version)", []string{"version"}},
		{"status, from the listing", []string{"status", hit, "60"}},
	}
	for _, c := range cases {
		step("cold start: %s x5", c.name)
		for range 5 {
			// Warm the listing first, so that only the binary and the files it reads are cold.
			if _, err := b.exec(ctx, b.impls.extension, "status", hit, "HOME="+b.home); err != nil {
				return err
			}
			if err := dropCaches(); err != nil {
				step("cold start: not measured: %v", err)
				return nil
			}
			cmd := exec.CommandContext(ctx, b.impls.extension.exe, c.args...)
			cmd.Env = append(os.Environ(), "HOME="+b.home)
			start := time.Now()
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("cold %s: %v: %s", c.name, err, out)
			}
			r.add("cold start", 0, c.name, sample{wall: time.Since(start)})
		}
	}
	return nil
}

func dropCaches() error {
	if err := exec.Command("sync").Run(); err != nil {
		return err
	}
	return os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0o200)
}
