package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/cloudstacksim"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/fullfs"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

// The edges of the listing that `status` calls of one ping round share (kube/powercache; the argument is in
// docs/performance.md, "The ping round"). A forged heartbeat and forged labels stand in for the reconciler, so
// that no label moves unless the test moves it: what the listing says is then exactly what the test wrote.

// listingHost is a host of ns whose heartbeat is the Lease lease, with its own log and status_cache.
func listingHost(t *testing.T, ns, lease, cache string) (cloudstacksim.Host, string) {
	t.Helper()
	namespace(t, ns)
	h, logFile := hostWithLog(t, ns)
	h.Extension["reconciler_lease"] = systemNamespace + "/" + lease
	h.Extension["status_cache"] = cache
	return h, logFile
}

// listingSetup starts a test on a host of ns with two running Instances, under a forged heartbeat Lease named
// after ns that holds for a minute.
func listingSetup(t *testing.T, ns, cache string) (h cloudstacksim.Host, logFile, lease string, ins []cloudstacksim.Instance) {
	t.Helper()
	needsEnvtest(t)
	applyAllRBAC(t)
	lease = ns + "-heartbeat"
	h, logFile = listingHost(t, ns, lease, cache)
	forgeLease(t, lease, time.Now(), time.Minute)
	return h, logFile, lease, running(t, h, 2)
}

// lastListing is what the latest status did with the host's listing: "read", "written", or "" (the cluster
// answered without one).
func lastListing(t *testing.T, logFile string) string {
	t.Helper()
	line := lastStatusLine(t, logFile)
	if i := strings.Index(line, " listing="); i >= 0 {
		return strings.Fields(line[i+len(" listing="):])[0]
	}
	return ""
}

// lastStatusLine is the log line of the latest status answer.
func lastStatusLine(t *testing.T, logFile string) string {
	t.Helper()
	data, err := os.ReadFile(logFile)
	require.NoError(t, err)
	last := ""
	for _, line := range strings.Split(string(data), "\n") {
		if strings.Contains(line, "msg=status ") {
			last = line
		}
	}
	return last
}

// running creates n running Instances on h with labels a reconciler would write.
func running(t *testing.T, h cloudstacksim.Host, n int) []cloudstacksim.Instance {
	t.Helper()
	var out []cloudstacksim.Instance
	for range n {
		in := instance(map[string]string{"image": "quay.io/containerdisks/fedora:43"})
		requireSuccess(t, call(t, h, "create", in))
		forgeSettledLabel(t, h.Host["namespace"], vmName(in), translate.PowerOn)
		out = append(out, in)
	}
	return out
}

// forgeSettledLabel forges the label, and again should KubeVirt's controller change the spec after: a label of
// an older generation is never trusted.
func forgeSettledLabel(t *testing.T, ns, name string, state translate.PowerState) {
	t.Helper()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		vm, err := getVM(t.Context(), ns, name)
		require.NoError(c, err)
		if vm.Labels[translate.LabelPowerState] != string(state) || vm.Annotations[translate.AnnotationPowerStateGeneration] != strconv.FormatInt(vm.Generation, 10) {
			forgeLabel(t, ns, name, state)
		}
		time.Sleep(100 * time.Millisecond)
		vm, err = getVM(t.Context(), ns, name)
		require.NoError(c, err)
		assert.Equal(c, strconv.FormatInt(vm.Generation, 10), vm.Annotations[translate.AnnotationPowerStateGeneration])
	}, 20*time.Second, 50*time.Millisecond)
}

// listingFiles is every listing of the suite's management server, with its content.
func listingFiles(t *testing.T) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(s.home, ".cache", "cloudstack-kubevirt", "power", "*", "listing"))
	require.NoError(t, err)
	out := map[string]string{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		out[f] = string(data)
	}
	return out
}

func dumpListings(t *testing.T, home string) {
	files, _ := filepath.Glob(filepath.Join(home, ".cache", "cloudstack-kubevirt", "power", "*", "*"))
	for _, f := range files {
		data, _ := os.ReadFile(f)
		t.Logf("%s:\n%s", f, data)
	}
}

func status(t *testing.T, h cloudstacksim.Host, in cloudstacksim.Instance) string {
	t.Helper()
	return cloudstacksim.ParseStatus(call(t, h, "status", in))
}

