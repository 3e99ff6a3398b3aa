package powerstate

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	kubevirtv1 "kubevirt.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

// Reconciler writes the CloudStack power state of one VirtualMachine onto it. It is level-triggered: every
// call recomputes the state from the cached VM and VMI and writes only what differs.
type Reconciler struct {
	Client   client.Client
	Recorder events.EventRecorder
	Metrics  *Metrics
	Progress *Progress
	Now      func() time.Time
}

// SetupWithManager watches the managed VMs and their VMIs; a VMI has its VM's name, so its own key is the VM's.
// Every event is also recorded in Progress, so that the heartbeat stops while changes wait unlabelled.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager, workers int) error {
	enqueue := tracking{next: &handler.EnqueueRequestForObject{}, progress: r.Progress}
	return ctrl.NewControllerManagedBy(mgr).
		Named("powerstate").
		Watches(&kubevirtv1.VirtualMachine{}, enqueue).
		Watches(&kubevirtv1.VirtualMachineInstance{}, enqueue).
		WithOptions(controller.Options{MaxConcurrentReconciles: workers}).
		Complete(r)
}

// tracking records each event in Progress before handing it on.
type tracking struct {
	next     handler.EventHandler
	progress *Progress
}

type queue = workqueue.TypedRateLimitingInterface[reconcile.Request]

func (t tracking) Create(ctx context.Context, e event.CreateEvent, q queue) {
	t.progress.Queued(client.ObjectKeyFromObject(e.Object))
	t.next.Create(ctx, e, q)
}

func (t tracking) Update(ctx context.Context, e event.UpdateEvent, q queue) {
	t.progress.Queued(client.ObjectKeyFromObject(e.ObjectNew))
	t.next.Update(ctx, e, q)
}

func (t tracking) Delete(ctx context.Context, e event.DeleteEvent, q queue) {
	t.progress.Queued(client.ObjectKeyFromObject(e.Object))
	t.next.Delete(ctx, e, q)
}

func (t tracking) Generic(ctx context.Context, e event.GenericEvent, q queue) {
	t.progress.Queued(client.ObjectKeyFromObject(e.Object))
	t.next.Generic(ctx, e, q)
}

// Reconcile computes the VM's power state and records it.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	seq := r.Progress.Begin(req.NamespacedName)
	err := r.reconcile(ctx, req.NamespacedName)
	if kerrors.IsConflict(err) {
		// The cache was behind the VM: the change that moved it on is on its way as an event and brings the
		// VM back here; retrying now would write, and count, the same transition twice.
		r.Progress.Failed(req.NamespacedName)
		return ctrl.Result{RequeueAfter: time.Second}, nil
	}
	if err != nil {
		r.Progress.Failed(req.NamespacedName)
		return ctrl.Result{}, err
	}
	r.Progress.Done(req.NamespacedName, seq)
	return ctrl.Result{}, nil
}

func (r *Reconciler) reconcile(ctx context.Context, key types.NamespacedName) error {
	vm := &kubevirtv1.VirtualMachine{}
	if err := r.Client.Get(ctx, key, vm); err != nil {
		return client.IgnoreNotFound(err) // deleted: nothing left to label
	}
	if vm.Labels[translate.LabelManagedBy] != translate.ManagedBy {
		return nil
	}
	vmi := &kubevirtv1.VirtualMachineInstance{}
	if err := r.Client.Get(ctx, key, vmi); kerrors.IsNotFound(err) {
		vmi = nil
	} else if err != nil {
		return fmt.Errorf("reading VirtualMachineInstance %s: %w", key, err)
	}
	want := translate.PowerStateOf(vm, vmi)
	had := translate.PowerState(vm.Labels[translate.LabelPowerState])
	generation := strconv.FormatInt(vm.Generation, 10)
	if had == want && vm.Annotations[translate.AnnotationPowerStateGeneration] == generation {
		return nil
	}
	if err := r.patch(ctx, vm, want, had != want, generation); err != nil {
		return err
	}
	if had != want {
		r.recordTransition(ctx, vm, vmi, had, want)
	}
	return nil
}

// patch merge-patches labels and annotations only: the cache holds trimmed objects, so the reconciler must
// never write a whole one back. The resourceVersion makes it conditional on the VM the state was computed from.
func (r *Reconciler) patch(ctx context.Context, vm *kubevirtv1.VirtualMachine, state translate.PowerState, changed bool, generation string) error {
	annotations := map[string]string{translate.AnnotationPowerStateGeneration: generation}
	if changed {
		annotations[translate.AnnotationPowerStateChanged] = r.Now().UTC().Format(time.RFC3339)
	}
	body, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"resourceVersion": vm.ResourceVersion,
		"labels":          map[string]string{translate.LabelPowerState: string(state)},
		"annotations":     annotations,
	}})
	if err != nil {
		return err
	}
	err = r.Client.Patch(ctx, vm, client.RawPatch(types.MergePatchType, body))
	if kerrors.IsNotFound(err) {
		return nil
	}
	if err != nil && !kerrors.IsConflict(err) {
		return fmt.Errorf("labelling VirtualMachine %s/%s %s: %w", vm.Namespace, vm.Name, state, err)
	}
	return err
}

// recordTransition counts and records a change of the label. A VM's first label is not a transition: an Event
// for each of 10,000 VMs when the reconciler is first deployed would only be noise, and API load.
func (r *Reconciler) recordTransition(ctx context.Context, vm *kubevirtv1.VirtualMachine, vmi *kubevirtv1.VirtualMachineInstance, from, to translate.PowerState) {
	if from == "" {
		log.FromContext(ctx).V(1).Info("power state labelled", "to", to)
		return
	}
	r.Metrics.transition(to)
	note := fmt.Sprintf("CloudStack power state changed from %s to %s (VM %s, VMI %s)", from, to, vm.Status.PrintableStatus, vmiPhase(vmi))
	r.Recorder.Eventf(vm, nil, corev1.EventTypeNormal, reason(to), "PowerStateChanged", note)
	log.FromContext(ctx).Info("power state changed", "from", from, "to", to, "printableStatus", vm.Status.PrintableStatus)
}

func reason(s translate.PowerState) string {
	if s == translate.PowerOn {
		return "PowerOn"
	}
	return "PowerOff"
}

func vmiPhase(vmi *kubevirtv1.VirtualMachineInstance) string {
	if vmi == nil {
		return "absent"
	}
	return string(vmi.Status.Phase)
}
