package e2e

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/cloudstacksim"
)

// TestNoSecretLeaks plants known secrets where CloudStack and the operator put them, runs every action, the
// successful and the failing, and greps everything the extension wrote: stdout (which CloudStack stores in the
// job result and shows in the UI) and the log file.
func TestNoSecretLeaks(t *testing.T) {
	const ns = "e2e-lifecycle"
	namespace(t, ns)
	const (
		vncPassword  = "uHQHQ4niy8f4ogwCM1k-rw" // every payload's cloudstack.vm.details.vncPassword
		detailSecret = "d3tail-s3cret-9f2c"     // an operator's detail that happens to hold a secret
	)
	kubeconfig, err := os.ReadFile(s.kubeconfig)
	require.NoError(t, err)
	secrets := []string{vncPassword, detailSecret}
	// The kubeconfig's credentials: client key, certificate, token, whichever it holds.
	for _, m := range regexp.MustCompile(`(client-key-data|client-certificate-data|token|password): *(\S+)`).FindAllSubmatch(kubeconfig, -1) {
		secrets = append(secrets, string(m[2][:min(len(m[2]), 40)]))
	}
	require.GreaterOrEqual(t, len(secrets), 3, "the kubeconfig holds credentials to look for")

	h, logFile := hostWithLog(t, ns)
	h.Host["api_password"] = detailSecret
	in := instance(map[string]string{"image": "quay.io/containerdisks/fedora:43"})
	broken := instance(map[string]string{"image": badImage})
	broken.NICs[0].BroadcastURI = "vlan://4000" // no attachment: create fails
	var outputs []string
	run := func(action string, in cloudstacksim.Instance) {
		res := call(t, h, action, in)
		outputs = append(outputs, res.Output)
	}
	for _, action := range []string{"prepare", "create", "status", "statuses", "stop", "start", "reboot", "delete"} {
		run(action, in)
	}
	run("create", broken)
	run("getconsole", in)
	res, err := provisioner().Run(t.Context(), "status", map[string]any{"externaldetails": map[string]any{"host": h.Host}}, callTimeout)
	require.NoError(t, err)
	outputs = append(outputs, res.Output)

	logged, err := os.ReadFile(logFile)
	require.NoError(t, err)
	require.NotEmpty(t, logged, "the log was written")
	everything := strings.Join(outputs, "\n") + "\n" + string(logged)
	for _, secret := range secrets {
		assert.NotContains(t, everything, secret, "a planted secret leaked")
	}
}
