package main

import (
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/kube/powercache"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

// Every action that can change a power state makes the listings stale, and does so even when it fails (here:
// the kubeconfig is missing, so it fails before reaching the cluster). The others leave them alone.
func TestActionsThatChangePowerInvalidate(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CACHE_HOME", "")
	root, err := powercache.DefaultRoot()
	require.NoError(t, err)
	require.Equal(t, filepath.Join(home, ".cache", "cloudstack-kubevirt", "power"), root)
	dir, err := powercache.Open(root, "host")
	require.NoError(t, err)

	p, err := translate.ParsePayload([]byte(`{"externaldetails":{"host":{"namespace":"ns","kubeconfig":"/nonexistent/kubeconfig"}},"virtualmachinename":"i-2-45-VM","virtualmachineid":"u-1","parameters":{"snap_name":"s"}}`))
	require.NoError(t, err)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var changing []string
	for _, act := range catalog() {
		if act.alone != nil || act.Name == "status" {
			continue // check reads only; status would answer from the listing under test
		}
		before, err := dir.Epoch()
		require.NoError(t, err)
		_, err = dispatch(t.Context(), act.Name, p, log, time.Second)
		require.Error(t, err, act.Name)
		after, err := dir.Epoch()
		require.NoError(t, err)
		if act.changesPower {
			changing = append(changing, act.Name)
			assert.NotEqual(t, before, after, "%s left the listings standing", act.Name)
		} else {
			assert.Equal(t, before, after, "%s made the listings stale, though it changes no power state", act.Name)
		}
	}
	assert.Equal(t, []string{"create", "start", "stop", "reboot", "delete", "RestoreSnapshot", "Pause", "Resume"}, changing,
		"docs/performance.md lists these as the actions that change a power state")
}

// The launcher's and the extension's bound on a listing's age are one.
func TestStatusCacheBound(t *testing.T) {
	assert.Equal(t, translate.MaxStatusCache, powercache.MaxAge)
}
