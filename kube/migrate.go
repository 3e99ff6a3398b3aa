package kube

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

// hostnameLabel is the node label a migration's target is chosen by.
const hostnameLabel = "kubernetes.io/hostname"

// MigrationStep is one phase a migration went through, and when.
type MigrationStep struct {
	Phase string
	Time  time.Time
}

// Migration is a live migration's progress as KubeVirt reports it.
type Migration struct {
	Name       string // the VirtualMachineInstanceMigration
	Phase      string
	SourceNode string
	TargetNode string
	Steps      []MigrationStep
}

func migrationOf(m *kubevirtv1.VirtualMachineInstanceMigration, vmi *kubevirtv1.VirtualMachineInstance) Migration {
	out := Migration{Name: m.Name, Phase: string(m.Status.Phase)}
	for _, t := range m.Status.PhaseTransitionTimestamps {
		out.Steps = append(out.Steps, MigrationStep{Phase: string(t.Phase), Time: t.PhaseTransitionTimestamp.Time})
	}
	// The VMI holds the live state; the migration keeps a copy once final.
	state := m.Status.MigrationState
	if vmi != nil && vmi.Status.MigrationState != nil && vmi.Status.MigrationState.MigrationUID == m.UID {
		state = vmi.Status.MigrationState
	}
	if state != nil {
		out.SourceNode, out.TargetNode = state.SourceNode, state.TargetNode
	}
	return out
}

// Migrate live-migrates the Instance's running guest to another node (targetNode, or where the scheduler
// chooses when empty) and waits until KubeVirt reports the migration final, calling progress at each new
// phase. What virt-api's admission would refuse is refused first, with the reason, so that envtest and a real
// cluster answer alike.
func (in Migrations) Migrate(ctx context.Context, id Identity, targetNode string, progress func(Migration)) (Migration, error) {
	vm, err := in.existingVM(ctx, id)
	if err != nil {
		return Migration{}, err
	}
	vmi, err := in.vmi(ctx, id.Name)
	if err != nil {
		return Migration{}, err
	}
	if err := in.migratable(ctx, vmi, id.Name, targetNode); err != nil {
		return Migration{}, err
	}
	m := &kubevirtv1.VirtualMachineInstanceMigration{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: vmi.Name + "-migration-", Namespace: in.namespace,
			Labels: map[string]string{
				translate.LabelManagedBy:    translate.ManagedBy,
				translate.LabelInstanceUUID: vm.Labels[translate.LabelInstanceUUID],
				// KubeVirt's mutating webhook sets it too; the in-flight check above selects by it.
				kubevirtv1.MigrationSelectorLabel: vmi.Name,
			},
		},
		Spec: kubevirtv1.VirtualMachineInstanceMigrationSpec{VMIName: vmi.Name},
	}
	if targetNode != "" {
		m.Spec.AddedNodeSelector = map[string]string{hostnameLabel: targetNode}
	}
	if err := in.client.Create(ctx, m); err != nil {
		return Migration{}, explain(err, "create a VirtualMachineInstanceMigration of "+in.ref(vmi.Name))
	}
	return in.waitMigration(ctx, m.Name, vmi.Status.NodeName, progress)
}

