package main

import (
	"fmt"
	"path"
	"regexp"
	"strings"
)

// api is one API command: its @Parameter fields and what the manager behind it does.
type api struct {
	params []param
	handle func(*call) (any, error)
}

// call is one API call being handled.
type call struct {
	st  *store
	v   values
	cfg config
}

// apis are the commands hack/register.sh uses (and runCustomAction), keyed as cmk's verb and noun join.
// Each cites the command class it declares parameters from; the parameters not declared here are reported as
// ignored, as CloudStack drops them.
func apis() map[string]api {
	return map[string]api{
		// ListExtensionsCmd, ListClustersCmd, ListHostsCmd, ListTemplatesCmd (templatefilter required),
		// ListServiceOfferingsCmd. The stand-in lists everything of the kind and leaves the choosing to the
		// caller, whatever CloudStack's name filter (exact or LIKE) does.
		"listextensions":        {params: []param{{"id", typeUUID, false}, {"name", typeString, false}, {"details", typeList, false}}, handle: listAll("extension", func(st *store) any { return st.Extensions })},
		"listclusters":          {params: []param{{"id", typeUUID, false}, {"name", typeString, false}, {"zoneid", typeUUID, false}, {"podid", typeUUID, false}}, handle: listAll("cluster", func(st *store) any { return st.Clusters })},
		"listhosts":             {params: []param{{"id", typeUUID, false}, {"name", typeString, false}, {"clusterid", typeUUID, false}, {"zoneid", typeUUID, false}}, handle: listAll("host", func(st *store) any { return st.Hosts })},
		"listtemplates":         {params: []param{{"templatefilter", typeString, true}, {"name", typeString, false}, {"zoneid", typeUUID, false}, {"id", typeUUID, false}}, handle: listAll("template", func(st *store) any { return st.Templates })},
		"listserviceofferings":  {params: []param{{"id", typeUUID, false}, {"name", typeString, false}}, handle: listAll("serviceoffering", func(st *store) any { return st.Offerings })},
		"createextension":       {params: createExtensionParams(), handle: createExtension},
		"addcluster":            {params: addClusterParams(), handle: addCluster},
		"addhost":               {params: addHostParams(), handle: addHost},
		"updatehost":            {params: updateHostParams(), handle: updateHost},
		"registertemplate":      {params: registerTemplateParams(), handle: registerTemplate},
		"createserviceoffering": {params: createServiceOfferingParams(), handle: createServiceOffering},
		"listcustomactions":     {params: listCustomActionsParams(), handle: listCustomActions},
		"addcustomaction":       {params: addCustomActionParams(), handle: addCustomAction},
		"runcustomaction":       {params: runCustomActionParams(), handle: runCustomAction},
	}
}

// listAll answers a list command as cmk prints it: {"<kind>": [...]}, or {} when there is nothing.
func listAll(kind string, items func(*store) any) func(*call) (any, error) {
	return func(c *call) (any, error) {
		list := items(c.st)
		if n := countOf(list); n > 0 {
			return map[string]any{"count": n, kind: list}, nil
		}
		return map[string]any{}, nil
	}
}

func countOf(list any) int {
	switch l := list.(type) {
	case []*extension:
		return len(l)
	case []*cluster:
		return len(l)
	case []*host:
		return len(l)
	case []*template:
		return len(l)
	case []*offering:
		return len(l)
	case []*customAction:
		return len(l)
	}
	return 0
}

// createExtensionParams are CreateExtensionCmd's (framework/extensions/.../api/CreateExtensionCmd.java @b0c7e2e9):
// details is a MAP read with convertDetailsToMap.
func createExtensionParams() []param {
	return []param{{"name", typeString, true}, {"description", typeString, false}, {"type", typeString, true},
		{"path", typeString, false}, {"orchestratorrequirespreparevm", typeBoolean, false}, {"state", typeString, false},
		{"details", typeMap, false}}
}

