package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/kube"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/cloudstacksim"
)

// brokenHostPayload is an Instance's payload whose host names a kubeconfig this machine does not have: check
// finds the details fine and FAILs at the kubeconfig. action is what runCustomAction adds ("" for the shell).
func brokenHostPayload(t *testing.T, action string) string {
	t.Helper()
	actionField := ""
	if action != "" {
		actionField = `"action":"` + action + `",`
	}
	return writePayload(t, `{`+actionField+`"externaldetails":{"host":{"namespace":"tenant-a","kubeconfig":"/nonexistent/kubeconfig"},
		"extension":{"log_file":"`+t.TempDir()+`/kv.log"}},"virtualmachineid":"126f4562-1f0f-4313-875e-6150cabeb72f",
		"virtualmachinename":"i-2-45-VM","cloudstack.vm.details":{"name":"i-2-45-VM","cpus":1,"minRam":536870912,"maxRam":536870912}}`)
}

// checkAction is the check action as hack/register.sh registers it.
func checkAction() cloudstacksim.CustomAction {
	return cloudstacksim.CustomAction{Name: "check", ExtensionName: "KubeVirt",
		SuccessMessage: "The first line sums up what works and what does not",
		ErrorMessage:   "check could not run: see the management server log"}
}

// TestCheckFailuresReachTheUI runs check as CloudStack's runCustomAction does and reads the answer as CloudStack
// and its UI do (cloudstacksim.Render models RunCustomAction.vue): the FAIL lines and the summary are in a table.
// From a shell, the same table comes with exit 1; had CloudStack run that, the UI would show no table at all.
func TestCheckFailuresReachTheUI(t *testing.T) {
	tests := []struct {
		name      string
		action    string
		wantExit  int
		wantTable bool
	}{
		{"as a custom action", "check", exitOK, true},
		{"from a shell, with a lifecycle payload", "", exitFailed, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out := runCaptured(t, "check", brokenHostPayload(t, tt.action), "60")
			require.Equal(t, tt.wantExit, code, out)
			assert.Contains(t, out, `"check":"kubeconfig","result":"FAIL"`, "the table is the answer either way")

			dialog := cloudstacksim.Render(checkAction().Result(cloudstacksim.Result{ExitCode: code, Output: strings.TrimSpace(out)}))
			require.Equal(t, tt.wantTable, dialog.HasTable(), "%+v", dialog)
			if !tt.wantTable {
				assert.Equal(t, "error", dialog.Kind)
				assert.Equal(t, checkAction().ErrorMessage, dialog.Message, "only the error message: the FAIL lines are lost")
				return
			}
			assert.Equal(t, "success", dialog.Kind)
			assert.Equal(t, checkAction().SuccessMessage, dialog.Message)
			assert.Equal(t, []string{"check", "result", "detail"}, dialog.Headers)
			require.GreaterOrEqual(t, len(dialog.Rows), 3)
			assert.Equal(t, []string{"summary", "FAIL", "1 of 2 checks FAIL (kubeconfig): Instances cannot run here until they pass"}, dialog.Rows[0])
			assert.Equal(t, []string{"details", "ok", "namespace tenant-a, kubeconfig /nonexistent/kubeconfig"}, dialog.Rows[1])
			assert.Equal(t, "kubeconfig", dialog.Rows[2][0])
			assert.Equal(t, "FAIL", dialog.Rows[2][1])
			assert.Contains(t, dialog.Rows[2][2], "/nonexistent/kubeconfig does not exist on this management server")
		})
	}
}

// TestFailedPrepareReachesTheUserAsFailedToPrepareVM: CloudStack hides a failed prepare's answer from the user
// (cloudstacksim.Prepare models VirtualMachineManagerImpl): the reason is only in the logs, which is why
// troubleshooting starts with check.
func TestFailedPrepareReachesTheUserAsFailedToPrepareVM(t *testing.T) {
	code, out := runCaptured(t, "prepare", brokenHostPayload(t, ""), "60")
	require.Equal(t, exitFailed, code, out)
	o := cloudstacksim.Prepare(cloudstacksim.Result{ExitCode: code, Output: strings.TrimSpace(out)})
	assert.False(t, o.OK)
	assert.Equal(t, "Failed to prepare VM", o.UserError)
	assert.Contains(t, o.Logged, "kubeconfig /nonexistent/kubeconfig does not exist on this management server",
		"the extension's reason is in management-server.log only")
}

func TestSummarize(t *testing.T) {
	f := func(check, result string) kube.Finding { return kube.Finding{Check: check, Result: result} }
	tests := []struct {
		name  string
		lines []kube.Finding
		want  kube.Finding
	}{
		{"all ok", []kube.Finding{f("details", kube.Pass), f("kubeconfig", kube.Pass)},
			kube.Finding{Check: "summary", Result: kube.Pass, Detail: "all 2 checks ok"}},
		{"warnings only", []kube.Finding{f("details", kube.Pass), f("reconciler", kube.Warn), f("console", kube.Warn)},
			kube.Finding{Check: "summary", Result: kube.Warn, Detail: "no check fails; 2 of 3 warn (reconciler, console): Instances run, at the cost each line names"}},
		{"a failure outweighs warnings", []kube.Finding{f("permissions", kube.Fail), f("reconciler", kube.Warn), f("networks", kube.Fail)},
			kube.Finding{Check: "summary", Result: kube.Fail, Detail: "2 of 3 checks FAIL (permissions, networks): Instances cannot run here until they pass"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, summarize(tt.lines))
		})
	}
}
