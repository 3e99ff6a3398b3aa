package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/kube"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

// checkAnswer is a table CloudStack's UI renders (printmessage), for a custom action or the shell.
type checkAnswer = printTable[kube.Finding]

// summaryCheck names the first line of the table, which sums up the others.
const summaryCheck = "summary"

// check reports, one line each, what works and what does not between this management server and the
// cluster for the payload's host (and Instance, when the payload has one), under a first line that sums them up.
// It says whether nothing blocks Instances. Run by CloudStack as a custom action it answers success even then:
// CloudStack's UI draws a table only from an answer that exited 0 (see runAsCustomAction).
func check(ctx context.Context, p *translate.Payload, log *slog.Logger) (checkAnswer, bool) {
	var lines []kube.Finding
	add := func(f ...kube.Finding) { lines = append(lines, f...) }
	answer := func() (checkAnswer, bool) {
		for _, l := range lines {
			log.Info("check", "check", l.Check, "result", l.Result, "detail", l.Detail)
		}
		summary := summarize(lines)
		ok := summary.Result != kube.Fail
		status := "success"
		if !ok && !runAsCustomAction(p) {
			status = "error"
		}
		return checkAnswer{Status: status, PrintMessage: "true", Message: append([]kube.Finding{summary}, lines...)}, ok
	}

	conn, err := p.Details().Connection()
	if err != nil {
		add(kube.Finding{Check: "details", Result: kube.Fail, Detail: err.Error()})
		return answer()
	}
	add(kube.Finding{Check: "details", Result: kube.Pass, Detail: "namespace " + conn.Namespace + ", kubeconfig " + conn.Kubeconfig})
	cfg, err := kube.RESTConfig(conn)
	if err != nil {
		add(kube.Finding{Check: "kubeconfig", Result: kube.Fail, Detail: err.Error()})
		return answer()
	}
	tls := "TLS verified"
	if cfg.Insecure {
		tls = "TLS NOT verified (tls_insecure_skip_verify)"
	}
	add(kube.Finding{Check: "kubeconfig", Result: kube.Pass, Detail: "readable, server " + cfg.Host + ", " + tls})
	clock := kube.NewServerClock(cfg)
	c, err := kube.NewClient(cfg)
	if err != nil {
		add(kube.Finding{Check: "kubeconfig", Result: kube.Fail, Detail: err.Error()})
		return answer()
	}
	api := c.CheckAPI(ctx, cfg.Host)
	add(api...)
	if api[0].Result == kube.Fail {
		return answer()
	}
	add(c.CheckAPIs(ctx)...)
	in := kube.NewScope(c, conn.Namespace, nil).Diagnostics()
	vm, instance, err := probeVM(ctx, in.Lifecycle(), p, conn.Namespace)
	if err != nil {
		add(kube.Finding{Check: "Instance", Result: kube.Fail, Detail: err.Error()})
	}
	add(in.CheckNamespace(ctx, vm), in.CheckPermissions(ctx))
	if instance {
		add(in.CheckNetworks(ctx, vm))
	}
	if lease, ok, err := p.Details().ReconcilerLease(); err != nil {
		add(kube.Finding{Check: "reconciler", Result: kube.Fail, Detail: err.Error()})
	} else if ok {
		add(in.CheckHeartbeat(ctx, lease, clock))
	} else {
		add(kube.Finding{Check: "reconciler", Result: kube.Pass, Detail: "not used (reconciler_lease=none): status calls read every VM and VMI"})
	}
	add(checkListing(p))
	add(in.CheckConsole(ctx, p.Details()))
	return answer()
}

// checkListing says whether the status calls of a ping round can share a listing of the host's power states
// on this management server, and what answers them.
func checkListing(p *translate.Payload) kube.Finding {
	pc, err := openPowerCache(p)
	switch {
	case err != nil:
		return kube.Finding{Check: "status listing", Result: kube.Warn, Detail: "cannot be kept: " + err.Error() + ": every status of a ping round reads the cluster"}
	case pc == nil:
		return kube.Finding{Check: "status listing", Result: kube.Pass, Detail: "not kept (no reconciler heartbeat, or status_cache off): every status of a ping round reads the cluster"}
	}
	by := "this extension, after its start"
	if self, err := os.Executable(); err == nil && filepath.Base(self) == "kubevirt-extension-core" {
		by = "the launcher beside this extension, without starting it"
	}
	return kube.Finding{Check: "status listing", Result: kube.Pass, Detail: fmt.Sprintf(
		"kept in %s while the reconciler's heartbeat holds, for up to %s; a ping's status is answered from it by %s", pc.dir, pc.ttl, by)}
}

