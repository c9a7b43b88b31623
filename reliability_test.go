package kivuli

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/stretchr/testify/assert"
)

// reliabilityDoc names the file whose tables the fault suite rewrites,
// when set: KIVULI_RELIABILITY_DOC=docs/reliability.md go test ...
const reliabilityDoc = "KIVULI_RELIABILITY_DOC"

// UpdateReliabilityDoc replaces the text between <!-- section:begin --> and
// <!-- section:end --> in the file KIVULI_RELIABILITY_DOC names with
// content, if the variable is set and the test has not failed.
func UpdateReliabilityDoc(t *testing.T, section, content string) {
	t.Helper()
	path := os.Getenv(reliabilityDoc)
	if path == "" || t.Failed() {
		return
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	begin, end := "<!-- "+section+":begin -->\n", "<!-- "+section+":end -->"
	i, j := strings.Index(string(b), begin), strings.Index(string(b), end)
	if i < 0 || j < i {
		t.Fatalf("%s: no %s ... %s markers", path, strings.TrimSpace(begin), end)
	}
	out := string(b[:i+len(begin)]) + content + string(b[j:])
	if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestFleetRefreshSpread (issue 9, point 10): 10,000 processes started
// together, fetching 6-hour credentials at the same moment, schedule their
// first background refresh with the jitter of newSnapshot itself: spread
// evenly over the first half of the 15-minute window before the refresh
// deadline, so that IMDS (or the fleet's share of it) sees them one by one,
// not at once. And when they all fail together, their retries spread as
// backoff and retryAt spread them.
func TestFleetRefreshSpread(t *testing.T) {
	const processes = 10000
	now := time.Date(2026, 11, 28, 17, 0, 0, 0, time.UTC)
	v := aws.Credentials{AccessKeyID: "ASIAEXAMPLE", SecretAccessKey: "secret", SessionToken: "token", CanExpire: true, Expires: now.Add(6 * time.Hour)}
	deadline := v.Expires.Add(-RefreshDeadline)
	var at []time.Duration // before the refresh deadline
	perSecond := map[int64]int{}
	for range processes {
		s, err := newSnapshot(v, now)
		if err != nil {
			t.Fatal(err)
		}
		at = append(at, deadline.Sub(s.advisory))
		perSecond[s.advisory.Unix()]++
	}
	slices.Sort(at)
	busiest := 0
	for _, n := range perSecond {
		busiest = max(busiest, n)
	}
	assert.GreaterOrEqual(t, at[0], 7*time.Minute+30*time.Second, "not later than half the window before the deadline")
	assert.LessOrEqual(t, at[len(at)-1], 15*time.Minute, "not earlier than the window")

	var b strings.Builder
	b.WriteString("| first background refresh, before the refresh deadline | processes | share | |\n|---|---:|---:|---|\n")
	const bin = 30 * time.Second
	mean := float64(processes) / float64((7*time.Minute+30*time.Second)/bin)
	for lo := 15*time.Minute - bin; lo >= 7*time.Minute+30*time.Second; lo -= bin {
		n := 0
		for _, d := range at {
			if d > lo && d <= lo+bin || lo == 7*time.Minute+30*time.Second && d == lo {
				n++
			}
		}
		assert.InDelta(t, mean, n, mean/4, "an even spread: bin %v", lo)
		fmt.Fprintf(&b, "| %v to %v | %d | %.1f%% | %s |\n", lo+bin, lo, n, 100*float64(n)/processes, strings.Repeat("█", n*40/int(2*mean)))
	}
	fmt.Fprintf(&b, "\nBusiest second: %d first refreshes (mean %.1f per second over the %v).\n",
		busiest, float64(processes)/450, 7*time.Minute+30*time.Second)

	// All 10,000 fail their refresh at the same moment, 3 hours before
	// expiry: when do they try again?
	b.WriteString("\n| after a failure shared by all | retry 1 | retry 2 | retry 3 | retry 4 |\n|---|---:|---:|---:|---:|\n")
	prev := &snapshot{creds: v, canExpire: true, expires: v.Expires, deadline: deadline}
	var retries [4][]time.Duration
	for range processes {
		t0 := now.Add(3 * time.Hour)
		for n := range retries {
			next := retryAt(prev, n+1, t0)
			retries[n] = append(retries[n], next.Sub(now.Add(3*time.Hour)))
			t0 = next
		}
	}
	for _, q := range []struct {
		name string
		p    float64
	}{{"earliest", 0}, {"median", 0.5}, {"latest", 1}} {
		fmt.Fprintf(&b, "| %s | ", q.name)
		for n := range retries {
			slices.Sort(retries[n])
			fmt.Fprintf(&b, "%v | ", retries[n][int(q.p*float64(processes-1))].Round(100*time.Millisecond))
		}
		b.WriteString("\n")
	}
	assert.GreaterOrEqual(t, retries[0][0], 5*time.Second)
	assert.LessOrEqual(t, retries[0][processes-1], 10*time.Second)
	t.Log("\n" + b.String())
	UpdateReliabilityDoc(t, "spread", b.String())
}
