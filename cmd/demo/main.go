// Command demo runs the extension through a CloudStack Instance lifecycle on an embedded default: a local API
// server (envtest) with the KubeVirt CRDs, KubeVirt's own admission webhooks and VM controller, and the simulator
// for the rest of KubeVirt, driven as CloudStack's management server drives it, printing each call and answer.
// It needs only Go; the first run builds kube-apiserver and etcd (see hack/envtest-assets.sh) and KubeVirt's
// binaries (test/upstream).
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/go-logr/logr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/cloudstacksim"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/fixture"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/kubevirtsim"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/testenv"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

const namespace = "cloudstack-host-1"

func main() {
	keep := flag.Bool("keep", false, "after the lifecycle, deploy another Instance and keep it and the API server running, for kubectl (the kubeconfig path is printed)")
	flag.Parse()
	errorLogsOnly()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Stdout, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out io.Writer, keep bool) error {
	work, err := os.MkdirTemp("", "kubevirt-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	fmt.Fprintln(out, "== starting a local API server with the KubeVirt CRDs (envtest), KubeVirt's admission and VM controller, and the simulator")
	env, err := testenv.Start(ctx, testenv.Options{})
	if err != nil {
		return err
	}
	defer env.Stop()
	sim, err := kubevirtsim.Start(ctx, env.Config, kubevirtsim.Options{StepDelay: kubevirtsim.DefaultStepDelay})
	if err != nil {
		return err
	}
	defer sim.Stop()
	kubeconfig := filepath.Join(work, "kubeconfig")
	if err := env.WriteKubeconfig(kubeconfig); err != nil {
		return err
	}
	if err := prepareCluster(ctx, env.Client); err != nil {
		return err
	}
	exe, err := buildExtension(work)
	if err != nil {
		return err
	}

	d := &driver{
		out: out, c: env.Client,
		cs: &cloudstacksim.Provisioner{Executable: exe, PayloadDir: filepath.Join(work, "payloads")},
		host: cloudstacksim.Host{
			Host:      map[string]string{"kubeconfig": kubeconfig, "namespace": namespace},
			Extension: map[string]string{"log_file": filepath.Join(work, "extension.log")},
		},
	}
	fmt.Fprintf(out, "== CloudStack host details: kubeconfig=<envtest admin>, namespace=%s\n", namespace)
	if err := d.play(ctx, instance(45, "126f4562-1f0f-4313-875e-6150cabeb72f"), lifecycle()); err != nil {
		return err
	}
	if !keep {
		return nil
	}
	return d.keep(ctx, kubeconfig)
}

// errorLogsOnly gives controller-runtime (envtest, the clients) a logger for errors, on stderr. Without one,
// the first thing it logs 30 s after the process started (a first run spends longer building) prints a stack
// trace saying no logger was set.
func errorLogsOnly() {
	ctrllog.SetLogger(logr.FromSlogHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
}

// prepareCluster creates what an operator sets up once per CloudStack host: the namespace and the network
// attachment of the guest VLAN.
func prepareCluster(ctx context.Context, c client.Client) error {
	return fixture.HostNamespace(ctx, c, namespace, 1577)
}

func buildExtension(dir string) (string, error) {
	_, file, _, _ := runtime.Caller(0)
	exe := filepath.Join(dir, "kubevirt-extension")
	cmd := exec.Command("go", "build", "-o", exe, "./cmd/extension")
	cmd.Dir = filepath.Join(filepath.Dir(file), "..", "..")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the extension: %w\n%s", err, msg)
	}
	return exe, nil
}

// driver plays CloudStack's management server for one host.
type driver struct {
	out  io.Writer
	c    client.Client
	cs   *cloudstacksim.Provisioner
	host cloudstacksim.Host
}

// instance is the Instance CloudStack deploys as its id-th VM.
func instance(id int64, uuid string) cloudstacksim.Instance {
	return cloudstacksim.Instance{
		ID: id, Name: fmt.Sprintf("i-2-%d-VM", id), UUID: uuid, CPUs: 2, MemoryMB: 2048,
		Details: map[string]string{"root_disk_url": "https://cloud.example/images/fedora-43.qcow2", "root_disk_size": "20Gi"},
		NICs:    []cloudstacksim.NIC{{DeviceID: 0, MAC: fmt.Sprintf("02:01:00:cc:00:%02x", id-44), IP: fmt.Sprintf("10.1.1.%d", 200+id), BroadcastURI: "vlan://1577"}},
	}
}

// step is one call of CloudStack's: what the user did and the action.
type step struct {
	what, action string
	// as is the action whose payload the call sends, when not its own: the demo runs check as a person at a
	// shell does, with a create's payload, so that it checks the Instance's NICs too.
	as string
	// state is what CloudStack records for the Instance between actions (cloudstacksim.Instance.State).
	state string
}

// lifecycle is an Instance's life as CloudStack drives it, from a check to its expunge.
func lifecycle() []step {
	return []step{
		{what: "troubleshoot: check (also a custom action)", action: "check", as: "create"},
		{what: "deploy: prepare", action: "prepare"},
		{what: "deploy: create", action: "create"},
		{what: "ping (4.21: one status per VM)", action: "status"},
		{what: "ping (4.22: one statuses per host)", action: "statuses"},
		{what: "stop", action: "stop"},
		{what: "ping", action: "status", state: "Stopped"},
		{what: "start", action: "start"},
		{what: "reboot", action: "reboot"},
		{what: "destroy + expunge: delete", action: "delete"},
		{what: "ping", action: "statuses"},
	}
}

// deploy is what CloudStack calls to deploy an Instance.
func deploy() []step {
	return []step{
		{what: "keep: deploy another Instance: prepare", action: "prepare"},
		{what: "keep: deploy another Instance: create", action: "create"},
	}
}

// keep deploys another Instance, the lifecycle's having been expunged, and leaves it running with the API
// server until ctx ends (Ctrl-C), for kubectl.
func (d *driver) keep(ctx context.Context, kubeconfig string) error {
	in := instance(46, "9b1e7c2a-5d3f-4e8b-a6c1-0f2d4e6a8b46")
	if err := d.play(ctx, in, deploy()); err != nil {
		return err
	}
	name, err := translate.VMName(in.Name)
	if err != nil {
		return err
	}
	fmt.Fprintf(d.out, "\n== kept: Instance %s runs as VirtualMachine %s/%s, and the API server with it:\n"+
		"   KUBECONFIG=%s kubectl get vm -n %s -L %s\n   Ctrl-C to stop both.\n",
		in.Name, namespace, name, kubeconfig, namespace, translate.LabelInstanceName)
	<-ctx.Done()
	return nil
}

// play makes the steps' calls for the Instance in order, printing each call, its answer and the VM after it.
func (d *driver) play(ctx context.Context, in cloudstacksim.Instance, steps []step) error {
	for _, s := range steps {
		if err := d.call(ctx, in, s); err != nil {
			return err
		}
	}
	return nil
}

func (d *driver) call(ctx context.Context, in cloudstacksim.Instance, s step) error {
	in.State = s.state
	payload := d.host.Payload(cmp.Or(s.as, s.action), in)
	res, err := d.cs.Run(ctx, s.action, payload, 60*time.Second)
	if err != nil {
		return fmt.Errorf("%s: %w", s.action, err)
	}
	output := res.Output
	if s.action == "check" {
		output = renderTable(output)
	}
	fmt.Fprintf(d.out, "\n-- %s\n$ kubevirt-extension %s <payload.json> 60\n%s\n   exit %d in %s", s.what, s.action, output, res.ExitCode, res.Elapsed.Round(time.Millisecond))
	switch s.action {
	case "status":
		fmt.Fprintf(d.out, "; CloudStack reads %s", cloudstacksim.ParseStatus(res))
	case "statuses":
		states, err := cloudstacksim.ParseStatuses(res)
		fmt.Fprintf(d.out, "; CloudStack reads %v %v", states, errOrEmpty(err))
	}
	fmt.Fprintln(d.out)
	d.show(ctx, in)
	if !res.Succeeded() {
		return fmt.Errorf("%s failed: %s", s.action, res.Details())
	}
	return nil
}

// show prints what `kubectl get vm,vmi` would show of the Instance.
func (d *driver) show(ctx context.Context, in cloudstacksim.Instance) {
	name, _ := translate.VMName(in.Name)
	key := client.ObjectKey{Namespace: namespace, Name: name}
	var vm kubevirtv1.VirtualMachine
	if err := d.c.Get(ctx, key, &vm); err != nil {
		fmt.Fprintf(d.out, "   kubectl: no VirtualMachine %s/%s\n", namespace, name)
		return
	}
	line := fmt.Sprintf("   kubectl: vm/%s runStrategy=%s status=%s", name, *vm.Spec.RunStrategy, vm.Status.PrintableStatus)
	var vmi kubevirtv1.VirtualMachineInstance
	if err := d.c.Get(ctx, key, &vmi); err == nil {
		line += fmt.Sprintf("; vmi phase=%s uid=%.8s", vmi.Status.Phase, vmi.UID)
	}
	fmt.Fprintln(d.out, line)
}

func errOrEmpty(err error) string {
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return ""
}

// renderTable shows a printmessage answer as CloudStack's UI does: a row per entry.
func renderTable(output string) string {
	var answer struct {
		Status  string
		Message []struct{ Check, Result, Detail string }
	}
	if err := json.Unmarshal([]byte(output), &answer); err != nil || len(answer.Message) == 0 {
		return output
	}
	var b strings.Builder
	fmt.Fprintf(&b, `{"status":%q,"printmessage":"true","message":[...]}, which CloudStack's UI shows as:`, answer.Status)
	for _, m := range answer.Message {
		fmt.Fprintf(&b, "\n   %-4s  %-11s %s", m.Result, m.Check, m.Detail)
	}
	return b.String()
}
