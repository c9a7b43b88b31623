// Command report turns the benchstat output of run.sh into the results
// section of benchmarks/README.md: the run's date, Go version and CPU, the
// benchstat tables, and the targets of issue 4, each computed from the
// benchstat CSV and marked met or missed with its figures.
//
// It rewrites only what lies between the markers
//
//	<!-- results:begin -->
//	<!-- results:end -->
//
// and leaves the rest of the README as it is.
package main

import (
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
)

const (
	beginMarker = "<!-- results:begin -->"
	endMarker   = "<!-- results:end -->"
)

func main() {
	var o options
	flag.StringVar(&o.readme, "readme", "README.md", "README to rewrite between the markers")
	flag.StringVar(&o.vsFloor, "vs-floor", "", "benchstat -format csv -col '/impl@(floor kivuli opensearch smithy prometheus raw-sha256)' output")
	flag.StringVar(&o.vsKivuli, "vs-kivuli", "", "benchstat -format csv -col '/impl@(kivuli opensearch smithy prometheus)' output")
	flag.StringVar(&o.text, "text", "", "benchstat text output, copied into the README")
	flag.StringVar(&o.storm, "storm", "", "file holding the storm line of TestStorm (missing or empty: the test failed)")
	flag.StringVar(&o.date, "date", "", "date of the run")
	flag.StringVar(&o.goVersion, "go-version", "", "go version output")
	flag.StringVar(&o.cpu, "cpu", "", "CPU model")
	flag.StringVar(&o.elapsed, "elapsed", "", "how long run.sh took")
	flag.StringVar(&o.commands, "commands", "", "file listing the benchmark commands run")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("report: ")
	if err := run(&o); err != nil {
		log.Fatal(err)
	}
}

type options struct {
	readme, vsFloor, vsKivuli, text, storm  string
	date, goVersion, cpu, elapsed, commands string
}

