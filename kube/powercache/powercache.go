// Package powercache shares one listing of a CloudStack host's power states among the extension processes of a
// ping round.
//
// Before 4.22.1, CloudStack asks for power states with one `status` process per Instance, one after another. Each
// would otherwise open its own TLS connection and make its own requests; with a listing here, the first process
// of a round lists the namespace once and the others read one local file. Listings are kept in the management
// server's cache directory, one directory per host, and one is trusted only while all of these hold:
//
//   - its epoch is the management server's current epoch: every action that changes a power state, on any host,
//     writes a new epoch when it begins and when it ends, and a listing carries the epoch its writer read before
//     it listed. One epoch for all hosts, so that no difference between the details of an action's payload and a
//     status's, nor two hosts sharing a namespace, can leave a listing standing after an action;
//   - the local clock is between the time its listing began and its expiry, which is never later than the
//     reconciler's heartbeat vouched for the labels it was read from, nor more than MaxAge after it began;
//   - the directories and files are the extension's user's alone, and the epoch could be written: a listing that
//     no action could have made stale is not believed.
//
// docs/performance.md gives the argument; powercache_test.go and test/e2e test its edges.
package powercache

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Entry is one managed VirtualMachine in a listing. State is "" when the listing could not tell it (a label
// that is not current): that Instance's status reads its VM instead.
type Entry struct {
	Instance string // the CloudStack Instance's internal name (the VM's instance-name label)
	UUID     string // the VM's instance-uuid label
	State    string // the power state CloudStack is told
}

// Listing is a host's power states as one round of reads found them.
type Listing struct {
	Epoch   string    // the epoch, read before the reads began
	Taken   time.Time // local clock, before the reads began
	Until   time.Time // local clock: the listing is not trusted from then on
	LogFile string    // where a status answered from the listing logs, as the log_file detail resolved
	Entries []Entry
}

// MaxAge bounds how long after it was taken any listing is trusted, whatever it says (translate.MaxStatusCache
// is the same bound for the detail).
const MaxAge = time.Minute

// Dir is one host's directory, under the management server's root.
type Dir struct {
	root, path string
	now        func() time.Time
	// betweenReads runs after Lookup read the listing and before it reads the epoch: tests put an action there.
	betweenReads func()
}

const (
	listingFile = "listing"
	epochFile   = "epoch" // in the root: one for all hosts
	header      = "cloudstack-kubevirt power listing v1"
	// maxListing bounds what a reader loads: about 100 bytes a VM, so far above a host's VMs.
	maxListing = 64 << 20
	// clockTolerance: a listing taken more than this in the local clock's future means the clock went back.
	clockTolerance = time.Second
	// minRoom is the free space below which no listing is written: writing would fail, after the namespace was
	// listed for nothing.
	minRoom = 4 << 20
)

// DefaultRoot is the per-user cache directory of the management server's user ($XDG_CACHE_HOME or ~/.cache).
func DefaultRoot() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory for the power-state listing: %w", err)
	}
	return filepath.Join(base, "cloudstack-kubevirt", "power"), nil
}

// Open returns the directory of the host key under root, creating both (mode 0700) if needed. It refuses a
// directory that is a symbolic link, is not the current user's or that others may enter: a listing placed there
// by someone else would be believed.
func Open(root, key string) (*Dir, error) {
	dir := &Dir{root: root, path: filepath.Join(root, key), now: time.Now}
	// Every status call opens it: two system calls when both exist. The root's parents are the user's own
	// (~/.cache), and a directory no one else may write cannot have its entries replaced by anyone else.
	if privateDir(root) && privateDir(dir.path) {
		return dir, nil
	}
	if err := ensureRoot(root); err != nil {
		return nil, err
	}
	if err := ensureDir(dir.path); err != nil {
		return nil, err
	}
	return dir, nil
}

// Existing returns the directory of the host key under root when it exists, and nil when it does not: there is
// then no listing to read.
func Existing(root, key string) (*Dir, error) {
	if _, err := os.Lstat(filepath.Join(root, key)); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return Open(root, key)
}

func ensureRoot(root string) error {
	if err := os.MkdirAll(filepath.Dir(root), 0o700); err != nil {
		return fmt.Errorf("creating the cache directory %s: %w", filepath.Dir(root), err)
	}
	return ensureDir(root)
}

