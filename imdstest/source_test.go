package imdstest

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// TestCredentialsFromSource (issue 18, point 3): with Config.Credentials,
// the documents carry the source's credentials, fetched on each GET, with
// the source's expiry (or one Lifetime ahead for credentials that do not
// expire), faults applying as ever.
func TestCredentialsFromSource(t *testing.T) {
	eachTransport(t, func(t *testing.T, start func(Config) harness) {
		src := &fakeSource{canExpire: true, expires: epoch.Add(45 * time.Minute)}
		clock := newClock()
		h := start(Config{Credentials: src, Lifetime: time.Hour, Clock: clock.Now})
		d := h.creds(t)
		if d.Code != "Success" || d.AccessKeyID != "ASIAREALKEY" || d.SecretAccessKey != "real/secret+key" || d.Token != "real/token+==" ||
			d.Expiration != "2026-11-28T17:45:00Z" {
			t.Errorf("document %+v, want the source's credentials", d)
		}
		h.creds(t)
		if n := src.calls.Load(); n != 2 {
			t.Errorf("the source was asked %d times for 2 GETs", n)
		}
		if len(h.srv.st.sets) != 0 {
			t.Errorf("the server issued %d sets of its own", len(h.srv.st.sets))
		}

		src.set(false, nil)
		if d := h.creds(t); d.Expiration != "2026-11-28T18:00:00Z" {
			t.Errorf("credentials that never expire: Expiration %s, want one Lifetime ahead", d.Expiration)
		}
		h.srv.Inject(Fault{Target: CredentialsPath, Expired: true, Times: 1})
		if d := h.creds(t); d.Expiration != "2026-11-28T16:59:00Z" || d.AccessKeyID != "ASIAREALKEY" {
			t.Errorf("Expired fault: %+v, want the source's credentials, expired", d)
		}
		h.srv.Inject(Fault{Target: CredentialsPath, Code: "AssumeRoleUnauthorizedAccess", Times: 1})
		if res := h.do(t, http.MethodGet, credsPath); !strings.Contains(res.body, "AssumeRoleUnauthorizedAccess") || strings.Contains(res.body, "ASIAREALKEY") {
			t.Errorf("Code fault: %q", res.body)
		}

		src.set(false, errors.New("the source failed"))
		if res := h.do(t, http.MethodGet, credsPath); res.status != http.StatusInternalServerError || res.body != "the source failed" {
			t.Errorf("a failing source: %d %q, want 500 and its error", res.status, res.body)
		}
	})
}

// fakeSource serves fixed credentials, or fails.
type fakeSource struct {
	calls   atomic.Int32
	expires time.Time

	mu        sync.Mutex
	canExpire bool
	fail      error
}

func (s *fakeSource) set(canExpire bool, fail error) {
	s.mu.Lock()
	s.canExpire, s.fail = canExpire, fail
	s.mu.Unlock()
}

func (s *fakeSource) Retrieve(context.Context) (aws.Credentials, error) {
	s.calls.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return aws.Credentials{}, s.fail
	}
	return aws.Credentials{AccessKeyID: "ASIAREALKEY", SecretAccessKey: "real/secret+key", SessionToken: "real/token+==",
		CanExpire: s.canExpire, Expires: s.expires}, nil
}

// TestSourceOutsideLock: a source that takes its time holds only its own
// request, not the server.
func TestSourceOutsideLock(t *testing.T) {
	entered := make(chan struct{})
	src := aws.CredentialsProviderFunc(func(ctx context.Context) (aws.Credentials, error) {
		close(entered)
		<-ctx.Done()
		return aws.Credentials{}, ctx.Err()
	})
	h := transports[1].start(t, Config{Credentials: src})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := h.send(ctx, http.MethodGet, credsPath)
		done <- err
	}()
	receive(t, entered, "the source's Retrieve")
	if res := h.do(t, http.MethodGet, regionPath); res.status != 200 {
		t.Errorf("region while the source is busy: %d", res.status)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("the credential GET ended with %v, want the request's context", err)
	}
}
