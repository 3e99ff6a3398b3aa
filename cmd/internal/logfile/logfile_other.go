//go:build !unix

package logfile

import (
	"errors"
	"fmt"
	"os"
)

// Open opens the diagnostics log for appending. The extension runs on Linux management servers; this
// is for builds elsewhere, which have no O_NOFOLLOW and check only that the file opened is a regular one.
func Open(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("opening the log file: %w", err)
	}
	info, err := f.Stat()
	if err == nil && !info.Mode().IsRegular() {
		err = fmt.Errorf("log file %s is not a regular file (%s)", path, info.Mode().Type())
	}
	if err != nil {
		return nil, errors.Join(err, f.Close())
	}
	return f, nil
}
