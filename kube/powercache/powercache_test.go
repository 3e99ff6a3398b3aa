package powercache

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/fullfs"
)

func openDir(t *testing.T, root string) *Dir {
	t.Helper()
	d, err := Open(root, hostA.HostKey())
	require.NoError(t, err)
	return d
}

// hostA and hostB are two CloudStack hosts of one cluster, in two namespaces.
var (
	hostA = StatusRequest{Details: [3]map[string]string{{"namespace": "tenant-a"}, nil, {"kubeconfig": "/etc/cloudstack/kubevirt/kubeconfig"}}}
	hostB = StatusRequest{Details: [3]map[string]string{{"namespace": "tenant-b"}, nil, {"kubeconfig": "/etc/cloudstack/kubevirt/kubeconfig"}}}
)

// newRoot is where a management server's cache directory would be.
func newRoot(t *testing.T) string { return filepath.Join(t.TempDir(), "power") }

// store writes a listing of two VMs, taken now and trusted for ttl, under the current epoch.
func store(t *testing.T, d *Dir, taken time.Time, ttl time.Duration) {
	t.Helper()
	epoch, err := d.Epoch()
	require.NoError(t, err)
	require.NoError(t, d.Store(Listing{Epoch: epoch, Taken: taken, Until: taken.Add(ttl), LogFile: "/var/log/x.log", Entries: []Entry{
		{Instance: "i-2-10-VM", UUID: "uuid-10", State: "poweron"},
		{Instance: "i-2-1-VM", UUID: "uuid-1", State: "poweroff"},
		{Instance: "i-2-11-VM", UUID: "uuid-11"}, // label not current
		{Instance: "bad name", UUID: "uuid-x", State: "poweron"},
	}}))
}

