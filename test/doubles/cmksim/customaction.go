package main

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/cloudstacksim"
)

// The sources this file reproduces (apache/cloudstack):
//   - framework/extensions/src/main/java/org/apache/cloudstack/framework/extensions/api/AddCustomActionCmd.java
//     (@95e81e15): enabled is a BOOLEAN read with Boolean.TRUE.equals ("Default is disabled"); parameters is a
//     MAP handed over raw, one group per parameter; details a MAP read with convertDetailsToMap.
//   - .../api/RunCustomActionCmd.java (@04b49bc3, since 4.21.0): customactionid and resourceid required;
//     parameters a MAP read with convertDetailsToMap (parameters[0].<name>=<value>).
//   - .../manager/ExtensionsManagerImpl.java (@928972f7, the 4.22 line): addCustomAction, listCustomActions,
//     runCustomAction, getExternalAccessDetails.
//   - api/src/main/java/org/apache/cloudstack/extension/ExtensionCustomAction.java (the stored version with
//     validationformat and valueoptions): Parameter.fromMap and validateParameterValues.
//   - api/src/main/java/org/apache/cloudstack/acl/RoleType.java (@0c21b71d): fromString takes the enum's names
//     exactly.

func addCustomActionParams() []param {
	return []param{{"extensionid", typeUUID, true}, {"name", typeString, true}, {"description", typeString, false},
		{"resourcetype", typeString, false}, {"allowedroletypes", typeList, false}, {"parameters", typeMap, false},
		{"successmessage", typeString, false}, {"errormessage", typeString, false}, {"timeout", typeInteger, false},
		{"enabled", typeBoolean, false}, {"details", typeMap, false}}
}

// roleTypes are RoleType's names in its enum order (toCombinedMask/fromCombinedMask keep that order).
func roleTypes() []string {
	return []string{"Admin", "ResourceAdmin", "DomainAdmin", "User", "Unknown"}
}

// addCustomAction is ExtensionsManagerImpl.addCustomAction: the name's characters, one action of a name per
// extension, each parameter through Parameter.fromMap, the resource type (VirtualMachine, the default for an
// Orchestrator), roles by exact name with Admin always added, a timeout of 3 s unless given, and enabled only
// when enabled=true was sent.
func addCustomAction(c *call) (any, error) {
	name, extID := c.v.strings["name"], c.v.strings["extensionid"]
	if !regexp.MustCompile(`^[a-zA-Z0-9 _-]+$`).MatchString(name) {
		return nil, paramError("Invalid action name: %s. It can contain only alphabets, numbers, hyphen, underscore and space", name)
	}
	for _, a := range c.st.CustomActions {
		if a.ExtensionID == extID && a.Name == name {
			return nil, internalError("Action by name already exists")
		}
	}
	if c.st.extension(extID) == nil {
		return nil, notFound("extensionid", extID)
	}
	params, err := parametersFromMap(c.v.maps["parameters"])
	if err != nil {
		return nil, err
	}
	resourceType := "VirtualMachine"
	if rt := c.v.strings["resourcetype"]; strings.TrimSpace(rt) != "" && !strings.EqualFold(rt, resourceType) {
		return nil, paramError("Invalid resource type specified: %s. Valid values are: [VirtualMachine]", rt)
	}
	roles, err := allowedRoles(c.v.lists["allowedroletypes"])
	if err != nil {
		return nil, err
	}
	timeout := 3
	if t, ok := c.v.integers["timeout"]; ok {
		timeout = t
	}
	a := &customAction{ID: newID("extensioncustomaction", len(c.st.CustomActions)), Name: name, ExtensionID: extID,
		Description: c.v.strings["description"], ResourceType: resourceType, AllowedRoleTypes: roles, Timeout: timeout,
		Enabled: c.v.booleans["enabled"], SuccessMessage: c.v.strings["successmessage"],
		ErrorMessage: c.v.strings["errormessage"], Parameters: params, Details: convertDetailsToMap(c.v.maps["details"])}
	c.st.CustomActions = append(c.st.CustomActions, a)
	return map[string]any{"extensioncustomaction": a}, nil
}