// migratable refuses what KubeVirt's migration admission refuses (no VMI, a finished one, one that reports
// itself not live-migratable, one already migrating), and a VMI that has not started running, which a
// migration would wait for.
func (in Migrations) migratable(ctx context.Context, vmi *kubevirtv1.VirtualMachineInstance, name, targetNode string) error {
	ref := in.ref(name)
	switch {
	case vmi == nil || vmi.IsFinal():
		return fmt.Errorf("cannot migrate VirtualMachine %s: it is not running (only a running guest migrates); start the Instance first", ref)
	case vmi.Status.Phase != kubevirtv1.Running:
		return fmt.Errorf("cannot migrate VirtualMachine %s: its guest is %s, not running yet; retry once it runs", ref, orUnknown(string(vmi.Status.Phase)))
	case targetNode != "" && targetNode == vmi.Status.NodeName:
		return fmt.Errorf("VirtualMachine %s already runs on node %s: choose another target_node, or leave it empty", ref, targetNode)
	}
	for _, c := range vmi.Status.Conditions {
		if c.Type == kubevirtv1.VirtualMachineInstanceIsMigratable && c.Status == corev1.ConditionFalse {
			return fmt.Errorf("cannot migrate VirtualMachine %s: KubeVirt reports it not live-migratable (%s: %s)", ref, c.Reason, c.Message)
		}
	}
	list := &kubevirtv1.VirtualMachineInstanceMigrationList{}
	opts := ListOptions{LabelSelector: kubevirtv1.MigrationSelectorLabel + "=" + name}
	if err := in.client.List(ctx, in.namespace, list, opts); err != nil {
		return explain(err, "list the VirtualMachineInstanceMigrations of "+ref)
	}
	for _, m := range list.Items {
		if !m.IsFinal() && m.Spec.VMIName == name {
			return fmt.Errorf("VirtualMachine %s is migrating already (VirtualMachineInstanceMigration %s, %s): wait for it to finish", ref, m.Name, orUnknown(string(m.Status.Phase)))
		}
	}
	return nil
}

// waitMigration waits until the migration succeeds or fails, reporting each new phase.
func (in Migrations) waitMigration(ctx context.Context, name, sourceNode string, progress func(Migration)) (Migration, error) {
	var last Migration
	reported := ""
	check := func() (bool, error) {
		m := &kubevirtv1.VirtualMachineInstanceMigration{}
		if err := in.client.Get(ctx, in.key(name), m); err != nil {
			if kerrors.IsNotFound(err) {
				return false, fmt.Errorf("VirtualMachineInstanceMigration %s was deleted while migrating (cancelled?)", in.ref(name))
			}
			return false, explain(err, "read VirtualMachineInstanceMigration "+in.ref(name))
		}
		vmi, err := in.vmi(ctx, m.Spec.VMIName)
		if err != nil {
			return false, err
		}
		last = migrationOf(m, vmi)
		if last.SourceNode == "" {
			last.SourceNode = sourceNode
		}
		if last.Phase != reported && progress != nil {
			reported = last.Phase
			progress(last)
		}
		switch m.Status.Phase {
		case kubevirtv1.MigrationSucceeded:
			return true, nil
		case kubevirtv1.MigrationFailed:
			return false, fmt.Errorf("KubeVirt could not migrate: VirtualMachineInstanceMigration %s failed (%s)%s", in.ref(name), phases(last), failureReason(m, vmi))
		}
		return false, nil
	}
	describe := func() string {
		return fmt.Sprintf("VirtualMachineInstanceMigration %s is %s (%s); it goes on in the cluster (Describe shows where the guest runs)", in.ref(name), orUnknown(last.Phase), phases(last))
	}
	return last, poll(ctx, check, describe)
}

// phases lists the phases a migration went through.
func phases(m Migration) string {
	var names []string
	for _, s := range m.Steps {
		names = append(names, s.Phase)
	}
	if len(names) == 0 {
		return "no phase yet"
	}
	return strings.Join(names, " → ")
}

func failureReason(m *kubevirtv1.VirtualMachineInstanceMigration, vmi *kubevirtv1.VirtualMachineInstance) string {
	for _, st := range []*kubevirtv1.VirtualMachineInstanceMigrationState{m.Status.MigrationState, migrationStateOf(vmi, m)} {
		if st != nil && st.FailureReason != "" {
			return ": " + st.FailureReason
		}
	}
	return "; its Events say why (Describe shows them)"
}

func migrationStateOf(vmi *kubevirtv1.VirtualMachineInstance, m *kubevirtv1.VirtualMachineInstanceMigration) *kubevirtv1.VirtualMachineInstanceMigrationState {
	if vmi == nil || vmi.Status.MigrationState == nil || vmi.Status.MigrationState.MigrationUID != m.UID {
		return nil
	}
	return vmi.Status.MigrationState
}