func ensureDir(dir string) error {
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("creating the cache directory %s: %w", dir, err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("reading the cache directory %s: %w", dir, err)
	}
	if err := private(fi, true); err != nil {
		return fmt.Errorf("cache directory %s %w", dir, err)
	}
	return nil
}

// String is the directory's path.
func (d *Dir) String() string { return d.path }

func privateDir(path string) bool {
	fi, err := os.Lstat(path)
	return err == nil && private(fi, true) == nil
}

// private checks that fi is a directory (or a regular file) of the current user that no one else may read,
// write or enter.
func private(fi fs.FileInfo, dir bool) error {
	switch {
	case dir && !fi.IsDir():
		return errors.New("is not a directory (a symbolic link is refused)")
	case !dir && !fi.Mode().IsRegular():
		return errors.New("is not a regular file")
	case fi.Mode().Perm()&0o077 != 0:
		return fmt.Errorf("is open to other users (mode %v): chmod go= it", fi.Mode().Perm())
	}
	return mine(fi)
}

// Epoch returns the current epoch, writing a first one if there is none (or only an unreadable one).
func (d *Dir) Epoch() (string, error) {
	epoch, err := readEpoch(d.root)
	if err == nil && epoch == "" {
		if err := writeEpoch(d.root); err != nil {
			return "", err
		}
		epoch, err = readEpoch(d.root)
	}
	if err != nil {
		return "", err
	}
	if epoch == "" {
		return "", errors.New("the power-state epoch could not be written")
	}
	return epoch, nil
}

// readEpoch returns the epoch under root, "" when there is none or it is not one (a crash can leave an empty
// file: writes are not synced).
func readEpoch(root string) (string, error) {
	data, err := readFile(filepath.Join(root, epochFile), 64)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	epoch := strings.TrimSpace(string(data))
	if _, err := hex.DecodeString(epoch); err != nil || len(epoch) != 32 {
		return "", nil
	}
	return epoch, nil
}

// Invalidate makes every listing of every host under d's root stale.
func (d *Dir) Invalidate() error { return Invalidate(d.root) }

// Invalidate writes a new epoch under root, so that no listing written before is trusted again. When the new
// epoch cannot be written (a full disk), it removes the epoch instead: without an epoch no listing is trusted.
// A root that does not exist holds no listing.
func Invalidate(root string) error {
	if _, err := os.Lstat(root); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	err := writeEpoch(root)
	if err == nil {
		return nil
	}
	if errRemove := os.Remove(filepath.Join(root, epochFile)); errRemove != nil && !errors.Is(errRemove, fs.ErrNotExist) {
		return fmt.Errorf("invalidating the power-state listings in %s: %w", root, errors.Join(err, errRemove))
	}
	return nil
}

func writeEpoch(root string) error {
	if !privateDir(root) {
		return fmt.Errorf("cache directory %s is missing or open to others", root)
	}
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	return writeFile(root, epochFile, []byte(hex.EncodeToString(b[:])+"\n"))
}

// Room says whether there is room to write a listing: a full or read-only file system would make the namespace
// be listed for nothing on every call.
func (d *Dir) Room() bool {
	free, ok := freeBytes(d.path)
	return ok && free >= minRoom
}

// Store writes l as the host's listing, atomically: a reader sees the old listing or the new one, whole.
func (d *Dir) Store(l Listing) error {
	var b bytes.Buffer
	if strings.ContainsAny(l.LogFile, "\r\n") {
		l.LogFile = ""
	}
	fmt.Fprintf(&b, "%s\n%s %d %d\n%s\n", header, l.Epoch, l.Taken.UnixNano(), l.Until.UnixNano(), l.LogFile)
	for _, e := range l.Entries {
		if !field(e.Instance) || !field(e.UUID) || (e.State != "" && !field(e.State)) {
			continue // never a managed VM's: label values have no spaces, but a listing must parse
		}
		state := e.State
		if state == "" {
			state = "-"
		}
		fmt.Fprintf(&b, "%s %s %s\n", e.Instance, e.UUID, state)
	}
	return writeFile(d.path, listingFile, b.Bytes())
}

