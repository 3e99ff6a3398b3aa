//go:build unix

package powercache

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// openFlags: never follow a symbolic link, and never block on a FIFO put in a file's place.
const openFlags = syscall.O_NOFOLLOW | syscall.O_NONBLOCK

// mine checks that fi belongs to the extension's user.
func mine(fi fs.FileInfo) error {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("belongs to uid %d, not to the extension's user (uid %d)", st.Uid, os.Geteuid())
	}
	return nil
}
