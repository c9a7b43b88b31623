package kivuli_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/kivuli-go/kivuli"
	"github.com/kivuli-go/kivuli/imdstest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// inMemory returns options that reach srv without sockets, as synctest
// bubbles need.
func inMemory(srv *imdstest.Server) kivuli.Option {
	return kivuli.WithHTTPClient(&http.Client{Transport: srv.RoundTripper()})
}

func newIMDS(t *testing.T, opts ...kivuli.Option) *kivuli.IMDS {
	t.Helper()
	p, err := kivuli.NewIMDS(opts...)
	require.NoError(t, err)
	return p
}

func TestIMDSv2(t *testing.T) {
	srv := imdstest.NewServer(imdstest.Config{Mode: imdstest.TokenRequired})
	defer srv.Close()
	var ttls []string
	spy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			ttls = append(ttls, r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds"))
		}
		srv.ServeHTTP(w, r)
	}))
	defer spy.Close()

	p := newIMDS(t, kivuli.WithEndpoint(spy.URL))
	for range 3 {
		v, err := p.Retrieve(context.Background())
		require.NoError(t, err)
		cur := srv.Current()
		assert.Equal(t, cur.AccessKeyID, v.AccessKeyID)
		assert.Equal(t, cur.SecretAccessKey, v.SecretAccessKey)
		assert.Equal(t, cur.SessionToken, v.SessionToken)
		assert.True(t, cur.Expiration.Equal(v.Expires))
		assert.True(t, v.CanExpire)
	}
	st := srv.Stats()
	assert.Equal(t, 1, st.TokenPUTs, "the token is cached across calls")
	assert.Equal(t, 3, st.RoleLists, "the role is discovered on each call")
	assert.Equal(t, 3, st.CredentialGETs)
	assert.Zero(t, st.Unauthorized)
	assert.Equal(t, []string{"21600"}, ttls, "default token TTL")
}

func TestIMDSTokenExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := imdstest.NewHandler(imdstest.Config{Mode: imdstest.TokenRequired})
		defer srv.Close()
		p := newIMDS(t, inMemory(srv), kivuli.WithTokenTTL(10*time.Second), kivuli.WithRoleName("kivuli-test-role"))
		_, err := p.Retrieve(t.Context())
		require.NoError(t, err)
		time.Sleep(8 * time.Second) // inside the TTL, but for its 10% margin
		_, err = p.Retrieve(t.Context())
		require.NoError(t, err)
		assert.Equal(t, 1, srv.Stats().TokenPUTs)
		time.Sleep(1500 * time.Millisecond) // 9.5 s: within the margin
		_, err = p.Retrieve(t.Context())
		require.NoError(t, err)
		assert.Equal(t, 2, srv.Stats().TokenPUTs, "a token is renewed shortly before its TTL runs out")
		assert.Zero(t, srv.Stats().Unauthorized)
	})
}

func TestIMDS401DropsTokenAndRetriesOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := imdstest.NewHandler(imdstest.Config{Mode: imdstest.TokenRequired})
		defer srv.Close()
		p := newIMDS(t, inMemory(srv))
		_, err := p.Retrieve(t.Context())
		require.NoError(t, err)

		srv.Inject(imdstest.Fault{Target: imdstest.CredentialsPath, Status: http.StatusUnauthorized, Times: 1})
		_, err = p.Retrieve(t.Context())
		require.NoError(t, err)
		assert.Equal(t, 2, srv.Stats().TokenPUTs, "a 401 drops the token")

		srv.Inject(imdstest.Fault{Target: imdstest.CredentialsPath, Status: http.StatusUnauthorized})
		before := srv.Stats().CredentialGETs
		_, err = p.Retrieve(t.Context())
		var ie *kivuli.IMDSError
		require.ErrorAs(t, err, &ie)
		assert.Equal(t, http.StatusUnauthorized, ie.StatusCode)
		assert.Equal(t, 2, srv.Stats().CredentialGETs-before, "a 401 is retried once, not in a loop")
	})
}

