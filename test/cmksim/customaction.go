package main

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// What addCustomAction checks beyond presence (ExtensionsManagerImpl.addCustomAction and
// ExtensionCustomAction.Parameter): the resource type, the role types, the timeout, and each parameter of the
// map parameters[i].{name,type,validationformat,valueoptions,required}.
var (
	roleTypes = []string{"Admin", "ResourceAdmin", "DomainAdmin", "User"}
	// formats lists the validation formats each parameter type takes.
	formats = map[string][]string{
		"STRING":  {"NONE", "UUID", "EMAIL", "PASSWORD", "URL"},
		"NUMBER":  {"NONE", "DECIMAL"},
		"BOOLEAN": {"NONE"},
		"DATE":    {"NONE"},
	}
	paramKey    = regexp.MustCompile(`^parameters\[(\d+)\]\.(.+)$`)
	paramFields = []string{"name", "type", "validationformat", "valueoptions", "required"}
)

func validateCustomAction(p map[string]string) error {
	if rt := p["resourcetype"]; rt != "" && !strings.EqualFold(rt, "VirtualMachine") {
		return fmt.Errorf("resourcetype %q: only VirtualMachine is supported", rt)
	}
	if roles := p["allowedroletypes"]; roles != "" {
		for _, r := range strings.Split(roles, ",") {
			if !slices.ContainsFunc(roleTypes, func(t string) bool { return strings.EqualFold(t, strings.TrimSpace(r)) }) {
				return fmt.Errorf("allowedroletypes: invalid role type %q (one of %s)", r, strings.Join(roleTypes, ", "))
			}
		}
	}
	if t, ok := p["timeout"]; ok {
		if n, err := strconv.Atoi(t); err != nil || n <= 0 {
			return fmt.Errorf("timeout %q is not a positive number of seconds", t)
		}
	}
	if e, ok := p["enabled"]; ok && e != "true" && e != "false" {
		return fmt.Errorf("enabled %q is not true or false", e)
	}
	return validateParameters(p)
}

// validateParameters checks the parameters map: every entry has a name and a type, names are unique, the
// validation format suits the type, required is a boolean, and value options are for STRING and NUMBER only.
func validateParameters(p map[string]string) error {
	params := map[int]map[string]string{}
	for k, v := range p {
		m := paramKey.FindStringSubmatch(k)
		if m == nil {
			if strings.HasPrefix(k, "parameters") {
				return fmt.Errorf("%s: not parameters[i].<field>", k)
			}
			continue
		}
		i, _ := strconv.Atoi(m[1])
		if !slices.Contains(paramFields, m[2]) {
			return fmt.Errorf("%s: unknown field %q (one of %s)", k, m[2], strings.Join(paramFields, ", "))
		}
		if params[i] == nil {
			params[i] = map[string]string{}
		}
		params[i][m[2]] = v
	}
	names := map[string]bool{}
	for i, param := range params {
		name, typ := param["name"], strings.ToUpper(param["type"])
		switch {
		case name == "":
			return fmt.Errorf("parameters[%d]: no name", i)
		case names[name]:
			return fmt.Errorf("parameters[%d]: name %q is used twice", i, name)
		case formats[typ] == nil:
			return fmt.Errorf("parameters[%d] (%s): type %q is not one of STRING, NUMBER, BOOLEAN, DATE", i, name, param["type"])
		}
		names[name] = true
		if f := strings.ToUpper(param["validationformat"]); f != "" && !slices.Contains(formats[typ], f) {
			return fmt.Errorf("parameters[%d] (%s): validationformat %q does not apply to %s (one of %s)", i, name, f, typ, strings.Join(formats[typ], ", "))
		}
		if r, ok := param["required"]; ok && r != "true" && r != "false" {
			return fmt.Errorf("parameters[%d] (%s): required %q is not true or false", i, name, r)
		}
		if param["valueoptions"] != "" && typ != "STRING" && typ != "NUMBER" {
			return fmt.Errorf("parameters[%d] (%s): valueoptions apply to STRING and NUMBER only", i, name)
		}
	}
	return nil
}
