package translate

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	kubevirtv1 "kubevirt.io/api/core/v1"
)

// Spec is what the details say about how to build an Instance's VirtualMachine.
type Spec struct {
	RootDisk     RootDisk
	DiskBus      kubevirtv1.DiskBus // empty: the preference's, else KubeVirt's default
	RunStrategy  kubevirtv1.VirtualMachineRunStrategy
	Instancetype string
	// InstancetypeGives is what the instancetype, read from the cluster, gives: VirtualMachine refuses it unless
	// it is exactly what CloudStack accounts. Whoever creates a VM with an instancetype must read and pass it.
	InstancetypeGives *Resources
	Preference        string
	Networks          NetworkMapping
	NICModel          string // empty: the preference's, else KubeVirt's default (virtio)
	WaitUntilRunning  bool
}

// RootDiskSource says where the root disk comes from.
type RootDiskSource int

const (
	// SourceContainerDisk boots an ephemeral containerDisk image (detail image).
	SourceContainerDisk RootDiskSource = iota
	// SourceImport imports a DataVolume from an http(s) URL or a docker:// registry image (root_disk_url).
	SourceImport
	// SourceClone clones a DataVolume from an existing PVC (root_disk_pvc).
	SourceClone
	// SourceISO boots an ISO from a cdrom and installs onto a blank DataVolume (iso_url).
	SourceISO
)

// RootDisk is the resolved root-disk configuration.
type RootDisk struct {
	Source       RootDiskSource
	Image        string            // SourceContainerDisk
	URL          string            // SourceImport, SourceISO (the ISO's URL)
	PVCNamespace string            // SourceClone; "" means the VM's namespace
	PVCName      string            // SourceClone
	Size         resource.Quantity // the root disk's size; zero means "as large as the source" (clone only)
	ISOSize      resource.Quantity // SourceISO
	StorageClass string
}

// Defaults for details that are not set.
const (
	DefaultRunStrategy     = kubevirtv1.RunStrategyAlways
	DefaultNetworkTemplate = "vlan-{vlan}"
	DefaultNICModel        = "virtio"
	DefaultDiskBus         = "virtio"
	DefaultISOSize         = "2Gi"
)

// Spec resolves every detail that shapes the VirtualMachine. All problems are reported by the first invalid
// detail's name, before anything is created.
func (d Details) Spec() (Spec, error) {
	var s Spec
	var err error
	if s.RootDisk, err = d.rootDisk(); err != nil {
		return Spec{}, err
	}
	if s.Preference, err = d.objectName(DetailPreference); err != nil {
		return Spec{}, err
	}
	// A preference fills only what the VM leaves unset, so with one the defaults are left to it.
	def := func(v string) string {
		if s.Preference != "" {
			return ""
		}
		return v
	}
	bus, err := d.oneOf(DetailDiskBus, def(DefaultDiskBus))
	if err != nil {
		return Spec{}, err
	}
	s.DiskBus = kubevirtv1.DiskBus(bus)
	strategy, err := d.oneOf(DetailRunStrategy, string(DefaultRunStrategy))
	if err != nil {
		return Spec{}, err
	}
	s.RunStrategy = kubevirtv1.VirtualMachineRunStrategy(strategy)
	if s.Instancetype, err = d.objectName(DetailInstancetype); err != nil {
		return Spec{}, err
	}
	if s.Networks, err = d.networkMapping(); err != nil {
		return Spec{}, err
	}
	if s.NICModel, err = d.oneOf(DetailNICModel, def(DefaultNICModel)); err != nil {
		return Spec{}, err
	}
	if s.WaitUntilRunning, err = d.boolean(DetailWaitUntilRunning, true); err != nil {
		return Spec{}, err
	}
	return s, nil
}

// rootDisk resolves the one root-disk source the template names, with its size and storage class.
func (d Details) rootDisk() (RootDisk, error) {
	sources := map[string]RootDiskSource{
		DetailImage: SourceContainerDisk, DetailRootDiskURL: SourceImport,
		DetailRootDiskPVC: SourceClone, DetailISOURL: SourceISO,
	}
	var set []string
	for _, key := range []string{DetailImage, DetailRootDiskURL, DetailRootDiskPVC, DetailISOURL} {
		if d.Get(key) != "" {
			set = append(set, key)
		}
	}
	switch len(set) {
	case 0:
		return RootDisk{}, &DetailError{Key: DetailImage, Reason: "no root disk: set one of the template details " +
			"image (containerDisk), root_disk_url (import), root_disk_pvc (clone) or iso_url (ISO install)"}
	case 1:
	default:
		return RootDisk{}, &DetailError{Key: set[1], Reason: fmt.Sprintf("conflicts with %s: set only one root disk source", set[0])}
	}
	disk := RootDisk{Source: sources[set[0]], StorageClass: d.Get(DetailStorageClass)}
	if disk.StorageClass != "" {
		if msg := dns1123Subdomain(disk.StorageClass); msg != "" {
			return RootDisk{}, d.invalid(DetailStorageClass, "%q is not a StorageClass name: %s", disk.StorageClass, msg)
		}
	}
	var err error
	switch disk.Source {
	case SourceContainerDisk:
		disk.Image, err = d.image(DetailImage)
		return disk, err
	case SourceImport:
		if disk.URL, err = d.sourceURL(DetailRootDiskURL, "http", "https", "docker"); err != nil {
			return RootDisk{}, err
		}
		disk.Size, err = d.rootDiskSize(true)
	case SourceClone:
		if disk.PVCNamespace, disk.PVCName, err = d.namespacedName(DetailRootDiskPVC); err != nil {
			return RootDisk{}, err
		}
		disk.Size, err = d.rootDiskSize(false)
	case SourceISO:
		if disk.URL, err = d.sourceURL(DetailISOURL, "http", "https"); err != nil {
			return RootDisk{}, err
		}
		if disk.Size, err = d.rootDiskSize(true); err != nil {
			return RootDisk{}, err
		}
		disk.ISOSize, err = d.boundedSize(DetailISOSize, DefaultISOSize)
	}
	if err != nil {
		return RootDisk{}, err
	}
	return disk, nil
}

