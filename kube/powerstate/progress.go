package powerstate

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// maxLabelLag is how far behind the cluster the labels may be while the heartbeat vouches for them: a change
// the reconciler has been told of but has not labelled for longer than this stops the heartbeat, so that a
// backlog or a failing VM costs the extension speed, never a wrong answer.
const maxLabelLag = 2 * time.Second

// Progress tells whether the labels are current: every VM present when the reconciler took over has been
// reconciled since, and no change (an event, a failed reconcile) has waited longer than maxLabelLag.
type Progress struct {
	mu      sync.Mutex
	now     func() time.Time
	maxLag  time.Duration
	primed  bool
	done    map[types.NamespacedName]struct{} // reconciled before Prime; nil once primed
	pending map[types.NamespacedName]*waiting
}

// waiting is a VM with a change not yet labelled: since when, and a count of the events that brought it, so
// that a reconcile that began before the latest event does not clear it.
type waiting struct {
	since time.Time
	seq   uint64
}

// NewProgress returns a Progress that is not caught up until primed.
func NewProgress(maxLag time.Duration, now func() time.Time) *Progress {
	return &Progress{now: now, maxLag: maxLag, done: map[types.NamespacedName]struct{}{}, pending: map[types.NamespacedName]*waiting{}}
}

// Prime records the VMs that must be reconciled before the labels count as current. Those already reconciled
// since start (the controller may run ahead of Prime) are not waited for.
func (p *Progress) Prime(keys []types.NamespacedName) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, k := range keys {
		if _, ok := p.done[k]; ok {
			continue
		}
		// Waiting since forever: whatever changed while no reconciler ran may be unlabelled, so the heartbeat
		// waits for every one of these, not just for the lag, even those the informer's first list has
		// just queued.
		if w := p.pending[k]; w != nil {
			w.since = time.Time{}
		} else {
			p.pending[k] = &waiting{}
		}
	}
	p.primed, p.done = true, nil
}

// Queued records an event for key: its label may be out of date until a reconcile that starts after it ends.
func (p *Progress) Queued(key types.NamespacedName) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if w := p.pending[key]; w != nil {
		w.seq++
		return
	}
	p.pending[key] = &waiting{since: p.now(), seq: 1}
}

// Begin is called as a reconcile of key starts; Done takes what it returned.
func (p *Progress) Begin(key types.NamespacedName) uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if w := p.pending[key]; w != nil {
		return w.seq
	}
	return 0
}

// Done records a successful reconcile that began at seq: unless an event came since, key is current.
func (p *Progress) Done(key types.NamespacedName, seq uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if w := p.pending[key]; w != nil && w.seq == seq {
		delete(p.pending, key)
	}
	if !p.primed {
		p.done[key] = struct{}{}
	}
}

// Failed records a failed reconcile: the VM's label may be stale until a retry succeeds.
func (p *Progress) Failed(key types.NamespacedName) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pending[key] == nil {
		p.pending[key] = &waiting{since: p.now()}
	}
	if !p.primed {
		delete(p.done, key)
	}
}

// CaughtUp says whether the labels are current within maxLag, and how many VMs have a change not labelled yet.
func (p *Progress) CaughtUp() (ok bool, pending int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.primed {
		return false, len(p.pending)
	}
	oldest := p.now().Add(-p.maxLag)
	for _, w := range p.pending {
		if w.since.Before(oldest) {
			return false, len(p.pending)
		}
	}
	return true, len(p.pending)
}
