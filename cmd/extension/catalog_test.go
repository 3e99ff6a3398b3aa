package main

import (
	"encoding/json"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCatalog: every action has one handler and a name no other action matches; a custom action has what
// addCustomAction needs, and a lifecycle action nothing of it.
func TestCatalog(t *testing.T) {
	actions := catalog()
	seen := map[string]bool{}
	for _, a := range actions {
		key := strings.ToLower(a.Name)
		assert.False(t, seen[key], "%s: one action per name, in any case", a.Name)
		seen[key] = true
		assert.True(t, (a.run == nil) != (a.alone == nil), "%s: exactly one handler", a.Name)
		switch a.Kind {
		case lifecycle:
			assert.False(t, a.FoldCase, "%s: lifecycle actions match only as written", a.Name)
			assert.Zero(t, a.Timeout, a.Name)
			assert.Empty(t, a.Roles, a.Name)
			assert.Empty(t, a.Params, a.Name)
		case custom:
			assert.Positive(t, a.Timeout, a.Name)
			assert.Contains(t, a.Roles, "Admin", "%s: CloudStack adds Admin to every list", a.Name)
			assert.NotEmpty(t, a.Description, a.Name)
			for _, p := range a.Params {
				assert.Contains(t, []string{"STRING", "NUMBER", "BOOLEAN"}, p.Type, "%s %s", a.Name, p.Name)
			}
		default:
			assert.Failf(t, "unknown kind", "%s: %q", a.Name, a.Kind)
		}
	}
	assert.Equal(t, []string{"prepare", "create", "start", "stop", "reboot", "delete", "status", "statuses", "getconsole"}, names(actions, lifecycle))
	assert.Equal(t, []string{"check", "ListSnapshots", "CreateSnapshot", "RestoreSnapshot", "DeleteSnapshot", "Pause", "Resume", "Migrate", "Describe"}, names(actions, custom))
}

// TestCatalogCommand: `extension catalog` prints the catalog, as hack/register.sh reads it.
func TestCatalogCommand(t *testing.T) {
	code, out := runCaptured(t, "catalog")
	require.Equal(t, exitOK, code, out)
	var answer struct {
		Status  string
		Actions []struct {
			Name, Kind  string
			Timeout     int
			Roles       []string
			Description string
			Parameters  []param
		}
	}
	require.NoError(t, json.Unmarshal([]byte(out), &answer), out)
	assert.Equal(t, "success", answer.Status)
	require.Len(t, answer.Actions, len(catalog()))
	for i, a := range catalog() {
		got := answer.Actions[i]
		assert.Equal(t, a.Name, got.Name)
		assert.Equal(t, string(a.Kind), got.Kind, a.Name)
		assert.Equal(t, a.Timeout, got.Timeout, a.Name)
		assert.Equal(t, a.Roles, got.Roles, a.Name)
		assert.Equal(t, a.Description, got.Description, a.Name)
		assert.Equal(t, a.Params, got.Parameters, a.Name)
	}
}

// TestHelp: a person asking for help gets text naming every action and where the log is; CloudStack's
// malformed calls still get JSON (TestContractErrors).
func TestHelp(t *testing.T) {
	for _, arg := range []string{"--help", "-h"} {
		code, out := runCaptured(t, arg)
		assert.Equal(t, exitOK, code, arg)
		assert.False(t, json.Valid([]byte(out)), "%s: text for people, not JSON", arg)
		for _, a := range catalog() {
			assert.Contains(t, out, a.Name, arg)
		}
		assert.Contains(t, out, "Configuration details", arg)
		assert.Contains(t, out, "/var/log/cloudstack/management/kubevirt-extension.log", arg)
	}
}

// TestNoArgumentsAtATerminal: a person who runs it bare reads the usage text; CloudStack's pipe gets JSON
// (TestContractErrors).
func TestNoArgumentsAtATerminal(t *testing.T) {
	var text strings.Builder
	code, ok := forPeople(nil, &text, true, nil)
	assert.True(t, ok)
	assert.Equal(t, exitUsage, code)
	assert.Equal(t, usage(catalog()), text.String())
	_, ok = forPeople(nil, &text, false, nil)
	assert.False(t, ok, "not at a terminal: the JSON error")
}

// TestAnswerNotHTMLEscaped: an answer says "<" as "<", not "\u003c".
func TestAnswerNotHTMLEscaped(t *testing.T) {
	code, out := runCaptured(t, "create", "x")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, out, "usage: extension <action> <payload-file> <timeout-seconds>")
	assert.NotContains(t, out, `\u003c`)
}