func TestIMDSv1Fallback(t *testing.T) {
	for _, status := range []int{http.StatusForbidden, http.StatusNotFound, http.StatusMethodNotAllowed} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			srv := imdstest.NewServer(imdstest.Config{Mode: imdstest.TokenUnsupported, TokenStatus: status})
			defer srv.Close()
			p := newIMDS(t, kivuli.WithEndpoint(srv.URL))
			for range 2 {
				v, err := p.Retrieve(t.Context())
				require.NoError(t, err)
				assert.Equal(t, srv.Current().AccessKeyID, v.AccessKeyID)
			}
			st := srv.Stats()
			assert.Equal(t, 2, st.TokenPUTs, "the fallback is not sticky: each call tries IMDSv2 first")
			assert.Equal(t, 4, st.V1Requests)
		})
	}
	t.Run("forbidden by AWS_EC2_METADATA_V1_DISABLED", func(t *testing.T) {
		t.Setenv("AWS_EC2_METADATA_V1_DISABLED", "true")
		srv := imdstest.NewServer(imdstest.Config{Mode: imdstest.TokenUnsupported})
		defer srv.Close()
		_, err := newIMDS(t, kivuli.WithEndpoint(srv.URL)).Retrieve(t.Context())
		require.ErrorIs(t, err, kivuli.ErrIMDSv1Disabled)
		assert.Zero(t, srv.Stats().V1Requests)
	})
	t.Run("token PUT dropped (hop limit 1)", func(t *testing.T) {
		srv := imdstest.NewServer(imdstest.Config{})
		defer srv.Close()
		srv.Inject(imdstest.Fault{Target: imdstest.TokenPath, Hang: true})
		start := time.Now()
		v, err := newIMDS(t, kivuli.WithEndpoint(srv.URL)).Retrieve(t.Context())
		require.NoError(t, err)
		assert.Equal(t, srv.Current().AccessKeyID, v.AccessKeyID)
		assert.Equal(t, 1, srv.Stats().TokenPUTs, "a timed-out PUT is not retried")
		t.Logf("fallback after a dropped PUT took %v", time.Since(start))
	})
	t.Run("without API token", func(t *testing.T) {
		srv := imdstest.NewServer(imdstest.Config{})
		defer srv.Close()
		_, err := newIMDS(t, kivuli.WithEndpoint(srv.URL), kivuli.WithoutAPIToken()).Retrieve(t.Context())
		require.NoError(t, err)
		assert.Zero(t, srv.Stats().TokenPUTs)
	})
	t.Run("IMDSv2 required after a fallback", func(t *testing.T) {
		// The PUT fails once with 404, then IMDS wants a token after all.
		srv := imdstest.NewServer(imdstest.Config{Mode: imdstest.TokenRequired})
		defer srv.Close()
		srv.Inject(imdstest.Fault{Target: imdstest.TokenPath, Status: http.StatusNotFound, Times: 1})
		_, err := newIMDS(t, kivuli.WithEndpoint(srv.URL)).Retrieve(t.Context())
		require.NoError(t, err)
		assert.Equal(t, 2, srv.Stats().TokenPUTs)
	})
}

func TestIMDSTokenBadRequest(t *testing.T) {
	srv := imdstest.NewServer(imdstest.Config{})
	defer srv.Close()
	srv.Inject(imdstest.Fault{Target: imdstest.TokenPath, Status: http.StatusBadRequest})
	_, err := newIMDS(t, kivuli.WithEndpoint(srv.URL)).Retrieve(t.Context())
	var ie *kivuli.IMDSError
	require.ErrorAs(t, err, &ie)
	assert.Equal(t, http.StatusBadRequest, ie.StatusCode)
	assert.Equal(t, "token", ie.Op)
	assert.Zero(t, srv.Stats().CredentialGETs, "a 400 on the token is terminal")
}

