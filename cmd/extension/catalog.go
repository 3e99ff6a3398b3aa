package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

// kind says how CloudStack sends an action.
type kind string

const (
	// lifecycle actions are CloudStack's own operations on an Instance; nothing needs registering.
	lifecycle kind = "lifecycle"
	// custom actions run through runCustomAction once registered with addCustomAction (hack/register.sh).
	custom kind = "custom"
)

// param is a custom action's parameter as addCustomAction takes it (validation format NONE).
type param struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Required bool   `json:"required"`
}

// action is one entry of the catalog: what CloudStack needs to send it, and what the extension does with it.
// The exported fields are what `extension catalog` prints and hack/register.sh registers.
type action struct {
	Name string `json:"name"`
	Kind kind   `json:"kind"`
	// FoldCase matches the name case-insensitively: CloudStack passes a custom action's registered name
	// verbatim, and an operator may register "listsnapshots". Lifecycle actions never fold, so that no custom
	// action named "Delete" can reach delete.
	FoldCase bool `json:"foldcase"`
	// Timeout (seconds), Roles and Params are how a custom action is registered.
	Timeout        int      `json:"timeout,omitempty"`
	Roles          []string `json:"roles,omitempty"`
	Params         []param  `json:"parameters,omitempty"`
	Description    string   `json:"description,omitempty"`
	SuccessMessage string   `json:"successmessage,omitempty"`
	ErrorMessage   string   `json:"errormessage,omitempty"`
	// VirtAPI: the action calls virt-api's subresources; only such actions build its client.
	VirtAPI bool `json:"virtapi"`
	// heartbeat: the action reads power states, which a fresh reconciler heartbeat lets it read cheaply.
	heartbeat bool
	// cached answers from the host's shared listing of power states, before any connection; ok false: run,
	// told whether a listing the round may trust was there (then run reads one VM, and lists nothing).
	cached func(*translate.Payload, *slog.Logger) (answer any, ok, trusted bool)
	// changesPower: the action may change a power state, so it makes the host's listing stale (powercache.go).
	changesPower bool
	// Exactly one of run and alone is set. alone acts on the payload by itself, before any connection is
	// made, so that check can report a connection that does not work instead of failing on it.
	run   func(context.Context, *call) (any, error)
	alone func(context.Context, *translate.Payload, *slog.Logger) (any, error)
}

// catalog is every action the extension answers, lifecycle actions first, in the order docs/actions.md lists
// them.
func catalog() []action {
	allRoles := []string{"Admin", "ResourceAdmin", "DomainAdmin", "User"}
	return []action{
		{Name: "prepare", Kind: lifecycle, run: prepare},
		{Name: "create", Kind: lifecycle, changesPower: true, run: create},
		{Name: "start", Kind: lifecycle, changesPower: true, run: start},
		{Name: "stop", Kind: lifecycle, changesPower: true, run: stop},
		{Name: "reboot", Kind: lifecycle, VirtAPI: true, changesPower: true, run: reboot},
		{Name: "delete", Kind: lifecycle, changesPower: true, run: deleteInstance},
		{Name: "status", Kind: lifecycle, heartbeat: true, cached: cachedStatus, run: status},
		{Name: "statuses", Kind: lifecycle, heartbeat: true, run: statuses},
		{Name: "getconsole", Kind: lifecycle, run: getconsole}, // CloudStack 4.22: see console.go
		// check answers success whatever it finds as a custom action, so that CloudStack's UI draws its table (a
		// failed run shows only the error message): its first line says whether something blocks Instances.
		{Name: "check", Kind: custom, Timeout: 60, Roles: []string{"Admin"},
			Description:    "What works and what does not between CloudStack and the cluster",
			SuccessMessage: "The first line sums up what works and what does not",
			ErrorMessage:   "check could not run: see the management server log",
			alone:          runCheck},
		{Name: "ListSnapshots", Kind: custom, FoldCase: true, Timeout: 60, Roles: allRoles,
			Description: "List the Instance's KubeVirt snapshots",
			run:         onInstance(noParams, listSnapshots)},
		{Name: "CreateSnapshot", Kind: custom, FoldCase: true, Timeout: 300, Roles: allRoles,
			Params:      []param{{"snap_name", "STRING", true}, {"snap_description", "STRING", false}},
			Description: "Snapshot the Instance's disks and spec (KubeVirt VirtualMachineSnapshot)",
			run:         onInstance(translate.Params.CreateSnapshotParams, createSnapshot)},
		{Name: "RestoreSnapshot", Kind: custom, FoldCase: true, Timeout: 300, Roles: allRoles,
			Params:      []param{{"snap_name", "STRING", true}},
			Description: "Restore the stopped Instance to a snapshot", changesPower: true,
			run: onInstance(translate.Params.SnapshotNameParams, restoreSnapshot)},
		{Name: "DeleteSnapshot", Kind: custom, FoldCase: true, Timeout: 120, Roles: allRoles,
			Params:      []param{{"snap_name", "STRING", true}},
			Description: "Delete one of the Instance's snapshots",
			run:         onInstance(translate.Params.SnapshotNameParams, deleteSnapshot)},
		{Name: "Pause", Kind: custom, FoldCase: true, Timeout: 60, Roles: allRoles, VirtAPI: true,
			Description: "Pause the Instance's guest (its vCPUs stop; memory is kept)", changesPower: true,
			run: onInstance(noParams, pauseInstance)},
		{Name: "Resume", Kind: custom, FoldCase: true, Timeout: 60, Roles: allRoles, VirtAPI: true,
			Description: "Resume the Instance's paused guest", changesPower: true,
			run: onInstance(noParams, resumeInstance)},
		{Name: "Migrate", Kind: custom, FoldCase: true, Timeout: 900, Roles: []string{"Admin"},
			Params:      []param{{"target_node", "STRING", false}},
			Description: "Live-migrate the Instance to another Kubernetes node",
			run:         onInstance(translate.Params.MigrateParams, migrateInstance)},
		{Name: "Describe", Kind: custom, FoldCase: true, Timeout: 60, Roles: []string{"Admin", "ResourceAdmin"},
			Params:      []param{{"events", "NUMBER", false}},
			Description: "What Kubernetes knows of the Instance: node, IPs, conditions, recent events",
			run:         onInstance(translate.Params.DescribeParams, describeInstance)},
	}
}

// find returns the action named name: exactly as written, or in any case for an action that folds case.
func find(actions []action, name string) (action, bool) {
	for _, a := range actions {
		if a.Name == name || a.FoldCase && strings.EqualFold(a.Name, name) {
			return a, true
		}
	}
	return action{}, false
}

// names are the names of the actions of kind k, in the catalog's order.
func names(actions []action, k kind) []string {
	var out []string
	for _, a := range actions {
		if a.Kind == k {
			out = append(out, a.Name)
		}
	}
	return out
}

// unsupported is the error for a name the catalog does not have: other custom actions and the agent commands
// CloudStack forwards reach the extension too, and the operator needs to see what it does handle.
func unsupported(actions []action, name string) error {
	return fmt.Errorf("unsupported action %q: this extension handles %s, and the custom actions %s", truncate(name, 200),
		strings.Join(names(actions, lifecycle), ", "), strings.Join(names(actions, custom), ", "))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// catalogAnswer is what `extension catalog` prints: hack/register.sh registers the custom actions from it.
type catalogAnswer struct {
	Status  string   `json:"status"`
	Actions []action `json:"actions"`
}