// quantity parses a size detail like 20Gi. def applies when the detail is unset; required makes unset an error
// when def is empty.
func (d Details) quantity(key, def string, required bool) (resource.Quantity, error) {
	v := d.Get(key)
	if v == "" {
		v = def
	}
	if v == "" {
		if required {
			return resource.Quantity{}, &DetailError{Key: key, Reason: "not set: the disk needs a size, like 20Gi"}
		}
		return resource.Quantity{}, nil
	}
	q, err := resource.ParseQuantity(v)
	if err != nil || q.Sign() <= 0 {
		return resource.Quantity{}, d.invalid(key, "%q is not a positive size like 20Gi", v)
	}
	return q, nil
}

// rootDiskSize is the root disk's size: the root volume's size when CloudStack sends one (what it accounts;
// root_disk_size may not exceed it), else root_disk_size within max_disk_size. required makes no size an
// error; otherwise no size means "as large as the source".
func (d Details) rootDiskSize(required bool) (resource.Quantity, error) {
	q, err := d.quantity(DetailRootDiskSize, "", false)
	if err != nil {
		return resource.Quantity{}, err
	}
	if d.rootVolume > 0 {
		accounted := *resource.NewQuantity(d.rootVolume, resource.BinarySI)
		if !q.IsZero() && q.Cmp(accounted) > 0 {
			return resource.Quantity{}, d.invalid(DetailRootDiskSize, "%s is more than the root volume's %s that CloudStack accounts: "+
				"remove the detail, or give the Instance a larger root disk in CloudStack", q.String(), accounted.String())
		}
		return accounted, nil
	}
	if q.IsZero() {
		if required {
			return resource.Quantity{}, &DetailError{Key: DetailRootDiskSize, Reason: "not set: the disk needs a size, like 20Gi"}
		}
		return q, nil
	}
	return q, d.withinMax(DetailRootDiskSize, q)
}

// boundedSize resolves a size detail (def when unset) within max_disk_size.
func (d Details) boundedSize(key, def string) (resource.Quantity, error) {
	q, err := d.quantity(key, def, true)
	if err != nil {
		return resource.Quantity{}, err
	}
	return q, d.withinMax(key, q)
}

// withinMax refuses a size larger than the operator's max_disk_size: CloudStack accounts no such disk.
func (d Details) withinMax(key string, q resource.Quantity) error {
	limit, err := d.quantity(DetailMaxDiskSize, DefaultMaxDiskSize, true)
	if err != nil {
		return err
	}
	if q.Cmp(limit) > 0 {
		return d.invalid(key, "%s is more than the operator's %s (%s): CloudStack accounts no size for this disk", q.String(), DetailMaxDiskSize, limit.String())
	}
	return nil
}

// namespacedName parses "name" or "namespace/name".
func (d Details) namespacedName(key string) (namespace, name string, err error) {
	v := d.Get(key)
	namespace, name, found := strings.Cut(v, "/")
	if !found {
		namespace, name = "", v
	}
	if found {
		if msg := dns1123Label(namespace); msg != "" {
			return "", "", d.invalid(key, "%q: %q is not a namespace name: %s", v, namespace, msg)
		}
		// Reaching into another namespace is the operator's call, not a template's or an offering's.
		if _, level, _ := d.Lookup(key); level == levels[0] {
			return "", "", d.invalid(key, "%q names another namespace: only host, cluster or extension details may", v)
		}
	}
	if msg := dns1123Subdomain(name); msg != "" {
		return "", "", d.invalid(key, "%q: %q is not an object name: %s", v, name, msg)
	}
	return namespace, name, nil
}

// objectName validates a detail naming a cluster-scoped object.
func (d Details) objectName(key string) (string, error) {
	v := d.Get(key)
	if v == "" {
		return "", nil
	}
	if msg := dns1123Subdomain(v); msg != "" {
		return "", d.invalid(key, "%q is not an object name: %s", v, msg)
	}
	return v, nil
}
