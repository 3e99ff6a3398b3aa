package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// sample is one whole-process run.
type sample struct {
	wall  time.Duration
	rssKB int64 // peak resident set; 0 when not measured
	bytes int   // the answer's size
}

// exec runs impl once as CloudStack would and fails on anything but exit 0.
func (b *bench) exec(ctx context.Context, im impl, action, payload string, env ...string) (sample, error) {
	cmd := exec.CommandContext(ctx, im.exe, action, payload, "60")
	cmd.Env = append(append(append(os.Environ(), "HOME="+b.home), im.env...), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if err != nil {
		return sample{}, fmt.Errorf("%s %s: %v: %s", im.name, action, err, truncate(out.String(), 500))
	}
	return sample{wall: wall, bytes: len(bytes.TrimSpace(out.Bytes()))}, nil
}

// peakRSS runs impl once under GNU time for its peak resident set. The rusage of a child of this process
// would not do: Linux starts a child's high-water mark at its parent's, and this process holds a client and
// thousands of objects.
func (b *bench) peakRSS(ctx context.Context, im impl, action, payload string, env ...string) (int64, error) {
	if _, err := os.Stat("/usr/bin/time"); err != nil {
		return 0, nil // not measured; hack/bench.sh installs it
	}
	f := filepath.Join(b.work, "rss")
	cmd := exec.CommandContext(ctx, "/usr/bin/time", "-f", "%M", "-o", f, im.exe, action, payload, "60")
	cmd.Env = append(append(os.Environ(), im.env...), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("%s %s under time: %v: %s", im.name, action, err, truncate(string(out), 500))
	}
	data, err := os.ReadFile(f)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// measure runs every case and returns the report.
func (b *bench) measure(ctx context.Context, sizes []int) (*report, error) {
	r := &report{runs: b.runs}
	hbCtx, stopHeartbeat := context.WithCancel(ctx)
	defer stopHeartbeat()
	if err := b.heartbeat(hbCtx); err != nil {
		return nil, err
	}
	statusNS := sizeNamespace(sizes[len(sizes)/2])
	if err := b.statusCase(ctx, r, statusNS); err != nil {
		return nil, err
	}
	if err := b.pingRoundCase(ctx, r, sizes); err != nil {
		return nil, err
	}
	if err := b.coldStartCase(ctx, r, statusNS); err != nil {
		return nil, err
	}
	for _, n := range sizes {
		if err := b.statusesCase(ctx, r, n); err != nil {
			return nil, err
		}
	}
	if err := b.lifecycleCases(ctx, r); err != nil {
		return nil, err
	}
	return r, b.startupCase(ctx, r)
}

// variants of the extension: with the reconciler's labels (its heartbeat fresh) and without (every object read).
func (b *bench) variants(payload func(lease string) any) []variant {
	labels := b.impls.extension
	labels.name = "extension, labels"
	objects := b.impls.extension
	objects.name = "extension, objects"
	return []variant{
		{labels, payload("")},
		{objects, payload("none")},
		{b.impls.floor, payload("none")},
		{b.impls.script, payload("none")},
	}
}

type variant struct {
	impl    impl
	payload any
}

func (b *bench) repeat(ctx context.Context, r *report, action string, n, runs int, vs []variant) error {
	for _, v := range vs {
		path, err := b.writePayload(fmt.Sprintf("%s-%d-%s", action, n, safe(v.impl.name)), v.payload)
		if err != nil {
			return err
		}
		step("%s, %d VMs: %s x%d", action, n, v.impl.name, runs)
		rss, err := b.peakRSS(ctx, v.impl, action, path)
		if err != nil {
			return err
		}
		for range runs {
			s, err := b.exec(ctx, v.impl, action, path)
			if err != nil {
				return err
			}
			s.rssKB = rss
			r.add(action, n, v.impl.name, s)
		}
	}
	return nil
}

func safe(s string) string {
	out := []byte(s)
	for i, c := range out {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			out[i] = '-'
		}
	}
	return string(out)
}

func (b *bench) statusCase(ctx context.Context, r *report, ns string) error {
	vs := b.variants(func(lease string) any { return b.host(ns, lease).Payload("status", instance(ns, 0)) })
	return b.repeat(ctx, r, "status", 1, b.runs, vs)
}

func (b *bench) statusesCase(ctx context.Context, r *report, n int) error {
	ns := sizeNamespace(n)
	runs := b.runs
	if n >= 10000 {
		runs = max(5, b.runs/4)
	}
	vs := b.variants(func(lease string) any { return b.host(ns, lease).StatusesPayload() })
	return b.repeat(ctx, r, "statuses", n, runs, vs)
}

// lifecycleCases runs create, stop, start and delete on fresh Instances, each implementation on its own.
func (b *bench) lifecycleCases(ctx context.Context, r *report) error {
	for k, im := range []impl{b.impls.extension, b.impls.floor, b.impls.script} {
		step("create/stop/start/delete: %s x%d", im.name, b.runs)
		for run := range b.runs {
			i := 100_000*(k+1) + run
			in := instance(opsNamespace, i)
			h := b.host(opsNamespace, "none")
			vmJSON, err := b.writeVMJSON(opsNamespace, i)
			if err != nil {
				return err
			}
			for _, action := range []string{"create", "stop", "start", "delete"} {
				path, err := b.writePayload(fmt.Sprintf("%s-%d", action, i), h.Payload(action, in))
				if err != nil {
					return err
				}
				s, err := b.exec(ctx, im, action, path, "FLOOR_VM_JSON="+vmJSON)
				if err != nil {
					return err
				}
				r.add(action, 1, im.name, s)
			}
		}
	}
	return nil
}

// startupCase measures the time from exec to the first connection the process opens to the API server: a
// local TLS listener that answers 404, so what is measured is the process's own start-up.
func (b *bench) startupCase(ctx context.Context, r *report) error {
	var mu sync.Mutex
	var first time.Time
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { http.NotFound(w, nil) }))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			mu.Lock()
			if first.IsZero() {
				first = time.Now()
			}
			mu.Unlock()
		}
	}
	srv.StartTLS()
	defer srv.Close()
	kubeconfig, err := writeKubeconfig(b.work, srv)
	if err != nil {
		return err
	}
	ns := "startup"
	for _, im := range []impl{b.impls.extension, b.impls.floor} {
		h := b.host(ns, "none")
		h.Host["kubeconfig"] = kubeconfig
		path, err := b.writePayload("startup-"+im.name, h.Payload("status", instance(ns, 0)))
		if err != nil {
			return err
		}
		step("start-up: %s x%d", im.name, b.runs)
		for range b.runs {
			mu.Lock()
			first = time.Time{}
			mu.Unlock()
			cmd := exec.CommandContext(ctx, im.exe, "status", path, "60")
			start := time.Now()
			_ = cmd.Run() // the 404 makes the floor fail; only the time to the first connection counts
			mu.Lock()
			at := first
			mu.Unlock()
			if at.IsZero() {
				return fmt.Errorf("%s never connected to the API server stand-in", im.name)
			}
			r.add("start-up", 0, im.name, sample{wall: at.Sub(start)})
		}
	}
	return nil
}

func writeKubeconfig(dir string, srv *httptest.Server) (string, error) {
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: stand-in
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: u
  user:
    token: bench-token
contexts:
- name: c
  context: {cluster: stand-in, user: u}
current-context: c
`, srv.URL, base64.StdEncoding.EncodeToString(ca))
	path := filepath.Join(dir, "startup.kubeconfig")
	return path, os.WriteFile(path, []byte(kc), 0o600)
}
