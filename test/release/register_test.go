package release

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/cloudstacksim"
)

// cloudStack is a stand-in CloudStack (test/doubles/cmksim behind a cmk of its own) in a temporary directory.
type cloudStack struct {
	dir string
	env []string
}

// newCloudStack builds cmksim as cmk, and the extension for the custom actions it runs and register.sh registers.
func newCloudStack(t *testing.T) *cloudStack {
	t.Helper()
	dir := t.TempDir()
	run(t, nil, "go", "build", "-o", filepath.Join(dir, "cmk"), "./test/doubles/cmksim")
	run(t, nil, "go", "build", "-o", filepath.Join(dir, "kubevirt-extension"), "./cmd/extension")
	return &cloudStack{dir: dir, env: []string{
		"CMK=" + filepath.Join(dir, "cmk"), "CMKSIM_STATE=" + filepath.Join(dir, "state.json"),
		"CMKSIM_LOG=" + filepath.Join(dir, "calls.log"), "CMKSIM_EXTENSION=" + filepath.Join(dir, "kubevirt-extension"),
		"EXTENSION=" + filepath.Join(dir, "kubevirt-extension"), // register.sh reads the custom actions from it
	}}
}

// cmk runs one cmk command and returns what it printed and whether CloudStack took it.
func (cs *cloudStack) cmk(args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(cs.dir, "cmk"), append([]string{"-o", "json"}, args...)...)
	cmd.Env = append(os.Environ(), cs.env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// mustCmk runs a cmk command CloudStack must take and decodes its answer.
func (cs *cloudStack) mustCmk(t *testing.T, answer any, args ...string) {
	t.Helper()
	out, err := cs.cmk(args...)
	require.NoError(t, err, "cmk %v: %s", args, out)
	if answer != nil {
		require.NoError(t, json.Unmarshal([]byte(out), answer), out)
	}
}

// db is what CloudStack stored (cmksim's state file).
type db struct {
	Extensions []struct {
		ID, Name, Path string
		Details        map[string]string
		HiddenDetails  map[string]string `json:"hiddendetails"`
	}
	Clusters []struct {
		ID, Name, Hypervisor string
		ExtensionID          string `json:"extensionid"`
	}
	Hosts []struct {
		ID, Name  string
		ClusterID string `json:"clusterid"`
		Details   map[string]string
	}
	Templates []struct {
		ID, Name    string
		ExtensionID string `json:"extensionid"`
		Details     map[string]string
	}
	Offerings []struct {
		ID, Name string
		Details  map[string]string
	} `json:"serviceofferings"`
	CustomActions []struct {
		ID, Name         string
		ResourceType     string   `json:"resourcetype"`
		AllowedRoleTypes []string `json:"allowedroletypes"`
		Timeout          int
		Enabled          bool
		Description      string
		Parameters       []struct {
			Name, Type       string
			ValidationFormat string `json:"validationformat"`
			Required         bool
		}
	} `json:"customactions"`
}

func (cs *cloudStack) db(t *testing.T) db {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(cs.dir, "state.json"))
	require.NoError(t, err)
	var d db
	require.NoError(t, json.Unmarshal(data, &d))
	return d
}

// seedInstance places an Instance on a host, as a deploy would (cmksim has no deployVirtualMachine).
func (cs *cloudStack) seedInstance(t *testing.T, id, hostID string) {
	t.Helper()
	path := filepath.Join(cs.dir, "state.json")
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var st map[string]any
	require.NoError(t, json.Unmarshal(data, &st))
	vms, _ := st["virtualmachines"].([]any)
	st["virtualmachines"] = append(vms, map[string]any{"id": id, "instancename": "i-2-45-VM", "hostid": hostID})
	data, err = json.Marshal(st)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, data, 0o600))
}

