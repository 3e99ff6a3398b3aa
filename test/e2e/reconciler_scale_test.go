package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/fixture"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

const (
	reconcilerScaleNamespace = "e2e-reconciler-scale" // not served by the simulator: the benchmark sets VMI phases
	reconcilerScaleVMs       = 10000
	benchLease               = "bench-reconciler"
)

// BenchmarkReconciler loads 10,000 managed VMs, each with a running VMI, starts cmd/reconciler on them and
// measures: the time until every VM is labelled (its heartbeat turns fresh), then per iteration the time from
// one VMI phase change (Running <-> Succeeded under RerunOnFailure) to the new label, and the process's peak RSS.
//
//	go test ./test/e2e -run '^$' -bench BenchmarkReconciler -benchtime 300x
func BenchmarkReconciler(b *testing.B) {
	if s.env == nil {
		b.Skip("envtest only")
	}
	ctx := b.Context()
	populateReconcilerScale(b)
	if err := s.client.Create(ctx, namespaceObject(systemNamespace)); err != nil && !isAlreadyExists(err) {
		b.Fatal(err)
	}
	kubeconfig := b.TempDir() + "/admin.kubeconfig"
	if err := s.env.WriteKubeconfig(kubeconfig); err != nil {
		b.Fatal(err)
	}

	start := time.Now()
	cmd := exec.Command(s.reconciler, "--kubeconfig="+kubeconfig, "--namespaces="+reconcilerScaleNamespace,
		"--leader-elect=false", "--heartbeat-lease="+benchLease, "--metrics-bind-address=0", "--health-probe-bind-address=0",
		"--identity=bench", "--max-concurrent-reconciles=8", "--kube-api-qps=500")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	if err := waitHeartbeatFresh(ctx, benchLease, 10*time.Minute); err != nil {
		b.Fatalf("%v\n%s", err, logs.String())
	}
	allLabelled := time.Since(start)

	wc, err := client.NewWithWatch(s.env.Config, client.Options{Scheme: s.client.Scheme()})
	if err != nil {
		b.Fatal(err)
	}
	// From the current resourceVersion: a watch from "now" would first replay 10,000 ADDED events, and the API
	// server drops a watcher that falls that far behind.
	var current kubevirtv1.VirtualMachineList
	if err := s.client.List(ctx, &current, client.InNamespace(reconcilerScaleNamespace), client.Limit(1)); err != nil {
		b.Fatal(err)
	}
	w, err := wc.Watch(ctx, &kubevirtv1.VirtualMachineList{}, client.InNamespace(reconcilerScaleNamespace),
		&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: current.ResourceVersion}})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Stop()

	var latencies []time.Duration
	i := 0
	for b.Loop() {
		name, phase := scaleVMName(i%reconcilerScaleVMs), kubevirtv1.Succeeded
		want := translate.PowerOff
		if (i/reconcilerScaleVMs)%2 == 1 {
			phase, want = kubevirtv1.Running, translate.PowerOn
		}
		i++
		changed := time.Now()
		if err := setVMIPhase(ctx, name, phase); err != nil {
			b.Fatal(err)
		}
		if err := waitForLabel(w, name, want, time.Minute); err != nil {
			b.Fatal(err)
		}
		latencies = append(latencies, time.Since(changed))
	}
	b.ReportMetric(allLabelled.Seconds(), "s-to-label-all")
	slices.Sort(latencies)
	b.ReportMetric(percentile(latencies, 0.50).Seconds()*1000, "p50-ms")
	b.ReportMetric(percentile(latencies, 0.99).Seconds()*1000, "p99-ms")
	if rss, err := peakRSS(cmd.Process.Pid); err == nil {
		b.ReportMetric(float64(rss)/(1<<20), "peak-RSS-MiB")
	}
}

func scaleVMName(i int) string {
	name, _ := translate.VMName(fmt.Sprintf("i-3-%d-VM", 200000+i))
	return name
}

var reconcilerScaleOnce sync.Once

// populateReconcilerScale creates the VMs as the extension would (full specs), each with a Running VMI.
func populateReconcilerScale(b *testing.B) {
	reconcilerScaleOnce.Do(func() {
		ctx := context.Background()
		if err := s.client.Create(ctx, namespaceObject(reconcilerScaleNamespace)); err != nil && !isAlreadyExists(err) {
			b.Fatal(err)
		}
		if err := fixture.Parallel(reconcilerScaleVMs, 16, func(i int) error {
			in := scaleInstance(i)
			in.ID = int64(200000 + i)
			in.Name = fmt.Sprintf("i-3-%d-VM", in.ID)
			in.UUID = fmt.Sprintf("5ca1ab1e-0000-4000-9000-%012d", in.ID)
			in.Details = map[string]string{"image": "quay.io/containerdisks/fedora:43", "run_strategy": "RerunOnFailure"}
			return createVMWithVMI(ctx, s.client, reconcilerScaleNamespace, in, kubevirtv1.Running)
		}); err != nil {
			b.Fatal(err)
		}
	})
}

func setVMIPhase(ctx context.Context, name string, phase kubevirtv1.VirtualMachineInstancePhase) error {
	vmi := &kubevirtv1.VirtualMachineInstance{}
	if err := s.client.Get(ctx, client.ObjectKey{Namespace: reconcilerScaleNamespace, Name: name}, vmi); err != nil {
		return err
	}
	vmi.Status.Phase = phase
	return s.client.Update(ctx, vmi) // the generated CRD has no status subresource for VMIs
}

func waitForLabel(w watch.Interface, name string, want translate.PowerState, timeout time.Duration) error {
	deadline := time.After(timeout)
	for {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				return fmt.Errorf("watch closed waiting for %s", name)
			}
			vm, isVM := ev.Object.(*kubevirtv1.VirtualMachine)
			if isVM && vm.Name == name && vm.Labels[translate.LabelPowerState] == string(want) {
				return nil
			}
		case <-deadline:
			return fmt.Errorf("VM %s not labelled %s within %v", name, want, timeout)
		}
	}
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(float64(len(sorted))*p))]
}

// peakRSS reads the process's high-water resident set (VmHWM) from /proc.
func peakRSS(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}
