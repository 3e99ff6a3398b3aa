package powercache

import "golang.org/x/sys/unix"

// writable says whether a new epoch could be written in dir: a listing on a file system that went read-only,
// or in a directory the user may no longer write, could not have been made stale by an action.
func writable(dir string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil || st.Flags&unix.ST_RDONLY != 0 {
		return false
	}
	return unix.Access(dir, unix.W_OK) == nil
}

// freeBytes is the room left for the user in dir's file system.
func freeBytes(dir string) (uint64, bool) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil || st.Flags&unix.ST_RDONLY != 0 {
		return 0, false
	}
	return st.Bavail * uint64(st.Bsize), true
}
