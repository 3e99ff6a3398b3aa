package cloudstacksim

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// PrepareOutcome is what CloudStack makes of a prepare call during a deploy.
type PrepareOutcome struct {
	OK bool
	// UserError is what the deploy's job reports when prepare fails: never the extension's answer.
	UserError string
	// Logged is the answer's details as only management-server.log records them.
	Logged string
	// Patch is the output merged into the VirtualMachineTO when prepare succeeds with an answer.
	Patch json.RawMessage
}

// errPrepareVM is the message VirtualMachineManagerImpl.processPrepareExternalProvisioning throws for every
// failure (engine/orchestration/src/main/java/com/cloud/vm/VirtualMachineManagerImpl.java, read at
// weizhouapache/cloudstack@1f41a16d, a fork of main): `new CloudRuntimeException("Failed to prepare VM")`.
const errPrepareVM = "Failed to prepare VM"

// Prepare reads a prepare call as CloudStack does. ExternalPathPayloadProvisioner.prepareExternalProvisioning
// (apache/cloudstack @de357a6f): a failed run answers false with its details ("Exit code: N, Output: ..."); an
// empty output succeeds unchanged; any other output is a JSON merge patch on the VirtualMachineTO, and one that
// cannot be merged and read back answers false with "Failed to parse VM". VirtualMachineManagerImpl then logs
// "Unexpected answer received for PrepareExternalProvisioningCommand: [result: false, details: ...]" and throws
// "Failed to prepare VM", which orchestrateStart does not catch: the deploy fails, on no other host, and the
// user sees that sentence alone.
func Prepare(r Result) PrepareOutcome {
	details := r.Details()
	if r.Succeeded() {
		out := bytes.TrimSpace([]byte(r.Output))
		if len(out) == 0 {
			return PrepareOutcome{OK: true}
		}
		if out[0] == '{' && json.Valid(out) {
			return PrepareOutcome{OK: true, Patch: out}
		}
		details = "Failed to parse VM"
	}
	return PrepareOutcome{UserError: errPrepareVM, Logged: fmt.Sprintf(
		"Unexpected answer received for PrepareExternalProvisioningCommand: [result: false, details: %s]", details)}
}