func run(o *options) error {
	floor, err := readStat(o.vsFloor)
	if err != nil {
		return err
	}
	vsK, err := readStat(o.vsKivuli)
	if err != nil {
		return err
	}
	text, err := os.ReadFile(o.text)
	if err != nil {
		return err
	}
	storm := ""
	if o.storm != "" {
		b, _ := os.ReadFile(o.storm)
		storm = strings.TrimSpace(string(b))
	}
	var cmds []byte
	if o.commands != "" {
		if cmds, err = os.ReadFile(o.commands); err != nil {
			return err
		}
	}
	targets := computeTargets(floor, vsK, storm)

	var b strings.Builder
	fmt.Fprintf(&b, "%s\n", beginMarker)
	fmt.Fprintf(&b, "_Written by `run.sh`; do not edit by hand between the markers._\n\n")
	fmt.Fprintf(&b, "- Date: %s (run.sh took %s)\n", o.date, o.elapsed)
	fmt.Fprintf(&b, "- Go: `%s`\n", o.goVersion)
	fmt.Fprintf(&b, "- CPU: %s\n", o.cpu)
	if len(cmds) > 0 {
		fmt.Fprintf(&b, "- Commands (in `benchmarks/`):\n\n```sh\n%s\n```\n", strings.TrimSpace(string(cmds)))
	}
	fmt.Fprintf(&b, "\n### Targets\n\n")
	fmt.Fprintf(&b, "| # | target | figures | verdict |\n|---|---|---|---|\n")
	missed := 0
	for i, t := range targets {
		verdict := "**met**"
		if !t.met {
			verdict = "**missed** (see [Why targets are missed](#why-targets-are-missed))"
			missed++
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %s |\n", i+1, t.name, strings.Join(t.figures, "<br>"), verdict)
	}
	fmt.Fprintf(&b, "\n%d of %d targets met.\n", len(targets)-missed, len(targets))
	fmt.Fprintf(&b, "\n### benchstat, implementations as columns (`-col /impl`, ratios against floor)\n\n")
	fmt.Fprintf(&b, "```\n%s\n```\n", strings.TrimRight(string(text), "\n"))
	fmt.Fprintf(&b, "%s\n", endMarker)

	readme, err := os.ReadFile(o.readme)
	if err != nil {
		return err
	}
	out, err := replaceSection(string(readme), b.String())
	if err != nil {
		return err
	}
	if err := os.WriteFile(o.readme, []byte(out), 0o644); err != nil {
		return err
	}
	for i, t := range targets {
		state := "met"
		if !t.met {
			state = "MISSED"
		}
		fmt.Printf("target %d %-6s %s: %s\n", i+1, state, stripMarkdown(t.name), stripMarkdown(strings.Join(t.figures, "; ")))
	}
	return nil
}

func stripMarkdown(s string) string {
	return strings.NewReplacer("`", "", "**", "", "<br>", "; ").Replace(s)
}

func replaceSection(doc, section string) (string, error) {
	i := strings.Index(doc, beginMarker)
	j := strings.Index(doc, endMarker)
	if i < 0 || j < i {
		return "", fmt.Errorf("README lacks the markers %s and %s", beginMarker, endMarker)
	}
	return doc[:i] + strings.TrimSuffix(section, "\n") + doc[j+len(endMarker):], nil
}

// cell is one benchmark's summary for one implementation and unit.
type cell struct {
	value  float64 // the median
	vsBase string  // benchstat's change against the base column: "+9.70%", "~", ...
	p      float64 // benchstat's p-value against the base column; NaN if none
}

// stat holds a benchstat CSV: unit -> benchmark name (without the -N
// GOMAXPROCS suffix) -> implementation -> cell.
type stat struct {
	cells map[string]map[string]map[string]cell
	procs map[string]int // benchmark name -> GOMAXPROCS
}

func (s *stat) get(unit, name, impl string) (cell, bool) {
	c, ok := s.cells[unit][name][impl]
	return c, ok
}

var procsSuffix = regexp.MustCompile(`-(\d+)$`)
var pValue = regexp.MustCompile(`p=([0-9.]+)`)

func readStat(path string) (*stat, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	r.LazyQuotes = true
	s := &stat{cells: map[string]map[string]map[string]cell{}, procs: map[string]int{}}
	var implAt, fieldAt []string
	unit := ""
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		switch {
		case len(rec) < 2:
			continue // configuration lines (goos: ...), notes
		case rec[0] == "" && isUnitRow(rec):
			fieldAt = rec
			unit = rec[1]
			if s.cells[unit] == nil {
				s.cells[unit] = map[string]map[string]cell{}
			}
		case rec[0] == "":
			// A new table: its row of implementation names.
			implAt = make([]string, len(rec))
			cur := ""
			for i, v := range rec {
				if v != "" {
					cur = v
				}
				implAt[i] = cur
			}
			fieldAt = nil
		case rec[0] == "geomean":
			continue
		default:
			if fieldAt == nil {
				continue
			}
			name := rec[0]
			if m := procsSuffix.FindStringSubmatch(name); m != nil {
				n, _ := strconv.Atoi(m[1])
				s.procs[strings.TrimSuffix(name, m[0])] = n
				name = strings.TrimSuffix(name, m[0])
			}
			row := s.cells[unit][name]
			if row == nil {
				row = map[string]cell{}
				s.cells[unit][name] = row
			}
			for i, v := range rec {
				if i == 0 || i >= len(fieldAt) || i >= len(implAt) || v == "" {
					continue
				}
				impl := implAt[i]
				c, seen := row[impl]
				if !seen {
					c.p = math.NaN()
				}
				switch fieldAt[i] {
				case unit:
					x, err := strconv.ParseFloat(v, 64)
					if err != nil {
						return nil, fmt.Errorf("%s: %s %s %s: %w", path, unit, name, impl, err)
					}
					c.value = x
				case "vs base":
					c.vsBase = v
				case "P":
					if m := pValue.FindStringSubmatch(v); m != nil {
						c.p, _ = strconv.ParseFloat(m[1], 64)
					}
				default:
					if !seen {
						continue
					}
				}
				row[impl] = c
			}
		}
	}
	if len(s.cells) == 0 {
		return nil, fmt.Errorf("%s: no benchstat table", path)
	}
	return s, nil
}

// isUnitRow reports whether rec is the row of units under the row of
// implementation names (",sec/op,CI,sec/op,CI,vs base,P,...").
func isUnitRow(rec []string) bool {
	for _, v := range rec {
		if v == "CI" {
			return true
		}
	}
	return false
}

type target struct {
	name    string
	figures []string
	met     bool
}

const (
	mib        = 1 << 20
	alpha      = 0.05
	efficiency = 0.75 // parallel efficiency that counts as scaling
)

var (
	peers     = []string{"opensearch", "smithy", "prometheus"}
	workloads = []string{"GET", "GETWildcard", "APSQuery", "POST1KiB", "Body1MiB", "Body64MiB", "Upload4x64MiB", "GETParallel"}
)

func computeTargets(fl, vk *stat, storm string) []target {
	return []target{
		targetSmallGET(fl),
		targetReadPath(fl),
		targetHashing(fl),
		targetPeers(vk),
		targetStorm(storm),
	}
}

func missing(name string, what ...string) target {
	return target{name: name, figures: []string{"no result for " + strings.Join(what, " ")}}
}

