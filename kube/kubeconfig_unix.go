//go:build unix

package kube

import (
	"errors"
	"io/fs"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// openNoFollow opens path for reading, refusing a symbolic link. O_NONBLOCK keeps a FIFO from hanging the call
// until the check on the open file refuses it; it changes nothing for a regular file.
func openNoFollow(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
}

// isSymlinkRefused says whether err is O_NOFOLLOW's refusal of a symbolic link.
func isSymlinkRefused(err error) bool {
	return errors.Is(err, unix.ELOOP)
}

// fileOwner is the uid that owns the file described by info.
func fileOwner(info fs.FileInfo) (int, bool) {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}
