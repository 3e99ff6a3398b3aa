//go:build !unix

package kube

import (
	"io/fs"
	"os"
)

// openNoFollow opens path for reading. The extension runs on Linux management servers; elsewhere there is no
// O_NOFOLLOW, and the check on the open file still refuses anything but a regular file.
func openNoFollow(path string) (*os.File, error) {
	return os.Open(path)
}

func isSymlinkRefused(error) bool { return false }

// fileOwner knows no owner outside Unix.
func fileOwner(fs.FileInfo) (int, bool) { return 0, false }
