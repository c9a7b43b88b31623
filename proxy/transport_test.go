package proxy

import (
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kivuli-go/kivuli/imdstest"
	"github.com/kivuli-go/kivuli/internal/wiretest"
	"github.com/kivuli-go/kivuli/sigv4test"
)

// Retries: a request whose body can be sent again (spooled here) is
// retried after a 503, signed anew, the whole body sent each time; an
// expired-token answer makes the proxy refresh its credentials and retry
// once with the new ones; a streamed body is sent once; MaxAttempts 1
// sends everything once.
func TestProxyRetries(t *testing.T) {
	var fail atomic.Int32 // answers 503 to this many requests
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if fail.Add(-1) >= 0 {
			http.Error(w, `{"__type":"ServiceUnavailableException"}`, http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok")
	})
	f := wiretest.NewFixture(t, imdstestConfig(), handler)
	p := startProxy(t, f, Config{SignHost: "search-logs-abc.eu-west-2.es.amazonaws.com", MaxBuffer: 16 << 10})
	post := func(url string, body io.Reader, n int64) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, url, body)
		req.ContentLength = n
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}

	fail.Store(1)
	const size = 300 << 10 // spooled
	if code, body := post(p.url+"/_bulk", io.LimitReader(&wiretest.BulkReader{}, size), size); code != http.StatusOK {
		t.Fatalf("after one 503: %d %s", code, body)
	}
	recs := wiretest.Accepted(t, f.AWS)
	if len(recs) != 2 || recs[0].BodyLen != size || recs[1].BodyLen != size || recs[0].PayloadHash != recs[1].PayloadHash {
		t.Errorf("want the whole body twice: %+v", recs)
	}

	// An expired token: the upstream takes the key the proxy holds for
	// expired; IMDS has issued a new one since the proxy started.
	fail.Store(0)
	f3 := &wiretest.Fixture{IMDS: imdstest.NewServer(imdstest.Config{}), AWS: nil}
	defer f3.IMDS.Close()
	old3 := f3.IMDS.Current().AccessKeyID
	v3 := &sigv4test.Verifier{Secrets: func(id string) (sigv4test.Credentials, bool) {
		c, ok := f3.IMDS.Lookup(id)
		if id == old3 {
			c.Expiration = time.Now().Add(-time.Minute)
		}
		return sigv4test.Credentials(c), ok
	}}
	f3.AWS = sigv4test.NewServer(v3, handler)
	defer f3.AWS.Close()
	p3 := startProxy(t, f3, Config{SignHost: "sts.eu-west-2.amazonaws.com"})
	f3.IMDS.Rotate()
	if code, body := post(p3.url+"/?Action=GetCallerIdentity&Version=2011-06-15", nil, 0); code != http.StatusOK {
		t.Fatalf("after ExpiredToken: %d %s", code, body)
	}
	recs = f3.AWS.Records()
	if len(recs) != 2 || recs[0].AccessKeyID != old3 || !isCode(recs[0].Err, "ExpiredToken") || recs[1].Err != nil || recs[1].AccessKeyID == old3 {
		t.Errorf("want ExpiredToken with the old key, then accepted with the new one: %+v", recs)
	}

	// A streamed body (S3, over MaxBuffer) is sent once.
	s3 := wiretest.NewFixture(t, imdstestConfig(), handler)
	p4 := startProxy(t, s3, Config{SignHost: "my-bucket.s3.eu-west-2.amazonaws.com", MaxBuffer: 16 << 10})
	fail.Store(1)
	req, _ := http.NewRequest(http.MethodPut, p4.url+"/big.bin", io.LimitReader(wiretest.Zeros{}, size))
	req.ContentLength = size
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || len(s3.AWS.Records()) != 1 {
		t.Errorf("streamed PUT after a 503: %d, %d requests upstream", resp.StatusCode, len(s3.AWS.Records()))
	}

	// MaxAttempts 1.
	f5 := wiretest.NewFixture(t, imdstestConfig(), handler)
	p5 := startProxy(t, f5, Config{SignHost: "sts.eu-west-2.amazonaws.com", MaxAttempts: 1})
	fail.Store(1)
	if code, _ := post(p5.url+"/?Action=GetCallerIdentity&Version=2011-06-15", nil, 0); code != http.StatusServiceUnavailable || len(f5.AWS.Records()) != 1 {
		t.Errorf("MaxAttempts 1 after a 503: %d, %d requests upstream", code, len(f5.AWS.Records()))
	}
}

func isCode(err error, code string) bool {
	e, ok := err.(*sigv4test.Error)
	return ok && e.Code == code
}

// The upstream's connections are kept and reused under concurrent load:
// three rounds of 32 requests, which the upstream holds until all 32 of a
// round have arrived, open 32 connections in all; with MaxIdleConns 2,
// each round after the first opens 30 more (net/http's default keeps 2).
func TestProxyConnectionPool(t *testing.T) {
	const clients, rounds = 32, 3
	for _, c := range []struct {
		name  string
		cfg   Config
		conns int
	}{
		{"default", Config{}, clients},
		{"MaxIdleConns 2", Config{MaxIdleConns: 2}, clients + (rounds-1)*(clients-2)},
	} {
		t.Run(c.name, func(t *testing.T) {
			var mu sync.Mutex
			conns := map[string]bool{}
			var arrived atomic.Int32
			gates := make([]chan struct{}, rounds)
			for i := range gates {
				gates[i] = make(chan struct{})
			}
			f := wiretest.NewFixture(t, imdstestConfig(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				conns[r.RemoteAddr] = true
				mu.Unlock()
				n := int(arrived.Add(1))
				if n%clients == 0 {
					close(gates[n/clients-1])
				}
				select {
				case <-gates[(n-1)/clients]:
				case <-time.After(wiretest.FailAfter):
					t.Errorf("round %d: the requests did not arrive together", (n-1)/clients+1)
				}
				io.WriteString(w, "ok")
			}))
			c.cfg.SignHost = "sts.eu-west-2.amazonaws.com"
			p := startProxy(t, f, c.cfg)
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2 * clients}}
			defer client.CloseIdleConnections()
			for round := range rounds {
				var wg sync.WaitGroup
				for range clients {
					wg.Go(func() {
						resp, err := client.Get(p.url + "/?Action=GetCallerIdentity&Version=2011-06-15")
						if err != nil {
							t.Error(err)
							return
						}
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					})
				}
				wg.Wait()
				// Logged once its handler has returned, after the upstream's
				// answer was read to its end and its connection put back.
				p.waitRequests(t, (round+1)*clients)
			}
			mu.Lock()
			n := len(conns)
			mu.Unlock()
			if n != c.conns {
				t.Errorf("%d connections to the upstream, want %d", n, c.conns)
			}
			wiretest.Accepted(t, f.AWS)
		})
	}
}
