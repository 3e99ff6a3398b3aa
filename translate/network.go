package translate

import (
	"fmt"
	"net/url"
	"strings"
)

// NetworkMapping says which Multus NetworkAttachmentDefinition carries each CloudStack network segment.
type NetworkMapping struct {
	// Explicit maps a segment (a VLAN id such as 1577, "untagged", or <scheme>-<id> such as vxlan-5000) to a
	// NetworkAttachmentDefinition reference, "name" or "namespace/name" (detail network_map).
	Explicit map[string]string
	// Template names the attachment of every other segment; {vlan} stands for the segment (detail
	// network_template).
	Template string
}

// networkMapping resolves network_map and network_template, from the operator's levels only: they choose the
// networks (and namespaces) an Instance is attached to.
func (d Details) networkMapping() (NetworkMapping, error) {
	m := NetworkMapping{Explicit: map[string]string{}, Template: DefaultNetworkTemplate}
	if t := d.Get(DetailNetworkTemplate); t != "" {
		if msg := attachmentRefProblem(strings.ReplaceAll(t, "{vlan}", "1")); msg != "" {
			return NetworkMapping{}, d.invalid(DetailNetworkTemplate, "%q does not give a valid attachment name: %s", t, msg)
		}
		m.Template = t
	}
	raw := d.Get(DetailNetworkMap)
	if raw == "" {
		return m, nil
	}
	for _, entry := range strings.Split(raw, ",") {
		segment, ref, ok := strings.Cut(strings.TrimSpace(entry), "=")
		segment, ref = strings.ToLower(strings.TrimSpace(segment)), strings.TrimSpace(ref)
		if !ok || segment == "" || ref == "" {
			return NetworkMapping{}, d.invalid(DetailNetworkMap, "entry %q is not <vlan>=<attachment>, like 1577=vlan-prod or 1577=net-ns/vlan-prod", entry)
		}
		if msg := attachmentRefProblem(ref); msg != "" {
			return NetworkMapping{}, d.invalid(DetailNetworkMap, "entry %q: %s", entry, msg)
		}
		m.Explicit[segment] = ref
	}
	return m, nil
}

// Attachment returns the NetworkAttachmentDefinition reference for a segment.
func (m NetworkMapping) Attachment(segment string) string {
	if ref, ok := m.Explicit[segment]; ok {
		return ref
	}
	return strings.ReplaceAll(m.Template, "{vlan}", segment)
}

// Segment is the network segment a CloudStack NIC is on, from its broadcast URI: the VLAN id for vlan://N,
// "untagged" for an untagged network, <scheme>-<id> for other isolation methods (vxlan://5000 -> vxlan-5000).
func Segment(nic NicTO) (string, error) {
	raw := nic.BroadcastURI
	if raw == "" {
		return "untagged", nil
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "", fmt.Errorf("NIC %d: broadcast URI %q is not <scheme>://<id>", nic.DeviceID, raw)
	}
	id := strings.ToLower(u.Host)
	if strings.EqualFold(u.Scheme, "vlan") {
		return id, nil
	}
	return strings.ToLower(u.Scheme) + "-" + id, nil
}

// attachmentRefProblem returns why ref is not "name" or "namespace/name", or "".
func attachmentRefProblem(ref string) string {
	ns, name, found := strings.Cut(ref, "/")
	if !found {
		name = ref
	} else if msg := dns1123Label(ns); msg != "" {
		return fmt.Sprintf("namespace %q: %s", ns, msg)
	}
	if msg := dns1123Label(name); msg != "" {
		return fmt.Sprintf("attachment name %q: %s", name, msg)
	}
	return ""
}