func TestIMDSRetries(t *testing.T) {
	for _, tc := range []struct {
		name     string
		fault    imdstest.Fault
		attempts int
		ok       bool
	}{
		{"500 twice", imdstest.Fault{Target: imdstest.CredentialsPath, Status: 500, Times: 2}, 3, true},
		{"503 with Retry-After", imdstest.Fault{Target: imdstest.CredentialsPath, Status: 503, RetryAfter: 1, Times: 1}, 2, true},
		{"429 throttled", imdstest.Fault{Target: imdstest.CredentialsPath, Status: 429, Times: 3}, 4, true},
		{"500 for ever", imdstest.Fault{Target: imdstest.CredentialsPath, Status: 500}, 4, false},
		{"501 not retried", imdstest.Fault{Target: imdstest.CredentialsPath, Status: 501}, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := imdstest.NewHandler(imdstest.Config{})
				defer srv.Close()
				p := newIMDS(t, inMemory(srv), kivuli.WithRoleName("kivuli-test-role"))
				srv.Inject(tc.fault)
				start := time.Now()
				_, err := p.Retrieve(t.Context())
				assert.Equal(t, tc.attempts, srv.Stats().CredentialGETs)
				assert.Less(t, time.Since(start), 4*time.Second, "backoff is capped")
				if tc.ok {
					require.NoError(t, err)
					return
				}
				var ie *kivuli.IMDSError
				require.ErrorAs(t, err, &ie)
				assert.Equal(t, tc.fault.Status, ie.StatusCode)
			})
		})
	}
}

func TestIMDSNoRole(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  imdstest.Config
		opt  kivuli.Option
		f    *imdstest.Fault
	}{
		{"404 role list", imdstest.Config{NoRole: true}, nil, nil},
		{"empty role list", imdstest.Config{}, nil, &imdstest.Fault{Target: imdstest.RoleListPath, Status: 200, Body: "\n"}},
		{"unknown role", imdstest.Config{}, kivuli.WithRoleName("not-this-one"), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := imdstest.NewServer(tc.cfg)
			defer srv.Close()
			if tc.f != nil {
				srv.Inject(*tc.f)
			}
			opts := []kivuli.Option{kivuli.WithEndpoint(srv.URL)}
			if tc.opt != nil {
				opts = append(opts, tc.opt)
			}
			_, err := newIMDS(t, opts...).Retrieve(t.Context())
			require.ErrorIs(t, err, kivuli.ErrNoRole)
			assert.NotErrorIs(t, err, kivuli.ErrNotOnEC2)
		})
	}
}

func TestIMDSDocument(t *testing.T) {
	valid := `{"Code":"Success","AccessKeyId":"ASIAEXAMPLE","SecretAccessKey":"SECRETKEYVALUE","Token":"TOKENVALUE","Expiration":"2030-01-01T00:00:00Z"}`
	for _, tc := range []struct {
		name   string
		fault  imdstest.Fault
		reason string
	}{
		{"not JSON", imdstest.Fault{Body: `{"Code":"Success","SecretAccessKey":"SECRETKEYVALUE",`}, "not JSON"},
		{"wrong type", imdstest.Fault{Body: `{"Code":"Success","AccessKeyId":7}`}, "AccessKeyId"},
		{"missing key", imdstest.Fault{Body: strings.Replace(valid, `"AccessKeyId":"ASIAEXAMPLE",`, "", 1)}, "missing AccessKeyId"},
		{"missing secret", imdstest.Fault{Body: strings.Replace(valid, `"SecretAccessKey":"SECRETKEYVALUE",`, "", 1)}, "missing SecretAccessKey"},
		{"missing token", imdstest.Fault{Body: strings.Replace(valid, `"Token":"TOKENVALUE",`, "", 1)}, "missing Token"},
		{"missing expiration", imdstest.Fault{Body: strings.Replace(valid, `,"Expiration":"2030-01-01T00:00:00Z"`, "", 1)}, "missing Expiration"},
		{"bad expiration", imdstest.Fault{Body: strings.Replace(valid, "2030-01-01T00:00:00Z", "tomorrow", 1)}, "RFC 3339"},
		{"missing code", imdstest.Fault{Body: strings.Replace(valid, `"Code":"Success",`, "", 1)}, "missing Code"},
		{"too large", imdstest.Fault{Body: valid[:len(valid)-1] + `,"Pad":"` + strings.Repeat("x", 64<<10) + `"}`}, "64 KiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := imdstest.NewServer(imdstest.Config{})
			defer srv.Close()
			tc.fault.Target = imdstest.CredentialsPath
			srv.Inject(tc.fault)
			_, err := newIMDS(t, kivuli.WithEndpoint(srv.URL)).Retrieve(t.Context())
			require.ErrorIs(t, err, kivuli.ErrInvalidDocument)
			var ke *kivuli.Error
			require.ErrorAs(t, err, &ke)
			assert.Contains(t, err.Error(), tc.reason)
			assert.NotContains(t, err.Error(), "SECRETKEYVALUE")
			assert.NotContains(t, err.Error(), "TOKENVALUE")
		})
	}
	t.Run("code not Success", func(t *testing.T) {
		srv := imdstest.NewServer(imdstest.Config{})
		defer srv.Close()
		srv.Inject(imdstest.Fault{Target: imdstest.CredentialsPath, Code: "AssumeRoleUnauthorizedAccess", Message: "cannot assume role"})
		_, err := newIMDS(t, kivuli.WithEndpoint(srv.URL)).Retrieve(t.Context())
		var ce *kivuli.CredentialsError
		require.ErrorAs(t, err, &ce)
		assert.Equal(t, "AssumeRoleUnauthorizedAccess", ce.Code)
		assert.Equal(t, "cannot assume role", ce.Message)
		assert.Equal(t, "kivuli-test-role", ce.Role)
	})
}

