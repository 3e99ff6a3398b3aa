package console

import (
	"context"
	"sync"
	"time"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/kube/consoletoken"
)

// sharedList shares LISTs of the VNC tokens among the password checks that run at once. A VNC client's answer
// can only be checked against every token's password, so each check needs a list; without sharing, every
// guess of a flood would be a paginated LIST of its own, queued on the client's rate limit in front of genuine
// checks. Here at most one list runs, and at most one more waits to start after it for the checks that came
// too late for the running one: however many checks arrive, the lists follow one another.
type sharedList struct {
	list    func(context.Context) ([]consoletoken.Token, error)
	timeout time.Duration // of one list, which no single check's context may cut short

	mu      sync.Mutex
	last    *listing // the latest successful one
	running *listing
	next    *listing // starts when running ends
}

// listing is one LIST, started at started; done closes when tokens and err are set.
type listing struct {
	started time.Time
	done    chan struct{}
	tokens  []consoletoken.Token
	err     error
}

// get returns a list that started no earlier than notBefore: the latest one if it did, else the running one
// if it did, else the next.
func (s *sharedList) get(ctx context.Context, notBefore time.Time) (*listing, error) {
	s.mu.Lock()
	var l *listing
	switch {
	case s.last != nil && !s.last.started.Before(notBefore):
		l = s.last
		s.mu.Unlock()
		return l, nil
	case s.running != nil && !s.running.started.Before(notBefore):
		l = s.running
	case s.running == nil:
		l = s.startLocked(ctx)
	default:
		if s.next == nil {
			s.next = &listing{done: make(chan struct{})}
		}
		l = s.next
	}
	s.mu.Unlock()
	select {
	case <-l.done:
		return l, l.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// startLocked starts the next list (or a new one), detached from the check that starts it: others wait for it.
func (s *sharedList) startLocked(ctx context.Context) *listing {
	l := s.next
	if l == nil {
		l = &listing{done: make(chan struct{})}
	}
	s.next = nil
	l.started = time.Now()
	s.running = l
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
	go func() {
		defer cancel()
		l.tokens, l.err = s.list(lctx)
		s.mu.Lock()
		defer s.mu.Unlock()
		close(l.done)
		if l.err == nil && (s.last == nil || l.started.After(s.last.started)) {
			s.last = l
		}
		s.running = nil
		if s.next != nil {
			s.startLocked(lctx)
		}
	}()
	return l
}
