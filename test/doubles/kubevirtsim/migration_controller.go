package kubevirtsim

import (
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
)

// Names and messages of KubeVirt v1.9.0's migration controller and virt-handler.
const (
	kindMigration            = "VirtualMachineInstanceMigration"
	migrationRetry           = time.Second
	migrationPendingTimeout  = 5 * time.Minute // the target pod's pending timeout
	successfulMigration      = "SuccessfulMigration"
	failedMigration          = "FailedMigration"
	targetPodUnschedulable   = "migrationTargetPodUnschedulable"
	interfaceNotMigratable   = "cannot migrate VMI which does not use masquerade or a migratable plugin to connect to the pod network"
	vmiMigrating             = "VirtualMachineInstance is migrating."
	vmiMigrationTargetReady  = "VirtualMachineInstance Migration Target Prepared."
	hostnameLabel            = "kubernetes.io/hostname"
	allowPodBridgeMigration  = "kubevirt.io/allow-pod-bridge-network-live-migration"
	reasonDisksNotMigratable = "DisksNotLiveMigratable"
)

// migrationReconciler plays virt-controller's migration controller and the two virt-handlers of a live
// migration: Pending → Scheduling → Scheduled → PreparingTarget → TargetReady → Running → Succeeded, writing
// the VMI's status.migrationState at each step as they do, and finally moving the VMI (status.nodeName and its
// kubevirt.io/nodeName label) to the target node. The target is addedNodeSelector's kubernetes.io/hostname, or
// the next of Options.MigrationNodes; a hostname the simulator does not know leaves the target pod unschedulable
// (Scheduling), and the migration fails after the pending timeout (5 minutes).
//
// It fails a migration whose VMI does not exist or has finished, as virt-controller does. What virt-api's
// admission would refuse (a VMI whose LiveMigratable condition is False, one with a migration in flight) cannot
// be refused without webhooks: the simulator fails such a migration at once with the admission's message in a
// FailedMigration event.
type migrationReconciler struct{ *Sim }

func (r *migrationReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	m := &kubevirtv1.VirtualMachineInstanceMigration{}
	if err := r.reader.Get(ctx, req.NamespacedName, m); err != nil {
		if apierrors.IsNotFound(err) {
			r.pacer.forget(kindMigration, req.NamespacedName)
		}
		return outcome(ctx, client.IgnoreNotFound(err))
	}
	if m.DeletionTimestamp != nil || m.IsFinal() {
		return outcome(ctx, r.finish(ctx, m))
	}
	cur := m.DeepCopy()
	wait, err := r.steps(ctx, cur)
	if err != nil {
		return outcome(ctx, err)
	}
	if err := r.saveMigration(ctx, m, cur); err != nil {
		return outcome(ctx, err)
	}
	return ctrl.Result{RequeueAfter: wait}, nil
}

// steps takes the migration as far as it goes: one phase per step delay, or every phase at once without one.
func (r *migrationReconciler) steps(ctx context.Context, m *kubevirtv1.VirtualMachineInstanceMigration) (time.Duration, error) {
	for {
		phase := m.Status.Phase
		wait, err := r.step(ctx, m)
		if err != nil || wait > 0 || m.IsFinal() || m.Status.Phase == phase || r.opts.StepDelay > 0 {
			return wait, err
		}
	}
}

