// Package crds_test checks the CRDs that hack/gen-crds.sh writes into this directory for envtest.
//
// The files must each hold one CustomResourceDefinition of the expected shape. Where a copy of
// the CRDs that virt-operator, cdi-operator and Multus install is at hand (shared/crds/kubevirt
// beside the repository, or $KUBEVIRT_REFERENCE_CRDS), the generated ones must match it node for
// node, so that envtest validates, prunes and defaults as a real cluster does.
package crds_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// defaultReferenceDir is <repo>/../shared/crds/kubevirt, relative to this package's directory.
const defaultReferenceDir = "../../../shared/crds/kubevirt"

// crd is what one generated file must define.
type crd struct {
	group, kind, plural string
	scope               apiextv1.ResourceScope
	version             string // the only version, served and stored
	status              bool   // has the status subresource
}

func (c crd) name() string { return c.plural + "." + c.group }
func (c crd) file() string { return c.group + "_" + c.plural + ".yaml" }

var crds = []crd{
	{"kubevirt.io", "VirtualMachine", "virtualmachines", apiextv1.NamespaceScoped, "v1", true},
	// No status subresource, as on a real cluster: status is written with a plain update.
	{"kubevirt.io", "VirtualMachineInstance", "virtualmachineinstances", apiextv1.NamespaceScoped, "v1", false},
	{"kubevirt.io", "VirtualMachineInstanceMigration", "virtualmachineinstancemigrations", apiextv1.NamespaceScoped, "v1", true},
	{"instancetype.kubevirt.io", "VirtualMachineInstancetype", "virtualmachineinstancetypes", apiextv1.NamespaceScoped, "v1beta1", false},
	{"instancetype.kubevirt.io", "VirtualMachineClusterInstancetype", "virtualmachineclusterinstancetypes", apiextv1.ClusterScoped, "v1beta1", false},
	{"instancetype.kubevirt.io", "VirtualMachinePreference", "virtualmachinepreferences", apiextv1.NamespaceScoped, "v1beta1", false},
	{"instancetype.kubevirt.io", "VirtualMachineClusterPreference", "virtualmachineclusterpreferences", apiextv1.ClusterScoped, "v1beta1", false},
	{"snapshot.kubevirt.io", "VirtualMachineSnapshot", "virtualmachinesnapshots", apiextv1.NamespaceScoped, "v1beta1", true},
	{"snapshot.kubevirt.io", "VirtualMachineSnapshotContent", "virtualmachinesnapshotcontents", apiextv1.NamespaceScoped, "v1beta1", true},
	{"snapshot.kubevirt.io", "VirtualMachineRestore", "virtualmachinerestores", apiextv1.NamespaceScoped, "v1beta1", true},
	{"cdi.kubevirt.io", "DataVolume", "datavolumes", apiextv1.NamespaceScoped, "v1beta1", true},
	{"cdi.kubevirt.io", "DataSource", "datasources", apiextv1.NamespaceScoped, "v1beta1", false},
	{"k8s.cni.cncf.io", "NetworkAttachmentDefinition", "network-attachment-definitions", apiextv1.NamespaceScoped, "v1", false},
}

func TestFilesAreTheExpectedCRDs(t *testing.T) {
	got, err := filepath.Glob("*.yaml")
	require.NoError(t, err)
	var want []string
	for _, c := range crds {
		want = append(want, c.file())
	}
	assert.ElementsMatch(t, want, got, "the YAML files here must be exactly the generated CRDs; run hack/gen-crds.sh")
}

func TestCRDShape(t *testing.T) {
	for _, c := range crds {
		t.Run(c.kind, func(t *testing.T) {
			got := readCRD(t, c.file())

			assert.Equal(t, "apiextensions.k8s.io/v1", got.APIVersion)
			assert.Equal(t, "CustomResourceDefinition", got.Kind)
			assert.Equal(t, c.name(), got.Name)
			assert.Equal(t, c.group, got.Spec.Group)
			assert.Equal(t, c.kind, got.Spec.Names.Kind)
			assert.Equal(t, c.plural, got.Spec.Names.Plural)
			assert.Equal(t, c.scope, got.Spec.Scope)

			require.Len(t, got.Spec.Versions, 1)
			v := got.Spec.Versions[0]
			assert.Equal(t, c.version, v.Name)
			assert.True(t, v.Served, "served")
			assert.True(t, v.Storage, "storage")
			require.NotNil(t, v.Schema)
			require.NotNil(t, v.Schema.OpenAPIV3Schema)
			assert.Equal(t, "object", v.Schema.OpenAPIV3Schema.Type)

			hasStatus := v.Subresources != nil && v.Subresources.Status != nil
			assert.Equal(t, c.status, hasStatus, "status subresource")
		})
	}
}