// runCustomAction runs a custom action on an Instance as the UI does and returns what the UI shows.
func (cs *cloudStack) runCustomAction(t *testing.T, actionID, vmID string) cloudstacksim.Dialog {
	t.Helper()
	var answer struct {
		Result cloudstacksim.CustomActionResult `json:"customactionresult"`
	}
	cs.mustCmk(t, &answer, "run", "customaction", "customactionid="+actionID, "resourcetype=VirtualMachine", "resourceid="+vmID)
	return cloudstacksim.Render(answer.Result)
}

type apiCall struct {
	API     string   `json:"api"`
	Args    []string `json:"args"`
	Ignored []string `json:"ignored"`
}

func (cs *cloudStack) calls(t *testing.T) []apiCall {
	t.Helper()
	f, err := os.Open(filepath.Join(cs.dir, "calls.log"))
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

// TestRegister runs hack/register.sh against a stand-in CloudStack that reads each call as CloudStack's API
// layer does (test/doubles/cmksim), then reads back what CloudStack stored: the extension has its kubeconfig, the host
// its namespace, the template its image, the offering its instancetype, and every custom action is enabled. The
// check action then runs through CloudStack and its UI draws the table. A second run only finds what the first
// made.
func TestRegister(t *testing.T) {
	cs := newCloudStack(t)
	kubeconfig := filepath.Join(cs.dir, "absent", "kubeconfig") // a path this machine does not have: check FAILs there
	cs.env = append(cs.env, "ZONE_ID=zone-1", "POD_ID=pod-1", "OS_TYPE_ID=ostype-1", "HOST_NAMESPACE=tenant-a",
		"INSTANCETYPE=u1.medium", "KUBECONFIG_PATH="+kubeconfig)
	run(t, cs.env, "hack/register.sh")
	for _, c := range cs.calls(t) {
		assert.Empty(t, c.Ignored, "%s: parameters CloudStack would ignore", c.API)
	}

	d := cs.db(t)
	require.Len(t, d.Extensions, 1)
	ext := d.Extensions[0]
	assert.Equal(t, map[string]string{"kubeconfig": kubeconfig}, ext.Details, "the extension's kubeconfig")
	assert.Equal(t, "kubevirt/kubevirt-extension", ext.Path, "where install.sh puts the executable")
	assert.Equal(t, map[string]string{"orchestratorrequirespreparevm": "true"}, ext.HiddenDetails)
	require.Len(t, d.Clusters, 1)
	assert.Equal(t, "External", d.Clusters[0].Hypervisor)
	assert.Equal(t, ext.ID, d.Clusters[0].ExtensionID, "the cluster is registered with the extension")
	require.Len(t, d.Hosts, 1)
	assert.Equal(t, d.Clusters[0].ID, d.Hosts[0].ClusterID)
	assert.Equal(t, map[string]string{"External:namespace": "tenant-a"}, d.Hosts[0].Details, "the host's namespace")
	require.Len(t, d.Templates, 1)
	assert.Equal(t, ext.ID, d.Templates[0].ExtensionID)
	assert.Equal(t, map[string]string{"External:image": "quay.io/containerdisks/fedora:43"}, d.Templates[0].Details, "the template's image")
	require.Len(t, d.Offerings, 1)
	assert.Equal(t, map[string]string{"External:instancetype": "u1.medium"}, d.Offerings[0].Details, "the offering's instancetype")
	checkCustomActions(t, d, cs.catalog(t))

	// The check action, run on an Instance of the host: both details reach the extension, and the UI draws the table.
	cs.seedInstance(t, "126f4562-1f0f-4313-875e-6150cabeb72f", d.Hosts[0].ID)
	dialog := cs.runCustomAction(t, customActionID(t, d, "check"), "126f4562-1f0f-4313-875e-6150cabeb72f")
	assert.Equal(t, "success", dialog.Kind)
	assert.Equal(t, "The first line sums up what works and what does not", dialog.Message)
	require.True(t, dialog.HasTable(), "%+v", dialog)
	require.GreaterOrEqual(t, len(dialog.Rows), 3)
	assert.Equal(t, []string{"summary", "FAIL"}, dialog.Rows[0][:2])
	assert.Equal(t, []string{"details", "ok", "namespace tenant-a, kubeconfig " + kubeconfig}, dialog.Rows[1])
	assert.Equal(t, []string{"kubeconfig", "FAIL"}, dialog.Rows[2][:2])

	require.NoError(t, os.Remove(filepath.Join(cs.dir, "calls.log")))
	run(t, cs.env, "hack/register.sh")
	for _, c := range cs.calls(t) {
		assert.Regexp(t, "^list", c.API, "a second run creates nothing")
	}
}

func customActionID(t *testing.T, d db, name string) string {
	t.Helper()
	for _, a := range d.CustomActions {
		if a.Name == name {
			return a.ID
		}
	}
	require.Failf(t, "no custom action", "%s", name)
	return ""
}

// param is a custom action's parameter, as the catalog and CloudStack both name its fields.
type param struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Required bool   `json:"required"`
}