// 1: kivuli small GET within 10% of floor, allocs within 10 of floor's.
func targetSmallGET(s *stat) target {
	const name = "small GET: kivuli time ≤ floor + 10%, allocs ≤ floor + 10"
	kt, ok1 := s.get("sec/op", "GET", "kivuli")
	ft, ok2 := s.get("sec/op", "GET", "floor")
	ka, ok3 := s.get("allocs/op", "GET", "kivuli")
	fa, ok4 := s.get("allocs/op", "GET", "floor")
	if !(ok1 && ok2 && ok3 && ok4) {
		return missing(name, "GET")
	}
	ratio := kt.value / ft.value
	timeOK := ratio <= 1.10
	allocOK := ka.value-fa.value <= 10
	t := target{name: name, met: timeOK && allocOK}
	t.figures = append(t.figures,
		fmt.Sprintf("time: kivuli %s vs floor %s = %s (limit +10%%; benchstat %s%s) %s",
			dur(kt.value), dur(ft.value), pct(ratio), kt.vsBase, pFmt(kt.p), mark(timeOK)),
		fmt.Sprintf("allocs: kivuli %.0f vs floor %.0f = %+.0f (limit +10) %s", ka.value, fa.value, ka.value-fa.value, mark(allocOK)))
	if kb, ok := s.get("B/op", "GET", "kivuli"); ok {
		if fb, ok := s.get("B/op", "GET", "floor"); ok {
			t.figures = append(t.figures, fmt.Sprintf("bytes: kivuli %.0f B vs floor %.0f B (%+.0f B)", kb.value, fb.value, kb.value-fb.value))
		}
	}
	return t
}

// 2: credential read path < 50 ns/op, 0 allocs, scaling under RunParallel.
func targetReadPath(s *stat) target {
	const name = "credential read path: `Retrieve` < 50 ns/op, 0 allocs/op, scales under `RunParallel`"
	r, ok1 := s.get("sec/op", "Retrieve", "kivuli")
	rp, ok2 := s.get("sec/op", "RetrieveParallel", "kivuli")
	ra, ok3 := s.get("allocs/op", "Retrieve", "kivuli")
	rpa, ok4 := s.get("allocs/op", "RetrieveParallel", "kivuli")
	if !(ok1 && ok2 && ok3 && ok4) {
		return missing(name, "Retrieve, RetrieveParallel")
	}
	procs := s.procs["RetrieveParallel"]
	if procs == 0 {
		procs = 1
	}
	speedup := r.value / rp.value
	need := efficiency * float64(procs)
	if procs == 1 {
		need = 0.9 // one P: the parallel form must simply not be slower
	}
	fast := r.value < 50e-9 && rp.value < 50e-9
	noAlloc := ra.value == 0 && rpa.value == 0
	scales := speedup >= need
	return target{name: name, met: fast && noAlloc && scales, figures: []string{
		fmt.Sprintf("serial %s, parallel %s (limit 50 ns) %s", dur(r.value), dur(rp.value), mark(fast)),
		fmt.Sprintf("allocs %.0f and %.0f %s", ra.value, rpa.value, mark(noAlloc)),
		fmt.Sprintf("speedup on %d Ps: %.2f× (need ≥ %.2f×, %.0f%% parallel efficiency) %s", procs, speedup, need, efficiency*100, mark(scales)),
	}}
}

