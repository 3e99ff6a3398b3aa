package translate

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"
)

// image validates a containerDisk image reference: KubeVirt hands it to the container runtime, which has the
// last word on its syntax, but whitespace or a URL scheme is always a mistake, and its registry must be one the
// operator allows.
func (d Details) image(key string) (string, error) {
	v := d.Get(key)
	if v == "" || strings.ContainsAny(v, " \t\n") || strings.Contains(v, "://") {
		return "", d.invalid(key, "%q is not a container image reference (like quay.io/containerdisks/fedora:43)", v)
	}
	if why := d.registryRefused(v); why != "" {
		return "", d.invalid(key, "%q is refused: %s", v, why)
	}
	return v, nil
}

// sourceURL validates a URL detail that CDI fetches from inside the cluster: one of schemes, no credentials,
// and a source the operator allows (docker:// by allowed_registries, http(s) by allowed_url_prefixes).
func (d Details) sourceURL(key string, schemes ...string) (string, error) {
	v := d.Get(key)
	u, err := url.Parse(v)
	if err != nil || u.Host == "" {
		return "", d.invalid(key, "the value is not a URL like https://images.example.com/fedora.qcow2")
	}
	if u.User != nil {
		return "", d.invalid(key, "%q carries credentials: details are shown to users and logged; publish the image without them", u.Redacted())
	}
	scheme := strings.ToLower(u.Scheme)
	if !slices.Contains(schemes, scheme) {
		return "", d.invalid(key, "%q: scheme %q is not one of %s", v, u.Scheme, strings.Join(schemes, ", "))
	}
	why := ""
	if scheme == "docker" {
		why = d.registryRefused(strings.TrimPrefix(v, u.Scheme+"://"))
	} else {
		why = d.urlRefused(u)
	}
	if why != "" {
		return "", d.invalid(key, "%q is refused: %s", v, why)
	}
	return v, nil
}

// list splits an operator's comma-separated detail into its non-empty entries.
func (d Details) list(key string) []string {
	var out []string
	for _, e := range strings.Split(d.Get(key), ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

// registryRefused says why the image reference ref (no scheme) may not be pulled, or "". With
// allowed_registries set, the reference must start with one of its entries (a registry, or registry/path) at a
// "/" boundary; without, any registry but an internal one.
func (d Details) registryRefused(ref string) string {
	reg, repo := splitImage(ref)
	normalized := strings.ToLower(reg) + "/" + repo
	if allowed := d.list(DetailAllowedRegistries); len(allowed) > 0 {
		for _, a := range allowed {
			a = strings.ToLower(strings.TrimSuffix(a, "/"))
			if normalized == a || strings.HasPrefix(normalized, a+"/") || strings.HasPrefix(normalized, a+":") || strings.HasPrefix(normalized, a+"@") {
				return ""
			}
		}
		return fmt.Sprintf("registry %s is not in the operator's %s (%s)", reg, DetailAllowedRegistries, strings.Join(allowed, ", "))
	}
	host := reg
	if h, _, err := net.SplitHostPort(reg); err == nil {
		host = h
	}
	if why := internalHost(host); why != "" {
		return fmt.Sprintf("registry %s %s; the operator may list it in %s", reg, why, DetailAllowedRegistries)
	}
	return ""
}

// splitImage splits an image reference into its registry (docker.io when it names none) and the rest, as the
// container runtimes do: the first component is a registry when it has a dot or a port, or is localhost.
func splitImage(ref string) (registry, rest string) {
	first, remainder, found := strings.Cut(ref, "/")
	if found && (strings.ContainsAny(first, ".:") || first == "localhost" || strings.HasPrefix(first, "[")) {
		return first, remainder
	}
	return "docker.io", ref
}

// urlRefused says why CDI may not fetch u, or "". With allowed_url_prefixes set, u must start with one of its
// entries: same scheme and host, and a path prefix that ends at a "/"; without, any host but an internal one.
func (d Details) urlRefused(u *url.URL) string {
	if allowed := d.list(DetailAllowedURLPrefixes); len(allowed) > 0 {
		if hasDotSegment(u.Path) {
			return "its path has . or .. segments, which would leave the operator's " + DetailAllowedURLPrefixes
		}
		for _, a := range allowed {
			if hasURLPrefix(u, a) {
				return ""
			}
		}
		return fmt.Sprintf("it does not start with any of the operator's %s (%s)", DetailAllowedURLPrefixes, strings.Join(allowed, ", "))
	}
	if why := internalHost(u.Hostname()); why != "" {
		return fmt.Sprintf("host %s %s; the operator may allow it with %s", u.Host, why, DetailAllowedURLPrefixes)
	}
	return ""
}

// hasURLPrefix says whether u starts with prefix: same scheme and host (port included), and a path that equals
// the prefix's or continues it after a "/".
func hasURLPrefix(u *url.URL, prefix string) bool {
	p, err := url.Parse(prefix)
	if err != nil || p.Host == "" || !strings.EqualFold(p.Scheme, u.Scheme) || !strings.EqualFold(p.Host, u.Host) {
		return false
	}
	if p.Path == "" || strings.HasSuffix(p.Path, "/") {
		return strings.HasPrefix(u.Path, p.Path) || u.Path+"/" == p.Path
	}
	return u.Path == p.Path || strings.HasPrefix(u.Path, p.Path+"/")
}

// hasDotSegment says whether a (decoded) URL path has a "." or ".." segment, which servers resolve.
func hasDotSegment(p string) bool {
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

// numericLabel says whether the last label of a name is a number (decimal, octal or hex): no top-level domain
// is, but C resolvers read such names as IPv4 addresses (0251.0376.0251.0376 is 169.254.169.254).
func numericLabel(h string) bool {
	last := h[strings.LastIndexByte(h, '.')+1:]
	digits := "0123456789"
	if hex, ok := strings.CutPrefix(last, "0x"); ok {
		last, digits = hex, "0123456789abcdef"
	}
	return last != "" && strings.Trim(last, digits) == ""
}

// internalHost says why host is internal to the cluster or the node (so that CDI, or the node's container
// runtime, would fetch from where the user cannot reach), or "" for a public name or address. Names are not
// resolved: a public name that resolves to an internal address is caught only by an allow-list.
func internalHost(host string) string {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	if addr, err := netip.ParseAddr(strings.Trim(h, "[]")); err == nil {
		addr = addr.Unmap()
		switch {
		case addr.IsLoopback():
			return "is a loopback address"
		case addr.IsLinkLocalUnicast() || addr.IsLinkLocalMulticast():
			return "is a link-local address (the cloud's metadata service lives there)"
		case addr.IsPrivate():
			return "is a private address (the cluster's services and pods live there)"
		case addr.IsUnspecified() || addr.IsMulticast():
			return "is not a unicast address"
		}
		return ""
	}
	switch {
	case h == "" || h == "localhost" || strings.HasSuffix(h, ".localhost"):
		return "is the node itself"
	case numericLabel(h):
		return "is an IP address in a non-canonical form"
	case !strings.Contains(h, "."):
		return "is a single-label name (it resolves to a Service of the importer's namespace)"
	case strings.HasSuffix(h, ".svc") || strings.HasSuffix(h, ".cluster.local") || strings.Contains(h, ".svc."):
		return "is a cluster Service"
	case strings.HasSuffix(h, ".local") || strings.HasSuffix(h, ".internal"):
		return "is a local-network name"
	}
	return ""
}