// customAction is a custom action of the extension's catalog (`kubevirt-extension catalog`).
type customAction struct {
	Name, Kind, Description string
	Timeout                 int
	Roles                   []string
	Parameters              []param
}

// catalog is the custom actions the extension implements, as it prints them for register.sh.
func (cs *cloudStack) catalog(t *testing.T) map[string]customAction {
	t.Helper()
	out, err := exec.Command(filepath.Join(cs.dir, "kubevirt-extension"), "catalog").Output()
	require.NoError(t, err, "%s", out)
	var answer struct{ Actions []customAction }
	require.NoError(t, json.Unmarshal(out, &answer), "%s", out)
	actions := map[string]customAction{}
	for _, a := range answer.Actions {
		if a.Kind == "custom" {
			actions[a.Name] = a
		}
	}
	return actions
}

// checkCustomActions checks, as CloudStack stored them, that every custom action of the extension's catalog is
// on Instances, enabled, with its timeout, its roles (CloudStack adds Admin to every list), and its parameters
// typed as the extension reads them.
func checkCustomActions(t *testing.T, d db, want map[string]customAction) {
	t.Helper()
	require.Contains(t, want, "check")
	require.Len(t, d.CustomActions, len(want), "check and the actions the extension implements")
	for _, a := range d.CustomActions {
		w, ok := want[a.Name]
		if !assert.True(t, ok, "%s is an action the extension implements", a.Name) {
			continue
		}
		assert.True(t, a.Enabled, "%s is enabled: runCustomAction refuses a disabled action", a.Name)
		assert.Equal(t, "VirtualMachine", a.ResourceType, a.Name)
		assert.Equal(t, w.Timeout, a.Timeout, a.Name)
		assert.Equal(t, w.Roles, a.AllowedRoleTypes, a.Name)
		assert.NotEmpty(t, a.Description, a.Name)
		assert.Equal(t, w.Description, a.Description, a.Name)
		require.Len(t, a.Parameters, len(w.Parameters), a.Name)
		for i, wp := range w.Parameters {
			got := a.Parameters[i]
			assert.Equal(t, wp, param{got.Name, got.Type, got.Required}, a.Name)
			assert.Equal(t, "NONE", got.ValidationFormat, a.Name)
		}
	}
}

