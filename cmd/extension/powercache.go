package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/kube"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/kube/powercache"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

// powerCache is the host's shared listing of power states (kube/powercache) and how long a listing is trusted.
type powerCache struct {
	dir *powercache.Dir
	ttl time.Duration
}

// openPowerCache opens the listing directory of the payload's host. It is nil, with no error, where no listing
// can be trusted: no reconciler heartbeat to vouch for the labels.
func openPowerCache(p *translate.Payload) (*powerCache, error) {
	d := p.Details()
	conn, err := d.Connection()
	if err != nil {
		return nil, err
	}
	lease, trustLabels, err := d.ReconcilerLease()
	if err != nil || !trustLabels {
		return nil, err
	}
	ttl, err := d.StatusCache()
	if err != nil {
		return nil, err
	}
	root, err := powercache.DefaultRoot()
	if err != nil {
		return nil, err
	}
	key := powercache.Key(conn.Kubeconfig, conn.Context, conn.Namespace, fmt.Sprint(conn.InsecureTLS), lease.Namespace, lease.Name)
	dir, err := powercache.Open(root, key)
	if err != nil {
		return nil, err
	}
	return &powerCache{dir: dir, ttl: ttl}, nil
}

// cachedStatus answers status from the host's listing, before any connection is made; ok is false when the
// cluster must be read.
func cachedStatus(p *translate.Payload, log *slog.Logger) (answer any, ok bool) {
	pc, err := openPowerCache(p)
	if err != nil {
		log.Warn("power-state listing not used", "error", err)
	}
	if pc == nil || pc.ttl == 0 {
		return nil, false
	}
	name, err := translate.VMName(p.InstanceName())
	if err != nil {
		return nil, false
	}
	e, hit, err := pc.dir.Lookup(name)
	if err != nil {
		log.Warn("power-state listing not used", "error", err)
	}
	if !hit || e.State == "" || e.UUID != p.InstanceUUID() {
		return nil, false // not in it, not told, or another Instance's VM: reading the VM decides
	}
	log.Info("status", "power_state", e.State, "source", kube.FromLabels, "listing", "read")
	return powerAnswer{Status: "success", PowerState: e.State}, true
}

// listPowerStates reads the namespace's power states for the round's other status calls, stores them, and
// returns id's state; ok is false when the listing cannot tell it. Failures here only cost the round its
// shortcut: the caller reads the VM.
func (c *call) listPowerStates(ctx context.Context, pc *powerCache, id kube.Identity) (state translate.PowerState, ok bool) {
	stored := "written"
	epoch, err := pc.dir.Epoch() // before the reads: an action that ends after this makes the listing stale
	if err != nil {
		c.log.Warn("power-state listing not written", "error", err)
		return "", false
	}
	taken := time.Now()
	entries, fresh, err := c.kube.Lifecycle().PowerListing(ctx)
	if err != nil || fresh <= 0 {
		if err != nil {
			c.log.Warn("power-state listing not read", "error", err)
		}
		return "", false
	}
	l := powercache.Listing{Epoch: epoch, Taken: taken, Until: taken.Add(min(pc.ttl, fresh)), Entries: entries}
	if err := pc.dir.Store(l); err != nil {
		c.log.Warn("power-state listing not written", "error", err)
		stored = "unwritten"
	}
	for _, e := range entries {
		if e.Name == id.Name && e.UUID == id.UUID && e.State != "" {
			c.log.Info("status", "power_state", e.State, "source", kube.FromLabels, "listing", stored)
			return translate.PowerState(e.State), true
		}
	}
	return "", false
}

// invalidatePowerStates makes every listing of the host stale: actions that change a power state call it when
// they begin and when they end. It runs whatever status_cache says now, as a listing may be left from when it
// allowed one.
func invalidatePowerStates(p *translate.Payload, log *slog.Logger) {
	pc, err := openPowerCache(p)
	if err == nil && pc != nil {
		err = pc.dir.Invalidate()
	}
	if err != nil {
		log.Error("power-state listing not invalidated: status may answer from it until it expires", "error", err)
	}
}