func TestLookup(t *testing.T) {
	now := time.Now()
	hit := func(e Entry) Result { return Result{Trusted: true, Hit: true, Entry: e, LogFile: "/var/log/x.log"} }
	miss := Result{Trusted: true, LogFile: "/var/log/x.log"} // a listing to trust, without this Instance
	tests := []struct {
		name   string
		change func(t *testing.T, d *Dir)
		vm     string
		want   Result
	}{
		{name: "hit", vm: "i-2-1-VM", want: hit(Entry{Instance: "i-2-1-VM", UUID: "uuid-1", State: "poweroff"})},
		{name: "a name that is a prefix of another's is its own line", vm: "i-2-10-VM",
			want: hit(Entry{Instance: "i-2-10-VM", UUID: "uuid-10", State: "poweron"})},
		{name: "state the listing could not tell", vm: "i-2-11-VM", want: miss},
		{name: "not in the listing", vm: "i-2-12-VM", want: miss},
		{name: "a line with a space was never written", vm: "bad", want: miss},
		{name: "a name that ends another's is not it", vm: "1-VM", want: miss},
		{name: "a UUID is not a name", vm: "uuid-1", want: miss},
		{name: "an action since", vm: "i-2-1-VM", change: func(t *testing.T, d *Dir) { require.NoError(t, d.Invalidate()) }},
		{name: "an action between reading the listing and the epoch", vm: "i-2-1-VM", change: func(t *testing.T, d *Dir) {
			d.betweenReads = func() { require.NoError(t, d.Invalidate()) }
		}},
		{name: "expired", vm: "i-2-1-VM", change: func(_ *testing.T, d *Dir) { d.now = func() time.Time { return now.Add(10 * time.Second) } }},
		{name: "the clock went back", vm: "i-2-1-VM", change: func(_ *testing.T, d *Dir) { d.now = func() time.Time { return now.Add(-2 * time.Second) } }},
		{name: "within the clock tolerance", vm: "i-2-1-VM", change: func(_ *testing.T, d *Dir) {
			d.now = func() time.Time { return now.Add(-500 * time.Millisecond) }
		}, want: hit(Entry{Instance: "i-2-1-VM", UUID: "uuid-1", State: "poweroff"})},
		{name: "epoch removed", vm: "i-2-1-VM", change: func(t *testing.T, d *Dir) {
			require.NoError(t, os.Remove(filepath.Join(d.root, epochFile)))
		}},
		{name: "an empty epoch, as a crash can leave", vm: "i-2-1-VM", change: func(t *testing.T, d *Dir) {
			require.NoError(t, os.WriteFile(filepath.Join(d.root, epochFile), nil, 0o600))
		}},
		{name: "a listing claiming to last longer than MaxAge", vm: "i-2-1-VM", change: func(t *testing.T, d *Dir) {
			epoch, err := d.Epoch()
			require.NoError(t, err)
			require.NoError(t, d.Store(Listing{Epoch: epoch, Taken: now, Until: now.Add(MaxAge + time.Second),
				Entries: []Entry{{Instance: "i-2-1-VM", UUID: "uuid-1", State: "poweroff"}}}))
		}},
		{name: "listing removed", vm: "i-2-1-VM", change: func(t *testing.T, d *Dir) {
			require.NoError(t, os.Remove(filepath.Join(d.path, listingFile)))
		}},
		{name: "a listing of another format", vm: "i-2-1-VM", change: func(t *testing.T, d *Dir) {
			rewrite(t, d, func(s string) string { return strings.Replace(s, " v1\n", " v0\n", 1) })
		}},
		{name: "a listing without times", vm: "i-2-1-VM", change: func(t *testing.T, d *Dir) {
			rewrite(t, d, func(s string) string {
				first, rest, _ := strings.Cut(s, "\n")
				_, rest, _ = strings.Cut(rest, "\n")
				return first + "\n" + rest
			})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := openDir(t, newRoot(t))
			d.now = func() time.Time { return now }
			store(t, d, now, 5*time.Second)
			if tt.change != nil {
				tt.change(t, d)
			}
			got, err := d.Lookup(tt.vm)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func rewrite(t *testing.T, d *Dir, edit func(string) string) {
	t.Helper()
	path := filepath.Join(d.path, listingFile)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, []byte(edit(string(data))), 0o600))
}

// A listing written with an epoch an action replaced while the reads were under way is never trusted: its writer
// read the epoch before it listed.
func TestListingOfAnEpochReplacedDuringTheReads(t *testing.T) {
	d := openDir(t, newRoot(t))
	epoch, err := d.Epoch()
	require.NoError(t, err)
	require.NoError(t, d.Invalidate()) // the action, while the writer was listing
	require.NoError(t, d.Store(Listing{Epoch: epoch, Taken: time.Now(), Until: time.Now().Add(time.Minute),
		Entries: []Entry{{Instance: "i-2-1-VM", UUID: "uuid-1", State: "poweron"}}}))
	res, err := d.Lookup("i-2-1-VM")
	require.NoError(t, err)
	assert.False(t, res.Trusted)
}

// Hosts read their own listings, and any action makes every listing of the management server stale: an action's
// payload could name its host with other details than a status's, or two hosts could share a namespace.
func TestHosts(t *testing.T) {
	root := newRoot(t)
	a, err := Open(root, hostA.HostKey())
	require.NoError(t, err)
	b, err := Open(root, hostB.HostKey())
	require.NoError(t, err)
	store(t, a, time.Now(), time.Minute)
	res, err := b.Lookup("i-2-1-VM")
	require.NoError(t, err)
	assert.False(t, res.Trusted, "host b read host a's listing")
	res, err = a.Lookup("i-2-1-VM")
	require.NoError(t, err)
	assert.True(t, res.Hit)
	require.NoError(t, Invalidate(root)) // an action, through whichever host
	res, err = a.Lookup("i-2-1-VM")
	require.NoError(t, err)
	assert.False(t, res.Trusted, "an action left a listing standing")
	ambiguous := []StatusRequest{
		{Details: [3]map[string]string{{"a": "bc"}}},
		{Details: [3]map[string]string{{"ab": "c"}}},
		{Details: [3]map[string]string{nil, {"a": "bc"}}},
	}
	assert.NotEqual(t, ambiguous[0].HostKey(), ambiguous[1].HostKey())
	assert.NotEqual(t, ambiguous[0].HostKey(), ambiguous[2].HostKey())
	same := StatusRequest{Instance: "i-2-9-VM", Details: hostA.Details}
	assert.Equal(t, hostA.HostKey(), same.HostKey(), "an Instance of the host has the host's key")
}

func TestFilesArePrivate(t *testing.T) {
	d := openDir(t, newRoot(t))
	store(t, d, time.Now(), time.Minute)
	for _, name := range []string{d.path, filepath.Join(d.path, listingFile), filepath.Join(d.root, epochFile)} {
		fi, err := os.Stat(name)
		require.NoError(t, err)
		assert.Zero(t, fi.Mode().Perm()&0o077, "%s is open to others: %v", name, fi.Mode())
	}
}

func TestRefusesWhatOthersCouldPlant(t *testing.T) {
	tests := []struct {
		name    string
		plant   func(t *testing.T, root string, d *Dir)
		openErr string
		readErr string
	}{
		{name: "a host directory others may enter", plant: func(t *testing.T, root string, d *Dir) {
			require.NoError(t, os.Chmod(d.path, 0o755))
		}, openErr: "is open to other users"},
		{name: "a root others may write", plant: func(t *testing.T, root string, d *Dir) {
			require.NoError(t, os.Chmod(root, 0o777))
		}, openErr: "is open to other users"},
		{name: "a host directory that is a symbolic link", plant: func(t *testing.T, root string, d *Dir) {
			elsewhere := t.TempDir()
			require.NoError(t, os.RemoveAll(d.path))
			require.NoError(t, os.Symlink(elsewhere, d.path))
		}, openErr: "is not a directory"},
		{name: "a listing others may write", plant: func(t *testing.T, root string, d *Dir) {
			require.NoError(t, os.Chmod(filepath.Join(d.path, listingFile), 0o666))
		}, readErr: "is open to other users"},
		{name: "a listing that is a symbolic link", plant: func(t *testing.T, root string, d *Dir) {
			other := filepath.Join(t.TempDir(), "listing")
			data, err := os.ReadFile(filepath.Join(d.path, listingFile))
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(other, data, 0o600))
			require.NoError(t, os.Remove(filepath.Join(d.path, listingFile)))
			require.NoError(t, os.Symlink(other, filepath.Join(d.path, listingFile)))
		}, readErr: "symbolic link"},
		{name: "a FIFO in the listing's place", plant: func(t *testing.T, root string, d *Dir) {
			require.NoError(t, os.Remove(filepath.Join(d.path, listingFile)))
			require.NoError(t, exec.Command("mkfifo", "-m", "600", filepath.Join(d.path, listingFile)).Run())
		}, readErr: "is not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := newRoot(t)
			d := openDir(t, root)
			store(t, d, time.Now(), time.Minute)
			tt.plant(t, root, d)
			_, err := Open(root, filepath.Base(d.path))
			if tt.openErr != "" {
				require.ErrorContains(t, err, tt.openErr)
				return
			}
			require.NoError(t, err)
			res, err := d.Lookup("i-2-1-VM")
			assert.False(t, res.Trusted)
			require.Error(t, err)
			assert.Contains(t, strings.ReplaceAll(err.Error(), "too many levels of symbolic links", "symbolic link"), tt.readErr)
		})
	}
}