// TestIMDSDocumentShellCharacters (issue 17, point 4): a document whose
// key ID, secret or token holds characters AWS never issues, such as
// values built to break out of a shell's quoting, is an ErrInvalidDocument
// naming the field and never the value; every value AWS issues (long
// base64 tokens with /, + and =; key IDs as IAM documents them) is kept
// as it is.
func TestIMDSDocumentShellCharacters(t *testing.T) {
	const (
		key    = "ASIAQWERTYUIOPASDFGH"
		secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
		token  = "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQD+abc=="
	)
	doc := func(k, s, tok string) string {
		b, err := json.Marshal(map[string]string{"Code": "Success", "Type": "AWS-HMAC", "AccessKeyId": k,
			"SecretAccessKey": s, "Token": tok, "Expiration": "2030-01-01T00:00:00Z"})
		require.NoError(t, err)
		return string(b)
	}
	serve := func(body string) (aws.Credentials, error) {
		srv := imdstest.NewServer(imdstest.Config{})
		defer srv.Close()
		srv.Inject(imdstest.Fault{Target: imdstest.CredentialsPath, Body: body})
		return newIMDS(t, kivuli.WithEndpoint(srv.URL)).Retrieve(t.Context())
	}
	// Without a space first: those reached a shell before (issue 17,
	// point 4); those with one were refused as not visible ASCII already.
	hostile := []string{"x;echo>pwned;#", "$(echo>pwned)", "`echo>pwned`", `x";echo>pwned;echo"`, "x\\", "(echo>pwned)",
		"%PATH%", "x^&calc", "x|y", "x*", "~root", "x'y", "x-y", "x.y",
		"x; touch pwned", "a\"; touch pwned; echo \"", "x\ntouch pwned", "a b", "é", "x\x00"}
	for _, v := range hostile {
		for _, c := range []struct{ field, body string }{
			{"AccessKeyId", doc("ASIA"+v, secret, token)},
			{"SecretAccessKey", doc(key, secret+v, token)},
			{"Token", doc(key, secret, token+v)},
		} {
			_, err := serve(c.body)
			if !assert.ErrorIs(t, err, kivuli.ErrInvalidDocument, "%s with %q", c.field, v) {
				continue
			}
			assert.Contains(t, err.Error(), c.field+" holds characters AWS never issues")
			for _, s := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)} {
				assert.NotContains(t, s, v)
			}
		}
	}
	long := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xfb, 0xff, 0xbf, 0x3e, 0x01}, 300))
	for _, c := range [][3]string{
		{key, secret, token},
		{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCY/EXAMPLEKEY", long + "="},
		{"ASIA_documented_w_pattern", "c2VjcmV0", "dG9rZW4="},
	} {
		got, err := serve(doc(c[0], c[1], c[2]))
		require.NoError(t, err)
		assert.Equal(t, [3]string{got.AccessKeyID, got.SecretAccessKey, got.SessionToken}, c)
	}
}