// Every action that changes a power state is seen by the very next status of that Instance, although a listing
// taken before it says otherwise and would still be within its age.
func TestListingActionSeenByTheNextStatus(t *testing.T) {
	h, logFile, lease, ins := listingSetup(t, "e2e-listing", "1m")
	other, in := ins[0], ins[1]

	steps := []struct {
		action string
		want   string
	}{
		{"stop", cloudstacksim.PowerOff},
		{"start", cloudstacksim.PowerOn},
		{"reboot", cloudstacksim.PowerOn},
		{"delete", cloudstacksim.PowerOff},
	}
	for _, st := range steps {
		t.Run(st.action, func(t *testing.T) {
			before, label := cloudstacksim.PowerOn, translate.PowerOn
			if st.action == "start" {
				before, label = cloudstacksim.PowerOff, translate.PowerOff
			}
			forgeLease(t, lease, time.Now(), time.Minute)
			forgeSettledLabel(t, h.Host["namespace"], vmName(in), label)
			// The round before the action: one listing, taken after the forged label (as one would be once the
			// last round's expired), and the Instance's status read from it.
			require.NoError(t, os.RemoveAll(filepath.Join(s.home, ".cache")))
			assert.Equal(t, cloudstacksim.PowerOn, status(t, h, other))
			assert.Equal(t, "written", lastListing(t, logFile))
			assert.Equal(t, before, status(t, h, in))
			assert.Contains(t, lastStatusLine(t, logFile), " by=launcher", "the extension was started for a status the launcher can answer")
			if !assert.Equal(t, "read", lastListing(t, logFile), "the round's second status did not read the listing") {
				dumpListings(t, s.home)
				vm, err := getVM(t.Context(), h.Host["namespace"], vmName(in))
				require.NoError(t, err)
				t.Logf("VM generation %d observed %d labels %v annotations %v", vm.Generation, vm.Status.ObservedGeneration, vm.Labels, vm.Annotations)
			}

			requireSuccess(t, call(t, h, st.action, in))
			assert.Equal(t, st.want, status(t, h, in))
			assert.NotEqual(t, "read", lastListing(t, logFile), "the status after %s read a listing from before it", st.action)
		})
	}
}

// A listing is trusted for status_cache at most, and never once the heartbeat that vouched for its labels has
// lapsed: an out-of-band change (here, a label the test rewrites) is seen within that bound.
func TestListingAge(t *testing.T) {
	h, logFile, lease, ins := listingSetup(t, "e2e-listing-age", "3s")
	ns := h.Host["namespace"]

	t.Run("status_cache", func(t *testing.T) {
		forgeLease(t, lease, time.Now(), time.Minute)
		taken := time.Now()
		assert.Equal(t, cloudstacksim.PowerOn, status(t, h, ins[0]))
		assert.Equal(t, "written", lastListing(t, logFile))
		forgeLabel(t, ns, vmName(ins[1]), translate.PowerOff)
		if got := status(t, h, ins[1]); time.Since(taken) < 3*time.Second {
			assert.Equal(t, cloudstacksim.PowerOn, got, "within status_cache the listing answers")
			assert.Equal(t, "read", lastListing(t, logFile))
		}
		// The extension took its listing a little after taken.
		time.Sleep(time.Until(taken.Add(3*time.Second + 500*time.Millisecond)))
		assert.Equal(t, cloudstacksim.PowerOff, status(t, h, ins[1]), "a listing older than status_cache answered")
		assert.Equal(t, "written", lastListing(t, logFile))
		forgeLabel(t, ns, vmName(ins[1]), translate.PowerOn)
	})

	t.Run("the heartbeat bounds it", func(t *testing.T) {
		h.Extension["status_cache"] = "1m"
		// Another Lease, so another listing than the last subtest's.
		h.Extension["reconciler_lease"] = systemNamespace + "/" + lease + "-short"
		// Renewed long enough ago that it holds for at most three more seconds.
		renewed := time.Now().Add(-7 * time.Second)
		forgeLease(t, lease+"-short", renewed, 10*time.Second)
		assert.Equal(t, cloudstacksim.PowerOn, status(t, h, ins[0]))
		assert.Equal(t, "written", lastListing(t, logFile))
		time.Sleep(time.Until(renewed.Add(10*time.Second + 200*time.Millisecond)))
		forgeLabel(t, ns, vmName(ins[1]), translate.PowerOff)
		assert.Equal(t, cloudstacksim.PowerOn, status(t, h, ins[1]), "the objects say the VM runs; the listing outlived the heartbeat")
		assert.Equal(t, "", lastListing(t, logFile))
		assert.Equal(t, "objects", lastSource(t, logFile))
	})
}