// actionsPage is the page that documents the actions and custom actions, relative to this package.
const actionsPage = "../../docs/actions.md"

// docsTable is the rows of the first table after heading in docs/actions.md, as cells trimmed of spaces. The
// header and separator rows are left out.
func docsTable(t *testing.T, heading string) [][]string {
	t.Helper()
	data, err := os.ReadFile(actionsPage)
	require.NoError(t, err)
	page := string(data)
	section := strings.Index(page, "\n"+heading+"\n")
	require.NotEqual(t, -1, section, "%s has %q", actionsPage, heading)
	start := section + strings.Index(page[section:], "\n|") + 1
	var rows [][]string
	for _, line := range strings.Split(page[start:], "\n")[2:] {
		if !strings.HasPrefix(line, "|") {
			break
		}
		cells := strings.Split(strings.Trim(line, "|"), " | ")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		rows = append(rows, cells)
	}
	require.NotEmpty(t, rows, "%s has a table", heading)
	return rows
}

var codeSpan = regexp.MustCompile("`([^`]+)`")

// codeNames are the code spans of a cell: the actions a row is about.
func codeNames(cell string) []string {
	var out []string
	for _, m := range codeSpan.FindAllStringSubmatch(cell, -1) {
		out = append(out, m[1])
	}
	return out
}

// TestDocsActions: docs/actions.md's Actions table names every action of the catalog, in its order (and version,
// which only a shell runs).
func TestDocsActions(t *testing.T) {
	var listed []string
	for _, row := range docsTable(t, "## Actions") {
		for _, name := range codeNames(row[0]) {
			if name != "version" {
				listed = append(listed, name)
			}
		}
	}
	var want []string
	for _, a := range catalog() {
		want = append(want, a.Name)
	}
	assert.Equal(t, want, listed)
}

// TestDocsCustomActions: docs/actions.md's Custom actions table has each custom action with the parameters,
// roles and timeout it is registered with.
func TestDocsCustomActions(t *testing.T) {
	type registration struct {
		Params  []param
		Roles   string
		Timeout string
	}
	documented := map[string]registration{}
	var order []string
	for _, row := range docsTable(t, "## Custom actions") {
		require.GreaterOrEqual(t, len(row), 4, "%v", row)
		for _, name := range codeNames(row[0]) {
			documented[name] = registration{Params: docsParams(row[1]), Roles: row[2], Timeout: row[3]}
			order = append(order, name)
		}
	}
	assert.Equal(t, names(catalog(), custom), order)
	for _, a := range catalog() {
		if a.Kind != custom {
			continue
		}
		want := registration{Params: a.Params, Roles: docsRoles(a.Roles), Timeout: strconv.Itoa(a.Timeout) + " s"}
		assert.Equal(t, want, documented[a.Name], a.Name)
	}
}

var docsParam = regexp.MustCompile("`(\\w+)` \\((\\w+)([^)]*)\\)")

// docsParams reads a parameters cell: "`snap_name` (STRING, yes), `snap_description` (STRING)".
func docsParams(cell string) []param {
	var out []param
	for _, m := range docsParam.FindAllStringSubmatch(cell, -1) {
		out = append(out, param{Name: m[1], Type: m[2], Required: strings.Contains(m[3], "yes")})
	}
	return out
}

// docsRoles is how docs/actions.md writes a list of roles: "all" for every role.
func docsRoles(roles []string) string {
	if strings.Join(roles, ",") == "Admin,ResourceAdmin,DomainAdmin,User" {
		return "all"
	}
	return strings.Join(roles, ", ")
}
