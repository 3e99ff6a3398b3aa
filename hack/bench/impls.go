package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// impl is one way of answering CloudStack: an executable with the extension's argv.
type impl struct {
	name string
	exe  string   // run as <exe> <action> <payload> <timeout>
	env  []string // added to the environment
}

// The implementations, by role.
type impls struct {
	extension, floor, script impl
	core                     impl // the extension alone, without the launcher in front
	baseline                 impl // the extension before the shared listing; exe "" when not built
}

// buildImpls builds the extension as install.sh lays it out (the launcher as kubevirt-extension, which CloudStack
// runs, and the extension beside it), and the floor.
func buildImpls(work, kubectl string) (impls, error) {
	ext := filepath.Join(work, "extension", "kubevirt-extension")
	floor := filepath.Join(work, "floor")
	targets := map[string]string{"./cmd/launcher": ext, "./cmd/extension": filepath.Join(work, "extension", "kubevirt-extension-core"), "./hack/floor": floor}
	for pkg, out := range targets {
		cmd := exec.Command("go", "build", "-trimpath", "-o", out, pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if msg, err := cmd.CombinedOutput(); err != nil {
			return impls{}, fmt.Errorf("building %s: %v\n%s", pkg, err, msg)
		}
	}
	script, err := filepath.Abs("hack/kubectl-extension.sh")
	if err != nil {
		return impls{}, err
	}
	if _, err := os.Stat(script); err != nil {
		return impls{}, fmt.Errorf("run from the repository root: %w", err)
	}
	return impls{
		extension: impl{name: "extension", exe: ext},
		core:      impl{name: "extension alone", exe: targets["./cmd/extension"]},
		floor:     impl{name: "floor", exe: floor},
		script:    impl{name: "kubectl+jq", exe: script, env: []string{"KUBECTL=" + kubectl}},
	}, nil
}
