package kivuli_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kivuli-go/kivuli"
	"github.com/kivuli-go/kivuli/imdstest"
	"github.com/kivuli-go/kivuli/sigv4test"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// The fault suite (issue 9, points 9 and 10): kivuli's credentials under a
// misbehaving IMDS, with every request signed by kivuli.Transport and
// checked by sigv4test, on fake time (testing/synctest) so that an hour of
// credential lifetime takes a fraction of a second. Run it alone with
//
//	go test -race -run 'TestFaultSuite|TestRotationSoak|TestSignedStorm|TestFleet' -v .
//
// and with KIVULI_RELIABILITY_DOC=docs/reliability.md it also rewrites the
// tables of that file from its figures.

const (
	suiteLifetime = time.Hour              // of each credential set the emulator issues
	suiteTokenTTL = 5 * time.Minute        // the Go SDK's: token faults bite on every refresh
	suiteTimeout  = 500 * time.Millisecond // the IMDS client's, as kivuli's default header timeout
	suiteWorkers  = 4                      // goroutines sending signed requests
	suitePeriod   = 2 * time.Second        // between two requests of a worker
	suiteInvalid  = 20 * time.Second       // between two Invalidate calls during the fault, as ExpiredToken answers make
)

// servedExpiry records, for each access key IMDS served, the Expiration its
// latest document said: the service in this suite believes IMDS, so that a
// set served as expired is refused while IMDS says so, as in issue 9's
// harness (1,424 of 1,720 requests refused).
type servedExpiry struct {
	next http.RoundTripper
	mu   sync.Mutex
	exp  map[string]time.Time
}

func (s *servedExpiry) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := s.next.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusOK || !strings.Contains(req.URL.Path, "/security-credentials/") {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return resp, nil
	}
	var doc struct {
		AccessKeyID string `json:"AccessKeyId"`
		Expiration  time.Time
	}
	if json.Unmarshal(body, &doc) == nil && doc.AccessKeyID != "" {
		s.mu.Lock()
		s.exp[doc.AccessKeyID] = doc.Expiration
		s.mu.Unlock()
	}
	return resp, nil
}

// secrets resolves keys the emulator issued, expiring when IMDS last said.
func (s *servedExpiry) secrets(srv *imdstest.Server) sigv4test.Secrets {
	return func(id string) (sigv4test.Credentials, bool) {
		c, ok := srv.Lookup(id)
		s.mu.Lock()
		if exp, served := s.exp[id]; served && exp.Before(c.Expiration) {
			c.Expiration = exp
		}
		s.mu.Unlock()
		return sigv4test.Credentials(c), ok
	}
}

// service is an AWS service in memory: it checks each request's signature
// with v and answers 200, or 403 with the error code, as AWS does.
func service(v *sigv4test.Verifier) http.RoundTripper {
	return serviceFunc(func(req *http.Request) (*http.Response, error) {
		rec := v.Verify(req)
		resp := &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody, Request: req}
		if e, ok := rec.Err.(*sigv4test.Error); ok {
			body := fmt.Sprintf(`{"__type":%q}`, e.Code)
			resp.StatusCode = http.StatusForbidden
			resp.Header.Set("X-Amzn-ErrorType", e.Code)
			resp.Body, resp.ContentLength = io.NopCloser(strings.NewReader(body)), int64(len(body))
		}
		return resp, nil
	})
}

// world is one run of the suite: an emulated IMDS, kivuli's credentials
// read from it, and a checking service reached through kivuli.Transport.
type world struct {
	imds   *imdstest.Server
	served *servedExpiry
	creds  *kivuli.Credentials
	signer *kivuli.Transport
}

func newWorld(t *testing.T, cfg imdstest.Config, opts ...kivuli.Option) *world {
	t.Helper()
	w := &world{imds: imdstest.NewHandler(cfg)}
	w.served = &servedExpiry{next: w.imds.RoundTripper(), exp: map[string]time.Time{}}
	hc := &http.Client{Transport: w.served, Timeout: suiteTimeout}
	c, err := kivuli.New(t.Context(), append([]kivuli.Option{kivuli.WithHTTPClient(hc)}, opts...)...)
	require.NoError(t, err)
	w.creds = c
	v := &sigv4test.Verifier{Secrets: w.served.secrets(w.imds)}
	w.signer = &kivuli.Transport{Credentials: c, Base: service(v)}
	return w
}

