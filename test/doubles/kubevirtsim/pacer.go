package kubevirtsim

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// pacer holds each object in a state for the step delay. The clock lives in memory rather than in the objects:
// status timestamps have whole-second precision, and the objects should look like KubeVirt's.
type pacer struct {
	delay time.Duration
	mu    sync.Mutex
	since map[pacerKey]pace
}

type pacerKey struct {
	kind string
	name types.NamespacedName
}

type pace struct {
	uid   types.UID
	state string
	since time.Time
}

func newPacer(delay time.Duration) *pacer {
	return &pacer{delay: delay, since: map[pacerKey]pace{}}
}

// wait returns how much longer obj must stay in state. The first call for a new state starts its clock.
func (p *pacer) wait(kind string, obj client.Object, state string) time.Duration {
	if p.delay <= 0 {
		return 0
	}
	key := pacerKey{kind, client.ObjectKeyFromObject(obj)}
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	cur, ok := p.since[key]
	if !ok || cur.uid != obj.GetUID() || cur.state != state {
		p.since[key] = pace{uid: obj.GetUID(), state: state, since: now}
		return p.delay
	}
	return max(0, p.delay-now.Sub(cur.since))
}

// forget drops the clock of an object that has no more steps to take.
func (p *pacer) forget(kind string, name types.NamespacedName) {
	if p.delay <= 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.since, pacerKey{kind, name})
}
