package console

import (
	"fmt"
	"net"
	"sync"
	"time"
)

// sourceLimits bounds what one source address may cost the gateway: handshakes at once, and failed
// authentications in a sliding window. Both are checked before any API call, so that one host can neither fill
// the handshake slots nor queue its password guesses in front of genuine checks. The console proxy VMs are the
// only legitimate VNC clients, so the limits are per address, not per user.
type sourceLimits struct {
	flag          string // that sets maxHandshakes, for the refusal
	maxHandshakes int
	maxFailures   int
	window        time.Duration
	now           func() time.Time

	mu       sync.Mutex
	active   map[string]int
	failures map[string][]time.Time // oldest first, none older than window
}

func newSourceLimits(maxHandshakes, maxFailures int, window time.Duration) *sourceLimits {
	return &sourceLimits{flag: "--max-handshakes-per-source", maxHandshakes: maxHandshakes, maxFailures: maxFailures, window: window, now: time.Now,
		active: map[string]int{}, failures: map[string][]time.Time{}}
}

// sourceOf is the address without its port: a host opens each connection from another port.
func sourceOf(addr net.Addr) string {
	if addr == nil {
		return ""
	}
	host, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	return host
}

// admit takes a handshake slot for source, or says why not; release gives it back.
func (l *sourceLimits) admit(source string) (release func(), refused error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.blockedLocked(source); err != nil {
		return nil, err
	}
	if l.active[source] >= l.maxHandshakes {
		return nil, fmt.Errorf("%d handshakes from %s already in progress (%s)", l.maxHandshakes, source, l.flag)
	}
	l.active[source]++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			if l.active[source]--; l.active[source] <= 0 {
				delete(l.active, source)
			}
		})
	}, nil
}

// blocked says why source may not try a password now, or nil.
func (l *sourceLimits) blocked(source string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.blockedLocked(source)
}

func (l *sourceLimits) blockedLocked(source string) error {
	recent := l.pruneLocked(source)
	if len(recent) >= l.maxFailures {
		return fmt.Errorf("%d failed authentications from %s in the last %s (--max-auth-failures-per-source): refused until the oldest is %s old",
			len(recent), source, l.window, l.window)
	}
	return nil
}

// failed records a failed authentication from source.
func (l *sourceLimits) failed(source string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failures[source] = append(l.pruneLocked(source), l.now())
	// Forget sources whose failures have all aged out, so that many sources cannot grow the map for good.
	if len(l.failures) > 1024 {
		for s := range l.failures {
			l.pruneLocked(s)
		}
	}
}

// pruneLocked drops source's failures older than the window and returns the rest.
func (l *sourceLimits) pruneLocked(source string) []time.Time {
	times := l.failures[source]
	cutoff := l.now().Add(-l.window)
	i := 0
	for i < len(times) && !times[i].After(cutoff) {
		i++
	}
	times = times[i:]
	if len(times) == 0 {
		delete(l.failures, source)
		return nil
	}
	l.failures[source] = times
	return times
}

// pool is one mode's handshake slots: in all and per source. VNC and direct mode have one each, so that a
// flood through one cannot keep the other's clients out.
type pool struct {
	flag    string // that sets the size, for the refusal
	slots   chan struct{}
	sources *sourceLimits
}

func newPool(size int, flag string, sources *sourceLimits) *pool {
	return &pool{flag: flag, slots: make(chan struct{}, size), sources: sources}
}

// admit takes a slot for source, its own share first, or says why not (reason, for the metrics); release
// gives both back, once however often it is called.
func (p *pool) admit(source string) (release func(), reason string, err error) {
	releaseSource, err := p.sources.admit(source)
	if err != nil {
		return nil, "source limit", err
	}
	select {
	case p.slots <- struct{}{}:
	default:
		releaseSource()
		return nil, "too many handshakes", fmt.Errorf("%d handshakes already in progress (%s)", cap(p.slots), p.flag)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			<-p.slots
			releaseSource()
		})
	}, "", nil
}
