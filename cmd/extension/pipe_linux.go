package main

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// fitPipe grows the stdout pipe to hold n bytes. CloudStack waits for the process to exit before it reads, so
// an answer larger than the pipe (64 KiB by default) would block the process until CloudStack kills it. Linux
// lets an unprivileged process grow its pipe up to /proc/sys/fs/pipe-max-size (1 MiB by default); beyond
// that the answer cannot be delivered and fitPipe says how to allow it.
func fitPipe(f *os.File, n int) error {
	info, err := f.Stat()
	if err != nil || info.Mode()&os.ModeNamedPipe == 0 {
		return nil // a file or a terminal never blocks like a pipe
	}
	fd := int(f.Fd())
	size, err := unix.FcntlInt(uintptr(fd), unix.F_GETPIPE_SZ, 0)
	if err != nil || size >= n {
		return nil
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETPIPE_SZ, n); err != nil {
		return fmt.Errorf("the answer is %d bytes, more than a pipe may hold here (%d bytes; raise the sysctl fs.pipe-max-size to at least %d): %w", n, size, n, err)
	}
	return nil
}
