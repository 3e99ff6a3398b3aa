// Command cmksim is a test double for CloudMonkey (cmk) and the CloudStack API behind it, for testing
// hack/register.sh: it takes cmk's argv (`-o json <verb> <noun> key=value...`), checks that the API command
// exists and has the parameters CloudStack's API documents as required (and, for addCustomAction, that its
// resource type, roles, timeout and parameters map are what CloudStack accepts: customaction.go), keeps the
// created resources in a state file so that later calls find them, logs every call, and answers as CloudStack
// does.
//
// CMKSIM_STATE names the state file and CMKSIM_LOG the call log (one JSON object per line).
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
)

// required lists each API command's required parameters (CloudStack 4.21 API reference).
var required = map[string][]string{
	"listextensions":        nil,
	"createextension":       {"name", "type"},
	"listclusters":          nil,
	"addcluster":            {"clustername", "clustertype", "hypervisor", "podid", "zoneid"},
	"listhosts":             nil,
	"addhost":               {"hypervisor", "password", "podid", "url", "username", "zoneid"},
	"listtemplates":         {"templatefilter"},
	"registertemplate":      {"format", "hypervisor", "name", "url"},
	"listserviceofferings":  nil,
	"createserviceoffering": {"name"},
	"listcustomactions":     nil,
	"addcustomaction":       {"extensionid", "name"},
}

// resource is the answer key and list key of what each create command makes.
var creates = map[string]struct{ kind, key string }{
	"createextension":       {"extension", "extension"},
	"addcluster":            {"cluster", "cluster"},
	"addhost":               {"host", "host"},
	"registertemplate":      {"template", "template"},
	"createserviceoffering": {"serviceoffering", "serviceoffering"},
	"addcustomaction":       {"extensioncustomaction", "extensioncustomaction"},
}

var lists = map[string]string{
	"listextensions": "extension", "listclusters": "cluster", "listhosts": "host", "listtemplates": "template",
	"listserviceofferings": "serviceoffering", "listcustomactions": "extensioncustomaction",
}

type state map[string][]map[string]string // kind -> resources

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Println(`{"errorcode":431,"errortext":` + quote(err.Error()) + `}`)
		os.Exit(1)
	}
}

func quote(s string) string { b, _ := json.Marshal(s); return string(b) }

func run(args []string) error {
	if len(args) < 4 || args[0] != "-o" || args[1] != "json" {
		return fmt.Errorf("usage: cmk -o json <verb> <noun> key=value")
	}
	api := strings.ToLower(args[2] + args[3])
	params := map[string]string{}
	for _, kv := range args[4:] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return fmt.Errorf("%s: argument %q is not key=value", api, kv)
		}
		params[strings.ToLower(k)] = v
	}
	if err := logCall(api, params); err != nil {
		return err
	}
	need, known := required[api]
	if !known {
		return fmt.Errorf("unknown API command %s", api)
	}
	for _, p := range need {
		if params[p] == "" {
			return fmt.Errorf("%s: missing required parameter %s", api, p)
		}
	}
	if err := validate(api, params); err != nil {
		return err
	}
	st, err := load()
	if err != nil {
		return err
	}
	if kind, ok := lists[api]; ok {
		return answer(map[string]any{kind: match(st[kind], params)})
	}
	c := creates[api]
	if api == "addhost" { // CloudStack names a host after its URL's host part
		params["name"] = strings.TrimPrefix(strings.TrimPrefix(params["url"], "http://"), "https://")
	}
	params["id"] = fmt.Sprintf("%s-%04d", c.kind, len(st[c.kind])+1)
	st[c.kind] = append(st[c.kind], params)
	if err := save(st); err != nil {
		return err
	}
	if api == "addcluster" || api == "addhost" || api == "registertemplate" {
		return answer(map[string]any{c.key: []map[string]string{params}}) // these answer lists
	}
	return answer(map[string]any{c.key: params})
}

// validate checks what CloudStack checks beyond presence.
func validate(api string, p map[string]string) error {
	switch {
	case api == "createextension" && p["type"] != "Orchestrator":
		return fmt.Errorf("createExtension: type %q is not Orchestrator", p["type"])
	case (api == "addcluster" || api == "registertemplate") && p["hypervisor"] == "External" && p["extensionid"] == "":
		return fmt.Errorf("%s: hypervisor External needs extensionid", api)
	case api == "registertemplate" && p["zoneids"] == "" && p["zoneid"] == "":
		return fmt.Errorf("registerTemplate: zoneids or zoneid is required")
	case api == "addcustomaction" && !regexp.MustCompile(`^[a-zA-Z0-9 _-]+$`).MatchString(p["name"]):
		return fmt.Errorf("addCustomAction: name %q", p["name"])
	}
	if api == "addcustomaction" {
		if err := validateCustomAction(p); err != nil {
			return fmt.Errorf("addCustomAction: %w", err)
		}
	}
	// Indexed maps come in complete pairs: details[0].key with details[0].value.
	for k := range p {
		if strings.HasSuffix(k, ".key") {
			if p[strings.TrimSuffix(k, ".key")+".value"] == "" {
				return fmt.Errorf("%s: %s has no value", api, k)
			}
		}
	}
	return nil
}

// match filters resources by the list's parameters that name them.
func match(items []map[string]string, params map[string]string) []map[string]string {
	out := []map[string]string{}
	for _, it := range items {
		name := it["name"]
		if name == "" {
			name = it["clustername"]
		}
		if n := params["name"]; n != "" && n != name {
			continue
		}
		out = append(out, it)
	}
	return out
}

func answer(v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	fmt.Println(string(data))
	return nil
}

func load() (state, error) {
	st := state{}
	data, err := os.ReadFile(os.Getenv("CMKSIM_STATE"))
	if os.IsNotExist(err) {
		return st, nil
	}
	if err != nil {
		return nil, err
	}
	return st, json.Unmarshal(data, &st)
}

func save(st state) error {
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return os.WriteFile(os.Getenv("CMKSIM_STATE"), data, 0o600)
}

func logCall(api string, params map[string]string) error {
	f, err := os.OpenFile(os.Getenv("CMKSIM_LOG"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	return json.NewEncoder(f).Encode(map[string]any{"api": api, "params": params})
}
