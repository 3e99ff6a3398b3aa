package kube

import (
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

// Heartbeat is the companion reconciler's promise, kept in a Lease: while it is fresh, the power-state labels of
// the managed VMs in the namespaces it covers are current, so status calls may answer from metadata alone.
type Heartbeat struct {
	Holder     string
	Renewed    time.Time
	Duration   time.Duration
	Namespaces []string // empty: every namespace
}

// MaxHeartbeatDuration caps how long one renewal of the heartbeat Lease is trusted, whatever the Lease claims.
// Anyone who may write Leases in the reconciler's namespace could otherwise set a duration of years, and the
// labels would count as current long after the reconciler stopped keeping them. The reconciler refuses a
// --heartbeat-duration above it, so the cap never shortens a genuine heartbeat.
const MaxHeartbeatDuration = time.Minute

// HeartbeatFromLease reads a heartbeat Lease. Its duration is capped at MaxHeartbeatDuration.
func HeartbeatFromLease(l *coordinationv1.Lease) Heartbeat {
	h := Heartbeat{}
	if l.Spec.HolderIdentity != nil {
		h.Holder = *l.Spec.HolderIdentity
	}
	if l.Spec.RenewTime != nil {
		h.Renewed = l.Spec.RenewTime.Time
	}
	if l.Spec.LeaseDurationSeconds != nil {
		h.Duration = min(time.Duration(*l.Spec.LeaseDurationSeconds)*time.Second, MaxHeartbeatDuration)
	}
	if ns := l.Annotations[translate.AnnotationHeartbeatNamespaces]; ns != "" {
		h.Namespaces = strings.Split(ns, ",")
	}
	return h
}

// WriteTo records the heartbeat in a Lease, keeping the acquire time while the holder stays the same.
func (h Heartbeat) WriteTo(l *coordinationv1.Lease) {
	if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != h.Holder || l.Spec.AcquireTime == nil {
		l.Spec.AcquireTime = &metav1.MicroTime{Time: h.Renewed}
	}
	l.Spec.HolderIdentity = &h.Holder
	seconds := int32(h.Duration / time.Second)
	l.Spec.LeaseDurationSeconds = &seconds
	if h.Renewed.IsZero() {
		l.Spec.RenewTime = nil
	} else {
		l.Spec.RenewTime = &metav1.MicroTime{Time: h.Renewed}
	}
	if l.Annotations == nil {
		l.Annotations = map[string]string{}
	}
	l.Annotations[translate.AnnotationHeartbeatNamespaces] = strings.Join(h.Namespaces, ",")
}

// clockTolerance absorbs the one-second resolution of the server's Date header and small clock differences
// between the reconciler's node and the API server.
const clockTolerance = time.Second

// FreshAt says whether the heartbeat still holds at now (by the API server's clock). A renewal stamped in the
// future beyond the tolerance means skewed clocks, and skew is not trusted.
func (h Heartbeat) FreshAt(now time.Time) bool {
	return h.Remaining(now) > 0
}

// Remaining is how much longer the heartbeat holds at now (by the API server's clock), tolerance deducted; 0 when
// it does not hold.
func (h Heartbeat) Remaining(now time.Time) time.Duration {
	if h.Holder == "" || h.Renewed.IsZero() || h.Duration <= 0 {
		return 0
	}
	if h.Renewed.After(now.Add(clockTolerance)) {
		return 0
	}
	return max(h.Renewed.Add(h.Duration).Sub(now.Add(clockTolerance)), 0)
}

// Covers says whether the reconciler keeps the labels of namespace current.
func (h Heartbeat) Covers(namespace string) bool {
	return len(h.Namespaces) == 0 || slices.Contains(h.Namespaces, namespace)
}

// ServerClock tells the API server's time from the Date header of its latest response, so a heartbeat's age is
// judged by the cluster's clock, not by the management server's.
type ServerClock struct {
	mu     sync.Mutex
	offset time.Duration
	known  bool
	now    func() time.Time
}

// NewServerClock returns a clock that learns from every response of the clients built from cfg after this call.
func NewServerClock(cfg *rest.Config) *ServerClock {
	c := &ServerClock{now: time.Now}
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return &clockTransport{next: rt, clock: c} })
	return c
}

// Now is the API server's time as of its latest response; ok is false before any response carried a date.
func (c *ServerClock) Now() (now time.Time, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now().Add(c.offset), c.known
}

func (c *ServerClock) observe(h http.Header) {
	date, err := http.ParseTime(h.Get("Date"))
	if err != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset, c.known = date.Sub(c.now()), true
}

type clockTransport struct {
	next  http.RoundTripper
	clock *ServerClock
}

func (t *clockTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err == nil {
		t.clock.observe(resp.Header)
	}
	return resp, err
}