func (r *migrationReconciler) step(ctx context.Context, m *kubevirtv1.VirtualMachineInstanceMigration) (time.Duration, error) {
	vmi := &kubevirtv1.VirtualMachineInstance{}
	err := r.reader.Get(ctx, types.NamespacedName{Namespace: m.Namespace, Name: m.Spec.VMIName}, vmi)
	switch {
	case apierrors.IsNotFound(err):
		r.fail(ctx, m, "Migration failed because vmi does not exist.")
		return 0, nil
	case err != nil:
		return 0, err
	case vmi.IsFinal():
		r.fail(ctx, m, "Migration failed vmi shutdown during migration.")
		return 0, nil
	}
	if m.Status.Phase != kubevirtv1.MigrationPhaseUnset && m.Status.Phase != kubevirtv1.MigrationPending {
		if wait := r.pacer.wait(kindMigration, m, string(m.Status.Phase)); wait > 0 {
			return wait, nil
		}
	}
	switch m.Status.Phase {
	case kubevirtv1.MigrationPhaseUnset:
		if msg := r.refusal(ctx, m, vmi); msg != "" {
			r.fail(ctx, m, msg)
			return 0, nil
		}
		setMigrationPhase(m, kubevirtv1.MigrationPending)
	case kubevirtv1.MigrationPending:
		if !vmi.IsRunning() {
			return migrationRetry, nil // virt-controller creates the target pod once the VMI runs
		}
		if wait := r.pacer.wait(kindMigration, m, string(m.Status.Phase)); wait > 0 {
			return wait, nil
		}
		setMigrationPhase(m, kubevirtv1.MigrationScheduling)
		return 0, r.migrationState(ctx, vmi, func(st *kubevirtv1.VirtualMachineInstanceMigrationState) {
			*st = kubevirtv1.VirtualMachineInstanceMigrationState{
				MigrationUID: m.UID, SourceNode: vmi.Status.NodeName, SourcePod: launcherPod(vmi, "source"),
				TargetPod: launcherPod(vmi, string(m.UID)), Mode: kubevirtv1.MigrationPreCopy,
			}
		})
	case kubevirtv1.MigrationScheduling:
		target := r.targetNode(m, vmi)
		if target == "" {
			if time.Since(m.CreationTimestamp.Time) > migrationPendingTimeout {
				r.event(ctx, m, virtController, corev1.EventTypeWarning, targetPodUnschedulable, "Migration target pod for VMI ["+vmi.Namespace+"/"+vmi.Name+"] is currently unschedulable.")
				r.fail(ctx, m, "Migration target pod was removed during active migration.")
				return 0, nil
			}
			return migrationRetry, nil
		}
		setMigrationPhase(m, kubevirtv1.MigrationScheduled)
	case kubevirtv1.MigrationScheduled:
		setMigrationPhase(m, kubevirtv1.MigrationPreparingTarget)
		return 0, r.migrationState(ctx, vmi, func(st *kubevirtv1.VirtualMachineInstanceMigrationState) {
			st.TargetNode = r.targetNode(m, vmi)
		})
	case kubevirtv1.MigrationPreparingTarget:
		setMigrationPhase(m, kubevirtv1.MigrationTargetReady)
		r.event(ctx, vmi, virtHandler, corev1.EventTypeNormal, kubevirtv1.PreparingTarget.String(), vmiMigrationTargetReady)
		return 0, r.migrationState(ctx, vmi, func(st *kubevirtv1.VirtualMachineInstanceMigrationState) {
			st.TargetNodeAddress = "192.0.2.10" // TEST-NET-1: virt-handler's migration address on the target
			st.TargetDirectMigrationNodePorts = map[string]int{"37891": 0, "42617": 49152}
		})
	case kubevirtv1.MigrationTargetReady:
		setMigrationPhase(m, kubevirtv1.MigrationRunning)
		r.event(ctx, vmi, virtHandler, corev1.EventTypeNormal, kubevirtv1.Migrating.String(), vmiMigrating)
		return 0, r.migrationState(ctx, vmi, func(st *kubevirtv1.VirtualMachineInstanceMigrationState) {
			st.StartTimestamp = ptr.To(metav1.Now())
		})
	case kubevirtv1.MigrationRunning:
		return 0, r.complete(ctx, m, vmi)
	}
	return 0, nil
}