// 3: 64 MiB hashing throughput ≥ 85% of raw crypto/sha256, extra heap < 1 MiB.
func targetHashing(s *stat) target {
	const name = "64 MiB body: kivuli throughput ≥ 85% of raw crypto/sha256, extra heap < 1 MiB"
	kt, ok1 := s.get("sec/op", "Body64MiB", "kivuli")
	rt, ok2 := s.get("sec/op", "Body64MiB", "raw-sha256")
	kh, ok3 := s.get("peak-heap-B/op", "Body64MiB", "kivuli")
	kb, ok4 := s.get("B/op", "Body64MiB", "kivuli")
	if !(ok1 && ok2 && ok3 && ok4) {
		return missing(name, "Body64MiB")
	}
	size := 64.0 * mib
	kThru, rThru := size/kt.value, size/rt.value
	ratio := kThru / rThru
	thruOK := ratio >= 0.85
	heapOK := kh.value < mib && kb.value < mib
	t := target{name: name, met: thruOK && heapOK}
	t.figures = append(t.figures, fmt.Sprintf("whole request (hash, sign, body copied to Base): kivuli %s vs raw sha256 %s = %.1f%% (need ≥ 85%%) %s",
		rate(kThru), rate(rThru), ratio*100, mark(thruOK)))
	t.figures = append(t.figures, fmt.Sprintf("extra heap: kivuli peak %s, allocated %s/op (limit 1 MiB) %s", size_(kh.value), size_(kb.value), mark(heapOK)))
	var ps []string
	for _, p := range peers {
		if c, ok := s.get("peak-heap-B/op", "Body64MiB", p); ok {
			ps = append(ps, fmt.Sprintf("%s %s", p, size_(c.value)))
		}
	}
	if len(ps) > 0 {
		t.figures = append(t.figures, "peers' peak heap: "+strings.Join(ps, ", "))
	}
	// Four uploads at once: what a pooled buffer costs under concurrency
	// (B/op does not count a buffer the pool already held).
	ps = nil
	for _, impl := range append([]string{"kivuli"}, peers...) {
		if c, ok := s.get("peak-heap-B/op", "Upload4x64MiB", impl); ok {
			ps = append(ps, fmt.Sprintf("%s %s", impl, size_(c.value)))
		}
	}
	if len(ps) > 0 {
		t.figures = append(t.figures, "four 64 MiB uploads at once, peak heap: "+strings.Join(ps, ", "))
	}
	return t
}

// 4: kivuli no slower than each peer on every workload. s has kivuli as
// its base column, so a peer's "vs base" is the peer's change against
// kivuli: kivuli is slower where the peer is significantly faster.
func targetPeers(s *stat) target {
	const name = "kivuli no slower than each peer on every workload (ratio kivuli ÷ peer; slower = benchstat finds the difference significant, p < 0.05)"
	t := target{name: name, met: true}
	for _, w := range workloads {
		kt, ok := s.get("sec/op", w, "kivuli")
		if !ok {
			t.figures = append(t.figures, "no result for "+w)
			t.met = false
			continue
		}
		var parts []string
		for _, p := range peers {
			pt, ok := s.get("sec/op", w, p)
			if !ok {
				parts = append(parts, p+": no result")
				t.met = false
				continue
			}
			ratio := kt.value / pt.value
			slower := ratio > 1 && pt.vsBase != "~" && !math.IsNaN(pt.p) && pt.p < alpha
			verdict := "✓"
			switch {
			case slower:
				verdict = "✗ slower"
				t.met = false
			case ratio > 1:
				verdict = "✓ (not significant)"
			}
			parts = append(parts, fmt.Sprintf("%s %.2f×%s %s", p, ratio, pFmt(pt.p), verdict))
		}
		t.figures = append(t.figures, fmt.Sprintf("%s: %s", w, strings.Join(parts, ", ")))
	}
	return t
}

var stormLine = regexp.MustCompile(`storm: (\d+) callers at the refresh deadline, (\d+) credential GET`)

// 5: the storm costs one IMDS credential request.
func targetStorm(line string) target {
	const name = "refresh storm: one IMDS credential request for 10,000 callers at the deadline (`TestStorm`)"
	m := stormLine.FindStringSubmatch(line)
	if m == nil {
		return target{name: name, figures: []string{"TestStorm failed or reported nothing"}}
	}
	gets, _ := strconv.Atoi(m[2])
	return target{name: name, met: gets == 1, figures: []string{
		fmt.Sprintf("%s callers, %d credential GET(s) %s", m[1], gets, mark(gets == 1)),
		strings.TrimLeft(strings.TrimPrefix(line[len(m[0]):], "(s)"), ", "),
	}}
}

func mark(ok bool) string {
	if ok {
		return "✓"
	}
	return "✗"
}

func pct(ratio float64) string { return fmt.Sprintf("%+.1f%%", (ratio-1)*100) }

func pFmt(p float64) string {
	if math.IsNaN(p) {
		return ""
	}
	return fmt.Sprintf(" (p=%.3f)", p)
}

func dur(sec float64) string {
	switch {
	case sec < 1e-6:
		return fmt.Sprintf("%.2f ns", sec*1e9)
	case sec < 1e-3:
		return fmt.Sprintf("%.2f µs", sec*1e6)
	case sec < 1:
		return fmt.Sprintf("%.2f ms", sec*1e3)
	}
	return fmt.Sprintf("%.2f s", sec)
}

func rate(bps float64) string { return fmt.Sprintf("%.0f MiB/s", bps/mib) }

func size_(b float64) string {
	switch {
	case b >= mib:
		return fmt.Sprintf("%.1f MiB", b/mib)
	case b >= 1024:
		return fmt.Sprintf("%.1f KiB", b/1024)
	}
	return fmt.Sprintf("%.0f B", b)
}