// TestOldRegistrationForm is the control: the key/value form register.sh used to send is read by CloudStack as
// details named "key" and "value", and a custom action added without enabled=true cannot run. With both, check
// could only report that the details are not set, had it been allowed to run at all.
func TestOldRegistrationForm(t *testing.T) {
	cs := newCloudStack(t)
	var ext struct{ Extension struct{ ID string } }
	cs.mustCmk(t, &ext, "create", "extension", "name=KubeVirt", "type=Orchestrator", "path=kubevirt-extension",
		"details[0].key=kubeconfig", "details[0].value=/etc/cloudstack/kubevirt/kubeconfig")
	var cl struct{ Cluster []struct{ ID string } }
	cs.mustCmk(t, &cl, "add", "cluster", "zoneid=zone-1", "podid=pod-1", "clustername=kubevirt-1", "hypervisor=External",
		"clustertype=CloudManaged", "extensionid="+ext.Extension.ID)
	var h struct{ Host []struct{ ID string } }
	cs.mustCmk(t, &h, "add", "host", "zoneid=zone-1", "podid=pod-1", "clusterid="+cl.Cluster[0].ID,
		"hypervisor=External", "url=http://kubevirt-tenant-a", "username=unused", "password=unused")
	cs.mustCmk(t, nil, "update", "host", "id="+h.Host[0].ID, "externaldetails[0].key=namespace", "externaldetails[0].value=tenant-a")
	cs.mustCmk(t, nil, "register", "template", "name=t", "format=RAW", "hypervisor=External", "url=http://x", "zoneids=zone-1",
		"ostypeid=ostype-1", "extensionid="+ext.Extension.ID, "externaldetails[0].key=image", "externaldetails[0].value=quay.io/x")
	var disabled, enabled struct{ Extensioncustomaction struct{ ID string } }
	cs.mustCmk(t, &disabled, "add", "customaction", "extensionid="+ext.Extension.ID, "name=Describe", "timeout=60")
	cs.mustCmk(t, &enabled, "add", "customaction", "extensionid="+ext.Extension.ID, "name=check", "timeout=60", "enabled=true")

	d := cs.db(t)
	assert.Equal(t, map[string]string{"key": "kubeconfig", "value": "/etc/cloudstack/kubevirt/kubeconfig"}, d.Extensions[0].Details)
	assert.Equal(t, map[string]string{"External:key": "namespace", "External:value": "tenant-a"}, d.Hosts[0].Details)
	assert.Equal(t, map[string]string{"External:key": "image", "External:value": "quay.io/x"}, d.Templates[0].Details)
	assert.False(t, d.CustomActions[0].Enabled, "addCustomAction's default")

	cs.seedInstance(t, "vm-1", h.Host[0].ID)
	out, err := cs.cmk("run", "customaction", "customactionid="+disabled.Extensioncustomaction.ID, "resourceid=vm-1")
	require.Error(t, err)
	assert.Contains(t, out, "Internal error running action")

	// check, enabled, runs: the extension finds no kubeconfig detail, only "key" and "value".
	dialog := cs.runCustomAction(t, enabled.Extensioncustomaction.ID, "vm-1")
	assert.Equal(t, "Successfully completed check", dialog.Message, "no successmessage registered: CloudStack's default")
	require.True(t, dialog.HasTable(), "%+v", dialog)
	assert.Equal(t, []string{"summary", "FAIL", "1 of 1 checks FAIL (details): Instances cannot run here until they pass"}, dialog.Rows[0])
	assert.Equal(t, []string{"details", "FAIL"}, dialog.Rows[1][:2])
	assert.Contains(t, dialog.Rows[1][2], "not set")
}