// hangingListener accepts connections and never answers, as a firewall
// that drops packets after the handshake or a wedged service would.
func hangingListener(t *testing.T) (addr string, conns *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	conns = new(atomic.Int32)
	done := make(chan struct{})
	go func() {
		defer close(done)
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			held = append(held, c)
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return "http://" + ln.Addr().String(), conns
}

func TestNotOnEC2(t *testing.T) {
	t.Run("nothing listening", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := "http://" + ln.Addr().String()
		ln.Close()
		start := time.Now()
		_, err = kivuli.New(t.Context(), kivuli.WithEndpoint(addr))
		elapsed := time.Since(start)
		require.ErrorIs(t, err, kivuli.ErrNotOnEC2)
		t.Logf("New failed with ErrNotOnEC2 after %v (nothing listening)", elapsed)
	})
	t.Run("listener that never answers", func(t *testing.T) {
		addr, conns := hangingListener(t)
		start := time.Now()
		_, err := kivuli.New(t.Context(), kivuli.WithEndpoint(addr))
		elapsed := time.Since(start)
		require.ErrorIs(t, err, kivuli.ErrNotOnEC2)
		assert.Equal(t, int32(2), conns.Load(), "one PUT, one GET, no retries")
		t.Logf("New failed with ErrNotOnEC2 after %v (listener that never answers)", elapsed)
	})
	t.Run("AWS_EC2_METADATA_DISABLED", func(t *testing.T) {
		srv := imdstest.NewServer(imdstest.Config{})
		defer srv.Close()
		t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
		_, err := kivuli.New(t.Context(), kivuli.WithEndpoint(srv.URL))
		require.ErrorIs(t, err, kivuli.ErrIMDSDisabled)
		assert.Zero(t, srv.Stats().Total, "no IMDS call at all")
	})
	t.Run("caller's context bounds everything", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			srv := imdstest.NewHandler(imdstest.Config{})
			defer srv.Close()
			srv.Inject(imdstest.Fault{Target: imdstest.CredentialsPath, Hang: true})
			ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err := kivuli.New(ctx, inMemory(srv))
			require.Error(t, err)
			assert.True(t, errors.Is(err, context.DeadlineExceeded), err)
			assert.Equal(t, 300*time.Millisecond, time.Since(start))
		})
	})
}

func TestIMDSEndpointConfig(t *testing.T) {
	for _, tc := range []struct {
		name, endpoint, env, mode, want string
	}{
		{"default", "", "", "", "http://169.254.169.254"},
		{"IPv6 mode", "", "", "IPv6", "http://[fd00:ec2::254]"},
		{"ipv4 mode", "", "", "ipv4", "http://169.254.169.254"},
		{"environment", "", "http://127.0.0.1:1338/", "IPv6", "http://127.0.0.1:1338"},
		{"option wins", "http://127.0.0.1:9/", "http://127.0.0.1:1338", "", "http://127.0.0.1:9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", tc.env)
			t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", tc.mode)
			p := newIMDS(t, kivuli.WithEndpoint(tc.endpoint))
			assert.Contains(t, p.String(), "endpoint: "+tc.want+",")
		})
	}
	for _, tc := range []struct{ name, endpoint, mode string }{
		{"bad mode", "", "IPv5"},
		{"not a URL", "169.254.169.254", ""},
		{"bad scheme", "ftp://127.0.0.1", ""},
		{"user info", "http://u:p@127.0.0.1", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", tc.mode)
			_, err := kivuli.NewIMDS(kivuli.WithEndpoint(tc.endpoint))
			require.ErrorIs(t, err, kivuli.ErrInvalidConfig)
		})
	}
	for _, opt := range []kivuli.Option{kivuli.WithTokenTTL(0), kivuli.WithTokenTTL(7 * time.Hour), kivuli.WithMaxAttempts(0)} {
		_, err := kivuli.NewIMDS(opt)
		require.ErrorIs(t, err, kivuli.ErrInvalidConfig)
	}
}

