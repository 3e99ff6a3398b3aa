package main

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
)

// series is one line of a chart: a time for each VM count.
type series struct {
	name   string
	color  string
	dashed bool
	points map[int]time.Duration
}

// svg draws what the report measured against VM count, on log scales: the ping round (one status process per
// Instance) on the left, one statuses call on the right.
func (r *report) svg() string {
	rounds := map[string]*series{}
	var roundOrder []string
	colors := map[string]string{"extension": "#1f77b4", "process start (version)": "#2ca02c", "floor": "#7f7f7f",
		"kubectl+jq": "#d62728", "extension, no listing": "#9467bd", "process start, extension alone": "#17becf"}
	for _, rr := range r.rounds {
		sr := rounds[rr.name]
		if sr == nil {
			color := colors[rr.name]
			if color == "" {
				color = "#ff7f0e" // the baseline
			}
			sr = &series{name: rr.name, color: color, dashed: rr.name != "extension", points: map[int]time.Duration{}}
			rounds[rr.name] = sr
			roundOrder = append(roundOrder, rr.name)
		}
		sr.points[rr.n] = rr.estimate()
	}
	var left []series
	for _, name := range roundOrder {
		left = append(left, *rounds[name])
	}
	var right []series
	for _, impl := range []string{"extension, labels", "floor", "kubectl+jq"} {
		sr := series{name: impl, color: colors[strings.TrimSuffix(impl, ", labels")], dashed: impl != "extension, labels", points: map[int]time.Duration{}}
		for _, k := range r.order {
			if k.action == "statuses" {
				if st := summarize(r.samples[k][impl]); st.ok {
					sr.points[k.n] = st.median
				}
			}
		}
		if impl == "extension, labels" {
			sr.name = "extension"
		}
		right = append(right, sr)
	}
	var b strings.Builder
	const w, h = 960, 470
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", w, h, w, h)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", w, h)
	chart(&b, 70, 40, 380, 300, "Ping round: one status process per Instance", left)
	chart(&b, 580, 40, 360, 300, "statuses: one process for the host", right)
	b.WriteString("</svg>\n")
	return b.String()
}

// chart draws one log-log panel at (x0, y0) of size w×h.
func chart(b *strings.Builder, x0, y0, w, h float64, title string, lines []series) {
	minN, maxN, minT, maxT := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, l := range lines {
		for n, t := range l.points {
			minN, maxN = math.Min(minN, float64(n)), math.Max(maxN, float64(n))
			minT, maxT = math.Min(minT, t.Seconds()), math.Max(maxT, t.Seconds())
		}
	}
	if math.IsInf(minN, 1) {
		return
	}
	// Whole decades around the data.
	minN, maxN = decades(minN, maxN)
	minT, maxT = decades(minT, maxT)
	px := func(n float64) float64 {
		return x0 + w*(math.Log10(n)-math.Log10(minN))/(math.Log10(maxN)-math.Log10(minN))
	}
	py := func(t float64) float64 {
		return y0 + h - h*(math.Log10(t)-math.Log10(minT))/(math.Log10(maxT)-math.Log10(minT))
	}
	fmt.Fprintf(b, `<text x="%.0f" y="%.0f" font-size="14" font-weight="bold">%s</text>`+"\n", x0, y0-16, title)
	fmt.Fprintf(b, `<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" fill="none" stroke="#333"/>`+"\n", x0, y0, w, h)
	for n := minN; n <= maxN*1.0001; n *= 10 {
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="#ddd"/><text x="%.1f" y="%.0f" text-anchor="middle">%s</text>`+"\n",
			px(n), y0, px(n), y0+h, px(n), y0+h+16, count(n))
	}
	for t := minT; t <= maxT*1.0001; t *= 10 {
		fmt.Fprintf(b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#ddd"/><text x="%.0f" y="%.1f" text-anchor="end">%s</text>`+"\n",
			x0, py(t), x0+w, py(t), x0-6, py(t)+4, seconds(t))
	}
	fmt.Fprintf(b, `<text x="%.0f" y="%.0f" text-anchor="middle">VMs on the host (log scale)</text>`+"\n", x0+w/2, y0+h+34)
	fmt.Fprintf(b, `<text transform="translate(%.0f,%.0f) rotate(-90)" text-anchor="middle">wall time (log scale)</text>`+"\n", x0-56, y0+h/2)
	for i, l := range lines {
		var pts []string
		for _, n := range sortedKeys(l.points) {
			x, y := px(float64(n)), py(l.points[n].Seconds())
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
			fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`+"\n", x, y, l.color)
		}
		dash := ""
		if l.dashed {
			dash = ` stroke-dasharray="6,4"`
		}
		fmt.Fprintf(b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>`+"\n", strings.Join(pts, " "), l.color, dash)
		ly := y0 + h + 52 + float64(i/2)*16
		lx := x0 - 40 + float64(i%2)*(w/2+40)
		fmt.Fprintf(b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="%s" stroke-width="2"%s/><text x="%.0f" y="%.0f">%s</text>`+"\n",
			lx, ly-4, lx+24, ly-4, l.color, dash, lx+30, ly, l.name)
	}
}

// decades widens [lo, hi] to whole powers of ten, at least one apart.
func decades(lo, hi float64) (float64, float64) {
	lo, hi = math.Pow(10, math.Floor(math.Log10(lo)+1e-9)), math.Pow(10, math.Ceil(math.Log10(hi)-1e-9))
	if hi <= lo {
		hi = lo * 10
	}
	return lo, hi
}

func sortedKeys(m map[int]time.Duration) []int { return slices.Sorted(maps.Keys(m)) }

func count(n float64) string {
	if n >= 1000 {
		return fmt.Sprintf("%.0fk", n/1000)
	}
	return fmt.Sprintf("%.0f", n)
}

func seconds(t float64) string {
	switch {
	case t < 1e-3:
		return fmt.Sprintf("%.0f µs", t*1e6)
	case t < 1:
		return fmt.Sprintf("%.0f ms", t*1e3)
	default:
		return fmt.Sprintf("%.0f s", t)
	}
}
