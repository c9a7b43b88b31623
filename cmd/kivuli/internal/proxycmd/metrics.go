package proxycmd

import (
	"bufio"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// The Prometheus text exposition format (version 0.0.4), written by hand:
// a few counters, gauges and histograms need none of client_golang's
// registry, collectors or dependencies, and the format is a stable,
// line-based text (https://prometheus.io/docs/instrumenting/exposition_formats/).

// metricsContentType is the Content-Type of the text format.
const metricsContentType = "text/plain; version=0.0.4; charset=utf-8"

// metric is one metric family: its HELP and TYPE lines, then its samples.
type metric interface {
	write(w *bufio.Writer)
}

// registry holds the families, written in the order registered.
type registry struct{ families []metric }

func (r *registry) add(m metric) { r.families = append(r.families, m) }

func (r *registry) writeTo(w io.Writer) error {
	bw := bufio.NewWriter(w)
	for _, m := range r.families {
		m.write(bw)
	}
	return bw.Flush()
}

func writeHead(w *bufio.Writer, name, help, typ string) {
	w.WriteString("# HELP " + name + " " + escapeHelp(help) + "\n")
	w.WriteString("# TYPE " + name + " " + typ + "\n")
}

// The escapes of the format, built once: a Replacer builds its tables on
// first use, which costs more than the counting it serves.
var (
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
)

// escapeHelp escapes a HELP text: backslash and line feed.
func escapeHelp(s string) string { return helpEscaper.Replace(s) }

// escapeLabel escapes a label value: backslash, double quote, line feed.
func escapeLabel(s string) string {
	if !strings.ContainsAny(s, "\\\"\n") {
		return s
	}
	return labelEscaper.Replace(s)
}

func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// labelString is {k1="v1",k2="v2"}, or "" without labels.
func labelString(names, values []string) string {
	if len(names) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(n + `="` + escapeLabel(values[i]) + `"`)
	}
	b.WriteByte('}')
	return b.String()
}

// counterVec is a counter with labels; its series appear as first used.
type counterVec struct {
	name, help string
	labels     []string

	mu     sync.Mutex
	series map[labelValues]*atomic.Uint64
}

// labelValues are a series' label values, as a map key: counting a request
// allocates nothing (a key made by joining them took a fifth of the
// metrics' and access log's time).
type labelValues [maxLabels]string

const maxLabels = 3

func newCounterVec(name, help string, labels ...string) *counterVec {
	if len(labels) > maxLabels {
		panic("counterVec " + name + ": more than maxLabels labels")
	}
	return &counterVec{name: name, help: help, labels: labels, series: map[labelValues]*atomic.Uint64{}}
}

// add adds n to the series of the label values (one per label name).
func (c *counterVec) add(n uint64, values ...string) {
	var key labelValues
	copy(key[:], values)
	c.mu.Lock()
	s := c.series[key]
	if s == nil {
		s = new(atomic.Uint64)
		c.series[key] = s
	}
	c.mu.Unlock()
	s.Add(n)
}

func (c *counterVec) inc(values ...string) { c.add(1, values...) }

func (c *counterVec) write(w *bufio.Writer) {
	writeHead(w, c.name, c.help, "counter")
	c.mu.Lock()
	lines := make([]string, 0, len(c.series))
	for k, v := range c.series {
		lines = append(lines, c.name+labelString(c.labels, k[:len(c.labels)])+" "+strconv.FormatUint(v.Load(), 10)+"\n")
	}
	c.mu.Unlock()
	slices.Sort(lines)
	for _, l := range lines {
		w.WriteString(l)
	}
}

// funcMetric is a gauge or a counter (kind) whose value is read when
// scraped.
type funcMetric struct {
	name, help, kind string
	f                func() float64
}

func gaugeFunc(name, help string, f func() float64) *funcMetric {
	return &funcMetric{name, help, "gauge", f}
}

func counterFunc(name, help string, f func() float64) *funcMetric {
	return &funcMetric{name, help, "counter", f}
}

func (m *funcMetric) write(w *bufio.Writer) {
	writeHead(w, m.name, m.help, m.kind)
	w.WriteString(m.name + " " + formatFloat(m.f()) + "\n")
}

// histogram counts observations in cumulative buckets, in seconds.
type histogram struct {
	name, help string
	bounds     []float64
	counts     []atomic.Uint64 // one per bound, then +Inf
	sumBits    atomic.Uint64   // float64 bits
}

// latencyBuckets suit a sidecar in front of AWS: from a millisecond (a
// cached answer in the same region) to a minute (a large upload).
var latencyBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

func newHistogram(name, help string, bounds []float64) *histogram {
	return &histogram{name: name, help: help, bounds: bounds, counts: make([]atomic.Uint64, len(bounds)+1)}
}

func (h *histogram) observe(v float64) {
	i, _ := slices.BinarySearch(h.bounds, v) // the first bound >= v
	h.counts[i].Add(1)
	for {
		old := h.sumBits.Load()
		if h.sumBits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

func (h *histogram) write(w *bufio.Writer) {
	writeHead(w, h.name, h.help, "histogram")
	var cum uint64
	for i, b := range h.bounds {
		cum += h.counts[i].Load()
		w.WriteString(h.name + `_bucket{le="` + formatFloat(b) + `"} ` + strconv.FormatUint(cum, 10) + "\n")
	}
	cum += h.counts[len(h.bounds)].Load()
	w.WriteString(h.name + `_bucket{le="+Inf"} ` + strconv.FormatUint(cum, 10) + "\n")
	w.WriteString(h.name + "_sum " + formatFloat(math.Float64frombits(h.sumBits.Load())) + "\n")
	w.WriteString(h.name + "_count " + strconv.FormatUint(cum, 10) + "\n")
}
