package powerstate

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"k8s.io/apimachinery/pkg/types"
)

func TestProgress(t *testing.T) {
	a, b, c := types.NamespacedName{Name: "a"}, types.NamespacedName{Name: "b"}, types.NamespacedName{Name: "c"}
	caughtUp := func(p *Progress) bool { ok, _ := p.CaughtUp(); return ok }

	p := NewProgress()
	assert.False(t, caughtUp(p), "not caught up before the first full pass is known")
	p.Done(a)   // the controller ran ahead of Prime
	p.Failed(c) // and failed on c
	p.Prime([]types.NamespacedName{a, b, c})
	ok, pending := p.CaughtUp()
	assert.False(t, ok)
	assert.Equal(t, 2, pending, "b never reconciled, c failed")
	p.Done(b)
	assert.False(t, caughtUp(p))
	p.Done(c)
	assert.True(t, caughtUp(p))

	p.Failed(a)
	assert.False(t, caughtUp(p), "a failing VM holds the heartbeat")
	p.Done(a)
	assert.True(t, caughtUp(p))
}
