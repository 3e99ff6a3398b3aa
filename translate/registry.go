package translate

import (
	"fmt"
	"strings"
)

// Setters says which levels of externaldetails a detail is read from. CloudStack merges the template's, the
// offering's and the Instance's details into one map (virtualmachine): end users set Instance details when they
// deploy and may register templates, so every key there is chosen by an end user unless the operator denied it
// (user.vm.denied.details).
type Setters int

const (
	// AnyLevel details are read from every level, most specific first: what an end user may choose.
	AnyLevel Setters = iota
	// OperatorLevels details are read from host, cluster and extension details only. A value of the same name
	// at the virtualmachine level is ignored, as if it were not set.
	OperatorLevels
	// ExtensionLevel details are read from the extension's own details only, so that a host detail cannot
	// widen what they allow.
	ExtensionLevel
)

// String is how the configuration table (docs/configuration.md) names the levels.
func (s Setters) String() string {
	switch s {
	case AnyLevel:
		return "any"
	case OperatorLevels:
		return "operator"
	case ExtensionLevel:
		return "extension"
	}
	return fmt.Sprintf("Setters(%d)", int(s))
}

// reads says whether the level at index i of levels is read.
func (s Setters) reads(i int) bool {
	switch s {
	case AnyLevel:
		return true
	case OperatorLevels:
		return i > 0
	}
	return i == len(levels)-1
}

// Kind is how a detail's value is parsed.
type Kind int

// The kinds of detail values.
const (
	KindText     Kind = iota // free text, checked by the detail's own resolver
	KindBool                 // true or false (strconv.ParseBool)
	KindEnum                 // one of Values, case-insensitive
	KindQuantity             // a Kubernetes quantity, like 20Gi
	KindList                 // comma-separated entries
)

// DetailSpec is one detail the extension reads: who may set it, its default and how it is parsed. The configuration
// table in docs/configuration.md is rendered from these (TestDocsConfigurationTable keeps the two equal).
type DetailSpec struct {
	Key     string
	Setters Setters
	Kind    Kind
	Values  []string // KindEnum: the canonical spellings
	// Default is the documented default, as docs/configuration.md shows it; "" renders as "—".
	Default string
	// Usually says where an operator usually sets it; Meaning is the table's explanation.
	Usually, Meaning string
}

// Registry is every detail the extension reads, in the configuration table's order.
type Registry struct {
	specs []DetailSpec
	byKey map[string]int
}

// Spec returns the registered detail key, and whether there is one.
func (r *Registry) Spec(key string) (DetailSpec, bool) {
	i, ok := r.byKey[key]
	if !ok {
		return DetailSpec{}, false
	}
	return r.specs[i], true
}

// All returns the registered details in the configuration table's order.
func (r *Registry) All() []DetailSpec {
	return append([]DetailSpec(nil), r.specs...)
}

// setters is who may set key; a key nobody registered is read from the operator's levels only.
func (r *Registry) setters(key string) Setters {
	if s, ok := r.Spec(key); ok {
		return s.Setters
	}
	return OperatorLevels
}

// MarkdownTable renders the configuration table of docs/configuration.md (its links are relative to docs/).
func (r *Registry) MarkdownTable() string {
	var b strings.Builder
	b.WriteString("| detail | read from | usually set on | default | meaning |\n")
	b.WriteString("| --- | --- | --- | --- | --- |\n")
	for _, s := range r.specs {
		def := s.Default
		if def == "" {
			def = "—"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", s.Key, s.Setters, s.Usually, def, s.Meaning)
	}
	return b.String()
}

// NewRegistry builds the table of details. Lookups enforce its Setters; the typed resolvers take their
// defaults and allowed values from it.
func NewRegistry() *Registry {
	specs := detailSpecs()
	r := &Registry{specs: specs, byKey: make(map[string]int, len(specs))}
	for i, s := range specs {
		if _, dup := r.byKey[s.Key]; dup {
			panic("translate: detail " + s.Key + " registered twice")
		}
		r.byKey[s.Key] = i
	}
	return r
}

// registry is the one table every Details value consults.
var registry = NewRegistry()
