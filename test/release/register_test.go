package release

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type apiCall struct {
	API    string            `json:"api"`
	Params map[string]string `json:"params"`
}

// TestRegister runs hack/register.sh against a stand-in for cmk and the CloudStack API (test/cmksim) that
// checks each command and its required parameters, twice: the second run only finds what the first made.
func TestRegister(t *testing.T) {
	dir := t.TempDir()
	run(t, nil, "go", "build", "-o", filepath.Join(dir, "cmk"), "./test/cmksim")
	env := []string{
		"CMK=" + filepath.Join(dir, "cmk"), "CMKSIM_STATE=" + filepath.Join(dir, "state.json"), "CMKSIM_LOG=" + filepath.Join(dir, "calls.log"),
		"ZONE_ID=zone-1", "POD_ID=pod-1", "OS_TYPE_ID=ostype-1", "HOST_NAMESPACE=tenant-a", "INSTANCETYPE=u1.medium",
	}
	run(t, env, "hack/register.sh")
	first := readCalls(t, filepath.Join(dir, "calls.log"))
	var apis []string
	for _, c := range first {
		apis = append(apis, c.API)
	}
	assert.Equal(t, []string{
		"listextensions", "createextension", "listclusters", "addcluster", "listhosts", "addhost",
		"listtemplates", "registertemplate", "listserviceofferings", "createserviceoffering",
		"listcustomactions", "addcustomaction",
	}, apis)
	byAPI := map[string]map[string]string{}
	for _, c := range first {
		byAPI[c.API] = c.Params
	}
	assert.Equal(t, "kubevirt-extension", byAPI["createextension"]["path"])
	assert.Equal(t, "/etc/cloudstack/kubevirt/kubeconfig", byAPI["createextension"]["details[0].value"])
	assert.Equal(t, "extension-0001", byAPI["addcluster"]["extensionid"], "the cluster is registered with the extension")
	assert.Equal(t, "cluster-0001", byAPI["addhost"]["clusterid"])
	assert.Equal(t, "namespace", byAPI["addhost"]["externaldetails[0].key"])
	assert.Equal(t, "tenant-a", byAPI["addhost"]["externaldetails[0].value"])
	assert.Equal(t, "image", byAPI["registertemplate"]["externaldetails[0].key"])
	assert.Equal(t, "u1.medium", byAPI["createserviceoffering"]["externaldetails[0].value"])
	assert.Equal(t, "check", byAPI["addcustomaction"]["name"])

	// The stand-in refuses what CloudStack refuses.
	for _, args := range [][]string{
		{"-o", "json", "add", "host", "zoneid=zone-1", "podid=pod-1", "hypervisor=External", "url=http://x", "username=u"},
		{"-o", "json", "register", "template", "name=t", "format=RAW", "hypervisor=External", "url=http://x", "zoneids=z"},
		{"-o", "json", "create", "extension", "name=x", "type=Orchestrator", "details[0].key=kubeconfig"},
	} {
		cmd := exec.Command(filepath.Join(dir, "cmk"), args...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		assert.Error(t, err, "%v: %s", args, out)
		assert.Contains(t, string(out), "errortext")
	}

	require.NoError(t, os.Remove(filepath.Join(dir, "calls.log")))
	run(t, env, "hack/register.sh")
	for _, c := range readCalls(t, filepath.Join(dir, "calls.log")) {
		assert.Regexp(t, "^list", c.API, "a second run creates nothing")
	}
}

func readCalls(t *testing.T, path string) []apiCall {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var calls []apiCall
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var c apiCall
		require.NoError(t, json.Unmarshal(sc.Bytes(), &c))
		calls = append(calls, c)
	}
	return calls
}
