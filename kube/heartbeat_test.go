package kube

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
)

func TestHeartbeatFreshAt(t *testing.T) {
	renewed := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	beat := Heartbeat{Holder: "r-0", Renewed: renewed, Duration: 10 * time.Second}
	tests := []struct {
		name string
		beat Heartbeat
		now  time.Time
		want bool
		// remaining is how long a listing read at now may be trusted.
		remaining time.Duration
	}{
		{"just renewed", beat, renewed, true, 9 * time.Second},
		{"well within", beat, renewed.Add(8 * time.Second), true, time.Second},
		{"inside the tolerance of expiry", beat, renewed.Add(9500 * time.Millisecond), false, 0},
		{"expired", beat, renewed.Add(11 * time.Second), false, 0},
		{"renewed a second ahead of the server (Date resolution)", beat, renewed.Add(-time.Second), true, 10 * time.Second},
		{"renewed far in the future: skewed clocks", beat, renewed.Add(-5 * time.Second), false, 0},
		{"released", Heartbeat{Holder: "r-0", Duration: 10 * time.Second}, renewed, false, 0},
		{"no holder", Heartbeat{Renewed: renewed, Duration: 10 * time.Second}, renewed, false, 0},
		{"no duration", Heartbeat{Holder: "r-0", Renewed: renewed}, renewed, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.beat.FreshAt(tt.now))
			assert.Equal(t, tt.remaining, tt.beat.Remaining(tt.now))
		})
	}
}

// A Lease that claims a long duration, as one forged by whoever may write Leases in the reconciler's namespace
// would, vouches for the labels no longer than MaxHeartbeatDuration after its last renewal.
func TestHeartbeatFromLeaseCapsTheDuration(t *testing.T) {
	renewed := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		seconds   int32
		want      time.Duration
		freshAt   time.Duration // after the renewal
		wantFresh bool
	}{
		{name: "the reconciler's default", seconds: 10, want: 10 * time.Second, freshAt: 5 * time.Second, wantFresh: true},
		{name: "at the cap", seconds: 60, want: MaxHeartbeatDuration, freshAt: 30 * time.Second, wantFresh: true},
		{name: "a year, read as the cap", seconds: 365 * 24 * 3600, want: MaxHeartbeatDuration, freshAt: 30 * time.Second, wantFresh: true},
		{name: "a year, stale after the cap", seconds: 365 * 24 * 3600, want: MaxHeartbeatDuration, freshAt: 2 * time.Minute, wantFresh: false},
		{name: "the largest a Lease holds, stale after the cap", seconds: 1<<31 - 1, want: MaxHeartbeatDuration, freshAt: time.Hour, wantFresh: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lease := &coordinationv1.Lease{}
			Heartbeat{Holder: "r-0", Renewed: renewed, Duration: 10 * time.Second}.WriteTo(lease)
			lease.Spec.LeaseDurationSeconds = &tt.seconds
			h := HeartbeatFromLease(lease)
			assert.Equal(t, tt.want, h.Duration)
			assert.Equal(t, tt.wantFresh, h.FreshAt(renewed.Add(tt.freshAt)))
		})
	}
}

func TestHeartbeatCovers(t *testing.T) {
	assert.True(t, Heartbeat{}.Covers("any"))
	h := Heartbeat{Namespaces: []string{"a", "b"}}
	assert.True(t, h.Covers("b"))
	assert.False(t, h.Covers("c"))
}

func TestHeartbeatLeaseRoundTrip(t *testing.T) {
	renewed := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	lease := &coordinationv1.Lease{}
	want := Heartbeat{Holder: "r-0", Renewed: renewed, Duration: 10 * time.Second, Namespaces: []string{"a", "b"}}
	want.WriteTo(lease)
	assert.Equal(t, want, HeartbeatFromLease(lease))
	acquired := lease.Spec.AcquireTime.Time

	// Renewed by the same holder: the acquire time stays; released: no renewal time, so not fresh.
	again := want
	again.Renewed = renewed.Add(2 * time.Second)
	again.WriteTo(lease)
	assert.Equal(t, acquired, lease.Spec.AcquireTime.Time)
	released := want
	released.Renewed = time.Time{}
	released.Namespaces = nil
	released.WriteTo(lease)
	got := HeartbeatFromLease(lease)
	assert.Nil(t, lease.Spec.RenewTime)
	assert.Empty(t, got.Namespaces)
	assert.False(t, got.FreshAt(renewed))

	// A new holder restarts the acquire time.
	other := Heartbeat{Holder: "r-1", Renewed: renewed.Add(time.Minute), Duration: 10 * time.Second}
	other.WriteTo(lease)
	assert.Equal(t, other.Renewed, lease.Spec.AcquireTime.Time)
}

func TestServerClock(t *testing.T) {
	local := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	c := &ServerClock{now: func() time.Time { return local }}
	_, ok := c.Now()
	require.False(t, ok, "no response seen yet")

	c.observe(http.Header{"Date": {"not a date"}})
	_, ok = c.Now()
	require.False(t, ok)

	// The server runs 90 s behind the management server: its clock wins.
	c.observe(http.Header{"Date": {local.Add(-90 * time.Second).Format(http.TimeFormat)}})
	local = local.Add(5 * time.Second)
	now, ok := c.Now()
	require.True(t, ok)
	assert.Equal(t, local.Add(-90*time.Second), now)
}
