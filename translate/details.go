package translate

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Detail keys the extension reads from externaldetails. The configuration table in docs/configuration.md documents
// each one.
const (
	DetailKubeconfig       = "kubeconfig"
	DetailContext          = "context"
	DetailNamespace        = "namespace"
	DetailLogFile          = "log_file"
	DetailImage            = "image"
	DetailRootDiskURL      = "root_disk_url"
	DetailRootDiskPVC      = "root_disk_pvc"
	DetailRootDiskSize     = "root_disk_size"
	DetailStorageClass     = "storage_class"
	DetailISOURL           = "iso_url"
	DetailISOSize          = "iso_size"
	DetailDiskBus          = "disk_bus"
	DetailRunStrategy      = "run_strategy"
	DetailInstancetype     = "instancetype"
	DetailPreference       = "preference"
	DetailNetworkMap       = "network_map"
	DetailNetworkTemplate  = "network_template"
	DetailNICModel         = "nic_model"
	DetailWaitUntilRunning = "wait_until_running"
	DetailReconcilerLease  = "reconciler_lease"
	DetailStatusCache      = "status_cache"
	// DetailAllowedNamespaces is read from the extension's own details only, so that a host (or Instance)
	// detail cannot widen it.
	DetailAllowedNamespaces = "allowed_namespaces"
	DetailInsecureTLS       = "tls_insecure_skip_verify"
)

// Levels are the externaldetails sub-maps in the order a key is looked up: most specific first.
var levels = []string{"virtualmachine", "host", "resourcemap", "extension"}

// Details resolves a detail key across the payload's levels, most specific first.
type Details struct {
	maps [4]map[string]string
	// rootVolume is the size CloudStack accounts for the root volume, in bytes; 0 when it sends none.
	rootVolume int64
}

// Details returns the payload's details resolver.
func (p *Payload) Details() Details {
	d := p.ExternalDetails
	root, _ := p.RootVolumeSize()
	return Details{maps: [4]map[string]string{d.VirtualMachine, d.Host, d.ResourceMap, d.Extension}, rootVolume: root}
}

// Lookup returns the value of key, trimmed, and the level it came from, reading only the levels the registry
// lets set key: a value an end user set for an operator's detail is ignored, as if it were not set. Empty values
// count as unset, so an operator can blank a value inherited from a less specific level only by removing it
// there.
func (d Details) Lookup(key string) (value, level string, ok bool) {
	setters := registry.setters(key)
	for i, m := range d.maps {
		if !setters.reads(i) {
			continue
		}
		if v, found := m[key]; found && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v), levels[i], true
		}
	}
	return "", "", false
}

// Get returns the value of key, or "" when no level sets it.
func (d Details) Get(key string) string {
	v, _, _ := d.Lookup(key)
	return v
}

// DetailError is a detail whose value the extension cannot use. Its message names the detail and the level it
// was set at, so a CloudStack admin knows what to edit.
type DetailError struct {
	Key, Level, Reason string
}

func (e *DetailError) Error() string {
	if e.Level == "" {
		return fmt.Sprintf("detail %s: %s", e.Key, e.Reason)
	}
	return fmt.Sprintf("detail %s (set on the %s): %s", e.Key, levelName(e.Level), e.Reason)
}

func levelName(level string) string {
	switch level {
	case "virtualmachine":
		return "instance, template or offering"
	case "resourcemap":
		return "cluster registration"
	default:
		return level
	}
}

func (d Details) invalid(key, format string, args ...any) error {
	_, level, _ := d.Lookup(key)
	return &DetailError{Key: key, Level: level, Reason: fmt.Sprintf(format, args...)}
}

// oneOf resolves a detail that takes one of the registry's values (case-insensitive), returning the canonical
// spelling, or def when unset.
func (d Details) oneOf(key, def string) (string, error) {
	v, _, ok := d.Lookup(key)
	if !ok {
		return def, nil
	}
	spec, _ := registry.Spec(key)
	for _, a := range spec.Values {
		if strings.EqualFold(v, a) {
			return a, nil
		}
	}
	return "", d.invalid(key, "%q is not one of %s", v, strings.Join(spec.Values, ", "))
}

// boolean resolves a true/false detail, or def when unset.
func (d Details) boolean(key string, def bool) (bool, error) {
	v, _, ok := d.Lookup(key)
	if !ok {
		return def, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, d.invalid(key, "%q is not true or false", v)
	}
	return b, nil
}

// Connection says where the Instances of a CloudStack host live: every action needs it.
type Connection struct {
	Kubeconfig string
	Context    string
	Namespace  string
	// InsecureTLS accepts a kubeconfig that turns TLS verification off; without it such a kubeconfig is refused.
	InsecureTLS bool
}

// DefaultLogFile is where diagnostics go unless the log_file detail says otherwise. The management server runs
// the extension as the cloud user, which owns this directory.
const DefaultLogFile = "/var/log/cloudstack/management/kubevirt-extension.log"

// LogFile is the diagnostics file named by the log_file detail, or DefaultLogFile.
func (d Details) LogFile() string {
	if v := d.Get(DetailLogFile); v != "" && filepath.IsAbs(v) {
		return v
	}
	return DefaultLogFile
}

