package doubles

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/cloudstack-kubevirt/cloudstack-kubevirt"

// TestProductImportsNoTestPackage checks that no product binary is built from anything under test/: the
// doubles are free to be as large as fidelity needs because they never ship.
func TestProductImportsNoTestPackage(t *testing.T) {
	// The binaries CloudStack's hosts and the cluster run.
	deps, err := listDeps(t, "./cmd/extension", "./cmd/reconciler", "./cmd/console")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(deps, module+"/translate") {
		t.Fatalf("go list did not report %s/translate among %d dependencies: the check would pass vacuously", module, len(deps))
	}
	for _, dep := range deps {
		if strings.HasPrefix(dep, module+"/test/") {
			t.Errorf("a product binary depends on %s", dep)
		}
	}
}

// TestToolsImportOnlyDoubles checks that the demo and the benchmark, which may use the doubles, take nothing else
// from test/: what they need from there is a double, and lives here.
func TestToolsImportOnlyDoubles(t *testing.T) {
	deps, err := listDeps(t, "./cmd/demo", "./hack/bench")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(deps, module+"/test/doubles/kubevirtsim") {
		t.Fatalf("go list did not report %s/test/doubles/kubevirtsim among %d dependencies: the check would pass vacuously", module, len(deps))
	}
	for _, dep := range deps {
		if strings.HasPrefix(dep, module+"/test/") && !strings.HasPrefix(dep, module+"/test/doubles/") {
			t.Errorf("cmd/demo or hack/bench depends on %s, outside test/doubles", dep)
		}
	}
}

// listDeps returns the import paths of the packages, without their tests, and everything they depend on, as
// `go list -deps` reports them from the module root.
func listDeps(t *testing.T, pkgs ...string) ([]string, error) {
	t.Helper()
	args := append([]string{"list", "-deps", "-json=ImportPath"}, pkgs...)
	cmd := exec.CommandContext(t.Context(), "go", args...)
	cmd.Dir = "../.."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, errors.Join(err, errors.New(stderr.String()))
	}
	return importPaths(out)
}

// importPaths reads the stream of JSON objects go list -json prints.
func importPaths(out []byte) ([]string, error) {
	var paths []string
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct{ ImportPath string }
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			return paths, nil
		} else if err != nil {
			return nil, err
		}
		paths = append(paths, p.ImportPath)
	}
}
