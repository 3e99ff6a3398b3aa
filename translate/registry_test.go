package translate

import (
	"flag"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/resource"
)

var updateDocs = flag.Bool("update-docs", false, "rewrite docs/configuration.md's configuration table from the registry")

// configurationPage is the page that holds the configuration table, relative to this package.
const configurationPage = "../docs/configuration.md"

// docsTable returns the configuration page's text and the bounds of its configuration table: the table after
// the "## Configuration details" heading.
func docsTable(t *testing.T) (page string, start, end int) {
	t.Helper()
	data, err := os.ReadFile(configurationPage)
	require.NoError(t, err)
	page = string(data)
	section := strings.Index(page, "\n## Configuration details\n")
	require.NotEqual(t, -1, section, "%s has a Configuration details section", configurationPage)
	start = section + strings.Index(page[section:], "\n| detail |") + 1
	require.Greater(t, start, section, "the section has a table")
	end = start
	for end < len(page) && page[end] == '|' {
		end += strings.IndexByte(page[end:], '\n') + 1
	}
	return page, start, end
}

// TestDocsConfigurationTable keeps docs/configuration.md's table what the registry renders: keys, who may set
// them, defaults and meanings. `go test ./translate -run DocsConfigurationTable -update-docs` rewrites it.
func TestDocsConfigurationTable(t *testing.T) {
	page, start, end := docsTable(t)
	want := NewRegistry().MarkdownTable()
	if *updateDocs {
		require.NoError(t, os.WriteFile(configurationPage, []byte(page[:start]+want+page[end:]), 0o644))
		return
	}
	rows := parseTable(page[start:end])
	wantRows := parseTable(want)
	require.Len(t, rows, len(wantRows), "one row per registered detail")
	for i, row := range rows {
		w := wantRows[i]
		assert.Equal(t, w.key, row.key, "row %d", i+1)
		assert.Equal(t, w.setters, row.setters, "who may set %s", row.key)
		assert.Equal(t, w.def, row.def, "default of %s", row.key)
	}
	assert.Equal(t, want, page[start:end], "docs/configuration.md's table is the registry's (run with -update-docs)")
}

type tableRow struct{ key, setters, def string }

// parseTable reads a rendered table's key, "read from" and default columns.
func parseTable(table string) []tableRow {
	var rows []tableRow
	for _, line := range strings.Split(strings.TrimSpace(table), "\n")[2:] {
		cells := strings.Split(strings.Trim(line, "|"), " | ")
		rows = append(rows, tableRow{key: strings.Trim(strings.TrimSpace(cells[0]), "`"), setters: cells[1], def: cells[3]})
	}
	return rows
}

// TestRegistryEnforcesSetters: a value set only at the Instance level is read for exactly the details any level
// may set; every operator detail ignores it.
func TestRegistryEnforcesSetters(t *testing.T) {
	for _, spec := range NewRegistry().All() {
		t.Run(spec.Key, func(t *testing.T) {
			p := &Payload{ExternalDetails: ExternalDetails{VirtualMachine: map[string]string{spec.Key: "from-the-user"}}}
			_, _, ok := p.Details().Lookup(spec.Key)
			assert.Equal(t, spec.Setters == AnyLevel, ok)
			p = &Payload{ExternalDetails: ExternalDetails{Extension: map[string]string{spec.Key: "from-the-operator"}}}
			v, level, _ := p.Details().Lookup(spec.Key)
			assert.Equal(t, "from-the-operator", v)
			assert.Equal(t, "extension", level)
		})
	}
	p := &Payload{ExternalDetails: ExternalDetails{Host: map[string]string{DetailAllowedNamespaces: "x"}}}
	assert.Empty(t, p.Details().Get(DetailAllowedNamespaces), "a host cannot widen the extension's namespaces")
	p = &Payload{ExternalDetails: ExternalDetails{VirtualMachine: map[string]string{"not-registered": "x"}}}
	assert.Empty(t, p.Details().Get("not-registered"), "an unregistered key is the operator's")
}

// Finding 2: what CloudStack accounts for cannot be raised from the Instance level.
func TestUserLevelCannotRaiseWhatIsBilled(t *testing.T) {
	tests := []struct {
		name    string
		details map[string]string
		wantErr string
	}{
		{name: "storage_class from the Instance is ignored", details: map[string]string{"root_disk_url": "https://images.example/f.qcow2", "root_disk_size": "10Gi", "storage_class": "premium"}},
		{name: "1000Ti root disk", details: map[string]string{"root_disk_url": "https://images.example/f.qcow2", "root_disk_size": "1000Ti"}, wantErr: "detail root_disk_size (set on the instance, template or offering): 1000Ti is more than the operator's max_disk_size (1Ti)"},
		{name: "operator's max_disk_size", details: map[string]string{"root_disk_url": "https://images.example/f.qcow2", "root_disk_size": "30Gi", "host:max_disk_size": "20Gi"}, wantErr: "30Gi is more than the operator's max_disk_size (20Gi)"},
		{name: "max_disk_size from the Instance is ignored", details: map[string]string{"root_disk_url": "https://images.example/f.qcow2", "root_disk_size": "2Ti", "max_disk_size": "4Ti"}, wantErr: "max_disk_size (1Ti)"},
		{name: "huge ISO", details: map[string]string{"iso_url": "https://images.example/a.iso", "root_disk_size": "8Gi", "iso_size": "5Ti"}, wantErr: "detail iso_size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := buildVM(t, samplePayload(t, tt.details))
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
		})
	}
	spec, err := samplePayload(t, map[string]string{"image": "a/b", "storage_class": "premium"}).Details().Spec()
	require.NoError(t, err)
	assert.Empty(t, spec.RootDisk.StorageClass)
}

// TestRegistryKinds: each detail's documented default is a value its parser takes.
func TestRegistryKinds(t *testing.T) {
	for _, spec := range NewRegistry().All() {
		t.Run(spec.Key, func(t *testing.T) {
			def := strings.Trim(spec.Default, "`")
			switch spec.Kind {
			case KindEnum:
				require.NotEmpty(t, spec.Values)
				if def != "" {
					assert.Contains(t, spec.Values, def)
				}
			case KindBool:
				_, err := strconv.ParseBool(def)
				assert.NoError(t, err)
			case KindQuantity:
				if _, err := resource.ParseQuantity(def); strings.HasPrefix(spec.Default, "`") {
					assert.NoError(t, err)
				}
			}
			assert.NotEmpty(t, spec.Usually)
			assert.NotEmpty(t, spec.Meaning)
		})
	}
}
