package main

import (
	"context"
	"fmt"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/kube"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

// printTable is an answer CloudStack's UI renders as a table (printmessage), one column per field of T.
type printTable[T any] struct {
	Status       string `json:"status"`
	PrintMessage string `json:"printmessage"`
	Message      []T    `json:"message"`
}

func table[T any](rows []T) printTable[T] {
	if rows == nil {
		rows = []T{} // an empty table, not null
	}
	return printTable[T]{Status: "success", PrintMessage: "true", Message: rows}
}

// snapshotRow is one line of ListSnapshots.
type snapshotRow struct {
	Name  string `json:"name"`
	Time  string `json:"time"`
	Phase string `json:"phase"`
	Ready bool   `json:"ready"`
}

// onInstance makes a custom action that acts on the payload's Instance: its parameters are validated first,
// before anything is read or touched.
func onInstance[P any](parse func(translate.Params) (P, error), act func(context.Context, *call, kube.Identity, P) (any, error)) func(context.Context, *call) (any, error) {
	return func(ctx context.Context, c *call) (any, error) {
		params, err := parse(c.payload.Parameters)
		if err != nil {
			return nil, err
		}
		id, err := c.identity()
		if err != nil {
			return nil, fmt.Errorf("%w: custom actions act on an Instance (register them with resourcetype=VirtualMachine)", err)
		}
		return act(ctx, c, id, params)
	}
}

// noParams is the parameter check of the actions that take none.
func noParams(ps translate.Params) (struct{}, error) { return struct{}{}, ps.NoParams() }

func listSnapshots(ctx context.Context, c *call, id kube.Identity, _ struct{}) (any, error) {
	snaps, err := c.kube.Snapshots().ListSnapshots(ctx, id)
	if err != nil {
		return nil, err
	}
	rows := make([]snapshotRow, 0, len(snaps))
	for _, s := range snaps {
		rows = append(rows, snapshotRow{Name: s.Name, Time: kube.FormatTime(s.Time), Phase: s.Phase, Ready: s.Ready})
	}
	return table(rows), nil
}

func createSnapshot(ctx context.Context, c *call, id kube.Identity, req translate.SnapshotRequest) (any, error) {
	s, err := c.kube.Snapshots().CreateSnapshot(ctx, id, req)
	if err != nil {
		return nil, err
	}
	c.log.Info("snapshot taken", "snapshot", s.Object, "time", s.Time)
	return success{Status: "success", Message: fmt.Sprintf("Snapshot %s of VirtualMachine %s taken at %s (VirtualMachineSnapshot %s, ready to restore)", s.Name, c.ref(id.Name), kube.FormatTime(s.Time), c.ref(s.Object))}, nil
}

func restoreSnapshot(ctx context.Context, c *call, id kube.Identity, name string) (any, error) {
	s, err := c.kube.Snapshots().RestoreSnapshot(ctx, id, name)
	if err != nil {
		return nil, err
	}
	return success{Status: "success", Message: fmt.Sprintf("VirtualMachine %s restored to snapshot %s (taken %s); start the Instance to boot it", c.ref(id.Name), s.Name, kube.FormatTime(s.Time))}, nil
}

func deleteSnapshot(ctx context.Context, c *call, id kube.Identity, name string) (any, error) {
	s, found, err := c.kube.Snapshots().DeleteSnapshot(ctx, id, name)
	if err != nil {
		return nil, err
	}
	if !found {
		return success{Status: "success", Message: fmt.Sprintf("VirtualMachine %s has no snapshot %s (deleted already): nothing to do", c.ref(id.Name), s.Name)}, nil
	}
	return success{Status: "success", Message: fmt.Sprintf("Snapshot %s of VirtualMachine %s deleted", s.Name, c.ref(id.Name))}, nil
}

func pauseInstance(ctx context.Context, c *call, id kube.Identity, _ struct{}) (any, error) {
	done, err := c.kube.Lifecycle().Pause(ctx, id)
	if err != nil {
		return nil, err
	}
	return changed(c, id, done, "paused", "was paused already"), nil
}

func resumeInstance(ctx context.Context, c *call, id kube.Identity, _ struct{}) (any, error) {
	done, err := c.kube.Lifecycle().Resume(ctx, id)
	if err != nil {
		return nil, err
	}
	return changed(c, id, done, "resumed", "was not paused"), nil
}

func changed(c *call, id kube.Identity, done bool, did, already string) success {
	if done {
		return success{Status: "success", Message: "VirtualMachine " + c.ref(id.Name) + " " + did}
	}
	return success{Status: "success", Message: "VirtualMachine " + c.ref(id.Name) + " " + already + ": nothing to do"}
}

// migrationRow is one phase of Migrate's answer: the migration's progress as KubeVirt recorded it.
type migrationRow struct {
	Phase  string `json:"phase"`
	Time   string `json:"time"`
	Source string `json:"source node"`
	Target string `json:"target node"`
}

func migrateInstance(ctx context.Context, c *call, id kube.Identity, node string) (any, error) {
	progress := func(m kube.Migration) {
		c.log.Info("migration", "migration", m.Name, "phase", m.Phase, "source", m.SourceNode, "target", m.TargetNode)
	}
	m, err := c.kube.Migrations().Migrate(ctx, id, node, progress)
	if err != nil {
		return nil, err
	}
	rows := make([]migrationRow, 0, len(m.Steps))
	for _, s := range m.Steps {
		rows = append(rows, migrationRow{Phase: s.Phase, Time: kube.FormatTime(s.Time), Source: m.SourceNode, Target: m.TargetNode})
	}
	return table(rows), nil
}

func describeInstance(ctx context.Context, c *call, id kube.Identity, events int) (any, error) {
	facts, err := c.kube.Diagnostics().Describe(ctx, id, events)
	if err != nil {
		return nil, err
	}
	return table(facts), nil
}