// TestCloudStackReadsCalls: the stand-in refuses what CloudStack refuses, and reads what CloudStack reads.
func TestCloudStackReadsCalls(t *testing.T) {
	cs := newCloudStack(t)
	var ext struct{ Extension struct{ ID string } }
	cs.mustCmk(t, &ext, "create", "extension", "name=KubeVirt", "type=Orchestrator")
	e := "extensionid=" + ext.Extension.ID
	refused := []struct {
		args []string
		want string
	}{
		{[]string{"add", "host", "zoneid=zone-1", "podid=pod-1", "hypervisor=External", "username=u"}, "missing parameter url"},
		{[]string{"register", "template", "name=t", "format=RAW", "hypervisor=External", "url=http://x", "ostypeid=o"}, "Either zoneid or zoneids is required"},
		{[]string{"register", "template", "name=t", "format=RAW", "hypervisor=External", "url=http://x", "zoneids=z"}, "Please provide a guest OS type"},
		{[]string{"create", "extension", "name=KubeVirt", "type=Orchestrator"}, "Extension by name already exists"},
		{[]string{"create", "extension", "name=Other", "type=orchestrator"}, "Invalid type specified - orchestrator"},
		{[]string{"create", "extension", "name=Other", "type=Orchestrator", "details[0]kubeconfig=x"}, "Unable to decode parameter details[0]kubeconfig"},
		{[]string{"add", "customaction", e, "name=x", "parameters[0].name=n", "parameters[0].type=TEXT"}, "Invalid type: TEXT specified for parameter: n"},
		{[]string{"add", "customaction", e, "name=x", "parameters[0].name=n", "parameters[0].type=BOOLEAN", "parameters[0].validationformat=EMAIL"}, "Invalid validation format"},
		{[]string{"add", "customaction", e, "name=x", "parameters[0].type=STRING"}, "Invalid parameter specified with empty name"},
		{[]string{"add", "customaction", e, "name=x", "parameters[0].name=n"}, "No type specified for parameter: n"},
		{[]string{"add", "customaction", e, "name=x", "parameters[0].name=n", "parameters[0].type=BOOLEAN", "parameters[0].valueoptions=a,b"}, "Options not supported for type: BOOLEAN"},
		{[]string{"add", "customaction", e, "name=x", "allowedroletypes=Admin,Root"}, "Invalid role specified - Root"},
		{[]string{"add", "customaction", e, "name=x", "allowedroletypes=admin"}, "Invalid role specified - admin"},
		{[]string{"add", "customaction", e, "name=x", "timeout=soon"}, "invalid value soon for parameter timeout"},
		{[]string{"add", "customaction", e, "name=Create.Snapshot"}, "Invalid action name: Create.Snapshot"},
		{[]string{"add", "customaction", e, "name=x", "resourcetype=Host"}, "Invalid resource type specified: Host"},
	}
	for _, tt := range refused {
		out, err := cs.cmk(tt.args...)
		assert.Error(t, err, "%v: %s", tt.args, out)
		assert.Contains(t, out, tt.want, "%v", tt.args)
	}

	// What CloudStack takes, read its way: required=yes is Boolean.parseBoolean's false, enabled=yes is false,
	// a parameter's keys are its fields, and the action defaults to VirtualMachine, 3 s and Admin.
	var a struct {
		Extensioncustomaction struct {
			Enabled          bool
			Timeout          int
			ResourceType     string   `json:"resourcetype"`
			AllowedRoleTypes []string `json:"allowedroletypes"`
			Parameters       []struct {
				Name, Type       string
				ValidationFormat string   `json:"validationformat"`
				ValueOptions     []string `json:"valueoptions"`
				Required         bool
			}
		}
	}
	cs.mustCmk(t, &a, "add", "customaction", e, "name=y", "enabled=yes", "parameters[0].name=n", "parameters[0].type=string",
		"parameters[0].required=yes", "parameters[1].name=m", "parameters[1].type=NUMBER", "parameters[1].valueoptions=1, 2,,3")
	got := a.Extensioncustomaction
	assert.False(t, got.Enabled)
	assert.Equal(t, 3, got.Timeout)
	assert.Equal(t, "VirtualMachine", got.ResourceType)
	assert.Equal(t, []string{"Admin"}, got.AllowedRoleTypes)
	require.Len(t, got.Parameters, 2)
	assert.Equal(t, "STRING", got.Parameters[0].Type)
	assert.Equal(t, "NONE", got.Parameters[0].ValidationFormat)
	assert.False(t, got.Parameters[0].Required)
	assert.Equal(t, []string{"1", "2", "3"}, got.Parameters[1].ValueOptions)

	// Parameters a command does not declare are dropped, and logged as such.
	cs.mustCmk(t, nil, "create", "extension", "name=Third", "type=Orchestrator", "externaldetails[0].kubeconfig=/k")
	calls := cs.calls(t)
	assert.Equal(t, []string{"externaldetails"}, calls[len(calls)-1].Ignored)
	assert.Empty(t, cs.db(t).Extensions[len(cs.db(t).Extensions)-1].Details)
	assert.True(t, strings.HasPrefix(cs.db(t).Extensions[0].Path, "kubevirt/"), "the default path is under the extension's directory")
}