// createExtension is ExtensionsManagerImpl.createExtension (@928972f7): the name is unique, the type an
// Extension.Type (4.21/4.22: Orchestrator), the path is made relative to the extension's directory, the state is
// Enabled unless given, and orchestratorrequirespreparevm is kept as a detail the payload never shows.
func createExtension(c *call) (any, error) {
	name := c.v.strings["name"]
	for _, e := range c.st.Extensions {
		if e.Name == name {
			return nil, internalError("Extension by name already exists")
		}
	}
	if typ := c.v.strings["type"]; typ != "Orchestrator" {
		return nil, internalError("Invalid type specified - %s", typ)
	}
	relPath, err := extensionRelativePath(name, c.v.strings["path"])
	if err != nil {
		return nil, err
	}
	state := "Enabled"
	if s, ok := c.v.strings["state"]; ok && s != "" {
		if s != "Enabled" && s != "Disabled" {
			return nil, paramError("Invalid state specified")
		}
		state = s
	}
	e := &extension{ID: newID("extension", len(c.st.Extensions)), Name: name, Type: "Orchestrator",
		Description: c.v.strings["description"], Path: relPath, State: state,
		Details: convertDetailsToMap(c.v.maps["details"])}
	if prepare, ok := c.v.booleans["orchestratorrequirespreparevm"]; ok {
		e.HiddenDetails = map[string]string{"orchestratorrequirespreparevm": fmt.Sprint(prepare)}
	}
	c.st.Extensions = append(c.st.Extensions, e)
	return map[string]any{"extension": extensionResponse(e)}, nil
}

