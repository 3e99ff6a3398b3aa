//go:build unix

// Package logfile opens the extension's diagnostics log, for the extension and its launcher.
package logfile

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Open opens the diagnostics log for appending, creating it if needed. The extension runs as the
// management server's user, so a log path that leads elsewhere would make it append to a file of that user's
// choosing: a symbolic link is refused (O_NOFOLLOW), and so is anything but a regular file, checked on the open
// descriptor so that nothing can be swapped in between. O_NONBLOCK keeps a FIFO without a reader from hanging the
// call; it changes nothing for a regular file.
func Open(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0o640)
	if errors.Is(err, unix.ELOOP) {
		return nil, fmt.Errorf("log file %s is a symbolic link: name the file itself", path)
	}
	if err != nil {
		return nil, fmt.Errorf("opening the log file: %w", err)
	}
	info, err := f.Stat()
	if err != nil {
		return nil, errors.Join(fmt.Errorf("log file %s: %w", path, err), f.Close())
	}
	if !info.Mode().IsRegular() {
		err := fmt.Errorf("log file %s is not a regular file (%s): name a regular file", path, info.Mode().Type())
		return nil, errors.Join(err, f.Close())
	}
	return f, nil
}
