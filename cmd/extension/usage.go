package main

import (
	"fmt"
	"strings"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

// usage is the text for a person at a terminal, from the catalog. CloudStack never sees it: it always passes
// three arguments and reads JSON.
func usage(actions []action) string {
	var b strings.Builder
	fmt.Fprintf(&b, `kubevirt-extension runs Apache CloudStack Instances as KubeVirt VirtualMachines.

CloudStack runs it as
  kubevirt-extension <action> <payload.json> <timeout-seconds>
and reads the one JSON object it prints on stdout; any exit code but 0 is a failure.

Actions CloudStack sends by itself:
  %s

Custom actions (hack/register.sh registers them; "Run action" on an Instance runs them):
`, strings.Join(names(actions, lifecycle), ", "))
	for _, a := range actions {
		if a.Kind == custom {
			fmt.Fprintf(&b, "  %-16s %s\n", a.Name, a.Description)
		}
	}
	fmt.Fprintf(&b, `
From a shell:
  kubevirt-extension check <payload.json> 60   what works and what does not, with a payload CloudStack saved
  kubevirt-extension version                   the build, to compare management servers

Settings come from CloudStack's details (of the extension, host, template, offering and Instance), not from
flags: the "Configuration details" table of docs/configuration.md lists each one. docs/troubleshooting.md says
how to re-run a saved payload.

Log: %s, or the file the detail %s names.
`, translate.DefaultLogFile, translate.DetailLogFile)
	return b.String()
}
