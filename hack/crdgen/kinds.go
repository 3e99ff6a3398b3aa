package main

import (
	"bytes"
	"encoding/json"
	"fmt"

	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Go packages holding the kinds below; controller-gen reads their types and markers.
const (
	kubevirtPkg     = "kubevirt.io/api/core/v1"
	instancetypePkg = "kubevirt.io/api/instancetype/v1beta1"
	snapshotPkg     = "kubevirt.io/api/snapshot/v1beta1"
	cdiPkg          = "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
)

// inputs maps each package to the module under inputs/ that it is loaded from. Each of those
// requires one API module and nothing else, so the packages are built with exactly the
// dependencies their API module declares, as upstream built the CRDs its operator installs. One
// shared module would not do: the VirtualMachine that KubeVirt v1.9.0 installs embeds CDI
// v1.64.0's DataVolumeSpec in spec.dataVolumeTemplates, and the DataVolume that CDI v1.66.0
// installs documents PersistentVolumeClaimSpec as k8s.io/api v0.31 does, while kubevirt.io/api
// v1.9.0 needs CDI v1.64.0 and k8s.io/api v0.34.
var inputs = map[string]string{
	kubevirtPkg:     "inputs/kubevirt",
	instancetypePkg: "inputs/kubevirt",
	snapshotPkg:     "inputs/kubevirt",
	cdiPkg:          "inputs/cdi",
}

// kind is one CRD to generate and what its operator installs around the generated schema.
type kind struct {
	pkg string
	gk  schema.GroupKind

	// fromMarkers says the Go types carry +kubebuilder:resource, printcolumn and subresource
	// markers, as CDI's do: cdi-operator installs controller-gen's output unchanged, so the
	// fields below are left empty and nothing is added.
	fromMarkers bool

	// The rest is what virt-operator v1.9.0 sets in code (components/crds.go), since KubeVirt's
	// types carry no such markers.
	scope      apiextv1.ResourceScope
	shortNames []string
	categories []string
	status     bool // status subresource
	columns    []apiextv1.CustomResourceColumnDefinition
}

// kinds are the kinds the product reads or writes, in the order they are generated.
var kinds = []kind{
	{
		pkg:        kubevirtPkg,
		gk:         gk("kubevirt.io", "VirtualMachine"),
		scope:      apiextv1.NamespaceScoped,
		shortNames: []string{"vm", "vms"},
		categories: []string{"all"},
		status:     true,
		columns: []apiextv1.CustomResourceColumnDefinition{
			ageColumn(),
			{Name: "Status", Type: "string", JSONPath: ".status.printableStatus", Description: "Human Readable Status"},
			conditionColumn("Ready", "Ready", 0),
		},
	},
	{
		// No status subresource: virt-operator installs the VMI without one, so status is
		// written with a plain update, and envtest must behave the same.
		pkg:        kubevirtPkg,
		gk:         gk("kubevirt.io", "VirtualMachineInstance"),
		scope:      apiextv1.NamespaceScoped,
		shortNames: []string{"vmi", "vmis"},
		categories: []string{"all"},
		columns: []apiextv1.CustomResourceColumnDefinition{
			ageColumn(),
			{Name: "Phase", Type: "string", JSONPath: ".status.phase"},
			{Name: "IP", Type: "string", JSONPath: ".status.interfaces[0].ipAddress"},
			{Name: "NodeName", Type: "string", JSONPath: ".status.nodeName"},
			conditionColumn("Ready", "Ready", 0),
			conditionColumn("Live-Migratable", "LiveMigratable", 1),
			conditionColumn("Paused", "Paused", 1),
		},
	},
	{
		pkg:        kubevirtPkg,
		gk:         gk("kubevirt.io", "VirtualMachineInstanceMigration"),
		scope:      apiextv1.NamespaceScoped,
		shortNames: []string{"vmim", "vmims"},
		categories: []string{"all"},
		status:     true,
		columns: []apiextv1.CustomResourceColumnDefinition{
			{Name: "Phase", Type: "string", JSONPath: ".status.phase", Description: "The current phase of VM instance migration"},
			{Name: "VMI", Type: "string", JSONPath: ".spec.vmiName", Description: "The name of the VMI to perform the migration on"},
		},
	},
	{
		pkg:        instancetypePkg,
		gk:         gk("instancetype.kubevirt.io", "VirtualMachineInstancetype"),
		scope:      apiextv1.NamespaceScoped,
		shortNames: []string{"vminstancetype", "vminstancetypes", "vmf", "vmfs"},
		categories: []string{"all"},
	},
	{
		pkg:        instancetypePkg,
		gk:         gk("instancetype.kubevirt.io", "VirtualMachineClusterInstancetype"),
		scope:      apiextv1.ClusterScoped,
		shortNames: []string{"vmclusterinstancetype", "vmclusterinstancetypes", "vmcf", "vmcfs"},
	},
	{
		pkg:        instancetypePkg,
		gk:         gk("instancetype.kubevirt.io", "VirtualMachinePreference"),
		scope:      apiextv1.NamespaceScoped,
		shortNames: []string{"vmpref", "vmprefs", "vmp", "vmps"},
		categories: []string{"all"},
	},
	{
		pkg:        instancetypePkg,
		gk:         gk("instancetype.kubevirt.io", "VirtualMachineClusterPreference"),
		scope:      apiextv1.ClusterScoped,
		shortNames: []string{"vmcp", "vmcps"},
	},
	{
		pkg:        snapshotPkg,
		gk:         gk("snapshot.kubevirt.io", "VirtualMachineSnapshot"),
		scope:      apiextv1.NamespaceScoped,
		shortNames: []string{"vmsnapshot", "vmsnapshots"},
		categories: []string{"all"},
		status:     true,
		columns: []apiextv1.CustomResourceColumnDefinition{
			{Name: "SourceKind", Type: "string", JSONPath: ".spec.source.kind"},
			{Name: "SourceName", Type: "string", JSONPath: ".spec.source.name"},
			{Name: "Phase", Type: "string", JSONPath: ".status.phase"},
			{Name: "ReadyToUse", Type: "boolean", JSONPath: ".status.readyToUse"},
			{Name: "CreationTime", Type: "date", JSONPath: ".status.creationTime"},
			{Name: "Error", Type: "string", JSONPath: ".status.error.message"},
		},
	},
	{
		pkg:        snapshotPkg,
		gk:         gk("snapshot.kubevirt.io", "VirtualMachineSnapshotContent"),
		scope:      apiextv1.NamespaceScoped,
		shortNames: []string{"vmsnapshotcontent", "vmsnapshotcontents"},
		categories: []string{"all"},
		status:     true,
		columns: []apiextv1.CustomResourceColumnDefinition{
			{Name: "ReadyToUse", Type: "boolean", JSONPath: ".status.readyToUse"},
			{Name: "CreationTime", Type: "date", JSONPath: ".status.creationTime"},
			{Name: "Error", Type: "string", JSONPath: ".status.error.message"},
		},
	},
	{
		pkg:        snapshotPkg,
		gk:         gk("snapshot.kubevirt.io", "VirtualMachineRestore"),
		scope:      apiextv1.NamespaceScoped,
		shortNames: []string{"vmrestore", "vmrestores"},
		categories: []string{"all"},
		status:     true,
		columns: []apiextv1.CustomResourceColumnDefinition{
			{Name: "TargetKind", Type: "string", JSONPath: ".spec.target.kind"},
			{Name: "TargetName", Type: "string", JSONPath: ".spec.target.name"},
			{Name: "Complete", Type: "boolean", JSONPath: ".status.complete"},
			{Name: "RestoreTime", Type: "date", JSONPath: ".status.restoreTime"},
		},
	},
	{pkg: cdiPkg, gk: gk("cdi.kubevirt.io", "DataVolume"), fromMarkers: true},
	{pkg: cdiPkg, gk: gk("cdi.kubevirt.io", "DataSource"), fromMarkers: true},
}

// decorate adds to a generated CRD what the operator installs around its schema. It only touches
// the first version: controller-gen emits one per Go package, and the deprecated v1alpha3 that
// virt-operator also serves is left out on purpose (the product uses v1 only).
func (k kind) decorate(crd *apiextv1.CustomResourceDefinition) error {
	if k.fromMarkers {
		return nil
	}
	crd.Spec.Scope = k.scope
	crd.Spec.Names.ShortNames = k.shortNames
	crd.Spec.Names.Categories = k.categories
	v := &crd.Spec.Versions[0]
	v.AdditionalPrinterColumns = k.columns
	v.Subresources = nil
	if k.status {
		v.Subresources = &apiextv1.CustomResourceSubresources{Status: &apiextv1.CustomResourceSubresourceStatus{}}
	}
	return unquoteBackticks(v.Schema)
}

// unquoteBackticks turns every backtick in the schema into a single quote, as KubeVirt's build
// does: virt-operator carries its schemas in Go raw string literals (validations_generated.go),
// which cannot hold a backtick.
func unquoteBackticks(s *apiextv1.CustomResourceValidation) error {
	raw, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encoding schema: %w", err)
	}
	// encoding/json leaves backticks unescaped, so a byte replacement reaches every string.
	raw = bytes.ReplaceAll(raw, []byte("`"), []byte("'"))
	*s = apiextv1.CustomResourceValidation{}
	if err := json.Unmarshal(raw, s); err != nil {
		return fmt.Errorf("decoding schema: %w", err)
	}
	return nil
}

func gk(group, kind string) schema.GroupKind {
	return schema.GroupKind{Group: group, Kind: kind}
}

func ageColumn() apiextv1.CustomResourceColumnDefinition {
	return apiextv1.CustomResourceColumnDefinition{Name: "Age", Type: "date", JSONPath: ".metadata.creationTimestamp"}
}

func conditionColumn(name, condition string, priority int32) apiextv1.CustomResourceColumnDefinition {
	return apiextv1.CustomResourceColumnDefinition{
		Name:     name,
		Type:     "string",
		JSONPath: ".status.conditions[?(@.type=='" + condition + "')].status",
		Priority: priority,
	}
}