func allowedRoles(given []string) ([]string, error) {
	set := map[string]bool{"Admin": true}
	for _, r := range given {
		if !slices.Contains(roleTypes(), r) {
			return nil, paramError("Invalid role specified - %s", r)
		}
		set[r] = true
	}
	var roles []string
	for _, r := range roleTypes() {
		if set[r] {
			roles = append(roles, r)
		}
	}
	return roles, nil
}

// parametersFromMap is getParametersListFromMap: one Parameter.fromMap per group.
func parametersFromMap(groups map[int]map[string]string) ([]actionParameter, error) {
	var params []actionParameter
	for _, i := range sortedIndexes(groups) {
		p, err := parameterFromMap(groups[i])
		if err != nil {
			return nil, err
		}
		params = append(params, p)
	}
	return params, nil
}

// formats are ExtensionCustomAction.Parameter.ValidationFormat and the type each applies to (NONE: any).
func formats() map[string]string {
	return map[string]string{"NONE": "", "UUID": "STRING", "EMAIL": "STRING", "PASSWORD": "STRING", "URL": "STRING", "DECIMAL": "NUMBER"}
}

// parameterFromMap is Parameter.fromMap: a name, a type (STRING, NUMBER, BOOLEAN, DATE, any case), a
// validation format of that type (NONE when blank), value options for STRING and NUMBER only, and required
// read with Boolean.parseBoolean.
func parameterFromMap(m map[string]string) (actionParameter, error) {
	name := m["name"]
	if strings.TrimSpace(name) == "" {
		return actionParameter{}, paramError("Invalid parameter specified with empty name")
	}
	if strings.TrimSpace(m["type"]) == "" {
		return actionParameter{}, paramError("No type specified for parameter: %s", name)
	}
	typ := strings.ToUpper(m["type"])
	if !slices.Contains([]string{"STRING", "NUMBER", "BOOLEAN", "DATE"}, typ) {
		return actionParameter{}, paramError("Invalid type: %s specified for parameter: %s", m["type"], name)
	}
	format := "NONE"
	if f := m["validationformat"]; strings.TrimSpace(f) != "" {
		format = strings.ToUpper(f)
	}
	base, known := formats()[format]
	if !known || (base != "" && base != typ) {
		return actionParameter{}, paramError("Invalid validation format: %s specified for type: %s", m["validationformat"], typ)
	}
	p := actionParameter{Name: name, Type: typ, ValidationFormat: format, Required: strings.EqualFold(m["required"], "true")}
	options, err := valueOptions(p, m["valueoptions"])
	p.ValueOptions = options
	return p, err
}

// valueOptions is Parameter.parseValueOptions: comma-separated, trimmed, empty ones dropped.
func valueOptions(p actionParameter, csv string) ([]string, error) {
	if strings.TrimSpace(csv) == "" {
		return nil, nil
	}
	if p.Type != "STRING" && p.Type != "NUMBER" {
		return nil, paramError("Options not supported for type: %s for parameter: %s", p.Type, p.Name)
	}
	var options []string
	for _, o := range strings.Split(csv, ",") {
		if o = strings.TrimSpace(o); o == "" {
			continue
		}
		if _, err := validatedValue(p, o, false); err != nil {
			return nil, paramError("Invalid value options with validation format: %s for parameter: %s", p.ValidationFormat, p.Name)
		}
		options = append(options, o)
	}
	return options, nil
}

// validatedValue is Parameter.validatedValue: a value of the parameter's type and format, among its options.
func validatedValue(p actionParameter, value string, checkOptions bool) (any, error) {
	invalid := paramError("Invalid value for parameter '%s': %s", p.Name, value)
	if strings.TrimSpace(value) == "" {
		return nil, paramError("Empty value for parameter '%s': %s", p.Name, value)
	}
	var v any = value
	switch p.Type {
	case "BOOLEAN":
		if value != "true" && value != "false" {
			return nil, invalid
		}
		return value == "true", nil
	case "DATE":
		return value, nil // DateUtil.parseTZDateString: not modelled, the value is passed on
	case "NUMBER":
		n, err := parseNumber(value, p.ValidationFormat)
		if err != nil {
			return nil, invalid
		}
		v = n
	default:
		if !validString(value, p.ValidationFormat) {
			return nil, invalid
		}
	}
	if checkOptions && len(p.ValueOptions) > 0 && !slices.Contains(p.ValueOptions, fmt.Sprint(v)) {
		return nil, paramError("Invalid value for parameter '%s': %s. Valid options are: %s", p.Name, value, strings.Join(p.ValueOptions, ", "))
	}
	return v, nil
}

