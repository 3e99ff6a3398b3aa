// Package cloudstacksim is a test double for CloudStack's management server as an Orchestrator extension sees
// it: it runs the executable exactly as ExternalPathPayloadProvisioner does and parses the answers exactly as
// its Java code does. It is for tests, the demo and the e2e suite; it is not CloudStack.
package cloudstacksim

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Provisioner runs an extension executable the way CloudStack's ExternalPathPayloadProvisioner does.
type Provisioner struct {
	// Executable is the extension's path; CloudStack runs its absolute, normalised form.
	Executable string
	// PayloadDir is where payload files are written (CloudStack: /var/lib/cloudstack/management/extensions/<name>).
	PayloadDir string
	// Home is the management server user's home directory, where the extension keeps its cache: the cloud user's
	// is /var/lib/cloudstack/management (debian/cloudstack-management.postinst, apache/cloudstack @a9b1d1d7).
	// The process otherwise inherits the management server's environment: executeExternalCommand never touches
	// ProcessBuilder's environment(). Empty: the test's own environment.
	Home string
}

// Result is what CloudStack learns from one call.
type Result struct {
	Action   string
	ExitCode int
	// Output is stdout and stderr merged and trimmed, read after the process exited.
	Output   string
	TimedOut bool
	Elapsed  time.Duration
}

// Succeeded is CloudStack's verdict: exit code 0 within the timeout.
func (r Result) Succeeded() bool { return !r.TimedOut && r.ExitCode == 0 }

// Details is the text CloudStack keeps for the call: the output, or for a failure the "Exit code: N, Output: ..."
// message the admin sees in the job's error.
func (r Result) Details() string {
	switch {
	case r.TimedOut:
		return "Timeout"
	case r.ExitCode != 0:
		return fmt.Sprintf("Exit code: %d, Output: %s", r.ExitCode, r.Output)
	default:
		return r.Output
	}
}

// Run reproduces executeExternalCommand (ExternalPathPayloadProvisioner.java, apache/cloudstack @0337e341): it
// writes the payload as Gson would, runs `<executable> <action> <payload> <timeout>`, kills the process at
// the timeout (destroyForcibly: SIGKILL) and reads what the pipe holds once the process has exited.
func (p *Provisioner) Run(ctx context.Context, action string, payload any, timeout time.Duration) (Result, error) {
	exe, err := filepath.Abs(p.Executable)
	if err != nil {
		return Result{}, err
	}
	file, err := p.writePayload(payload)
	if err != nil {
		return Result{}, err
	}
	secs := int(timeout / time.Second)
	res, err := runMerged(ctx, exe, []string{action, file, strconv.Itoa(secs)}, p.environment(), time.Duration(secs)*time.Second)
	res.Action = action
	// CloudStack deletes the payload only after a successful status (deleteExtensionPayloadFile, TRIVIAL_ACTIONS).
	if err == nil && action == "status" && res.Succeeded() {
		_ = os.Remove(file)
	}
	return res, err
}

// environment is the process's environment: the test's, with HOME set to Home and no XDG_CACHE_HOME (systemd
// sets none for the management server), or nil for the test's own.
func (p *Provisioner) environment() []string {
	if p.Home == "" {
		return nil
	}
	env := []string{"HOME=" + p.Home}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HOME=") && !strings.HasPrefix(kv, "XDG_CACHE_HOME=") {
			env = append(env, kv)
		}
	}
	return env
}

// writePayload writes <uuid>.json with CREATE_NEW, one line, Gson's escaping.
func (p *Provisioner) writePayload(payload any) (string, error) {
	data, err := GsonJSON(payload)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(p.PayloadDir, 0o750); err != nil {
		return "", err
	}
	path := filepath.Join(p.PayloadDir, randomUUID()+".json")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
	if err != nil {
		return "", err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return "", err
	}
	return path, f.Close()
}

// GsonJSON encodes v as GsonHelper.getGson() would: compact, with HTML escaping, which besides <, > and &
// (escaped by encoding/json too) covers = and '. Those two only ever appear inside JSON strings.
func GsonJSON(v any) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	data = bytes.ReplaceAll(data, []byte("="), []byte(`\u003d`))
	return bytes.ReplaceAll(data, []byte("'"), []byte(`\u0027`)), nil
}

// runMerged runs the command with one pipe as both stdout and stderr (redirectErrorStream(true)), waits for
// exit or kills at the timeout, and then drains what the pipe holds, as Java's Process does on exit: output
// written by a straggling child after that is lost, as it is for CloudStack.
func runMerged(ctx context.Context, exe string, args, env []string, timeout time.Duration) (Result, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return Result{}, err
	}
	defer r.Close()
	cmd := exec.Command(exe, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = w, w
	// CloudStack never writes or closes the child's stdin: an extension that reads it hangs until killed.
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		w.Close()
		return Result{}, err
	}
	defer stdinW.Close()
	cmd.Stdin = stdinR
	start := time.Now()
	err = cmd.Start()
	w.Close()
	stdinR.Close()
	if err != nil {
		return Result{}, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var res Result
	select {
	case <-done:
	case <-time.After(timeout):
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-done
		res.TimedOut = true
	case <-ctx.Done():
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-done
		return Result{}, ctx.Err()
	}
	res.Elapsed = time.Since(start)
	res.ExitCode = cmd.ProcessState.ExitCode()
	out, err := drain(r)
	res.Output = strings.TrimSpace(string(out))
	return res, err
}

// drain reads what the pipe holds without waiting for writers that may still hold it open.
func drain(r *os.File) ([]byte, error) {
	if err := syscall.SetNonblock(int(r.Fd()), true); err != nil {
		return nil, err
	}
	var out []byte
	buf := make([]byte, 64<<10)
	for {
		n, err := syscall.Read(int(r.Fd()), buf)
		if n > 0 {
			out = append(out, buf[:n]...)
		}
		switch {
		case errors.Is(err, syscall.EAGAIN), n == 0 && err == nil:
			return out, nil
		case errors.Is(err, syscall.EINTR):
			continue
		case err != nil:
			return out, err
		}
	}
}

func randomUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
