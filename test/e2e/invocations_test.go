package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/cloudstacksim"
)

// TestBadInvocations: malformed invocations and payloads, each run as CloudStack runs the executable. Each is
// one JSON error line naming what is wrong, a non-zero exit, no echo of the payload's secret, and nothing in
// the cluster.
func TestBadInvocations(t *testing.T) {
	const ns = "e2e-bad-raw"
	namespace(t, ns)
	dir := t.TempDir()
	in := instance(map[string]string{"image": "quay.io/containerdisks/fedora:43"})
	const secret = "uHQHQ4niy8f4ogwCM1k-rw" // the payload's vncPassword

	file := func(name string, data []byte) string {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, data, 0o600))
		return path
	}
	payload := func(name string, edit func(p map[string]any)) string {
		p := host(ns).Payload("create", in)
		data, err := json.Marshal(p) // a round trip gives plain maps to edit
		require.NoError(t, err)
		var m map[string]any
		require.NoError(t, json.Unmarshal(data, &m))
		if edit != nil {
			edit(m)
		}
		data, err = cloudstacksim.GsonJSON(m)
		require.NoError(t, err)
		return file(name+".json", data)
	}
	vmTO := func(p map[string]any) map[string]any { return p["cloudstack.vm.details"].(map[string]any) }
	hostDetails := func(p map[string]any) map[string]any {
		return p["externaldetails"].(map[string]any)["host"].(map[string]any)
	}
	valid := payload("valid", nil)
	big := bytes.Repeat([]byte(" "), 20<<20)
	copy(big, `{"virtualmachinename":"i-2-1-VM"}`)

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no arguments", nil, "usage: extension <action> <payload-file> <timeout-seconds>"},
		{"one argument", []string{"create"}, "got 1 arguments"},
		{"two arguments", []string{"create", valid}, "got 2 arguments"},
		{"an extra argument", []string{"create", valid, "60", "extra"}, "got 4 arguments"},
		{"timeout not a number", []string{"create", valid, "sixty"}, `timeout "sixty"`},
		{"timeout negative", []string{"create", valid, "-5"}, `timeout "-5"`},
		{"timeout zero", []string{"create", valid, "0"}, `timeout "0"`},
		{"timeout fractional", []string{"create", valid, "1.5"}, `timeout "1.5"`},
		{"payload file missing", []string{"create", filepath.Join(dir, "nowhere.json"), "60"}, "reading the payload file"},
		{"payload file is a directory", []string{"create", dir, "60"}, "reading the payload file"},
		{"payload file empty", []string{"create", file("empty.json", nil), "60"}, "payload file is empty"},
		{"payload not JSON", []string{"create", file("text.json", []byte("vncPassword="+secret)), "60"}, "payload is not CloudStack's JSON"},
		{"payload truncated", []string{"create", file("truncated.json", []byte(`{"cloudstack.vm.details":{"vncPassword":"`+secret)), "60"}, "payload is not CloudStack's JSON"},
		{"payload a JSON array", []string{"create", file("array.json", []byte(`[{"virtualmachinename":"i-2-1-VM"}]`)), "60"}, "payload is not CloudStack's JSON"},
		{"payload of 20 MB", []string{"create", file("big.json", big), "60"}, "larger than 4 MiB"},
		{"no cloudstack.vm.details", []string{"create", payload("novm", func(p map[string]any) { delete(p, "cloudstack.vm.details") }), "60"}, "cloudstack.vm.details"},
		{"no instance name", []string{"stop", payload("noname", func(p map[string]any) {
			delete(p, "virtualmachinename")
			delete(vmTO(p), "name")
		}), "60"}, "the payload names no Instance"},
		{"cpus as a string", []string{"create", payload("cpustring", func(p map[string]any) { vmTO(p)["cpus"] = "two" }), "60"}, `field "cloudstack.vm.details.cpus" holds a JSON string`},
		{"negative memory", []string{"create", payload("negmem", func(p map[string]any) { vmTO(p)["minRam"] = -1024 }), "60"}, "memory"},
		{"no CPUs", []string{"create", payload("nocpu", func(p map[string]any) { vmTO(p)["cpus"] = 0 }), "60"}, "CPU"},
		{"invalid MAC", []string{"create", payload("badmac", func(p map[string]any) {
			vmTO(p)["nics"].([]any)[0].(map[string]any)["mac"] = "zz:zz:zz:zz:zz:zz"
		}), "60"}, "MAC"},
		{"instance name Kubernetes cannot hold", []string{"create", payload("badname", func(p map[string]any) {
			p["virtualmachinename"] = "i-2-45-VM_with_underscores"
			vmTO(p)["name"] = "i-2-45-VM_with_underscores"
		}), "60"}, "i-2-45-VM_with_underscores"},
		{"instance name too long", []string{"create", payload("longname", func(p map[string]any) {
			long := "i-2-" + strings.Repeat("9", 70) + "-VM"
			p["virtualmachinename"], vmTO(p)["name"] = long, long
		}), "60"}, "63"},
		{"no kubeconfig detail", []string{"create", payload("nokc", func(p map[string]any) { delete(hostDetails(p), "kubeconfig") }), "60"}, "detail kubeconfig: not set"},
		{"relative kubeconfig", []string{"create", payload("relkc", func(p map[string]any) { hostDetails(p)["kubeconfig"] = "kubeconfig" }), "60"}, "not an absolute path"},
		{"kubeconfig not YAML", []string{"create", payload("junkkc", func(p map[string]any) {
			hostDetails(p)["kubeconfig"] = file("junk.kubeconfig", []byte("token: "+secret+"\n\tnot: yaml: at all"))
		}), "60"}, "kubeconfig"},
		{"no namespace detail", []string{"create", payload("nons", func(p map[string]any) { delete(hostDetails(p), "namespace") }), "60"}, "detail namespace: not set"},
		{"namespace not a name", []string{"create", payload("badns", func(p map[string]any) { hostDetails(p)["namespace"] = "Tenant_A" }), "60"}, "not a Kubernetes namespace name"},
		{"a system namespace", []string{"create", payload("sysns", func(p map[string]any) { hostDetails(p)["namespace"] = "kube-system" }), "60"}, "system namespace"},
		{"namespace missing from the cluster", []string{"create", payload("missingns", func(p map[string]any) { hostDetails(p)["namespace"] = "e2e-absent" }), "60"}, "e2e-absent"},
		{"image not an image reference", []string{"create", payload("badimage", func(p map[string]any) {
			p["externaldetails"].(map[string]any)["virtualmachine"] = map[string]any{"image": "not an image!"}
		}), "60"}, "detail image"},
		{"unknown action", []string{"hibernate", valid, "60"}, `unsupported action "hibernate"`},
		{"a forwarded agent command", []string{"com.cloud.agent.api.PrepareExternalProvisioningCommand@3a1f", valid, "60"}, "unsupported action"},
		{"a custom action it does not have", []string{"TakeBackup", valid, "60"}, `unsupported action "TakeBackup"`},
	}
	require.GreaterOrEqual(t, len(tests), 30)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(s.extension, tt.args...)
			out, err := cmd.CombinedOutput() // CloudStack merges stderr into stdout
			var exit *exec.ExitError
			require.ErrorAs(t, err, &exit, "non-zero exit: %s", out)
			text := string(out)
			require.True(t, strings.HasSuffix(text, "}\n") && strings.Count(text, "\n") == 1, "one JSON line: %q", text)
			var answer struct{ Status, Message string }
			require.NoError(t, json.Unmarshal(out, &answer))
			assert.Equal(t, "error", answer.Status)
			assert.Contains(t, answer.Message, tt.want)
			assert.NotContains(t, text, secret, "the payload's secret is not echoed")
		})
	}
	var vms kubevirtv1.VirtualMachineList
	require.NoError(t, s.client.List(t.Context(), &vms, client.InNamespace(ns)))
	assert.Empty(t, vms.Items, "nothing created by any of them")
}
