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
	require.NoError(t, d.Store(Listing{Epoch: epoch, Taken: taken, Until: taken.Add(ttl), Entries: []Entry{
		{Instance: "i-2-10-VM", UUID: "uuid-10", State: "poweron"},
		{Instance: "i-2-1-VM", UUID: "uuid-1", State: "poweroff"},
		{Instance: "i-2-11-VM", UUID: "uuid-11"}, // label not current
		{Instance: "bad name", UUID: "uuid-x", State: "poweron"},
	}}))
}

func TestLookup(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name   string
		change func(t *testing.T, d *Dir)
		vm     string
		want   Entry
		hit    bool
	}{
		{name: "hit", vm: "i-2-1-VM", want: Entry{Instance: "i-2-1-VM", UUID: "uuid-1", State: "poweroff"}, hit: true},
		{name: "a name that is a prefix of another's is its own line", vm: "i-2-10-VM",
			want: Entry{Instance: "i-2-10-VM", UUID: "uuid-10", State: "poweron"}, hit: true},
		{name: "state the listing could not tell", vm: "i-2-11-VM", want: Entry{Instance: "i-2-11-VM", UUID: "uuid-11"}, hit: true},
		{name: "not in the listing", vm: "i-2-12-VM"},
		{name: "a line with a space was never written", vm: "bad"},
		{name: "a name that ends another's is not it", vm: "1-VM"},
		{name: "a UUID is not a name", vm: "uuid-1"},
		{name: "an action since", vm: "i-2-1-VM", change: func(t *testing.T, d *Dir) { require.NoError(t, d.Invalidate()) }},
		{name: "an action between reading the listing and the epoch", vm: "i-2-1-VM", change: func(t *testing.T, d *Dir) {
			d.betweenReads = func() { require.NoError(t, d.Invalidate()) }
		}},
		{name: "expired", vm: "i-2-1-VM", change: func(_ *testing.T, d *Dir) { d.now = func() time.Time { return now.Add(10 * time.Second) } }},
		{name: "the clock went back", vm: "i-2-1-VM", change: func(_ *testing.T, d *Dir) { d.now = func() time.Time { return now.Add(-2 * time.Second) } }},
		{name: "within the clock tolerance", vm: "i-2-1-VM", change: func(_ *testing.T, d *Dir) {
			d.now = func() time.Time { return now.Add(-500 * time.Millisecond) }
		}, want: Entry{Instance: "i-2-1-VM", UUID: "uuid-1", State: "poweroff"}, hit: true},
		{name: "epoch removed", vm: "i-2-1-VM", change: func(t *testing.T, d *Dir) {
			require.NoError(t, os.Remove(filepath.Join(d.path, epochFile)))
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
			got, _, hit, err := d.Lookup(tt.vm)
			require.NoError(t, err)
			assert.Equal(t, tt.hit, hit)
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
	_, _, hit, err := d.Lookup("i-2-1-VM")
	require.NoError(t, err)
	assert.False(t, hit)
}

func TestHostsDoNotShare(t *testing.T) {
	root := newRoot(t)
	a, err := Open(root, hostA.HostKey())
	require.NoError(t, err)
	b, err := Open(root, hostB.HostKey())
	require.NoError(t, err)
	store(t, a, time.Now(), time.Minute)
	_, _, hit, err := b.Lookup("i-2-1-VM")
	require.NoError(t, err)
	assert.False(t, hit, "host b read host a's listing")
	require.NoError(t, b.Invalidate())
	_, _, hit, err = a.Lookup("i-2-1-VM")
	require.NoError(t, err)
	assert.True(t, hit, "an action on host b invalidated host a's listing")
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
	for _, name := range []string{d.path, filepath.Join(d.path, listingFile), filepath.Join(d.path, epochFile)} {
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
			_, _, hit, err := d.Lookup("i-2-1-VM")
			assert.False(t, hit)
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
	require.NoError(t, d.Invalidate(), "the listing could not be removed")
	_, _, hit, err := d.Lookup("i-2-1-VM")
	require.NoError(t, err)
	assert.False(t, hit, "a listing older than the action was trusted")
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