func TestIMDSNeverFollowsRedirects(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	redirect := httptest.NewServer(http.RedirectHandler(other.URL, http.StatusTemporaryRedirect))
	defer redirect.Close()
	_, err := newIMDS(t, kivuli.WithEndpoint(redirect.URL)).Retrieve(t.Context())
	var ie *kivuli.IMDSError
	require.ErrorAs(t, err, &ie)
	assert.Equal(t, http.StatusTemporaryRedirect, ie.StatusCode)
	assert.Zero(t, elsewhere.Load(), "the token header must not follow a redirect")
}

func TestIMDSStringHidesToken(t *testing.T) {
	srv := imdstest.NewServer(imdstest.Config{})
	defer srv.Close()
	var token string
	spy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, r)
		if r.Method == http.MethodPut {
			token = rec.Body.String()
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
	}))
	defer spy.Close()
	p := newIMDS(t, kivuli.WithEndpoint(spy.URL))
	_, err := p.Retrieve(t.Context())
	require.NoError(t, err)
	require.NotEmpty(t, token)
	for _, s := range []string{fmt.Sprint(p), fmt.Sprintf("%+v", p), fmt.Sprintf("%#v", p)} {
		assert.NotContains(t, s, token)
	}
}

// TestIMDSBadToken (issue 9, defect 3): a token that cannot be sent is
// refused when it arrives, never cached; IMDS answered, so the error is not
// ErrNotOnEC2; once IMDS recovers, the next call works.
func TestIMDSBadToken(t *testing.T) {
	for _, tc := range []struct{ name, token string }{
		{"control character", "tok\x01bad"},
		{"too long", strings.Repeat("A", 5000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := imdstest.NewServer(imdstest.Config{Mode: imdstest.TokenRequired})
			defer srv.Close()
			srv.Inject(imdstest.Fault{Target: imdstest.TokenPath, Body: tc.token})
			p := newIMDS(t, kivuli.WithEndpoint(srv.URL))
			_, err := p.Retrieve(t.Context())
			var ie *kivuli.IMDSError
			require.ErrorAs(t, err, &ie)
			assert.Equal(t, "token", ie.Op)
			assert.NotErrorIs(t, err, kivuli.ErrNotOnEC2, "IMDS answered: it is there")
			assert.NotContains(t, err.Error(), tc.token)

			srv.ClearFaults()
			v, err := p.Retrieve(t.Context())
			require.NoError(t, err, "the bad token was not cached")
			assert.Equal(t, srv.Current().AccessKeyID, v.AccessKeyID)
		})
	}
}

// TestIMDSDropsTokenOnSendError (issue 9, defect 3): a token whose request
// could not be sent is dropped, whatever the reason; and once IMDS has
// answered, a broken connection is no longer ErrNotOnEC2.
func TestIMDSDropsTokenOnSendError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := imdstest.NewHandler(imdstest.Config{Mode: imdstest.TokenRequired})
		defer srv.Close()
		p := newIMDS(t, inMemory(srv), kivuli.WithRoleName("kivuli-test-role"))
		_, err := p.Retrieve(t.Context())
		require.NoError(t, err)
		srv.Inject(imdstest.Fault{Target: imdstest.CredentialsPath, Reset: true})
		_, err = p.Retrieve(t.Context())
		require.Error(t, err)
		assert.NotErrorIs(t, err, kivuli.ErrNotOnEC2, "IMDS answered before: this instance has one")
		srv.ClearFaults()
		_, err = p.Retrieve(t.Context())
		require.NoError(t, err)
		assert.Equal(t, 2, srv.Stats().TokenPUTs, "the token of the failed request was dropped")
	})
}

