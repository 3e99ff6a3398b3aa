package powerstate

import (
	"context"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/kube"
)

// Heartbeat renews the Lease that vouches for the labels, as long as this replica leads and Progress says the
// labels are current. It runs only on the leader; on shutdown it clears the renewal time, so the extension
// stops trusting the labels at once instead of when the Lease expires.
type Heartbeat struct {
	Client     client.Client // uncached for Leases
	Cache      cache.Cache
	Lease      types.NamespacedName
	Holder     string
	Interval   time.Duration
	Duration   time.Duration
	Namespaces []string
	Progress   *Progress
	Metrics    *Metrics
	Log        logr.Logger
	Now        func() time.Time
}

// NeedLeaderElection makes the heartbeat the leader's alone.
func (h *Heartbeat) NeedLeaderElection() bool { return true }

// Start primes Progress from the synced cache, then beats until ctx ends.
func (h *Heartbeat) Start(ctx context.Context) error {
	if !h.Cache.WaitForCacheSync(ctx) {
		return nil // stopped before the cache synced
	}
	if err := h.prime(ctx); err != nil {
		return err
	}
	defer h.release()
	ticker := time.NewTicker(h.Interval)
	defer ticker.Stop()
	for {
		h.beat(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

func (h *Heartbeat) prime(ctx context.Context) error {
	var vms kubevirtv1.VirtualMachineList
	if err := h.Cache.List(ctx, &vms, client.UnsafeDisableDeepCopy); err != nil {
		return fmt.Errorf("listing cached VirtualMachines: %w", err)
	}
	keys := make([]types.NamespacedName, len(vms.Items))
	for i := range vms.Items {
		keys[i] = client.ObjectKeyFromObject(&vms.Items[i])
	}
	h.Progress.Prime(keys)
	h.Log.Info("waiting for every managed VM to be reconciled before vouching for labels", "vms", len(keys))
	return nil
}

// beat renews the Lease when the labels are current; otherwise it lets the Lease age.
func (h *Heartbeat) beat(ctx context.Context) {
	ok, pending := h.Progress.CaughtUp()
	if !ok {
		h.Log.V(1).Info("labels not current yet; heartbeat not renewed", "pending", pending)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, h.Interval)
	defer cancel()
	now := h.Now()
	if err := h.write(ctx, now); err != nil {
		h.Log.Error(err, "renewing the heartbeat Lease", "lease", h.Lease)
		return
	}
	h.Metrics.heartbeat(now)
}

// release clears the renewal time, with a context of its own: the manager's is already done.
func (h *Heartbeat) release() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.write(ctx, time.Time{}); err != nil {
		h.Log.Error(err, "releasing the heartbeat Lease; the extension trusts the labels until it expires", "lease", h.Lease)
	}
}

func (h *Heartbeat) write(ctx context.Context, renewed time.Time) error {
	beat := kube.Heartbeat{Holder: h.Holder, Renewed: renewed, Duration: h.Duration, Namespaces: h.Namespaces}
	lease := &coordinationv1.Lease{}
	err := h.Client.Get(ctx, h.Lease, lease)
	if kerrors.IsNotFound(err) {
		lease.Name, lease.Namespace = h.Lease.Name, h.Lease.Namespace
		beat.WriteTo(lease)
		return h.Client.Create(ctx, lease)
	}
	if err != nil {
		return err
	}
	if renewed.IsZero() && (lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity != h.Holder) {
		return nil // another replica holds it now: not ours to release
	}
	beat.WriteTo(lease)
	return h.Client.Update(ctx, lease)
}