// Connection resolves kubeconfig, context and namespace, from the operator's levels only.
func (d Details) Connection() (Connection, error) {
	kubeconfig, _, ok := d.Lookup(DetailKubeconfig)
	if !ok {
		return Connection{}, &DetailError{Key: DetailKubeconfig, Reason: "not set: add it to the host, cluster or extension details as the absolute path of a kubeconfig file on every management server"}
	}
	if !filepath.IsAbs(kubeconfig) {
		return Connection{}, d.invalid(DetailKubeconfig, "%q is not an absolute path (CloudStack runs the extension from an unspecified directory)", kubeconfig)
	}
	ns, _, ok := d.Lookup(DetailNamespace)
	if !ok {
		return Connection{}, &DetailError{Key: DetailNamespace, Reason: "not set: add the Kubernetes namespace of this host's Instances to the host's details"}
	}
	if msg := dns1123Label(ns); msg != "" {
		return Connection{}, d.invalid(DetailNamespace, "%q is not a Kubernetes namespace name: %s", ns, msg)
	}
	if why := d.namespaceRefused(ns); why != "" {
		return Connection{}, d.invalid(DetailNamespace, "%q is refused: %s", ns, why)
	}
	insecure, err := d.boolean(DetailInsecureTLS, false)
	if err != nil {
		return Connection{}, err
	}
	return Connection{Kubeconfig: kubeconfig, Context: d.Get(DetailContext), Namespace: ns, InsecureTLS: insecure}, nil
}

// systemNamespaces are never a CloudStack host's: Kubernetes', OpenShift's, KubeVirt's, CDI's, the
// reconciler's own and the console tokens'. A trailing * matches any suffix.
var systemNamespaces = []string{"kube-*", "openshift-*", "kubevirt", "cdi", DefaultReconcilerLease.Namespace, DefaultConsoleNamespace}

// namespaceRefused says why ns may not hold Instances, or "" when it may. The allow-list is the extension's
// own detail: a host or Instance detail of that name is ignored, so it cannot widen the list.
func (d Details) namespaceRefused(ns string) string {
	for _, pattern := range systemNamespaces {
		if matchName(pattern, ns) {
			return "it is a system namespace (" + pattern + ")"
		}
	}
	// The console gateway may read and delete every Secret in the token namespace: nothing else belongs there.
	if tokens, _, ok := d.Lookup(DetailConsoleNamespace); ok && tokens == ns {
		return "it holds the console gateway's tokens (detail " + DetailConsoleNamespace + ")"
	}
	allowed := d.Get(DetailAllowedNamespaces)
	if allowed == "" {
		return ""
	}
	for _, pattern := range strings.Split(allowed, ",") {
		if matchName(strings.TrimSpace(pattern), ns) {
			return ""
		}
	}
	return "the extension's " + DetailAllowedNamespaces + " detail does not list it (" + allowed + ")"
}

// matchName matches a name against a pattern that is a name or a prefix followed by *.
func matchName(pattern, name string) bool {
	if prefix, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(name, prefix)
	}
	return pattern == name
}

// LeaseRef names the companion reconciler's heartbeat Lease.
type LeaseRef struct {
	Namespace, Name string
}

// DefaultReconcilerLease is where manifests/ deploys the reconciler's heartbeat.
var DefaultReconcilerLease = LeaseRef{Namespace: "cloudstack-kubevirt-system", Name: "cloudstack-kubevirt-reconciler"}

// DefaultStatusCache is how long one listing of a host's power states answers the `status` calls of a ping
// round: a round of a thousand Instances takes a few seconds, and CloudStack pings a minute apart by default.
const DefaultStatusCache = 10 * time.Second

// MaxStatusCache bounds status_cache; the reconciler's heartbeat bounds every listing further.
const MaxStatusCache = time.Minute

// StatusCache resolves status_cache: how long a listing of the host's power states, taken under a fresh
// reconciler heartbeat, answers later `status` calls; 0 (or off) reads the cluster on every call.
func (d Details) StatusCache() (time.Duration, error) {
	if strings.EqualFold(d.Get(DetailStatusCache), "off") {
		return 0, nil
	}
	return d.duration(DetailStatusCache, DefaultStatusCache, 0, MaxStatusCache)
}

// duration resolves a detail that is a duration between lo and hi, in whole seconds: a number of seconds, or a
// Go duration like 45s. def when unset.
func (d Details) duration(key string, def, lo, hi time.Duration) (time.Duration, error) {
	v, _, ok := d.Lookup(key)
	if !ok {
		return def, nil
	}
	dur, err := time.ParseDuration(v)
	if err != nil {
		s, serr := strconv.Atoi(v)
		dur, err = time.Duration(s)*time.Second, serr
	}
	if err != nil || dur < lo || dur > hi {
		return 0, d.invalid(key, "%q is not a duration between %s and %s (seconds, or like 45s)", v, lo, hi)
	}
	return dur.Truncate(time.Second), nil
}

// ReconcilerLease resolves the reconciler_lease detail: "<namespace>/<name>" of the heartbeat Lease, or "none"
// where no reconciler runs (status calls then always read the full objects). ok is false for "none".
func (d Details) ReconcilerLease() (ref LeaseRef, ok bool, err error) {
	v := strings.TrimSpace(d.Get(DetailReconcilerLease))
	switch v {
	case "":
		return DefaultReconcilerLease, true, nil
	case "none":
		return LeaseRef{}, false, nil
	}
	ns, name, found := strings.Cut(v, "/")
	if !found || dns1123Label(ns) != "" || dns1123Subdomain(name) != "" {
		return LeaseRef{}, false, d.invalid(DetailReconcilerLease, "%q is not <namespace>/<lease name> or none", v)
	}
	return LeaseRef{Namespace: ns, Name: name}, true, nil
}
