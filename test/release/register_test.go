package release

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
		"listcustomactions", "addcustomaction", // check
		"listcustomactions", "addcustomaction", "listcustomactions", "addcustomaction", "listcustomactions", "addcustomaction",
		"listcustomactions", "addcustomaction", "listcustomactions", "addcustomaction", "listcustomactions", "addcustomaction",
		"listcustomactions", "addcustomaction", "listcustomactions", "addcustomaction",
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
	checkCustomActions(t, first)

	// The stand-in refuses what CloudStack refuses.
	for _, args := range [][]string{
		{"-o", "json", "add", "host", "zoneid=zone-1", "podid=pod-1", "hypervisor=External", "url=http://x", "username=u"},
		{"-o", "json", "register", "template", "name=t", "format=RAW", "hypervisor=External", "url=http://x", "zoneids=z"},
		{"-o", "json", "create", "extension", "name=x", "type=Orchestrator", "details[0].key=kubeconfig"},
		{"-o", "json", "add", "customaction", "extensionid=e", "name=x", "parameters[0].name=n", "parameters[0].type=TEXT"},
		{"-o", "json", "add", "customaction", "extensionid=e", "name=x", "parameters[0].name=n", "parameters[0].type=BOOLEAN", "parameters[0].validationformat=EMAIL"},
		{"-o", "json", "add", "customaction", "extensionid=e", "name=x", "parameters[0].type=STRING"},
		{"-o", "json", "add", "customaction", "extensionid=e", "name=x", "parameters[0].name=n", "parameters[0].type=STRING", "parameters[0].required=yes"},
		{"-o", "json", "add", "customaction", "extensionid=e", "name=x", "allowedroletypes=Admin,Root"},
		{"-o", "json", "add", "customaction", "extensionid=e", "name=x", "timeout=soon"},
		{"-o", "json", "add", "customaction", "extensionid=e", "name=Create.Snapshot"},
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

// checkCustomActions checks that every custom action the extension implements is registered on Instances,
// enabled, with a timeout, its roles, and its parameters typed as the extension reads them.
func checkCustomActions(t *testing.T, calls []apiCall) {
	t.Helper()
	type param struct{ name, typ, required string }
	want := map[string]struct {
		timeout, roles string
		params         []param
	}{
		"ListSnapshots":   {"60", "Admin,ResourceAdmin,DomainAdmin,User", nil},
		"CreateSnapshot":  {"300", "Admin,ResourceAdmin,DomainAdmin,User", []param{{"snap_name", "STRING", "true"}, {"snap_description", "STRING", "false"}}},
		"RestoreSnapshot": {"300", "Admin,ResourceAdmin,DomainAdmin,User", []param{{"snap_name", "STRING", "true"}}},
		"DeleteSnapshot":  {"120", "Admin,ResourceAdmin,DomainAdmin,User", []param{{"snap_name", "STRING", "true"}}},
		"Pause":           {"60", "Admin,ResourceAdmin,DomainAdmin,User", nil},
		"Resume":          {"60", "Admin,ResourceAdmin,DomainAdmin,User", nil},
		"Migrate":         {"900", "Admin", []param{{"target_node", "STRING", "false"}}},
		"Describe":        {"60", "Admin,ResourceAdmin", []param{{"events", "NUMBER", "false"}}},
	}
	got := map[string]map[string]string{}
	for _, c := range calls {
		if c.API == "addcustomaction" {
			got[c.Params["name"]] = c.Params
		}
	}
	require.Contains(t, got, "check")
	assert.Len(t, got, len(want)+1, "check and the actions the extension implements")
	for name, w := range want {
		p, ok := got[name]
		if !assert.True(t, ok, "%s is registered", name) {
			continue
		}
		assert.Equal(t, "VirtualMachine", p["resourcetype"], name)
		assert.Equal(t, "true", p["enabled"], name)
		assert.Equal(t, w.timeout, p["timeout"], name)
		assert.Equal(t, w.roles, p["allowedroletypes"], name)
		assert.NotEmpty(t, p["description"], name)
		n := 0
		for k := range p {
			if strings.HasPrefix(k, "parameters[") && strings.HasSuffix(k, "].name") {
				n++
			}
		}
		assert.Equal(t, len(w.params), n, "%s: parameters", name)
		for i, wp := range w.params {
			prefix := fmt.Sprintf("parameters[%d].", i)
			assert.Equal(t, wp.name, p[prefix+"name"], name)
			assert.Equal(t, wp.typ, p[prefix+"type"], name)
			assert.Equal(t, wp.required, p[prefix+"required"], name)
			assert.Equal(t, "NONE", p[prefix+"validationformat"], name)
		}
	}
}