// refusal is what virt-api's migration admission would answer, or "".
func (r *migrationReconciler) refusal(ctx context.Context, m *kubevirtv1.VirtualMachineInstanceMigration, vmi *kubevirtv1.VirtualMachineInstance) string {
	if c := vmiCondition(vmi, kubevirtv1.VirtualMachineInstanceIsMigratable); c != nil && c.Status == corev1.ConditionFalse {
		return fmt.Sprintf("Cannot migrate VMI, Reason: %s, Message: %s", c.Reason, c.Message)
	}
	list := &kubevirtv1.VirtualMachineInstanceMigrationList{}
	if err := r.reader.List(ctx, list, client.InNamespace(m.Namespace)); err != nil {
		return ""
	}
	for _, other := range list.Items {
		if other.UID != m.UID && other.Spec.VMIName == m.Spec.VMIName && !other.IsFinal() && other.Status.Phase != kubevirtv1.MigrationPhaseUnset {
			return "VMI is not eligible for migration because another migration job is in progress."
		}
	}
	return ""
}

// targetNode is where the target pod lands: the hostname addedNodeSelector asks for (if the simulator has such
// a node, else nowhere), or the next node after the VMI's.
func (r *migrationReconciler) targetNode(m *kubevirtv1.VirtualMachineInstanceMigration, vmi *kubevirtv1.VirtualMachineInstance) string {
	nodes := r.opts.MigrationNodes
	if want, ok := m.Spec.AddedNodeSelector[hostnameLabel]; ok {
		if slices.Contains(nodes, want) && want != vmi.Status.NodeName {
			return want
		}
		return ""
	}
	i := slices.Index(nodes, vmi.Status.NodeName)
	return nodes[(i+1)%len(nodes)]
}

func launcherPod(vmi *kubevirtv1.VirtualMachineInstance, salt string) string {
	return fmt.Sprintf("virt-launcher-%s-%s", vmi.Name, shortHash(string(vmi.UID)+salt))
}

// complete is the end of a successful migration: the target handler takes the domain over and the VMI moves.
func (r *migrationReconciler) complete(ctx context.Context, m *kubevirtv1.VirtualMachineInstanceMigration, vmi *kubevirtv1.VirtualMachineInstance) error {
	target := vmi.Status.NodeName
	if st := vmi.Status.MigrationState; st != nil && st.TargetNode != "" {
		target = st.TargetNode
	}
	var final *kubevirtv1.VirtualMachineInstanceMigrationState
	err := r.updateVMIStatus(ctx, objectKey(vmi), func(vmi *kubevirtv1.VirtualMachineInstance) {
		now := metav1.Now()
		if vmi.Status.MigrationState == nil {
			vmi.Status.MigrationState = &kubevirtv1.VirtualMachineInstanceMigrationState{MigrationUID: m.UID}
		}
		st := vmi.Status.MigrationState
		st.TargetNodeDomainDetected, st.TargetNodeDomainReadyTimestamp = true, &now
		st.Completed, st.EndTimestamp = true, &now
		vmi.Status.NodeName = target
		if vmi.Labels == nil {
			vmi.Labels = map[string]string{}
		}
		vmi.Labels[kubevirtv1.NodeNameLabel] = target
		vmi.Status.Interfaces = interfaceStatuses(vmi)
		final = st.DeepCopy()
	})
	if err != nil {
		return err
	}
	// virt-controller mirrors the VMI's migration state onto the migration; written with the phase, a client
	// that sees Succeeded also sees where the VMI went.
	m.Status.MigrationState = final
	r.event(ctx, vmi, virtHandler, corev1.EventTypeNormal, kubevirtv1.Migrated.String(), "The VirtualMachineInstance migrated to node "+target+".")
	r.event(ctx, m, virtController, corev1.EventTypeNormal, successfulMigration, "Source node reported migration succeeded")
	setMigrationPhase(m, kubevirtv1.MigrationSucceeded)
	return nil
}

