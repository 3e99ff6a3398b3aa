package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/kube"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/kube/powercache"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

// powerCache is the host's shared listing of power states (kube/powercache) and how long a listing is trusted.
type powerCache struct {
	dir     *powercache.Dir
	ttl     time.Duration
	logFile string
}

// statusRequest is what the listing needs of the payload: the same reading powercache.ParseStatusRequest makes
// in cmd/launcher.
func statusRequest(p *translate.Payload) powercache.StatusRequest {
	d := p.ExternalDetails
	return powercache.StatusRequest{Instance: p.InstanceName(), UUID: p.InstanceUUID(),
		Details: [3]map[string]string{d.Host, d.ResourceMap, d.Extension}}
}

// openPowerCache opens the listing directory of the payload's host for writing a listing. It is nil, with no
// error, where no listing may be written: no reconciler heartbeat to vouch for the labels, or status_cache off.
func openPowerCache(p *translate.Payload) (*powerCache, error) {
	d := p.Details()
	if _, trustLabels, err := d.ReconcilerLease(); err != nil || !trustLabels {
		return nil, err
	}
	ttl, err := d.StatusCache()
	if err != nil || ttl == 0 {
		return nil, err
	}
	dir, err := openHostDir(p)
	if err != nil {
		return nil, err
	}
	return &powerCache{dir: dir, ttl: ttl, logFile: d.LogFile()}, nil
}

func openHostDir(p *translate.Payload) (*powercache.Dir, error) {
	root, err := powercache.DefaultRoot()
	if err != nil {
		return nil, err
	}
	return powercache.Open(root, statusRequest(p).HostKey())
}

// cachedStatus answers status from the host's listing, before any connection is made; ok is false when the
// cluster must be read. cmd/launcher answers the same way before this binary is even started.
func cachedStatus(p *translate.Payload, log *slog.Logger) (answer any, ok, trusted bool) {
	root, err := powercache.DefaultRoot()
	if err != nil {
		return nil, false, false
	}
	a, ok, trusted, err := powercache.AnswerStatus(root, statusRequest(p))
	if err != nil {
		log.Warn("power-state listing not used", "error", err)
	}
	if !ok {
		return nil, false, trusted
	}
	log.Info("status", "power_state", a.State, "source", kube.FromLabels, "listing", "read")
	return powerAnswer{Status: "success", PowerState: a.State}, true, true
}

// shouldList says whether this status should list the namespace for the round: not when a listing the round may
// trust is there but cannot tell this Instance (listing again would find the same), nor when there is no room to
// write one.
func (c *call) shouldList(pc *powerCache) bool {
	if c.listingTrusted {
		return false
	}
	if !pc.dir.Room() {
		c.log.Warn("power-state listing not written: its file system is full or read-only", "directory", pc.dir.String())
		return false
	}
	return true
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
	l := powercache.Listing{Epoch: epoch, Taken: taken, Until: taken.Add(min(pc.ttl, fresh)), LogFile: pc.logFile, Entries: entries}
	if err := pc.dir.Store(l); err != nil {
		c.log.Warn("power-state listing not written", "error", err)
		stored = "unwritten"
	}
	name := c.payload.InstanceName()
	for _, e := range entries {
		if e.Instance == name && e.UUID == id.UUID && e.State != "" {
			c.log.Info("status", "power_state", e.State, "source", kube.FromLabels, "listing", stored)
			return translate.PowerState(e.State), true
		}
	}
	return "", false
}

// invalidatePowerStates makes every listing on this management server stale, of every host: actions that change
// a power state call it when they begin and when they end. It runs whatever the details say now, as a listing may
// be left from before.
func invalidatePowerStates(log *slog.Logger) {
	root, err := powercache.DefaultRoot()
	if err != nil {
		return // no cache directory: no listing either
	}
	if err := powercache.Invalidate(root); err != nil {
		log.Error("power-state listing not invalidated: status may answer from it until it expires", "error", err)
	}
}