// On a full disk no new epoch can be written: an action must still leave no listing anyone trusts.
func TestFullDisk(t *testing.T) {
	root := fullDisk(t)
	d := openDir(t, root)
	_, err := d.Epoch()
	require.Error(t, err, "an epoch was written on a full disk")
	require.Error(t, d.Store(Listing{Epoch: "e", Taken: time.Now(), Until: time.Now().Add(time.Minute)}))
	entries, err := os.ReadDir(d.path)
	require.NoError(t, err)
	assert.Empty(t, entries, "a failed write left a temporary file")
}

func TestFullDiskInvalidates(t *testing.T) {
	root := fullDisk(t)
	free := filepath.Join(filepath.Dir(root), "filler")
	require.NoError(t, os.Remove(free)) // room for one listing
	d := openDir(t, root)
	store(t, d, time.Now(), time.Minute)
	fullfs.Fill(t, free)
	assert.False(t, d.Room(), "a full disk has room for a listing")
	require.NoError(t, d.Invalidate(), "the epoch could not be removed")
	res, err := d.Lookup("i-2-1-VM")
	require.NoError(t, err)
	assert.False(t, res.Trusted, "a listing older than the action was trusted")
}

// A file system that went read-only keeps its listings, but no action could make them stale: none is believed.
func TestReadOnly(t *testing.T) {
	dir := fullfs.Mount(t, "8m")
	d := openDir(t, filepath.Join(dir, "power"))
	assert.True(t, d.Room())
	store(t, d, time.Now(), time.Minute)
	res, err := d.Lookup("i-2-1-VM")
	require.NoError(t, err)
	require.True(t, res.Hit)
	fullfs.ReadOnly(t, dir)
	assert.Error(t, d.Invalidate(), "an epoch was written on a read-only file system")
	assert.False(t, d.Room())
	res, err = d.Lookup("i-2-1-VM")
	require.NoError(t, err)
	assert.False(t, res.Trusted, "a listing no action could replace was trusted")
}

// fullDisk returns a cache root on a small file system that is full.
func fullDisk(t *testing.T) string {
	t.Helper()
	dir := fullfs.Mount(t, "128k")
	root := filepath.Join(dir, "power")
	openDir(t, root) // the directories take no blocks on tmpfs
	fullfs.Fill(t, filepath.Join(dir, "filler"))
	return root
}