func (r *migrationReconciler) fail(ctx context.Context, m *kubevirtv1.VirtualMachineInstanceMigration, msg string) {
	r.event(ctx, m, virtController, corev1.EventTypeWarning, failedMigration, msg)
	setMigrationPhase(m, kubevirtv1.MigrationFailed)
}

func setMigrationPhase(m *kubevirtv1.VirtualMachineInstanceMigration, phase kubevirtv1.VirtualMachineInstanceMigrationPhase) {
	m.Status.Phase = phase
	m.Status.PhaseTransitionTimestamps = append(m.Status.PhaseTransitionTimestamps,
		kubevirtv1.VirtualMachineInstanceMigrationPhaseTransitionTimestamp{Phase: phase, PhaseTransitionTimestamp: metav1.Now()})
}

// migrationState mutates the VMI's status.migrationState, creating it.
func (r *migrationReconciler) migrationState(ctx context.Context, vmi *kubevirtv1.VirtualMachineInstance, mutate func(*kubevirtv1.VirtualMachineInstanceMigrationState)) error {
	return r.updateVMIStatus(ctx, objectKey(vmi), func(vmi *kubevirtv1.VirtualMachineInstance) {
		if vmi.Status.MigrationState == nil {
			vmi.Status.MigrationState = &kubevirtv1.VirtualMachineInstanceMigrationState{}
		}
		mutate(vmi.Status.MigrationState)
	})
}

// updateVMIStatus reads the VMI from the API server, mutates it and writes it, retrying on conflicts.
func (s *Sim) updateVMIStatus(ctx context.Context, key types.NamespacedName, mutate func(*kubevirtv1.VirtualMachineInstance)) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		vmi := &kubevirtv1.VirtualMachineInstance{}
		if err := s.reader.Get(ctx, key, vmi); err != nil {
			return err
		}
		orig := vmi.DeepCopy()
		mutate(vmi)
		metaChanged := !equality.Semantic.DeepEqual(orig.ObjectMeta, vmi.ObjectMeta)
		statusChanged := !equality.Semantic.DeepEqual(orig.Status, vmi.Status)
		keep := vmi.Status.DeepCopy()
		return s.save(ctx, vmi, metaChanged, statusChanged, s.api.vmiStatus, func() func() { return func() { vmi.Status = *keep } })
	})
}

// saveMigration writes the label and finalizer KubeVirt's webhook and controller add, then the status.
func (r *migrationReconciler) saveMigration(ctx context.Context, orig, cur *kubevirtv1.VirtualMachineInstanceMigration) error {
	if cur.Labels == nil {
		cur.Labels = map[string]string{}
	}
	cur.Labels[kubevirtv1.MigrationSelectorLabel] = cur.Spec.VMIName
	if !cur.IsFinal() {
		controllerutil.AddFinalizer(cur, kubevirtv1.VirtualMachineInstanceMigrationFinalizer)
	}
	metaChanged := !equality.Semantic.DeepEqual(orig.ObjectMeta, cur.ObjectMeta)
	statusChanged := !equality.Semantic.DeepEqual(orig.Status, cur.Status)
	return r.save(ctx, cur, metaChanged, statusChanged, true, func() func() {
		status := *cur.Status.DeepCopy()
		return func() { cur.Status = status }
	})
}

