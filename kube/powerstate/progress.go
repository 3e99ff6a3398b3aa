package powerstate

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"
)

// Progress tells whether the labels are current: every VM present when the reconciler took over has been
// reconciled since, and no VM's last reconcile failed. Until then the heartbeat is not renewed, so the extension
// reads the full objects instead of labels that may predate a restart or a fault.
type Progress struct {
	mu      sync.Mutex
	primed  bool
	done    map[types.NamespacedName]struct{} // reconciled before Prime; nil once primed
	pending map[types.NamespacedName]struct{} // to reconcile (from Prime) or failed last time
}

// NewProgress returns a Progress that is not caught up until primed.
func NewProgress() *Progress {
	return &Progress{done: map[types.NamespacedName]struct{}{}, pending: map[types.NamespacedName]struct{}{}}
}

// Prime records the VMs that must be reconciled before the labels count as current. Those already reconciled
// since start (the controller may run ahead of Prime) are not waited for.
func (p *Progress) Prime(keys []types.NamespacedName) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, k := range keys {
		if _, ok := p.done[k]; !ok {
			p.pending[k] = struct{}{}
		}
	}
	p.primed, p.done = true, nil
}

// Done records a successful reconcile.
func (p *Progress) Done(key types.NamespacedName) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.pending, key)
	if !p.primed {
		p.done[key] = struct{}{}
	}
}

// Failed records a failed reconcile: the VM's label may be stale until a retry succeeds.
func (p *Progress) Failed(key types.NamespacedName) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pending[key] = struct{}{}
	if !p.primed {
		delete(p.done, key)
	}
}

// CaughtUp says whether every label is current, and how many VMs are still to do.
func (p *Progress) CaughtUp() (ok bool, pending int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.primed && len(p.pending) == 0, len(p.pending)
}