func (w *world) close() {
	w.creds.Close()
	w.imds.Close()
}

// load is what a set of workers saw.
type load struct {
	mu       sync.Mutex
	requests int
	failures []string // status or error of each failed request, in order
	worst    time.Duration
}

// send makes one signed request and records it.
func (w *world) send(l *load) {
	req, err := http.NewRequest(http.MethodGet, "https://sts.eu-west-2.amazonaws.com/", nil)
	if err != nil {
		panic(err)
	}
	start := time.Now()
	resp, err := w.signer.RoundTrip(req)
	wait := time.Since(start)
	fail := ""
	if err != nil {
		fail = err.Error()
	} else {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			fail = resp.Status + " " + resp.Header.Get("X-Amzn-ErrorType")
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.requests++
	l.worst = max(l.worst, wait)
	if fail != "" {
		l.failures = append(l.failures, fail)
	}
}

// run sends requests from n workers, each every period, until stop.
func (w *world) run(l *load, n int, period time.Duration, stop time.Time) *sync.WaitGroup {
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for time.Now().Before(stop) {
				w.send(l)
				time.Sleep(period)
			}
		})
	}
	return &wg
}

// faultRow is one line of the fault table.
type faultRow struct {
	name     string
	faults   []imdstest.Fault
	requests int
	failures int
	calls    int           // IMDS requests from the fault's start until the run's end
	worst    time.Duration // the longest a request waited for credentials
	recovery string        // when kivuli held credentials renewed past the fault
}

var faultRows = []struct {
	name   string
	faults []imdstest.Fault
}{
	{"token PUT 500", []imdstest.Fault{{Target: imdstest.TokenPath, Status: 500}}},
	{"token PUT 503 (Retry-After: 1)", []imdstest.Fault{{Target: imdstest.TokenPath, Status: 503, RetryAfter: 1}}},
	{"token PUT 429 (Retry-After: 1)", []imdstest.Fault{{Target: imdstest.TokenPath, Status: 429, RetryAfter: 1}}},
	{"token PUT hangs", []imdstest.Fault{{Target: imdstest.TokenPath, Hang: true}}},
	{"token PUT 405", []imdstest.Fault{{Target: imdstest.TokenPath, Status: 405}}},
	{"document 500", []imdstest.Fault{{Target: imdstest.CredentialsPath, Status: 500}}},
	{"document 503 (Retry-After: 1)", []imdstest.Fault{{Target: imdstest.CredentialsPath, Status: 503, RetryAfter: 1}}},
	{"document 429 (Retry-After: 1)", []imdstest.Fault{{Target: imdstest.CredentialsPath, Status: 429, RetryAfter: 1}}},
	{"document hangs", []imdstest.Fault{{Target: imdstest.CredentialsPath, Hang: true}}},
	{"malformed JSON", []imdstest.Fault{{Target: imdstest.CredentialsPath, Body: `{"Code":"Success","AccessKeyId":"ASIA`}}},
	{"Code != Success", []imdstest.Fault{{Target: imdstest.CredentialsPath, Code: "AssumeRoleUnauthorizedAccess", Message: "EC2 cannot assume the role"}}},
	{"missing fields", []imdstest.Fault{{Target: imdstest.CredentialsPath,
		Body: `{"Code":"Success","Type":"AWS-HMAC","AccessKeyId":"ASIAQWERTYUIOPASDFGH","Expiration":"2030-01-01T00:00:00Z"}`}}},
	{"already-expired document", []imdstest.Fault{{Target: imdstest.CredentialsPath, Expired: true}}},
	{"401 on every GET", []imdstest.Fault{{Target: imdstest.RoleListPath, Status: 401}, {Target: imdstest.CredentialsPath, Status: 401}}},
	{"connection reset", []imdstest.Fault{{Target: imdstest.AnyPath, Reset: true}}},
}

// maxFaultCalls bounds the IMDS requests of one row, from the fault's
// start to the end of the run (22.5 minutes, about 2,700 signed requests
// and 60 Invalidate calls): retries are spaced by a backoff that doubles
// from 5-10 s to 5 min, brought forward to the refresh deadline and to
// just before the expiry, forced refreshes by that backoff too, and each
// try makes at most 4 attempts of each of its (up to 3) requests, plus the
// 401 retries. One IMDS fetch per request, or per Invalidate, would be
// thousands, or hundreds.
const maxFaultCalls = 200

