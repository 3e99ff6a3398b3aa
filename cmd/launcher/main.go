// Command launcher is what CloudStack runs as the extension: installed as kubevirt-extension, beside the
// extension itself (kubevirt-extension-core). It answers a `status` from the host's shared listing of power
// states (kube/powercache), and hands every other call, and every status the listing cannot answer, to the
// extension by exec: same process, same arguments, same standard streams.
//
// Why a second binary: before 4.22.1, CloudStack asks for power states with one process per Instance on every
// ping, so the process start is most of a ping's cost. The extension links the Kubernetes and KubeVirt client
// libraries, whose package initialisation alone costs about 2 ms of a 3 ms start; this binary links neither.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/cmd/internal/logfile"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/kube/powercache"
)

// Core is the extension's file name, in the launcher's directory.
const Core = "kubevirt-extension-core"

// maxPayload matches the extension's: far above any payload CloudStack writes.
const maxPayload = 4 << 20

func main() {
	if len(os.Args) == 4 && os.Args[1] == "status" && answered(os.Args[2]) {
		return
	}
	os.Exit(handOver(os.Args))
}

// answered answers the status call from the listing, and says whether it did.
func answered(payloadPath string) bool {
	data, err := readPayload(payloadPath)
	if err != nil {
		return false // the extension reads it again and says what is wrong
	}
	req, err := powercache.ParseStatusRequest(data)
	if err != nil {
		return false
	}
	root, err := powercache.DefaultRoot()
	if err != nil {
		return false
	}
	a, ok, _, err := powercache.AnswerStatus(root, req)
	if err != nil || !ok {
		return false
	}
	answer, err := json.Marshal(struct {
		Status     string `json:"status"`
		PowerState string `json:"power_state"`
	}{"success", a.State})
	if err != nil {
		return false
	}
	if _, err := os.Stdout.Write(append(answer, '\n')); err != nil {
		os.Exit(1)
	}
	logAnswer(a, req.Instance)
	return true
}

func readPayload(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// Only a regular file can be read again by the extension: a payload on a pipe is left to it whole.
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("payload %s is not a regular file", path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxPayload+1))
	if err == nil && len(data) > maxPayload {
		err = fmt.Errorf("payload larger than %d bytes", maxPayload)
	}
	return data, err
}

// logAnswer writes the line the extension writes for a status answered from the listing.
func logAnswer(a powercache.Answer, instance string) {
	if a.LogFile == "" {
		return
	}
	f, err := logfile.Open(a.LogFile)
	if err != nil {
		return // never fatal: the answer matters more
	}
	defer f.Close()
	slog.New(slog.NewTextHandler(f, nil)).Info("status", "pid", os.Getpid(), "action", "status", "instance", instance,
		"power_state", a.State, "source", "labels", "listing", "read", "by", "launcher")
}

// handOver execs the extension with the same arguments; it returns only when it cannot.
func handOver(args []string) int {
	self, err := os.Executable()
	if err == nil {
		core := filepath.Join(filepath.Dir(self), Core)
		err = syscall.Exec(core, append([]string{core}, args[1:]...), os.Environ())
		err = fmt.Errorf("starting %s: %w (install.sh installs it beside %s)", core, err, filepath.Base(self))
	}
	msg, _ := json.Marshal(struct {
		Status  string `json:"status"`
		Message string `json:"message"`
	}{"error", err.Error()})
	_, _ = os.Stdout.Write(append(msg, '\n'))
	return 1
}
