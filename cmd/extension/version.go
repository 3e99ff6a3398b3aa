package main

import (
	"runtime"
	"runtime/debug"
)

// Set at release time: go build -ldflags "-X main.version=v1.2.3 -X main.commit=<sha>" (hack/dist.sh).
var (
	version = "dev"
	commit  = ""
)

// versionAnswer is what `<executable> version` prints, so an operator can tell which build every management
// server runs.
type versionAnswer struct {
	Status  string `json:"status"`
	Version string `json:"version"`
	Commit  string `json:"commit"`
	Go      string `json:"go"`
}

func buildVersion() versionAnswer {
	c := commit
	if c == "" {
		// A plain `go build` in a checkout still records the revision.
		if info, ok := debug.ReadBuildInfo(); ok {
			for _, s := range info.Settings {
				if s.Key == "vcs.revision" {
					c = s.Value
				}
			}
		}
	}
	return versionAnswer{Status: "success", Version: version, Commit: c, Go: runtime.Version()}
}