// finish keeps the final VMI migration state on the migration and releases its finalizer; a migration deleted
// before it ended is failed with AbortRequested.
func (r *migrationReconciler) finish(ctx context.Context, m *kubevirtv1.VirtualMachineInstanceMigration) error {
	cur := m.DeepCopy()
	if !cur.IsFinal() {
		cur.Status.Conditions = append(cur.Status.Conditions, kubevirtv1.VirtualMachineInstanceMigrationCondition{
			Type: kubevirtv1.VirtualMachineInstanceMigrationAbortRequested, Status: corev1.ConditionTrue, LastProbeTime: metav1.Now(),
		})
		r.fail(ctx, cur, "Migration failed due to being canceled")
	}
	vmi := &kubevirtv1.VirtualMachineInstance{}
	err := r.reader.Get(ctx, types.NamespacedName{Namespace: m.Namespace, Name: m.Spec.VMIName}, vmi)
	// Only when complete did not write it (a failed or aborted migration): the cache may be older than that.
	if err == nil && cur.Status.MigrationState == nil && vmi.Status.MigrationState != nil && vmi.Status.MigrationState.MigrationUID == m.UID {
		cur.Status.MigrationState = vmi.Status.MigrationState.DeepCopy()
	}
	controllerutil.RemoveFinalizer(cur, kubevirtv1.VirtualMachineInstanceMigrationFinalizer)
	r.pacer.forget(kindMigration, objectKey(m))
	return r.saveMigration(ctx, m, cur)
}

// liveMigratable is virt-handler's LiveMigratable condition for a running VMI: a pod network reached other than
// by masquerade or passt (without KubeVirt's allow annotation) is not migratable, nor is a volume on a PVC that
// is not shared (ReadWriteMany). The simulator has no PVCs: a DataVolume's own access modes decide, and a plain
// PVC volume is taken as not shared.
func (s *Sim) liveMigratable(ctx context.Context, vmi *kubevirtv1.VirtualMachineInstance) (corev1.ConditionStatus, string, string) {
	if msg := podNetworkNotMigratable(vmi); msg != "" {
		return corev1.ConditionFalse, kubevirtv1.VirtualMachineInstanceReasonInterfaceNotMigratable, msg
	}
	for _, v := range vmi.Spec.Volumes {
		var claim string
		switch {
		case v.DataVolume != nil:
			claim = v.DataVolume.Name
			if s.dataVolumeShared(ctx, vmi.Namespace, claim) {
				continue
			}
		case v.PersistentVolumeClaim != nil:
			claim = v.PersistentVolumeClaim.ClaimName
		default:
			continue
		}
		return corev1.ConditionFalse, reasonDisksNotMigratable,
			fmt.Sprintf("cannot migrate VMI: PVC %v is not shared, live migration requires that all PVCs must be shared (using ReadWriteMany access mode)", claim)
	}
	return corev1.ConditionTrue, "", ""
}

func podNetworkNotMigratable(vmi *kubevirtv1.VirtualMachineInstance) string {
	var pod string
	for _, n := range vmi.Spec.Networks {
		if n.Pod != nil {
			pod = n.Name
		}
	}
	if pod == "" {
		return ""
	}
	for _, iface := range vmi.Spec.Domain.Devices.Interfaces {
		if iface.Name != pod {
			continue
		}
		if iface.Masquerade != nil || iface.PasstBinding != nil {
			return ""
		}
		if _, ok := vmi.Annotations[allowPodBridgeMigration]; ok && iface.Bridge != nil {
			return ""
		}
		return interfaceNotMigratable
	}
	return "no primary interface found for network " + pod
}

func (s *Sim) dataVolumeShared(ctx context.Context, namespace, name string) bool {
	if !s.api.dataVolumes {
		return false
	}
	dv := &cdiv1.DataVolume{}
	if err := s.client.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, dv); err != nil {
		return false
	}
	var modes []corev1.PersistentVolumeAccessMode
	if dv.Spec.Storage != nil {
		modes = dv.Spec.Storage.AccessModes
	}
	if dv.Spec.PVC != nil {
		modes = append(modes, dv.Spec.PVC.AccessModes...)
	}
	return slices.Contains(modes, corev1.ReadWriteMany)
}

// shortHash is a pod-name suffix derived from s, as the ReplicaSet-style suffixes of launcher pods look.
func shortHash(s string) string {
	const alphabet = "bcdfghjklmnpqrstvwxz2456789"
	h := sha256.Sum256([]byte(s))
	out := make([]byte, 5)
	for i := range out {
		out[i] = alphabet[int(h[i])%len(alphabet)]
	}
	return string(out)
}
