package e2e

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/cloudstacksim"
)

type checkLine struct{ Check, Result, Detail string }

// runCheck runs the check action and returns its table by check name.
func runCheck(t *testing.T, h cloudstacksim.Host, payload any) (cloudstacksim.Result, map[string]checkLine) {
	t.Helper()
	res, err := provisioner().Run(t.Context(), "check", payload, callTimeout)
	require.NoError(t, err)
	t.Logf("check -> exit %d: %s", res.ExitCode, res.Output)
	var answer struct {
		Status, PrintMessage string
		Message              []checkLine
	}
	require.NoError(t, json.Unmarshal([]byte(res.Output), &answer), "one JSON table: %s", res.Output)
	assert.Equal(t, "true", answer.PrintMessage, "rendered as a table by CloudStack's UI")
	lines := map[string]checkLine{}
	for _, l := range answer.Message {
		lines[l.Check] = l
	}
	return res, lines
}

// TestCheck: the check action reports each step between the management server and the cluster, and fails
// exactly when something blocks Instances.
func TestCheck(t *testing.T) {
	needsEnvtest(t)
	applyAllRBAC(t)
	namespace(t, managedNamespace)
	kubeconfig, err := s.env.KubeconfigFor(extensionIdentity, serviceAccountGroups)
	require.NoError(t, err)
	h := host(managedNamespace)
	h.Host["kubeconfig"] = kubeconfig
	in := instance(map[string]string{"image": "quay.io/containerdisks/fedora:43"})

	t.Run("a healthy host, an Instance's payload", func(t *testing.T) {
		// As from a shell, with a create's payload: the one that names the Instance's NICs.
		res, lines := runCheck(t, h, h.Payload("create", in))
		assert.True(t, res.Succeeded())
		for _, name := range []string{"details", "kubeconfig", "API server", "identity", "KubeVirt", "CDI", "namespace", "permissions", "networks"} {
			assert.Equal(t, "ok", lines[name].Result, "%s: %s", name, lines[name].Detail)
		}
		assert.Contains(t, lines["identity"].Detail, extensionIdentity)
		assert.Contains(t, lines["networks"].Detail, "vlan-1577")
		assert.Equal(t, "warn", lines["reconciler"].Result, "no reconciler runs: slower, not blocking")
		assert.Equal(t, "ok", lines["status listing"].Result, lines["status listing"].Detail)
		assert.Contains(t, lines["status listing"].Detail, "by the launcher", "the suite runs the extension as install.sh lays it out")
		assert.Zero(t, managedObjects(t, managedNamespace, in.UUID), "a dry run creates nothing")
	})

	t.Run("a host-level payload", func(t *testing.T) {
		res, lines := runCheck(t, h, h.StatusesPayload())
		assert.True(t, res.Succeeded())
		assert.Equal(t, "ok", lines["namespace"].Result)
		assert.NotContains(t, lines, "networks", "no Instance, no NICs to check")
	})

	t.Run("a namespace the identity has no rights in", func(t *testing.T) {
		namespace(t, "e2e-other")
		other := host("e2e-other")
		other.Host["kubeconfig"] = kubeconfig
		res, lines := runCheck(t, other, other.StatusesPayload())
		assert.False(t, res.Succeeded())
		assert.Equal(t, "FAIL", lines["permissions"].Result)
		assert.Contains(t, lines["permissions"].Detail, "create virtualmachines.kubevirt.io (create)")
	})

	t.Run("a missing attachment and a missing namespace", func(t *testing.T) {
		missing := in
		missing.NICs = append([]cloudstacksim.NIC(nil), in.NICs...)
		missing.NICs[0].BroadcastURI = "vlan://3999"
		res, lines := runCheck(t, h, h.Payload("create", missing))
		assert.False(t, res.Succeeded())
		assert.Equal(t, "FAIL", lines["networks"].Result)
		assert.Contains(t, lines["networks"].Detail, "vlan-3999")

		gone := host("e2e-no-such-namespace")
		res, lines = runCheck(t, gone, gone.StatusesPayload())
		assert.False(t, res.Succeeded())
		assert.Equal(t, "FAIL", lines["namespace"].Result)
		assert.Contains(t, lines["namespace"].Detail, "does not exist")
	})

	t.Run("no kubeconfig", func(t *testing.T) {
		bad := host(managedNamespace)
		bad.Host["kubeconfig"] = "/etc/nowhere/kubeconfig"
		res, lines := runCheck(t, bad, bad.StatusesPayload())
		assert.False(t, res.Succeeded())
		assert.Equal(t, "FAIL", lines["kubeconfig"].Result)
		assert.NotContains(t, lines, "API server", "nothing further is tried")
	})
}