// runCheck is the check action: its table, or, from a shell, checkFailed when something blocks Instances.
func runCheck(ctx context.Context, p *translate.Payload, log *slog.Logger) (any, error) {
	answer, ok := check(ctx, p, log)
	if !ok && !runAsCustomAction(p) {
		return nil, checkFailed{answer} // from a shell: exit 1
	}
	return answer, nil
}

// probeVM is the payload's Instance as a VM when the payload has one, else a small stand-in: what the check
// dry-runs to see that the namespace exists and takes a VirtualMachine. An Instance whose VM cannot be built
// is reported (its create would fail), and the stand-in is used for the namespace checks.
func probeVM(ctx context.Context, in kube.Lifecycle, p *translate.Payload, namespace string) (vm *kubevirtv1.VirtualMachine, instance bool, err error) {
	if p.VM == nil {
		return standIn(namespace), false, nil
	}
	spec, err := resolveSpec(ctx, in, p)
	if err == nil {
		vm, err = translate.VirtualMachine(p, namespace, spec)
	}
	if err != nil {
		return standIn(namespace), false, err
	}
	return vm, true, nil
}

func standIn(namespace string) *kubevirtv1.VirtualMachine {
	return &kubevirtv1.VirtualMachine{
		ObjectMeta: metav1.ObjectMeta{Name: "cloudstack-kubevirt-check", Namespace: namespace,
			Labels: map[string]string{translate.LabelManagedBy: translate.ManagedBy}},
		Spec: kubevirtv1.VirtualMachineSpec{
			RunStrategy: ptr.To(kubevirtv1.RunStrategyHalted),
			Template: &kubevirtv1.VirtualMachineInstanceTemplateSpec{Spec: kubevirtv1.VirtualMachineInstanceSpec{
				Domain: kubevirtv1.DomainSpec{Memory: &kubevirtv1.Memory{Guest: ptr.To(resource.MustParse("64Mi"))}},
			}},
		},
	}
}

// summarize is the table's first line: FAIL naming every check that blocks Instances, else warn naming those
// that cost something, else ok.
func summarize(lines []kube.Finding) kube.Finding {
	var fails, warns []string
	for _, l := range lines {
		switch l.Result {
		case kube.Fail:
			fails = append(fails, l.Check)
		case kube.Warn:
			warns = append(warns, l.Check)
		}
	}
	switch {
	case len(fails) > 0:
		return kube.Finding{Check: summaryCheck, Result: kube.Fail, Detail: fmt.Sprintf(
			"%d of %d checks FAIL (%s): Instances cannot run here until they pass", len(fails), len(lines), strings.Join(fails, ", "))}
	case len(warns) > 0:
		return kube.Finding{Check: summaryCheck, Result: kube.Warn, Detail: fmt.Sprintf(
			"no check fails; %d of %d warn (%s): Instances run, at the cost each line names", len(warns), len(lines), strings.Join(warns, ", "))}
	}
	return kube.Finding{Check: summaryCheck, Result: kube.Pass, Detail: fmt.Sprintf("all %d checks ok", len(lines))}
}

// runAsCustomAction says whether CloudStack ran this call as a custom action: runCustomAction names the action
// in the payload (ExternalPathPayloadProvisioner.runCustomAction, accessDetails.put(ApiConstants.ACTION, ...),
// apache/cloudstack 4.22), which lifecycle payloads saved for a run from the shell do not. CloudStack turns a
// non-zero exit into "Exit code: N, Output: ..." and RunCustomAction.vue then shows no table at all, so as a
// custom action check exits 0 and lets its table (summary first) say what failed.
func runAsCustomAction(p *translate.Payload) bool { return p.Action != "" }

// checkFailed carries a check's table when something blocks Instances.
type checkFailed struct{ answer checkAnswer }

func (e checkFailed) Error() string { return "the check found what blocks Instances" }