// Two hosts never share a listing, and an action on either makes both stale.
func TestListingPerHost(t *testing.T) {
	needsEnvtest(t)
	applyAllRBAC(t)
	const lease = "e2e-listing-hosts"
	h1, log1 := listingHost(t, "e2e-listing-host1", lease, "1m")
	h2, log2 := listingHost(t, "e2e-listing-host2", lease, "1m")
	forgeLease(t, lease, time.Now(), time.Minute)
	a, b := running(t, h1, 2), running(t, h2, 2)

	assert.Equal(t, cloudstacksim.PowerOn, status(t, h1, a[0]))
	assert.Equal(t, "written", lastListing(t, log1))
	assert.Equal(t, cloudstacksim.PowerOn, status(t, h2, b[0]))
	assert.Equal(t, "written", lastListing(t, log2), "host 2 read host 1's listing")
	before := listingFiles(t)
	assert.Equal(t, cloudstacksim.PowerOff, status(t, h2, a[1]),
		"host 2 answered for host 1's Instance from host 1's listing") // host 2's namespace has no such VM
	assert.Equal(t, before, listingFiles(t), "listed the namespace again for an Instance a trusted listing does not hold")
	assert.Equal(t, cloudstacksim.PowerOn, status(t, h2, b[1]))
	assert.Equal(t, "read", lastListing(t, log2))
	// An action through one host makes every listing of the management server stale: its payload could name the
	// host with other details than a status's, and two hosts may share a namespace.
	requireSuccess(t, call(t, h1, "stop", a[1]))
	assert.Equal(t, cloudstacksim.PowerOn, status(t, h2, b[1]))
	assert.Equal(t, "written", lastListing(t, log2), "a listing from before an action on another host was read")
}

// Each management server keeps its own listings. CloudStack runs every command of a host, pings included, on
// the management server that owns it, so a listing on another is at most status_cache old when ownership comes
// back to it; after that it is never read.
func TestListingPerManagementServer(t *testing.T) {
	h, logFile, _, ins := listingSetup(t, "e2e-listing-ms", "2s")
	ms1 := provisioner()
	ms2 := provisioner()
	ms2.Home = filepath.Join(t.TempDir(), "management-2")

	taken := time.Now()
	assert.Equal(t, cloudstacksim.PowerOn, cloudstacksim.ParseStatus(callOn(t, ms2, h, "status", ins[0])))
	assert.Equal(t, "written", lastListing(t, logFile))
	// The host moves to ms1, which stops the Instance: its own next status sees it.
	requireSuccess(t, callOn(t, ms1, h, "stop", ins[1]))
	assert.Equal(t, cloudstacksim.PowerOff, cloudstacksim.ParseStatus(callOn(t, ms1, h, "status", ins[1])))
	// Back on ms2 after status_cache: its listing from before is not read.
	time.Sleep(time.Until(taken.Add(2*time.Second + 500*time.Millisecond)))
	assert.Equal(t, cloudstacksim.PowerOff, cloudstacksim.ParseStatus(callOn(t, ms2, h, "status", ins[1])))
	assert.NotEqual(t, "read", lastListing(t, logFile))
}

// With the management server's disk full, no listing is written and every answer comes from the cluster;
// actions still leave no listing anyone trusts.
func TestListingOnAFullDisk(t *testing.T) {
	h, logFile, _, ins := listingSetup(t, "e2e-listing-full", "1m")
	ms := provisioner()
	ms.Home = fullfs.Mount(t, "8m")

	// A listing written while there was room, then the disk fills.
	assert.Equal(t, cloudstacksim.PowerOn, cloudstacksim.ParseStatus(callOn(t, ms, h, "status", ins[0])))
	assert.Equal(t, "written", lastListing(t, logFile))
	fullfs.Fill(t, filepath.Join(ms.Home, "filler"))
	epochFile := filepath.Join(ms.Home, ".cache", "cloudstack-kubevirt", "power", "epoch")
	before, err := os.ReadFile(epochFile)
	require.NoError(t, err)

	// The stop cannot write a new epoch: it removes the epoch instead (its end may write one in the room that
	// frees), and no listing is trusted without the epoch it was taken under.
	requireSuccess(t, callOn(t, ms, h, "stop", ins[1]))
	after, err := os.ReadFile(epochFile)
	if err == nil {
		assert.NotEqual(t, string(before), string(after), "the epoch from before the stop is left")
	} else {
		assert.ErrorIs(t, err, os.ErrNotExist)
	}

	// Every status now reads the cluster, and none lists the namespace for a listing it could not write.
	assert.Equal(t, cloudstacksim.PowerOff, cloudstacksim.ParseStatus(callOn(t, ms, h, "status", ins[1])))
	assert.Equal(t, cloudstacksim.PowerOn, cloudstacksim.ParseStatus(callOn(t, ms, h, "status", ins[0])))
	assert.Equal(t, "", lastListing(t, logFile))
	log, err := os.ReadFile(logFile)
	require.NoError(t, err)
	assert.Contains(t, string(log), "its file system is full or read-only")
}
