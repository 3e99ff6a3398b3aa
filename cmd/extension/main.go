// Command extension is the CloudStack Orchestrator extension that runs Instances as KubeVirt VirtualMachines.
//
// CloudStack runs it as `extension <action> <payload-file> <timeout-seconds>`, reads stdout (stderr merged into
// it) only after it exits, and treats a non-zero exit as failure. So it never reads stdin, writes exactly one
// JSON object to stdout and nothing to stderr, logs to a file, and answers before the timeout.
// `extension version` prints the build, so an operator can compare management servers; with no arguments at a
// terminal, or with --help, it prints a usage text for people.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/cmd/internal/logfile"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

// Exit codes: CloudStack only distinguishes zero from non-zero; 2 tells a human the call itself was malformed.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, time.Now()))
}

// run is the whole process: parse argv, read the payload, act, answer. It returns the exit code.
func run(args []string, stdout *os.File, start time.Time) int {
	out := newAnswerer(stdout)
	if code, ok := forPeople(args, stdout, isTerminal(stdout), out); ok {
		return code
	}
	if len(args) != 3 {
		return out.fail(exitUsage, fmt.Errorf("usage: extension <action> <payload-file> <timeout-seconds> (got %d arguments)", len(args)))
	}
	action, payloadPath := args[0], args[1]
	timeout, err := parseTimeout(args[2])
	if err != nil {
		return out.fail(exitUsage, err)
	}
	ctx, cancel := context.WithDeadline(context.Background(), start.Add(timeout-margin(timeout)))
	defer cancel()
	// If something ignores the context, answer anyway before CloudStack's SIGKILL, which would leave it with
	// no answer at all.
	watchdog := time.AfterFunc(time.Until(start.Add(timeout-margin(timeout)/2)), func() {
		msg := fmt.Sprintf("%s did not finish within CloudStack's %s timeout", action, timeout)
		if out.write(failure{Status: "error", Message: msg}) == nil {
			os.Exit(exitFailed)
		}
	})
	defer watchdog.Stop()

	payload, err := readPayload(payloadPath)
	if err != nil {
		logger(translate.DefaultLogFile).Error("payload unreadable", "action", action, "error", err)
		return out.fail(exitFailed, err)
	}
	log := logger(payload.Details().LogFile()).With("action", action, "instance", payload.InstanceName())
	answer, err := dispatch(ctx, action, payload, log, margin(timeout))
	var failedCheck checkFailed
	if errors.As(err, &failedCheck) {
		// The table is the answer; the exit code says something blocks Instances.
		_ = out.write(failedCheck.answer)
		return exitFailed
	}
	if err != nil {
		log.Error("failed", "error", err, "elapsed", time.Since(start))
		return out.fail(exitFailed, fmt.Errorf("%s: %w", action, err))
	}
	if err := out.write(answer); err != nil {
		log.Error("answer not written", "error", err)
		return out.fail(exitFailed, fmt.Errorf("%s: %w", action, err))
	}
	log.Info("done", "elapsed", time.Since(start))
	return exitOK
}

// forPeople answers what only a person runs (CloudStack always passes three arguments) and reports whether
// args was that. With no arguments the usage text goes only to a terminal: anything else gets the JSON error.
func forPeople(args []string, stdout io.Writer, terminal bool, out *answerer) (int, bool) {
	if len(args) == 0 && terminal {
		_, _ = io.WriteString(stdout, usage(catalog()))
		return exitUsage, true
	}
	if len(args) != 1 {
		return 0, false
	}
	switch args[0] {
	case "-h", "--help":
		_, _ = io.WriteString(stdout, usage(catalog()))
		return exitOK, true
	case "version":
		return respond(out, buildVersion()), true
	case "catalog": // for hack/register.sh, which registers the custom actions from it
		return respond(out, catalogAnswer{Status: "success", Actions: catalog()}), true
	}
	return 0, false
}

// respond writes v as the answer and returns the exit code.
func respond(out *answerer, v any) int {
	if err := out.write(v); err != nil {
		return exitFailed
	}
	return exitOK
}

// isTerminal says whether f is a terminal (a character device), where a person rather than CloudStack reads.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// parseTimeout reads CloudStack's timeout argument (whole seconds).
func parseTimeout(arg string) (time.Duration, error) {
	s, err := strconv.Atoi(arg)
	if err != nil || s <= 0 {
		return 0, fmt.Errorf("timeout %q is not a positive number of seconds", arg)
	}
	return time.Duration(s) * time.Second, nil
}

// margin is how long before CloudStack's timeout the extension stops working, to leave time for a rollback
// and the answer: a tenth of the timeout, at least a second and at most ten, never more than half.
func margin(timeout time.Duration) time.Duration {
	return min(max(timeout/10, time.Second), 10*time.Second, timeout/2)
}

// maxPayload is far above any payload CloudStack writes (a few KiB: the Instance, its NICs and details), and
// keeps a runaway file from costing the management server memory.
const maxPayload = 4 << 20

func readPayload(path string) (*translate.Payload, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading the payload file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPayload+1))
	if err != nil {
		return nil, fmt.Errorf("reading the payload file %s: %w", path, err)
	}
	if len(data) > maxPayload {
		return nil, fmt.Errorf("payload file %s is larger than %d MiB, far more than CloudStack writes: not a CloudStack payload", path, maxPayload>>20)
	}
	return translate.ParsePayload(data)
}

// logger writes diagnostics to path. An unwritable log file is never fatal: the answer matters more.
func logger(path string) *slog.Logger {
	var w io.Writer = io.Discard
	if f, err := logfile.Open(path); err == nil { // a symbolic link or a FIFO is refused, see logfile.Open
		w = f // closed by the process's exit: every call is a new process
	}
	return slog.New(slog.NewTextHandler(w, nil)).With("pid", os.Getpid())
}
