package powerstate

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"k8s.io/apimachinery/pkg/types"
)

func TestProgress(t *testing.T) {
	a, b, c := types.NamespacedName{Name: "a"}, types.NamespacedName{Name: "b"}, types.NamespacedName{Name: "c"}
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	caughtUp := func(p *Progress) bool { ok, _ := p.CaughtUp(); return ok }

	p := NewProgress(2*time.Second, clock)
	assert.False(t, caughtUp(p), "not caught up before the first full pass is known")
	p.Queued(a)
	p.Queued(b)           // the informer's first list queues every VM
	p.Done(a, p.Begin(a)) // the controller ran ahead of Prime
	p.Failed(c)           // and failed on c
	p.Prime([]types.NamespacedName{a, b, c})
	ok, pending := p.CaughtUp()
	assert.False(t, ok, "b was never reconciled since the reconciler took over: no lag excuses it")
	assert.Equal(t, 2, pending)
	p.Done(b, p.Begin(b))
	assert.False(t, caughtUp(p), "c is primed too: a failure before the takeover is not excused by the lag")
	now = now.Add(3 * time.Second)
	assert.False(t, caughtUp(p), "c has failed for longer than the lag")
	p.Done(c, p.Begin(c))
	assert.True(t, caughtUp(p))

	t.Run("an event during a reconcile keeps the key pending", func(t *testing.T) {
		p.Queued(a)
		seq := p.Begin(a)
		p.Queued(a) // the VM changed while it was being reconciled
		p.Done(a, seq)
		now = now.Add(3 * time.Second)
		assert.False(t, caughtUp(p), "the later change is not labelled yet")
		p.Done(a, p.Begin(a))
		assert.True(t, caughtUp(p))
	})

	t.Run("a backlog older than the lag stops the heartbeat", func(t *testing.T) {
		p.Queued(b)
		assert.True(t, caughtUp(p), "a fresh event is within the lag")
		now = now.Add(3 * time.Second)
		assert.False(t, caughtUp(p))
		p.Done(b, p.Begin(b))
		assert.True(t, caughtUp(p))
	})

	t.Run("a failing VM stops the heartbeat once older than the lag", func(t *testing.T) {
		p.Failed(a)
		now = now.Add(3 * time.Second)
		assert.False(t, caughtUp(p))
		p.Done(a, p.Begin(a))
		assert.True(t, caughtUp(p))
	})
}