// TestFaultSuite runs the fault matrix of issue 9: for each fault, from 20
// minutes before the credentials expire (before the background refresh) to
// 30 s before (past the refresh deadline), IMDS misbehaves while 4 workers
// send a signed request every 2 s and something invalidates the
// credentials every 20 s, as ExpiredToken answers would; then the fault
// clears and the requests go on until 2 minutes after the old credentials'
// expiry. Every row must show no failed request at all (the credentials in
// hand serve through the fault, and the retry brought forward to just
// before the expiry finds the recovered IMDS), bounded IMDS calls,
// credentials renewed before the old ones expire, and no goroutine left.
func TestFaultSuite(t *testing.T) {
	var rows []faultRow
	for _, tc := range faultRows {
		t.Run(tc.name, func(t *testing.T) {
			baseline := goleak.IgnoreCurrent()
			row := faultRow{name: tc.name, faults: tc.faults}
			synctest.Test(t, func(t *testing.T) { runFaultRow(t, &row) })
			goleak.VerifyNone(t, baseline) // synctest.Test has also checked that the bubble's goroutines ended
			rows = append(rows, row)
		})
	}
	table := faultTable(rows)
	t.Log("\n" + table)
	kivuli.UpdateReliabilityDoc(t, "faults", table)
}

func runFaultRow(t *testing.T, row *faultRow) {
	w := newWorld(t, imdstest.Config{Lifetime: suiteLifetime}, kivuli.WithTokenTTL(suiteTokenTTL))
	defer w.close()
	events, unsubscribe := w.creds.Subscribe()
	defer unsubscribe()
	expires := w.creds.Expires()
	faultStart, faultEnd, stop := expires.Add(-20*time.Minute), expires.Add(-30*time.Second), expires.Add(2*time.Minute)

	time.Sleep(time.Until(faultStart))
	synctest.Wait()
	before := w.imds.Stats().Total
	for _, f := range row.faults {
		w.imds.Inject(f)
	}
	var l load
	workers := w.run(&l, suiteWorkers, suitePeriod, stop)
	var invalidations sync.WaitGroup
	invalidations.Go(func() {
		for time.Now().Before(faultEnd) {
			w.creds.Invalidate()
			time.Sleep(suiteInvalid)
		}
	})
	time.Sleep(time.Until(faultEnd))
	w.imds.ClearFaults()
	cleared := time.Now()
	workers.Wait()
	invalidations.Wait()
	synctest.Wait()

	row.requests, row.failures, row.worst = l.requests, len(l.failures), l.worst
	row.calls = w.imds.Stats().Total - before
	var renewed time.Time
	for len(events) > 0 {
		ev := <-events
		if ev.Err == nil && !ev.Extended && ev.Expires.After(expires) && renewed.IsZero() {
			renewed = ev.End
		}
	}
	switch {
	case renewed.IsZero():
		row.recovery = "never"
	case renewed.Before(cleared):
		row.recovery = "renewed during the fault"
	default:
		row.recovery = fmt.Sprintf("+%v after it cleared", renewed.Sub(cleared).Round(100*time.Millisecond))
	}

	assert.Zero(t, row.failures, "failed requests: %v", firstFew(l.failures))
	assert.LessOrEqual(t, row.calls, maxFaultCalls, "IMDS requests")
	assert.False(t, renewed.IsZero(), "credentials renewed after the fault")
	assert.True(t, renewed.Before(expires), "renewed before the old credentials expired (at %v)", renewed.Sub(expires))
	v, err := w.creds.Retrieve(t.Context())
	if assert.NoError(t, err) {
		assert.Equal(t, w.imds.Current().AccessKeyID, v.AccessKeyID, "the credentials IMDS serves now")
	}
	t.Logf("%d requests, %d failed, %d IMDS calls, worst wait %v, recovery: %s", row.requests, row.failures, row.calls, row.worst, row.recovery)
}

func firstFew(s []string) []string { return s[:min(len(s), 5)] }