// extensionRelativePath is ExtensionsManagerImpl.getDefaultExtensionRelativePath and
// getValidatedExtensionRelativePath (@928972f7): under the extension's directory, at most two levels deeper.
func extensionRelativePath(name, given string) (string, error) {
	dir, err := extensionDirectoryName(name)
	if err != nil {
		return "", err
	}
	if given == "" {
		return dir + "/" + dir + ".sh", nil
	}
	p := strings.TrimPrefix(strings.ReplaceAll(given, `\`, "/"), "/")
	switch {
	case p == dir:
		p = dir + "/" + dir
	case !strings.HasPrefix(p, dir+"/"):
		p = dir + "/" + p
	}
	if strings.Count(path.Clean(p), "/") > 2 {
		return "", internalError("Entry point path cannot be nested more than two sub-directories deep")
	}
	return p, nil
}

// extensionDirectoryName stands for Extension.getDirectoryName, whose body is not among the stored sources. For a
// name of letters and digits it is the name in lower case (the directory the built-in Proxmox extension and this
// project's install.sh use); the stand-in refuses other names rather than guess.
func extensionDirectoryName(name string) (string, error) {
	if !regexp.MustCompile(`^[A-Za-z0-9]+$`).MatchString(name) {
		return "", internalError("cmksim: Extension.getDirectoryName is not modelled for %q", name)
	}
	return strings.ToLower(name), nil
}

// extensionResponse is createExtensionResponse: the path under the extensions directory, the visible details.
func extensionResponse(e *extension) map[string]any {
	r := map[string]any{"id": e.ID, "name": e.Name, "type": e.Type, "state": e.State,
		"path": "/usr/share/cloudstack-management/extensions/" + e.Path}
	if e.Description != "" {
		r["description"] = e.Description
	}
	if len(e.Details) > 0 {
		r["details"] = e.Details
	}
	if v, ok := e.HiddenDetails["orchestratorrequirespreparevm"]; ok {
		r["orchestratorrequirespreparevm"] = v == "true"
	}
	return r
}

// addClusterParams are AddClusterCmd's (api/.../admin/cluster/AddClusterCmd.java, the stored 4.21+ version):
// externaldetails is a MAP read with convertDetailsToMap, without the External: prefix, as the details of the
// cluster's registration with the extension.
func addClusterParams() []param {
	return []param{{"clustername", typeString, true}, {"password", typeString, false}, {"podid", typeUUID, true},
		{"url", typeString, false}, {"username", typeString, false}, {"zoneid", typeUUID, true},
		{"hypervisor", typeString, true}, {"arch", typeString, false}, {"clustertype", typeString, true},
		{"allocationstate", typeString, false}, {"storageaccessgroups", typeList, false},
		{"extensionid", typeUUID, false}, {"externaldetails", typeMap, false}}
}

func addCluster(c *call) (any, error) {
	extID := c.v.strings["extensionid"]
	if extID != "" && c.st.extension(extID) == nil {
		return nil, notFound("extensionid", extID)
	}
	cl := &cluster{ID: newID("cluster", len(c.st.Clusters)), Name: c.v.strings["clustername"],
		ZoneID: c.v.strings["zoneid"], PodID: c.v.strings["podid"], Hypervisor: c.v.strings["hypervisor"],
		ClusterType: c.v.strings["clustertype"], ExtensionID: extID}
	if extID != "" {
		cl.ResourceMapDetails = convertDetailsToMap(c.v.maps["externaldetails"])
	}
	c.st.Clusters = append(c.st.Clusters, cl)
	return map[string]any{"cluster": []any{cl}}, nil
}

// addHostParams are AddHostCmd's (api/.../admin/host/AddHostCmd.java @0c5654d3, the newest stored version, and
// sjyu1/ablestack-cloud@1d8b9ed0, a later fork): no externaldetails. A host's details for the extension are
// set with updateHost.
func addHostParams() []param {
	return []param{{"clusterid", typeUUID, false}, {"clustername", typeString, false}, {"username", typeString, false},
		{"password", typeString, false}, {"podid", typeUUID, true}, {"url", typeString, true}, {"zoneid", typeUUID, true},
		{"hypervisor", typeString, true}, {"allocationstate", typeString, false}, {"hosttags", typeList, false}}
}

// addHost is ExternalServerDiscoverer.find (plugins/hypervisors/external/.../discoverer/ExternalServerDiscoverer.java
// @859cfdbb): the cluster must be given, External, and registered with an extension; the host's resource is
// named after the URL (ExternalResource.initialize: cmd.setName(name), @74d796cb).
func addHost(c *call) (any, error) {
	clusterID := c.v.strings["clusterid"]
	if clusterID == "" {
		return nil, internalError("Must specify cluster Id when adding host")
	}
	cl := c.st.cluster(clusterID)
	if cl == nil {
		return nil, notFound("clusterid", clusterID)
	}
	if cl.Hypervisor != "External" {
		return nil, internalError("Invalid cluster id or cluster is not for External hypervisors")
	}
	if cl.ExtensionID == "" {
		return nil, internalError("Cluster: %s is not registered with an extension", cl.Name)
	}
	h := &host{ID: newID("host", len(c.st.Hosts)), Name: c.v.strings["url"], ClusterID: clusterID, URL: c.v.strings["url"]}
	c.st.Hosts = append(c.st.Hosts, h)
	return map[string]any{"host": []any{h}}, nil
}

// updateHostParams are UpdateHostCmd's (the stored 4.21+ version): externaldetails is a MAP read with
// convertExternalDetailsToMap.
func updateHostParams() []param {
	return []param{{"id", typeUUID, true}, {"name", typeString, false}, {"oscategoryid", typeUUID, false},
		{"allocationstate", typeString, false}, {"hosttags", typeList, false}, {"istagarule", typeBoolean, false},
		{"url", typeString, false}, {"annotation", typeString, false}, {"externaldetails", typeMap, false},
		{"cleanupexternaldetails", typeBoolean, false}}
}

// updateHost is the host update behind UpdateHostCmd (server/.../resource, the stored version that takes
// external details): cleanupexternaldetails removes the External: details, otherwise the given ones replace them
// all (hostDetailsDao.replaceExternalDetails); other details stay.
func updateHost(c *call) (any, error) {
	h := c.st.host(c.v.strings["id"])
	if h == nil {
		return nil, notFound("id", c.v.strings["id"])
	}
	external := convertExternalDetailsToMap(c.v.maps["externaldetails"])
	if c.v.booleans["cleanupexternaldetails"] || len(external) > 0 {
		kept := map[string]string{}
		for k, val := range h.Details {
			if !strings.HasPrefix(k, externalDetailPrefix) {
				kept[k] = val
			}
		}
		if !c.v.booleans["cleanupexternaldetails"] {
			for k, val := range external {
				kept[k] = val
			}
		}
		h.Details = kept
	}
	return map[string]any{"host": h}, nil
}

// registerTemplateParams are RegisterTemplateCmd's (api/.../user/template/RegisterTemplateCmd.java, the stored
// 4.21+ version): externaldetails is a MAP read with convertExternalDetailsToMap; details a MAP of which
// getDetails keeps the first group only.
func registerTemplateParams() []param {
	return []param{{"format", typeString, true}, {"hypervisor", typeString, true}, {"name", typeString, true},
		{"url", typeString, true}, {"displaytext", typeString, false}, {"ostypeid", typeUUID, false},
		{"zoneid", typeUUID, false}, {"zoneids", typeList, false}, {"bits", typeInteger, false},
		{"ispublic", typeBoolean, false}, {"isfeatured", typeBoolean, false}, {"isextractable", typeBoolean, false},
		{"passwordenabled", typeBoolean, false}, {"requireshvm", typeBoolean, false}, {"arch", typeString, false},
		{"templatetype", typeString, false}, {"details", typeMap, false}, {"extensionid", typeUUID, false},
		{"externaldetails", typeMap, false}}
}

// registerTemplate is RegisterTemplateCmd.validateParameters (one of zoneid or zoneids; a guest OS type) and
// TemplateAdapterBase.prepare (server/.../template/TemplateAdapterBase.java, 4.21+): the external details join
// the template's details (details.putAll(externalDetails)), from where a deploy copies them to the Instance.
func registerTemplate(c *call) (any, error) {
	_, hasZone := c.v.strings["zoneid"]
	zones := c.v.lists["zoneids"]
	switch {
	case hasZone && len(zones) > 0:
		return nil, paramError("Both zoneid and zoneids cannot be specified at the same time")
	case !hasZone && len(zones) == 0:
		return nil, paramError("Either zoneid or zoneids is required. Both cannot be null.")
	case c.v.strings["ostypeid"] == "":
		return nil, paramError("Please provide a guest OS type")
	}
	if hasZone {
		zones = []string{c.v.strings["zoneid"]}
	}
	extID := c.v.strings["extensionid"]
	if extID != "" && c.st.extension(extID) == nil {
		return nil, notFound("extensionid", extID)
	}
	details := firstGroup(c.v.maps["details"])
	for k, val := range convertExternalDetailsToMap(c.v.maps["externaldetails"]) {
		details[k] = val
	}
	t := &template{ID: newID("template", len(c.st.Templates)), Name: c.v.strings["name"], ExtensionID: extID,
		Hypervisor: c.v.strings["hypervisor"], Format: c.v.strings["format"], URL: c.v.strings["url"],
		OSTypeID: c.v.strings["ostypeid"], ZoneIDs: zones, Details: details}
	c.st.Templates = append(c.st.Templates, t)
	return map[string]any{"template": []any{t}}, nil
}

// firstGroup is RegisterTemplateCmd.getDetails: the first group of the map, the others dropped.
func firstGroup(groups map[int]map[string]string) map[string]string {
	out := map[string]string{}
	if idx := sortedIndexes(groups); len(idx) > 0 {
		for k, val := range groups[idx[0]] {
			out[k] = val
		}
	}
	return out
}

// createServiceOfferingParams are CreateServiceOfferingCmd's that matter here. The stored versions of the class
// predate externaldetails; it is read as the other 4.21 commands that store External: details read it
// (convertExternalDetailsToMap), and the UI sends it as externaldetails[0].<key>=<value>
// (ui/src/views/offering/AddComputeOffering.vue). serviceofferingdetails keeps CloudStack's key/value
// compatibility path (CreateServiceOfferingCmd.getDetails @782f7548), which externaldetails does not have.
func createServiceOfferingParams() []param {
	return []param{{"name", typeString, true}, {"displaytext", typeString, false}, {"cpunumber", typeInteger, false},
		{"cpuspeed", typeInteger, false}, {"memory", typeInteger, false}, {"serviceofferingdetails", typeMap, false},
		{"externaldetails", typeMap, false}}
}

func createServiceOffering(c *call) (any, error) {
	details := map[string]string{}
	for _, i := range sortedIndexes(c.v.maps["serviceofferingdetails"]) {
		g := c.v.maps["serviceofferingdetails"][i]
		if g["key"] != "" && g["value"] != "" {
			details[g["key"]] = g["value"]
			continue
		}
		for k, val := range g {
			details[k] = val
		}
	}
	for k, val := range convertExternalDetailsToMap(c.v.maps["externaldetails"]) {
		details[k] = val
	}
	o := &offering{ID: newID("serviceoffering", len(c.st.Offerings)), Name: c.v.strings["name"], Details: details}
	c.st.Offerings = append(c.st.Offerings, o)
	return map[string]any{"serviceoffering": o}, nil
}