// Result is what the host's listing says of an Instance.
type Result struct {
	// Trusted: there is a listing the rules above let a reader trust. When it does not name the Instance with
	// a state (Hit false), reading that one VM is the answer: listing the namespace again would find the same.
	Trusted bool
	Hit     bool
	Entry   Entry
	LogFile string
}

// Lookup reads the Instance's entry from the host's listing. The epoch is read after the listing, so an action
// that ended before Lookup reads the epoch is always seen.
func (d *Dir) Lookup(instance string) (Result, error) {
	data, err := readFile(filepath.Join(d.path, listingFile), maxListing)
	if errors.Is(err, fs.ErrNotExist) {
		return Result{}, nil
	}
	if err != nil {
		return Result{}, err
	}
	head, logFile, body, valid := parseHead(data, d.now())
	if !valid || !writable(d.root) {
		return Result{}, nil // a listing no action could have made stale is not believed
	}
	if d.betweenReads != nil {
		d.betweenReads()
	}
	epoch, err := readEpoch(d.root)
	if err != nil || epoch == "" || epoch != head {
		return Result{}, err
	}
	e, hit := find(body, instance)
	return Result{Trusted: true, Hit: hit, Entry: e, LogFile: logFile}, nil
}

// parseHead reads the listing's header and says whether its times hold at now; it returns the listing's epoch,
// its log file and the lines after the header.
func parseHead(data []byte, now time.Time) (epoch, logFile string, body []byte, valid bool) {
	first, rest, _ := bytes.Cut(data, []byte("\n"))
	second, rest, _ := bytes.Cut(rest, []byte("\n"))
	third, body, found := bytes.Cut(rest, []byte("\n"))
	fields := strings.Fields(string(second))
	if string(first) != header || len(fields) != 3 || fields[0] == "" || !found {
		return "", "", nil, false
	}
	taken, err1 := strconv.ParseInt(fields[1], 10, 64)
	until, err2 := strconv.ParseInt(fields[2], 10, 64)
	if err1 != nil || err2 != nil {
		return "", "", nil, false
	}
	takenAt, untilAt := time.Unix(0, taken), time.Unix(0, until)
	if untilAt.Sub(takenAt) > MaxAge || now.Before(takenAt.Add(-clockTolerance)) || !now.Before(untilAt) {
		return "", "", nil, false
	}
	return fields[0], string(third), body, true
}

// find returns the line of the Instance: one search of the whole body (10,000 VMs are 700 KB), not a loop over
// its lines.
func find(body []byte, instance string) (Entry, bool) {
	key := []byte(instance + " ")
	for at := 0; at < len(body); {
		i := bytes.Index(body[at:], key)
		if i < 0 {
			return Entry{}, false
		}
		start := at + i
		if start > 0 && body[start-1] != '\n' {
			at = start + 1 // inside another line
			continue
		}
		line, _, _ := bytes.Cut(body[start:], []byte("\n"))
		f := strings.Fields(string(line))
		if len(f) != 3 || f[2] == "-" {
			return Entry{}, false
		}
		return Entry{Instance: f[0], UUID: f[1], State: f[2]}, true
	}
	return Entry{}, false
}

func field(s string) bool { return s != "" && !strings.ContainsAny(s, " \t\r\n") }

// readFile returns the file's content, refusing a symbolic link, a file that is not the user's alone, and more
// than limit bytes.
func readFile(path string, limit int64) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|openFlags, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if err := private(fi, false); err != nil {
		return nil, fmt.Errorf("%s %w", f.Name(), err)
	}
	if fi.Size() > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", f.Name(), limit)
	}
	// Sized from the open file: a listing is replaced by a rename, never written in place.
	data := make([]byte, fi.Size())
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, fmt.Errorf("reading %s: %w", f.Name(), err)
	}
	return data, nil
}

// writeFile replaces dir/name atomically: a temporary file of mode 0600 in the same directory, renamed over it.
func writeFile(dir, name string, data []byte) error {
	tmp, err := os.CreateTemp(dir, "."+name+".*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(dir, name))
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("writing %s: %w", filepath.Join(dir, name), err)
	}
	return nil
}