func faultTable(rows []faultRow) string {
	var b strings.Builder
	b.WriteString("| fault | requests | failures | IMDS calls | worst wait | recovery |\n|---|---:|---:|---:|---:|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %v | %s |\n", r.name, r.requests, r.failures, r.calls, r.worst.Round(time.Millisecond), r.recovery)
	}
	return b.String()
}

// TestRotationSoak: 8 hours of fake time with 5-minute credentials, which
// kivuli renews every 3 to 3.5 minutes (at least 120 rotations), and two
// workers sending a signed request every 3 s: no signature failure, no
// failed refresh, no wait, and at most 3 IMDS requests per rotation (token
// PUT, role list, document).
func TestRotationSoak(t *testing.T) {
	const (
		lifetime  = 5 * time.Minute
		rotations = 120
	)
	var soak string
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, imdstest.Config{Lifetime: lifetime})
		defer w.close()
		events, unsubscribe := w.creds.Subscribe()
		defer unsubscribe()
		var (
			mu      sync.Mutex
			changes int
			extra   int // refreshes that got the same set back
			failed  int
		)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for ev := range events {
				mu.Lock()
				switch {
				case ev.Err != nil:
					failed++
				case ev.Changed:
					changes++
				default:
					extra++
				}
				mu.Unlock()
			}
		}()
		start := time.Now()
		before := w.imds.Stats()
		var l load
		w.run(&l, 2, 3*time.Second, start.Add(rotations*(lifetime-time.Minute))).Wait()
		synctest.Wait()
		after := w.imds.Stats()
		unsubscribe()
		<-done
		calls := after.Total - before.Total
		mu.Lock()
		defer mu.Unlock()
		perRotation := float64(calls) / float64(changes)
		soak = fmt.Sprintf("| %d | %v | %v | %d | %d | %d | %d | %.2f (%d token PUTs, %d role lists, %d documents) | %v |\n",
			changes, lifetime, time.Since(start).Round(time.Minute), l.requests, len(l.failures), failed, extra,
			perRotation, after.TokenPUTs-before.TokenPUTs, after.RoleLists-before.RoleLists, after.CredentialGETs-before.CredentialGETs,
			l.worst.Round(time.Millisecond))
		assert.GreaterOrEqual(t, changes, rotations, "rotations")
		assert.Zero(t, len(l.failures), "signature failures: %v", firstFew(l.failures))
		assert.Zero(t, failed, "failed refreshes")
		assert.LessOrEqual(t, perRotation, 3.0, "IMDS requests per rotation")
		assert.Zero(t, l.worst, "no request waited")
		t.Logf("rotation soak: %d rotations of %v credentials, %d signed requests, %d failed, %.2f IMDS calls per rotation",
			changes, lifetime, l.requests, len(l.failures), perRotation)
	})
	kivuli.UpdateReliabilityDoc(t, "soak",
		"| rotations | lifetime | fake time | signed requests | failures | failed refreshes | refreshes that changed nothing | IMDS calls per rotation | worst wait |\n"+
			"|---:|---:|---:|---:|---:|---:|---:|---|---:|\n"+soak)
}

