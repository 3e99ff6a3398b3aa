// Command crdgen writes the KubeVirt, CDI and Multus CRDs that envtest loads.
//
// It runs controller-gen's CRD generator (sigs.k8s.io/controller-tools/pkg/crd, the code behind
// `controller-gen crd:allowDangerousTypes=true`) in process over the API modules pinned under
// inputs/, then adds what the operators install around the generated schemas: subresources,
// short names, categories and printer columns. One file per CRD, named <group>_<plural>.yaml.
//
// Usage, from this directory: go run . -out DIR
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"slices"

	"golang.org/x/tools/go/packages"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/controller-tools/pkg/crd"
	crdmarkers "sigs.k8s.io/controller-tools/pkg/crd/markers"
	"sigs.k8s.io/controller-tools/pkg/loader"
	"sigs.k8s.io/controller-tools/pkg/markers"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("crdgen: ")
	out := flag.String("out", "", "existing directory to write the CRD files into")
	flag.Parse()
	if *out == "" || flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*out); err != nil {
		log.Fatal(err)
	}
}

func run(dir string) error {
	files, err := generate()
	if err != nil {
		return err
	}
	files = append(files, file{
		crd:    networkAttachmentDefinition(),
		source: "hack/crdgen/nad.go (written by hand: Multus has no Go types to generate from)",
	})
	for _, f := range files {
		if err := f.write(dir); err != nil {
			return err
		}
	}
	return nil
}

// generate builds the CRD of every entry in kinds, as `controller-gen crd` would, loading each
// package from its module under inputs/.
func generate() ([]file, error) {
	var files []file
	for _, dir := range inputDirs() {
		fs, err := generateFrom(dir)
		if err != nil {
			return nil, err
		}
		files = append(files, fs...)
	}
	return files, nil
}

// generateFrom builds the CRDs of the kinds whose packages load from the module in dir.
func generateFrom(dir string) ([]file, error) {
	var pkgs []string
	for _, k := range kinds {
		if inputs[k.pkg] == dir && !slices.Contains(pkgs, k.pkg) {
			pkgs = append(pkgs, k.pkg)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		return nil, fmt.Errorf("input module: %w (crdgen must run from hack/crdgen)", err)
	}
	cfg := &packages.Config{Dir: dir, Mode: packages.NeedModule}
	roots, err := loader.LoadRootsWithConfig(cfg, pkgs...)
	if err != nil {
		return nil, fmt.Errorf("loading %v from %s: %w", pkgs, dir, err)
	}
	parser, err := newParser(roots)
	if err != nil {
		return nil, err
	}

	gen := controllerToolsVersion()
	var files []file
	for _, k := range kinds {
		if inputs[k.pkg] != dir {
			continue
		}
		c, err := crdFor(parser, k)
		if err != nil {
			return nil, err
		}
		c.Annotations = map[string]string{"controller-gen.kubebuilder.io/version": gen}
		if err := k.decorate(c); err != nil {
			return nil, fmt.Errorf("%s: %w", k.gk, err)
		}
		source := fmt.Sprintf("%s from %s, by controller-gen %s", k.pkg, versionOf(roots, k.pkg), gen)
		files = append(files, file{crd: c, source: source})
	}
	// The parser records problems on the packages rather than returning them. Type errors are
	// skipped, as controller-gen does: its partial type checker leaves out what CRDs don't need.
	if loader.PrintErrors(roots, packages.TypeError) {
		return nil, fmt.Errorf("controller-gen reported errors in %s (above)", dir)
	}
	return files, nil
}

// inputDirs lists the directories of inputs, each once, in a fixed order.
func inputDirs() []string {
	var dirs []string
	for _, k := range kinds {
		if !slices.Contains(dirs, inputs[k.pkg]) {
			dirs = append(dirs, inputs[k.pkg])
		}
	}
	return dirs
}

// versionOf is the version of the module that pkg was loaded from.
func versionOf(roots []*loader.Package, pkg string) string {
	for _, r := range roots {
		if r.PkgPath == pkg && r.Module != nil {
			return r.Module.Path + " " + r.Module.Version
		}
	}
	return "unknown version"
}

// newParser sets up controller-gen's CRD parser as `controller-gen crd:allowDangerousTypes=true`
// does; KubeVirt's API has float64 fields, which the parser refuses otherwise.
func newParser(roots []*loader.Package) (*crd.Parser, error) {
	registry := &markers.Registry{}
	if err := crdmarkers.Register(registry); err != nil {
		return nil, fmt.Errorf("registering CRD markers: %w", err)
	}
	parser := &crd.Parser{
		Collector:           &markers.Collector{Registry: registry},
		Checker:             &loader.TypeChecker{NodeFilters: []loader.NodeFilter{crd.Generator{}.CheckFilter()}},
		AllowDangerousTypes: true,
	}
	crd.AddKnownTypes(parser)
	for _, root := range roots {
		parser.NeedPackage(root)
	}
	return parser, nil
}

// crdFor returns the CRD of one kind, tidied as controller-gen does before writing it.
func crdFor(parser *crd.Parser, k kind) (*apiextv1.CustomResourceDefinition, error) {
	parser.NeedCRDFor(k.gk, nil)
	c := parser.CustomResourceDefinitions[k.gk]
	if len(c.Spec.Versions) != 1 {
		return nil, fmt.Errorf("%s: got %d versions from %s, want 1", k.gk, len(c.Spec.Versions), k.pkg)
	}
	// The API server owns the schema of metadata; controller-gen reduces it to {type: object}.
	crd.FixTopLevelMetadata(c)
	return &c, nil
}