// TestMatchesReference compares each generated CRD with the installed one it stands for: the
// schema of its version, its subresources, printer columns, short names, categories and scope.
// There are no known differences and none are allowed. The reference also serves the deprecated
// kubevirt.io/v1alpha3, which is not generated; only the generated version is compared.
func TestMatchesReference(t *testing.T) {
	dir := os.Getenv("KUBEVIRT_REFERENCE_CRDS")
	if dir == "" {
		dir = defaultReferenceDir
	}
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		t.Skipf("no reference CRDs at %s; set KUBEVIRT_REFERENCE_CRDS to compare against a copy elsewhere", dir)
	}
	refs := readReferences(t, dir)
	// extra/ holds the rest of what virt-operator installs, the snapshot kinds among them.
	if extra := filepath.Join(dir, "extra"); isDir(extra) {
		maps.Copy(refs, readReferences(t, extra))
	}

	compared := 0
	for _, c := range crds {
		ref, ok := refs[c.name()]
		if !ok {
			t.Logf("%s: not in %s, not compared", c.name(), dir)
			continue
		}
		compared++
		t.Run(c.kind, func(t *testing.T) {
			got := readGeneric(t, c.file())
			assertSame(t, "spec.scope", lookup(got, "spec", "scope"), lookup(ref, "spec", "scope"))
			assertSame(t, "spec.names.shortNames", lookup(got, "spec", "names", "shortNames"), lookup(ref, "spec", "names", "shortNames"))
			assertSame(t, "spec.names.categories", lookup(got, "spec", "names", "categories"), lookup(ref, "spec", "names", "categories"))

			gotV, refV := version(got, c.version), version(ref, c.version)
			require.NotNil(t, gotV, "generated version %s", c.version)
			require.NotNil(t, refV, "reference version %s", c.version)
			for _, field := range []string{"served", "storage", "subresources", "additionalPrinterColumns"} {
				assertSame(t, field, gotV[field], refV[field])
			}
			assertSame(t, "schema.openAPIV3Schema", lookup(gotV, "schema", "openAPIV3Schema"), lookup(refV, "schema", "openAPIV3Schema"))
		})
	}
	// A reference directory with nothing in common is a wrong path, not a pass.
	require.NotZero(t, compared, "no generated CRD has a counterpart in %s", dir)
}

func isDir(path string) bool {
	info, err := os.Stat(path)
	return err == nil && info.IsDir()
}

// readCRD decodes a file that must hold exactly one CustomResourceDefinition, rejecting fields
// the v1 type does not know.
func readCRD(t *testing.T, path string) *apiextv1.CustomResourceDefinition {
	t.Helper()
	doc := readOneDocument(t, path)
	var crd apiextv1.CustomResourceDefinition
	require.NoError(t, yaml.UnmarshalStrict(doc, &crd), "%s", path)
	return &crd
}

// readGeneric decodes a file holding one object into generic maps, so that a comparison sees
// every node, including any that the Go types would drop.
func readGeneric(t *testing.T, path string) map[string]any {
	t.Helper()
	var obj map[string]any
	require.NoError(t, yaml.Unmarshal(readOneDocument(t, path), &obj), "%s", path)
	return obj
}

// readReferences reads the reference CRDs at the top of dir (envtest reads no deeper), by name.
func readReferences(t *testing.T, dir string) map[string]map[string]any {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	require.NoError(t, err)
	refs := map[string]map[string]any{}
	for _, p := range paths {
		obj := readGeneric(t, p)
		name, _ := lookup(obj, "metadata", "name").(string)
		require.NotEmpty(t, name, "%s: no metadata.name", p)
		refs[name] = obj
	}
	return refs
}

// readOneDocument returns the only YAML document in a file, skipping empty or comment-only ones.
func readOneDocument(t *testing.T, path string) []byte {
	t.Helper()
	docs, err := documents(path)
	require.NoError(t, err)
	// Not require.Len: it would print the documents, which run to hundreds of kilobytes.
	require.Equal(t, 1, len(docs), "%s must hold exactly one YAML document", path)
	return docs[0]
}

// documents splits a YAML file as envtest does and drops documents with no content.
func documents(path string) ([][]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		j, err := yaml.YAMLToJSON(doc)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if string(j) != "null" {
			docs = append(docs, doc)
		}
	}
}

// version returns the entry of spec.versions with the given name, or nil.
func version(obj map[string]any, name string) map[string]any {
	versions, _ := lookup(obj, "spec", "versions").([]any)
	for _, v := range versions {
		if m, ok := v.(map[string]any); ok && m["name"] == name {
			return m
		}
	}
	return nil
}

// lookup walks nested maps by key and returns nil where a key is missing.
func lookup(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// maxDiffs bounds the paths reported, so a wholesale mismatch stays readable.
const maxDiffs = 10

// assertSame fails unless got and ref are deeply equal, naming the first paths that differ.
func assertSame(t *testing.T, what string, got, ref any) {
	t.Helper()
	if reflect.DeepEqual(got, ref) {
		return
	}
	var diffs []string
	diffPaths(what, got, ref, &diffs)
	shown := diffs[:min(len(diffs), maxDiffs)]
	t.Errorf("%s differs from the reference at %d paths; first:\n  %s", what, len(diffs), strings.Join(shown, "\n  "))
}

// diffPaths appends to out one line per JSON path where got and ref differ.
func diffPaths(path string, got, ref any, out *[]string) {
	switch g := got.(type) {
	case map[string]any:
		r, ok := ref.(map[string]any)
		if !ok {
			break
		}
		for _, k := range unionKeys(g, r) {
			gv, inGot := g[k]
			rv, inRef := r[k]
			switch {
			case !inGot:
				*out = append(*out, fmt.Sprintf("%s.%s: only in the reference: %s", path, k, brief(rv)))
			case !inRef:
				*out = append(*out, fmt.Sprintf("%s.%s: only generated: %s", path, k, brief(gv)))
			default:
				diffPaths(path+"."+k, gv, rv, out)
			}
		}
		return
	case []any:
		r, ok := ref.([]any)
		if !ok {
			break
		}
		if len(g) != len(r) {
			*out = append(*out, fmt.Sprintf("%s: %d items generated, %d in the reference", path, len(g), len(r)))
		}
		for i := range min(len(g), len(r)) {
			diffPaths(fmt.Sprintf("%s[%d]", path, i), g[i], r[i], out)
		}
		return
	}
	if !reflect.DeepEqual(got, ref) {
		*out = append(*out, fmt.Sprintf("%s: generated %s, reference %s", path, brief(got), brief(ref)))
	}
}

func unionKeys(a, b map[string]any) []string {
	var keys []string
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// brief renders a value as JSON on one short line.
func brief(v any) string {
	j, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	s := string(j)
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}