// TestSignedStorm: 10,000 signed requests at once, first at the refresh
// deadline (none waits, one IMDS document GET), then right after the
// credentials are invalidated with a new set in IMDS (all wait for one
// GET, all signed with the new set); no request fails.
func TestSignedStorm(t *testing.T) {
	const callers = 10000
	var lines []string
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, imdstest.Config{Lifetime: suiteLifetime}, kivuli.WithoutBackground())
		defer w.close()
		// storm lets 10,000 callers send a signed request at once, after
		// prepare; the one document GET it causes takes 10 ms of fake time.
		storm := func(name string, prepare func(), wantWait time.Duration) {
			t.Helper()
			first, _ := w.creds.Retrieve(t.Context())
			before := w.imds.Stats().CredentialGETs
			w.imds.Inject(imdstest.Fault{Target: imdstest.CredentialsPath, Delay: 10 * time.Millisecond, Times: 1})
			prepare()
			var l load
			var wg sync.WaitGroup
			start := make(chan struct{})
			for range callers {
				wg.Go(func() { <-start; w.send(&l) })
			}
			synctest.Wait()
			close(start)
			wg.Wait()
			time.Sleep(10 * time.Millisecond)
			synctest.Wait()
			gets := w.imds.Stats().CredentialGETs - before
			v, _ := w.creds.Retrieve(t.Context())
			assert.Equal(t, callers, l.requests)
			assert.Zero(t, len(l.failures), "%s: failures %v", name, firstFew(l.failures))
			assert.Equal(t, 1, gets, "%s: one document GET", name)
			assert.NotEqual(t, first.AccessKeyID, v.AccessKeyID, "%s: renewed", name)
			assert.Equal(t, wantWait, l.worst, "%s: worst wait", name)
			lines = append(lines, fmt.Sprintf("| %s | %d | %d | %d | %v |", name, l.requests, len(l.failures), gets, l.worst))
		}
		storm("at the refresh deadline (credentials valid one more minute): none waits", func() {
			time.Sleep(time.Until(w.creds.Expires().Add(-kivuli.RefreshDeadline)))
			synctest.Wait()
		}, 0)
		storm("after Invalidate, IMDS holding a new set: all wait for it", func() {
			w.imds.Rotate()
			w.creds.Invalidate()
		}, 10*time.Millisecond)
	})
	kivuli.UpdateReliabilityDoc(t, "storm", "| 10,000 signed requests at once | requests | failures | document GETs | worst wait |\n|---|---:|---:|---:|---:|\n"+
		strings.Join(lines, "\n")+"\n")
}

// serviceFunc is an http.RoundTripper in a function: a service in memory.
type serviceFunc func(*http.Request) (*http.Response, error)

func (f serviceFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestFleetIMDSCalls (issue 9, point 10): what one process asks of IMDS per
// credential lifetime, over 48 hours of 6-hour credentials: when IMDS
// rotates every hour (as EC2 is seen to, the emulator's default) every
// background refresh gets a new set; when it rotates only 5 minutes before
// expiry (the minimum EC2 documents) the refreshes before that get the
// same set back and try again later (at a quarter of the time left, at
// least 30 s later): two refreshes per lifetime.
func TestFleetIMDSCalls(t *testing.T) {
	const span = 48 * time.Hour
	var lines []string
	for _, tc := range []struct {
		name   string
		rotate time.Duration
		max    float64 // IMDS requests per credential lifetime
	}{
		{"every hour (EC2 as seen; the emulator's default)", 0, 3},
		{"5 minutes before expiry (EC2's documented minimum)", 5 * time.Minute, 6},
	} {
		synctest.Test(t, func(t *testing.T) {
			w := newWorld(t, imdstest.Config{RotateBefore: tc.rotate})
			defer w.close()
			events, unsubscribe := w.creds.Subscribe()
			defer unsubscribe()
			var refreshes, changed, failed int
			done := make(chan struct{})
			go func() {
				defer close(done)
				for ev := range events {
					refreshes++
					if ev.Changed {
						changed++
					}
					if ev.Err != nil {
						failed++
					}
				}
			}()
			before := w.imds.Stats()
			time.Sleep(span)
			synctest.Wait()
			after := w.imds.Stats()
			unsubscribe()
			<-done
			lifetimes := float64(span) / float64(6*time.Hour)
			perLifetime := float64(after.Total-before.Total) / lifetimes
			assert.Zero(t, failed)
			assert.GreaterOrEqual(t, changed, int(lifetimes), "a new set each lifetime at least")
			assert.LessOrEqual(t, perLifetime, tc.max, "IMDS requests per credential lifetime")
			lines = append(lines, fmt.Sprintf("| %s | %.2f | %.2f | %.2f (%.2f token PUTs, %.2f role lists, %.2f documents) |",
				tc.name, float64(refreshes)/lifetimes, float64(changed)/lifetimes, perLifetime,
				float64(after.TokenPUTs-before.TokenPUTs)/lifetimes, float64(after.RoleLists-before.RoleLists)/lifetimes,
				float64(after.CredentialGETs-before.CredentialGETs)/lifetimes))
		})
	}
	kivuli.UpdateReliabilityDoc(t, "calls", "| IMDS rotates | refreshes per 6 h lifetime | of which new sets | IMDS requests per lifetime |\n|---|---:|---:|---|\n"+
		strings.Join(lines, "\n")+"\n")
	t.Log("\n" + strings.Join(lines, "\n"))
}