// TestIMDSErrorPrefixOnce: wrapped errors say "kivuli: " once, and keep
// errors.Is and errors.As working.
func TestIMDSErrorPrefixOnce(t *testing.T) {
	srv := imdstest.NewServer(imdstest.Config{NoRole: true})
	defer srv.Close()
	_, err := newIMDS(t, kivuli.WithEndpoint(srv.URL)).Retrieve(t.Context())
	require.ErrorIs(t, err, kivuli.ErrNoRole)
	var ie *kivuli.IMDSError
	require.ErrorAs(t, err, &ie)
	assert.Equal(t, http.StatusNotFound, ie.StatusCode)
	assert.Equal(t, 1, strings.Count(err.Error(), "kivuli:"), err.Error())

	t.Setenv("AWS_EC2_METADATA_V1_DISABLED", "true")
	v1 := imdstest.NewServer(imdstest.Config{Mode: imdstest.TokenUnsupported})
	defer v1.Close()
	_, err = newIMDS(t, kivuli.WithEndpoint(v1.URL)).Retrieve(t.Context())
	require.ErrorIs(t, err, kivuli.ErrIMDSv1Disabled)
	require.ErrorAs(t, err, &ie)
	assert.Equal(t, 1, strings.Count(err.Error(), "kivuli:"), err.Error())
}

// TestIMDSErrorNeverQuotesSecrets (issue 8, point 11): an IMDS, or a proxy
// in front of it, that answers an error status with a credential document
// does not put its secrets into the error, the refresh event or the log;
// IMDS's own short answers are still quoted.
func TestIMDSErrorNeverQuotesSecrets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := imdstest.NewHandler(imdstest.Config{Lifetime: time.Hour})
		defer srv.Close()
		var logs bytes.Buffer
		c := newCredentials(t, srv, kivuli.WithoutBackground(), kivuli.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
		events, cancel := c.Subscribe()
		defer cancel()
		srv.Rotate()
		cur := srv.Current()
		leak := fmt.Sprintf(`{"Code":"Success","AccessKeyId":%q,"SecretAccessKey":%q,"Token":%q,"Expiration":"2030-01-01T00:00:00Z"}`,
			cur.AccessKeyID, cur.SecretAccessKey, cur.SessionToken)
		srv.Inject(imdstest.Fault{Target: imdstest.CredentialsPath, Status: http.StatusInternalServerError, Body: leak})
		c.Invalidate()
		_, err := c.Retrieve(t.Context())
		require.NoError(t, err, "the credentials in hand serve")
		ev := <-events
		var ie *kivuli.IMDSError
		require.ErrorAs(t, ev.Err, &ie)
		assert.Empty(t, ie.Body)
		assert.Equal(t, len(leak), ie.BodyLen)
		for _, s := range []string{ev.Err.Error(), fmt.Sprintf("%+v", ev), logs.String()} {
			assert.NotContains(t, s, cur.SecretAccessKey)
			assert.NotContains(t, s, cur.SessionToken)
			assert.NotContains(t, s, cur.AccessKeyID)
		}

		srv.ClearFaults()
		srv.Inject(imdstest.Fault{Target: imdstest.CredentialsPath, Status: http.StatusServiceUnavailable})
		_, err = newIMDS(t, inMemory(srv), kivuli.WithMaxAttempts(1)).Retrieve(t.Context())
		require.ErrorAs(t, err, &ie)
		assert.Equal(t, "Service Unavailable", ie.Body, "IMDS's own short answer is kept")
		assert.Contains(t, err.Error(), `"Service Unavailable"`)
	})
}