func parseNumber(value, format string) (any, error) {
	if format == "DECIMAL" {
		f, err := strconv.ParseFloat(value, 32)
		return float32(f), err
	}
	n, err := strconv.ParseInt(value, 10, 32)
	return int32(n), err
}

func validString(value, format string) bool {
	switch format {
	case "UUID": // java.util.UUID.fromString is looser about the groups' lengths
		return regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`).MatchString(value)
	case "EMAIL":
		return regexp.MustCompile(`^[A-Za-z0-9+_.-]+@[A-Za-z0-9.-]+$`).MatchString(value)
	case "PASSWORD":
		return strings.TrimSpace(value) != ""
	case "URL": // new java.net.URL(value): a protocol it knows; approximated as any scheme
		u, err := url.Parse(value)
		return err == nil && u.Scheme != ""
	}
	return true
}

func listCustomActionsParams() []param {
	return []param{{"id", typeUUID, false}, {"name", typeString, false}, {"extensionid", typeUUID, false},
		{"resourcetype", typeString, false}, {"resourceid", typeString, false}, {"enabled", typeBoolean, false},
		{"keyword", typeString, false}}
}

// listCustomActions is ExtensionsManagerImpl.listCustomActions for an admin: id, name and extension match
// exactly, and any enabled parameter (true or false) lists the enabled actions only.
func listCustomActions(c *call) (any, error) {
	var out []*customAction
	for _, a := range c.st.CustomActions {
		switch {
		case c.v.strings["id"] != "" && a.ID != c.v.strings["id"],
			c.v.strings["name"] != "" && a.Name != c.v.strings["name"],
			c.v.strings["extensionid"] != "" && a.ExtensionID != c.v.strings["extensionid"],
			c.v.has("enabled") && !a.Enabled:
			continue
		}
		out = append(out, a)
	}
	if len(out) == 0 {
		return map[string]any{}, nil
	}
	return map[string]any{"count": len(out), "extensioncustomaction": out}, nil
}

func runCustomActionParams() []param {
	return []param{{"customactionid", typeUUID, true}, {"resourcetype", typeString, false},
		{"resourceid", typeString, true}, {"parameters", typeMap, false}}
}

// errRunAction is the one message runCustomAction gives for every refusal, whatever the cause.
const errRunAction = "Internal error running action"

// runCustomAction is ExtensionsManagerImpl.runCustomAction for an admin caller: a disabled action, a disabled
// extension, an unknown Instance or an Instance on no registered cluster is refused with one message; the
// parameters are validated against the action's; then the executable runs with the payload
// ExternalPathPayloadProvisioner.runCustomAction writes, for the action's timeout, and the answer is
// CustomActionResultResponse (cloudstacksim.CustomAction.Result).
func runCustomAction(c *call) (any, error) {
	a := c.st.customAction(c.v.strings["customactionid"])
	if a == nil {
		return nil, paramError(errRunAction)
	}
	if !a.Enabled {
		return nil, paramError(errRunAction)
	}
	ext := c.st.extension(a.ExtensionID)
	if ext == nil || ext.State != "Enabled" {
		return nil, internalError(errRunAction)
	}
	if rt := c.v.strings["resourcetype"]; rt != "" && !strings.EqualFold(rt, a.ResourceType) {
		return nil, internalError(errRunAction)
	}
	target := c.st.vm(c.v.strings["resourceid"])
	if target == nil {
		return nil, internalError(errRunAction)
	}
	h := c.st.host(target.HostID)
	if h == nil || c.st.cluster(h.ClusterID) == nil || c.st.cluster(h.ClusterID).ExtensionID != ext.ID {
		return nil, internalError(errRunAction)
	}
	parameters, err := validateParameterValues(a.Parameters, convertDetailsToMap(c.v.maps["parameters"]))
	if err != nil {
		return nil, err
	}
	res, err := c.runExtension(ext, a, customActionPayload(c.st, ext, a, h, target, parameters))
	if err != nil {
		return nil, err
	}
	view := cloudstacksim.CustomAction{ID: a.ID, Name: a.Name, SuccessMessage: a.SuccessMessage,
		ErrorMessage: a.ErrorMessage, ExtensionName: ext.Name, ResourceName: target.InstanceName}
	return map[string]any{"customactionresult": view.Result(res)}, nil
}

// validateParameterValues is Parameter.validateParameterValues, called only for an action that declares
// parameters: required ones present, declared ones validated, undeclared ones passed on as given.
func validateParameterValues(defs []actionParameter, supplied map[string]string) (map[string]any, error) {
	if len(defs) == 0 {
		return nil, nil
	}
	for _, d := range defs {
		if d.Required && strings.TrimSpace(supplied[d.Name]) == "" {
			return nil, paramError("Missing or empty required parameter: %s", d.Name)
		}
	}
	out := map[string]any{}
	for name, value := range supplied {
		i := slices.IndexFunc(defs, func(d actionParameter) bool { return d.Name == name })
		if i < 0 {
			out[name] = value
			continue
		}
		v, err := validatedValue(defs[i], value, true)
		if err != nil {
			return nil, err
		}
		out[name] = v
	}
	return out, nil
}

// customActionPayload is what runCustomAction hands the executable: getExternalAccessDetails (the action's
// details, the host's External: details without the prefix, the cluster registration's and the extension's
// visible details, the caller) plus the Instance's External: details, through
// ExternalPathPayloadProvisioner.loadAccessDetails (caller moved to the top), with the action's name and, when
// the action declares any, its parameters.
func customActionPayload(st *store, ext *extension, a *customAction, h *host, target *vm, parameters map[string]any) map[string]any {
	external := map[string]any{}
	addDetails := func(key string, m map[string]string) {
		if len(m) > 0 {
			external[key] = m
		}
	}
	addDetails("action", a.Details)
	addDetails("host", withoutExternalPrefix(h.Details))
	addDetails("resourcemap", st.cluster(h.ClusterID).ResourceMapDetails)
	addDetails("extension", ext.Details)
	addDetails("virtualmachine", withoutExternalPrefix(target.Details))
	p := map[string]any{
		"caller": map[string]string{"id": "93567ed9-7e61-11f0-ba77-1e00c8000158", "name": "admin", "type": "ADMIN",
			"roleid": "6b86674b-7e61-11f0-ba77-1e00c8000158", "rolename": "Root Admin", "roletype": "Admin"},
		"virtualmachineid":      target.ID,
		"virtualmachinename":    target.InstanceName,
		"cloudstack.vm.details": map[string]any{"name": target.InstanceName, "uuid": target.ID, "details": target.Details},
		"action":                a.Name,
	}
	if len(external) > 0 {
		p["externaldetails"] = external
	}
	if len(parameters) > 0 {
		p["parameters"] = parameters
	}
	return p
}

// withoutExternalPrefix is getFilteredExternalDetails: the External: details, prefix removed.
func withoutExternalPrefix(details map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range details {
		if name, ok := strings.CutPrefix(k, externalDetailPrefix); ok {
			out[name] = v
		}
	}
	return out
}

// runExtension runs the executable as ExternalPathPayloadProvisioner does, with the action's timeout as the wait
// (0 would be AgentManager.Wait, 1800 s). CMKSIM_EXTENSION names the executable.
func (c *call) runExtension(ext *extension, a *customAction, payload map[string]any) (cloudstacksim.Result, error) {
	if c.cfg.extension == "" {
		return cloudstacksim.Result{}, internalError("cmksim: set CMKSIM_EXTENSION to the extension's executable to run custom actions")
	}
	wait := time.Duration(a.Timeout) * time.Second
	if wait == 0 {
		wait = 1800 * time.Second
	}
	p := &cloudstacksim.Provisioner{Executable: c.cfg.extension,
		PayloadDir: filepath.Join(filepath.Dir(c.cfg.state), "extensions", ext.Name)}
	res, err := p.Run(context.Background(), a.Name, payload, wait)
	if err != nil {
		return res, internalError("cmksim: running %s: %v", c.cfg.extension, err)
	}
	return res, nil
}
