package main

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// report collects samples by case (action, VMs) and implementation.
type report struct {
	runs    int
	order   []key
	samples map[key]map[string][]sample
	rounds  []roundResult
}

type key struct {
	action string
	n      int
}

func (r *report) add(action string, n int, impl string, s sample) {
	if r.samples == nil {
		r.samples = map[key]map[string][]sample{}
	}
	k := key{action, n}
	if r.samples[k] == nil {
		r.samples[k] = map[string][]sample{}
		r.order = append(r.order, k)
	}
	r.samples[k][impl] = append(r.samples[k][impl], s)
}

// stats are the median and the 10th–90th percentile spread of a sample set.
type stats struct {
	median, p10, p90 time.Duration
	rssKB            int64
	bytes            int
	ok               bool
}

func summarize(ss []sample) stats {
	if len(ss) == 0 {
		return stats{}
	}
	walls := make([]time.Duration, len(ss))
	rss := make([]int64, len(ss))
	for i, s := range ss {
		walls[i], rss[i] = s.wall, s.rssKB
	}
	slices.Sort(walls)
	slices.Sort(rss)
	at := func(p float64) int { return min(len(ss)-1, int(p*float64(len(ss)))) }
	return stats{median: walls[at(0.5)], p10: walls[at(0.1)], p90: walls[at(0.9)], rssKB: rss[at(0.5)], bytes: ss[0].bytes, ok: true}
}

func ms(d time.Duration) string {
	if d < 10*time.Millisecond {
		return fmt.Sprintf("%.1f", float64(d)/1e6)
	}
	return fmt.Sprintf("%.0f", float64(d)/1e6)
}

func (s stats) cell() string {
	if !s.ok {
		return "—"
	}
	return fmt.Sprintf("%s (%s–%s)", ms(s.median), ms(s.p10), ms(s.p90))
}

func mib(kb int64) string {
	if kb == 0 {
		return "—"
	}
	return fmt.Sprintf("%.1f MiB", float64(kb)/1024)
}

func ratio(a, b stats) string {
	if !a.ok || !b.ok || b.median == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f×", float64(a.median)/float64(b.median))
}

func (r *report) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Machine: %s. Median wall time of whole processes in ms (10th–90th percentile), %d runs each (statuses at 10,000 VMs: fewer), against envtest (kube-apiserver and etcd on the same machine).\n\n", machine(), r.runs)
	b.WriteString("| action | VMs | extension, labels | extension, objects | floor | kubectl+jq | extension ÷ floor | kubectl ÷ extension | answer bytes | peak RSS, extension / floor |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, k := range r.order {
		if k.action == "start-up" || k.action == "ping call" || k.action == "cold start" {
			continue
		}
		m := r.samples[k]
		labels, objects := summarize(m["extension, labels"]), summarize(m["extension, objects"])
		ext := labels
		if !ext.ok {
			objects = summarize(m["extension"])
			ext = objects
		}
		floor, script := summarize(m["floor"]), summarize(m["kubectl+jq"])
		n := "—"
		if k.action == "statuses" {
			n = fmt.Sprint(k.n)
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s | %s | %s | %s | %d | %s / %s |\n", k.action, n, labels.cell(), objects.cell(),
			floor.cell(), script.cell(), ratio(ext, floor), ratio(script, ext), ext.bytes, mib(ext.rssKB), mib(floor.rssKB))
	}
	if m, ok := r.samples[key{"start-up", 0}]; ok {
		fmt.Fprintf(&b, "\nStart-up, exec to the first connection to the API server: extension %s ms, floor %s ms.\n",
			summarize(m["extension"]).cell(), summarize(m["floor"]).cell())
	}
	r.pingRounds(&b)
	if m, ok := r.samples[key{"cold start", 0}]; ok {
		fmt.Fprintf(&b, "\nCold start, the first call after the page cache is dropped (5 each): process start (`version`) %s ms, `status` from the listing %s ms.\n",
			summarize(m["process start (version)"]).cell(), summarize(m["status, from the listing"]).cell())
	}
	return b.String()
}

// pingRounds writes the ping rounds: one status process per Instance, in sequence. Where fewer calls than VMs
// were made, the round is their mean times the VMs (≈).
func (r *report) pingRounds(b *strings.Builder) {
	if len(r.rounds) == 0 {
		return
	}
	b.WriteString("\nPing round: one `status` process per Instance, in sequence, each for another Instance (4.21 and 4.22.0). Per call: median (10th–90th percentile) in ms; the round in seconds, ≈ where extrapolated from the calls made.\n\n")
	b.WriteString("| VMs | implementation | calls made | per call | round |\n| --- | --- | --- | --- | --- |\n")
	for _, rr := range r.rounds {
		st := summarize(r.samples[key{"ping call", rr.n}][rr.name])
		approx := ""
		if rr.calls < rr.n {
			approx = "≈ "
		}
		fmt.Fprintf(b, "| %d | %s | %d | %s | %s%.2f s |\n", rr.n, rr.name, rr.calls, st.cell(), approx, rr.estimate().Seconds())
	}
	b.WriteString("\n")
	for _, n := range r.roundSizes() {
		m := r.samples[key{"ping call", n}]
		ext := summarize(m["extension"])
		line := fmt.Sprintf("At %d VMs: a call costs %s `kubevirt-extension version` and %s the extension's own start (medians; %s and %s at the 90th percentile)", n,
			ratio(ext, summarize(m["process start (version)"])), ratio(ext, summarize(m["process start, extension alone"])),
			p90ratio(ext, summarize(m["process start (version)"])), p90ratio(ext, summarize(m["process start, extension alone"])))
		for _, rr := range r.rounds {
			if rr.n == n && strings.HasPrefix(rr.name, "before (") {
				if ours, ok := r.round(n, "extension"); ok {
					line += fmt.Sprintf("; the round takes %.2f s against %.2f s before (%s), %.1f× faster", ours.estimate().Seconds(),
						rr.estimate().Seconds(), strings.TrimSuffix(strings.TrimPrefix(rr.name, "before ("), ")"), float64(rr.estimate())/float64(ours.estimate()))
				}
			}
		}
		b.WriteString(line + ".\n")
	}
}

func (r *report) round(n int, name string) (roundResult, bool) {
	for _, rr := range r.rounds {
		if rr.n == n && rr.name == name {
			return rr, true
		}
	}
	return roundResult{}, false
}

func p90ratio(a, b stats) string {
	return ratio(stats{median: a.p90, ok: a.ok}, stats{median: b.p90, ok: b.ok})
}

func (r *report) roundSizes() []int {
	var sizes []int
	for _, rr := range r.rounds {
		if !slices.Contains(sizes, rr.n) {
			sizes = append(sizes, rr.n)
		}
	}
	return sizes
}

// machine describes where the figures were taken.
func machine() string {
	model := "unknown CPU"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return fmt.Sprintf("%d × %s, %s/%s, Linux %s, %s", runtime.NumCPU(), model, runtime.GOOS, runtime.GOARCH,
		strings.TrimSpace(string(kernel)), runtime.Version())
}