// TestIMDSValueFormatting (issue 8, point 13): formatting an IMDS value,
// not only a pointer, never prints its cached session token.
func TestIMDSValueFormatting(t *testing.T) {
	srv := imdstest.NewServer(imdstest.Config{})
	defer srv.Close()
	var token atomic.Value
	spy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, r)
		if r.Method == http.MethodPut {
			token.Store(rec.Body.String())
		}
		maps.Copy(w.Header(), rec.Header())
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
	}))
	defer spy.Close()
	p := newIMDS(t, kivuli.WithEndpoint(spy.URL))
	defer p.CloseIdleConnections()
	_, err := p.Retrieve(t.Context())
	require.NoError(t, err)
	tok, _ := token.Load().(string)
	require.NotEmpty(t, tok)
	for _, s := range []string{fmt.Sprintf("%v", *p), fmt.Sprintf("%+v", *p), fmt.Sprintf("%#v", *p), fmt.Sprint(*p)} {
		assert.NotContains(t, s, tok)
	}
}

// TestCloseReleasesIMDSConnections (issue 9, defect 4): Close leaves no
// keep-alive connection, and no goroutine, behind, with the IMDS server
// still up; a transport of the caller's is the caller's to close.
func TestCloseReleasesIMDSConnections(t *testing.T) {
	srv := imdstest.NewServer(imdstest.Config{})
	defer srv.Close()
	t.Run("default client", func(t *testing.T) {
		base := goleak.IgnoreCurrent()
		c, err := kivuli.New(t.Context(), kivuli.WithEndpoint(srv.URL))
		require.NoError(t, err)
		require.NoError(t, c.Close())
		goleak.VerifyNone(t, base)
	})
	t.Run("caller's http.Transport, cloned", func(t *testing.T) {
		base := goleak.IgnoreCurrent()
		mine := &http.Transport{}
		c, err := kivuli.New(t.Context(), kivuli.WithEndpoint(srv.URL), kivuli.WithHTTPClient(&http.Client{Transport: mine}))
		require.NoError(t, err)
		require.NoError(t, c.Close())
		goleak.VerifyNone(t, base)
	})
	t.Run("IMDS alone", func(t *testing.T) {
		base := goleak.IgnoreCurrent()
		p := newIMDS(t, kivuli.WithEndpoint(srv.URL))
		_, err := p.Retrieve(t.Context())
		require.NoError(t, err)
		p.CloseIdleConnections()
		goleak.VerifyNone(t, base)
	})
	t.Run("caller's RoundTripper, left alone", func(t *testing.T) {
		rt := &idleCounter{RoundTripper: srv.RoundTripper()}
		c, err := kivuli.New(t.Context(), kivuli.WithHTTPClient(&http.Client{Transport: rt}))
		require.NoError(t, err)
		require.NoError(t, c.Close())
		assert.Zero(t, rt.closes.Load())
	})
}

type idleCounter struct {
	http.RoundTripper
	closes atomic.Int32
}

func (c *idleCounter) CloseIdleConnections() { c.closes.Add(1) }

// TestIMDSRoleNameNeverQuoted: a role list that is not a role name (a
// proxy answering with the credential document, say) is refused without
// being quoted anywhere, and a role name given is checked.
func TestIMDSRoleNameNeverQuoted(t *testing.T) {
	srv := imdstest.NewServer(imdstest.Config{})
	defer srv.Close()
	doc := `{"Code":"Success","AccessKeyId":"ASIAEXAMPLE","SecretAccessKey":"SECRETKEYVALUE","Token":"TOKENVALUE","Expiration":"2030-01-01T00:00:00Z"}`
	srv.Inject(imdstest.Fault{Target: imdstest.RoleListPath, Body: doc})
	var logs bytes.Buffer
	_, err := kivuli.New(t.Context(), kivuli.WithEndpoint(srv.URL), kivuli.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	require.ErrorIs(t, err, kivuli.ErrInvalidDocument)
	for _, s := range []string{err.Error(), fmt.Sprintf("%+v", err), logs.String()} {
		assert.NotContains(t, s, "SECRETKEYVALUE")
		assert.NotContains(t, s, "TOKENVALUE")
	}
	_, err = kivuli.NewIMDS(kivuli.WithRoleName("no/slashes"))
	assert.ErrorIs(t, err, kivuli.ErrInvalidConfig)
	_, err = kivuli.NewIMDS(kivuli.WithRoleName("My+Role=1,a.b@c_d-e"))
	assert.NoError(t, err)
}
