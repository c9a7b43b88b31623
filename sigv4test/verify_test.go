package sigv4test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	testAKID   = "AKIDTEST"
	testSecret = "testSecretKey/with+odd=chars"
	testToken  = "FQoTESTTOKEN//+/session=="
	tempAKID   = "ASIATEST"
)

var testNow = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

func testSecrets() Secrets {
	return Static(
		Credentials{AccessKeyID: testAKID, SecretAccessKey: testSecret},
		Credentials{AccessKeyID: tempAKID, SecretAccessKey: testSecret, SessionToken: testToken, Expiration: testNow.Add(time.Hour)},
	)
}

func testVerifier() *Verifier {
	return &Verifier{Secrets: testSecrets(), Now: func() time.Time { return testNow }}
}

// signer is a tiny in-test SigV4 signer built on this package's
// CanonicalRequest, StringToSign and Signature (which the vector tests pin
// down). It signs r in place, on a server-style request (RequestURI set) or
// a client one.
type signer struct {
	akid, secret, token string
	region, service     string
	when                time.Time
	presign             bool
	expires             int            // presign; 0 means 900
	tokenAt             TokenPlacement // where to put token (NoToken: nowhere)
	contentSHA          string         // X-Amz-Content-Sha256 value; "body" for the body's hash
	presignPayload      string         // presign payload hash; default UNSIGNED-PAYLOAD
	unsignedHeaders     []string       // header names left out of SignedHeaders
	regionSet           string         // non-empty: SigV4a, for this region set
}

func defaultSigner() signer {
	return signer{akid: testAKID, secret: testSecret, region: "us-east-1", service: "svc", when: testNow}
}

// setQuery replaces the raw query of r, wherever r keeps it.
func setQuery(r *http.Request, q string) {
	if r.RequestURI != "" {
		p, _, _ := strings.Cut(r.RequestURI, "?")
		if q != "" {
			p += "?" + q
		}
		r.RequestURI = p
	}
	r.URL.RawQuery = q
}

func addQuery(r *http.Request, kv ...string) {
	q := wireQuery(r)
	for i := 0; i < len(kv); i += 2 {
		if q != "" {
			q += "&"
		}
		q += url.QueryEscape(kv[i]) + "=" + url.QueryEscape(kv[i+1])
	}
	setQuery(r, q)
}

// sign signs r, whose body is body, and returns the signature.
func (s signer) sign(t testing.TB, r *http.Request, body []byte) string {
	t.Helper()
	rule := DefaultRule
	if rr, ok := DefaultRules()[s.service]; ok {
		rule = rr
	}
	amzDate := s.when.UTC().Format(amzDateLayout)
	scope := amzDate[:8] + "/" + s.region + "/" + s.service + "/aws4_request"
	alg := "AWS4-HMAC-SHA256"
	if s.regionSet != "" {
		scope, alg = amzDate[:8]+"/"+s.service+"/aws4_request", algorithmV4A
		if !s.presign {
			r.Header.Set("X-Amz-Region-Set", s.regionSet)
		}
	}
	switch s.tokenAt {
	case HeaderSigned, HeaderUnsigned:
		r.Header.Set("X-Amz-Security-Token", s.token)
	}
	if s.tokenAt == HeaderUnsigned {
		s.unsignedHeaders = append(s.unsignedHeaders, "x-amz-security-token")
	}
	payload := hexSHA256(body)
	if s.contentSHA == "body" {
		r.Header.Set("X-Amz-Content-Sha256", payload)
	} else if s.contentSHA != "" {
		r.Header.Set("X-Amz-Content-Sha256", s.contentSHA)
		payload = s.contentSHA
	}
	if !s.presign {
		r.Header.Set("X-Amz-Date", amzDate)
	}
	var signed []string
	if !slices.Contains(s.unsignedHeaders, "host") {
		signed = append(signed, "host")
	}
	for k := range r.Header {
		lk := strings.ToLower(k)
		if lk != "authorization" && !slices.Contains(s.unsignedHeaders, lk) {
			signed = append(signed, lk)
		}
	}
	slices.Sort(signed)
	signed = slices.Compact(signed)
	if s.presign {
		exp := s.expires
		if exp == 0 {
			exp = 900
		}
		if s.regionSet != "" {
			addQuery(r, "X-Amz-Region-Set", s.regionSet)
		}
		addQuery(r,
			"X-Amz-Algorithm", alg,
			"X-Amz-Credential", s.akid+"/"+scope,
			"X-Amz-Date", amzDate,
			"X-Amz-Expires", fmt.Sprint(exp),
			"X-Amz-SignedHeaders", strings.Join(signed, ";"))
		payload = unsignedPayload
		if s.presignPayload != "" {
			payload = s.presignPayload
		}
	}
	if s.tokenAt == QuerySigned {
		addQuery(r, "X-Amz-Security-Token", s.token)
	}
	creq, err := CanonicalRequest(r, rule, signed, payload, s.presign)
	if err != nil {
		t.Fatal(err)
	}
	sig := Signature(s.secret, amzDate[:8], s.region, s.service, StringToSign(amzDate, scope, creq))
	if s.regionSet != "" {
		sig = signV4A(t, s.akid, s.secret, alg+"\n"+amzDate+"\n"+scope+"\n"+hexSHA256([]byte(creq)))
	}
	if s.presign {
		addQuery(r, "X-Amz-Signature", sig)
	} else {
		r.Header.Set("Authorization", fmt.Sprintf("%s Credential=%s/%s, SignedHeaders=%s, Signature=%s",
			alg, s.akid, scope, strings.Join(signed, ";"), sig))
	}
	if s.tokenAt == QueryUnsigned {
		addQuery(r, "X-Amz-Security-Token", s.token)
	}
	return sig
}

func setBody(r *http.Request, body string) {
	r.Body = io.NopCloser(strings.NewReader(body))
	r.ContentLength = int64(len(body))
}

// noLeak fails if any text derived from rec holds the secret, the token or
// the signature.
func noLeak(t *testing.T, rec Record, sig string) {
	t.Helper()
	texts := []string{fmt.Sprintf("%+v", rec), strings.Join(rec.SignedHeaders, ";")}
	if rec.Err != nil {
		texts = append(texts, rec.Err.Error())
		if e, ok := rec.Err.(*Error); ok {
			texts = append(texts, fmt.Sprintf("%+v", *e))
		}
	}
	for _, s := range texts {
		for _, secret := range []string{testSecret, testToken, url.QueryEscape(testToken), uriEncode(testToken, true), sig} {
			if secret != "" && strings.Contains(s, secret) {
				t.Errorf("record leaks %q:\n%s", secret, s)
			}
		}
	}
}

// tamperBody is the body of tamperingCases' requests.
const tamperBody = "hello, world"

// tamperCase is a request, signed then perhaps tampered with, and the
// verdict on it.
type tamperCase struct {
	name string
	// mutate builds the signed request; it may sign and then tamper.
	mutate func(t *testing.T, v *Verifier) (*http.Request, string)
	code   string // "" = accepted
	check  func(t *testing.T, rec Record)
}

// tamperingCases are the requests TestVerifyTampering and
// TestVerifyStreamTampering check.
func tamperingCases() []tamperCase {
	const body = tamperBody
	// build returns a server-style PUT with a query and a body, signed by s.
	build := func(t *testing.T, s signer, target string) (*http.Request, string) {
		r := httptest.NewRequest(http.MethodPut, target, strings.NewReader(body))
		r.Header.Set("Content-Type", "text/plain")
		return r, s.sign(t, r, []byte(body))
	}
	const target = "http://example.com/a/b%20c?x=1&y=two"
	tokenSigner := func(at TokenPlacement) signer {
		s := defaultSigner()
		s.akid, s.token, s.tokenAt = tempAKID, testToken, at
		return s
	}
	return []tamperCase{
		{name: "header-signed ok", mutate: func(t *testing.T, v *Verifier) (*http.Request, string) {
			return build(t, defaultSigner(), target)
		}, check: func(t *testing.T, rec Record) {
			if rec.Presigned || rec.Token != NoToken || rec.Service != "svc" || rec.Region != "us-east-1" ||
				rec.AccessKeyID != testAKID || rec.BodyLen != int64(len(body)) || rec.PayloadHash != hexSHA256([]byte(body)) ||
				rec.Path != "/a/b%20c" || rec.RawQuery != "x=1&y=two" || rec.Method != "PUT" ||
				!slices.Equal(rec.SignedHeaders, []string{"content-type", "host", "x-amz-date"}) {
				t.Errorf("record %+v", rec)
			}
		}},
		{name: "changed body", code: "SignatureDoesNotMatch", mutate: func(t *testing.T, v *Verifier) (*http.Request, string) {
			r, sig := build(t, defaultSigner(), target)
			setBody(r, "hello, World")
			return r, sig
		}, check: func(t *testing.T, rec Record) {
			e := rec.Err.(*Error)
			if !strings.HasPrefix(e.CanonicalRequest, "PUT\n/a/b%2520c\nx=1&y=two\n") || !strings.HasPrefix(e.StringToSign, "AWS4-HMAC-SHA256\n") {
				t.Errorf("canonical request %q / string to sign %q", e.CanonicalRequest, e.StringToSign)
			}
		}},
		{name: "changed body with content-sha256", code: "XAmzContentSHA256Mismatch", mutate: func(t *testing.T, v *Verifier) (*http.Request, string) {
			s := defaultSigner()
			s.contentSHA = "body"
			r, sig := build(t, s, target)
			setBody(r, "hello, World")
			return r, sig
		}},
		{name: "content-sha256 of another body", code: "XAmzContentSHA256Mismatch", mutate: func(t *testing.T, v *Verifier) (*http.Request, string) {
			s := defaultSigner()
			s.contentSHA = hexSHA256([]byte("something else"))
			return build(t, s, target)
		}},
		{name: "changed path", code: "SignatureDoesNotMatch", mutate: func(t *testing.T, v *Verifier) (*http.Request, string) {
			r, sig := build(t, defaultSigner(), target)
			r.RequestURI = strings.Replace(r.RequestURI, "/a/", "/A/", 1)
			return r, sig
		}},
		{name: "path encoded differently", code: "SignatureDoesNotMatch", mutate: func(t *testing.T, v *Verifier) (*http.Request, string) {
			r, sig := build(t, defaultSigner(), target)
			r.RequestURI = strings.Replace(r.RequestURI, "%20", "%2520", 1)
			return r, sig
		}},
		{name: "changed query value", code: "SignatureDoesNotMatch", mutate: func(t *testing.T, v *Verifier) (*http.Request, string) {
			r, sig := build(t, defaultSigner(), target)
			setQuery(r, "x=1&y=three")
			return r, sig
		}},
		{name: "added query parameter", code: "SignatureDoesNotMatch", mutate: func(t *testing.T, v *Verifier) (*http.Request, string) {
			r, sig := build(t, defaultSigner(), target)
			setQuery(r, "x=1&y=two&x=1")
			return r, sig
		}},
		{name: "query reordered is fine", mutate: func(t *testing.T, v *Verifier) (*http.Request, string) {
			r, sig := build(t, defaultSigner(), target)
			setQuery(r, "y=two&x=1")
			return r, sig
		}},
		{name: "changed signed header", code: "SignatureDoesNotMatch", mutate: func(t *testing.T, v *Verifier) (*http.Request, string) {
			r, sig := build(t, defaultSigner(), target)
			r.Header.Set("Content-Type", "text/html")
			return r, sig
		}},
		{name: "changed host", code: "SignatureDoesNotMatch", mutate: func(t *testing.T, v *Verifier) (*http.Request, string) {
			r, sig := build(t, defaultSigner(), target)
			r.Host = "example.org"
			return r, sig
		}},
		{name: "extra unsigned x-amz header", code: "AccessDenied", mutate: func(t *testing.T, v *Verifier) (*http.Request, string) {
			r, sig := build(t, defaultSigner(), target)
			r.Header.Set("X-Amz-Meta-Extra", "1")
			return r, sig
		}},
		{name: "extra unsigned ordinary header is fine", mutate: func(t *testing.T, v *Verifier) (*http.Request, string) {
			r, sig := build(t, defaultSigner(), target)
			r.Header.Set("User-Agent", "x")
			return r, sig
		}},
		{name: "host not signed", code: "SignatureDoesNotMatch", mutate: func(t *testing.T, v *Verifier) (*http.Request, string) {
			s := defaultSigner()
			s.unsignedHeaders = []string{"host"}
			return build(t, s, target)
		}},
		{name: "wrong secret", code: "SignatureDoesNotMatch", mutate: func(t *testing.T, v *Verifier) (*http.Request, string) {
			s := defaultSigner()
			s.secret = "not-the-secret"
			return build(t, s, target)
		}},
		{name: "wrong region", code: "SignatureDoesNotMatch", mutate: func(t *testing.T, v *Verifier) (*http.Request, string) {
			r, sig := build(t, defaultSigner(), target)
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "us-east-1", "eu-west-1", 1))
			return r, sig
		}},
		{name: "scope date differs from X-Amz-Date", code: "SignatureDoesNotMatch", mutate: func(t *testing.T, v *Verifier) (*http.Request, string) {
			r, sig := build(t, defaultSigner(), target)
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "/20260314/", "/20260313/", 1))
			return r, sig
		}},
		{name: "unknown key", code: "InvalidClientTokenId", mutate: func(t *testing.T, v *Verifier) (*http.Request, string) {
			s := defaultSigner()
			s.akid = "AKIDUNKNOWN"
			return build(t, s, target)
		}},
		{name: "skew past", code: "RequestTimeTooSkewed", mutate: func(t *testing.T, v *Verifier) (*http.Request, string) {
			s := defaultSigner()
			s.when = testNow.Add(-16 * time.Minute)
			return build(t, s, target)
		}, check: func(t *testing.T, rec Record) {
			if !strings.Contains(rec.Err.Error(), "20260314T150926Z") {
				t.Errorf("message lacks the server time: %v", rec.Err)
			}
		}},
		{name: "skew future", code: "RequestTimeTooSkewed", mutate: func(t *testing.T, v *Verifier) (*http.Request, string) {
			s := defaultSigner()
			s.when = testNow.Add(16 * time.Minute)
			return build(t, s, target)
		}},
		{name: "skew within 15 min", mutate: func(t *testing.T, v *Verifier) (*http.Request, string) {
			s := defaultSigner()
			s.when = testNow.Add(-14 * time.Minute)
			return build(t, s, target)
		}},
		{name: "date header fallback", mutate: func(t *testing.T, v *Verifier) (*http.Request, string) {
			r := httptest.NewRequest(http.MethodGet, target, nil)
			r.Header.Set("Date", testNow.Format(http.TimeFormat))
			amzDate := testNow.Format(amzDateLayout)
			scope := amzDate[:8] + "/us-east-1/svc/aws4_request"
			creq, _ := CanonicalRequest(r, DefaultRule, []string{"date", "host"}, emptySHA256, false)
			sig := Signature(testSecret, amzDate[:8], "us-east-1", "svc", StringToSign(amzDate, scope, creq))
			r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+testAKID+"/"+scope+", SignedHeaders=date;host, Signature="+sig)
			return r, sig
		}},
		{name: "expired credentials", code: "ExpiredToken", mutate: func(t *testing.T, v *Verifier) (*http.Request, string) {
			v.Now = func() time.Time { return testNow.Add(61 * time.Minute) }
			s := tokenSigner(HeaderSigned)
			s.when = testNow.Add(61 * time.Minute)
			return build(t, s, target)
		}},
		{name: "token signed in header", mutate: func(t *testing.T, v *Verifier) (*http.Request, string) {
			return build(t, tokenSigner(HeaderSigned), target)
		}, check: wantToken(HeaderSigned)},
		{name: "token unsigned in header", mutate: func(t *testing.T, v *Verifier) (*http.Request, string) {
			return build(t, tokenSigner(HeaderUnsigned), target)
		}, check: wantToken(HeaderUnsigned)},
		{name: "token signed in query", mutate: func(t *testing.T, v *Verifier) (*http.Request, string) {
			return build(t, tokenSigner(QuerySigned), target)
		}, check: wantToken(QuerySigned)},
		{name: "wrong token", code: "InvalidToken", mutate: func(t *testing.T, v *Verifier) (*http.Request, string) {
			s := tokenSigner(HeaderSigned)
			s.token = "someone-elses-token"
			return build(t, s, target)
		}},
		{name: "wrong unsigned token", code: "InvalidToken", mutate: func(t *testing.T, v *Verifier) (*http.Request, string) {
			r, sig := build(t, tokenSigner(HeaderUnsigned), target)
			r.Header.Set("X-Amz-Security-Token", testToken+"x")
			return r, sig
		}},
		{name: "missing token", code: "InvalidToken", mutate: func(t *testing.T, v *Verifier) (*http.Request, string) {
			s := defaultSigner()
			s.akid = tempAKID
			return build(t, s, target)
		}},
		{name: "token with long-term key", code: "InvalidToken", mutate: func(t *testing.T, v *Verifier) (*http.Request, string) {
			s := tokenSigner(HeaderSigned)
			s.akid = testAKID
			return build(t, s, target)
		}},
		{name: "UNSIGNED-PAYLOAD on non-S3", code: "XAmzContentSHA256Mismatch", mutate: func(t *testing.T, v *Verifier) (*http.Request, string) {
			s := defaultSigner()
			s.contentSHA = unsignedPayload
			return build(t, s, target)
		}},
		{name: "UNSIGNED-PAYLOAD on S3", mutate: func(t *testing.T, v *Verifier) (*http.Request, string) {
			s := defaultSigner()
			s.service, s.contentSHA = "s3", unsignedPayload
			return build(t, s, target)
		}, check: func(t *testing.T, rec Record) {
			if rec.PayloadHash != unsignedPayload || !rec.ContentSHA256 {
				t.Errorf("PayloadHash %q ContentSHA256 %v", rec.PayloadHash, rec.ContentSHA256)
			}
		}},
		{name: "S3 without content-sha256", code: "InvalidRequest", mutate: func(t *testing.T, v *Verifier) (*http.Request, string) {
			s := defaultSigner()
			s.service = "s3"
			return build(t, s, target)
		}},
		{name: "aoss without content-sha256", code: "InvalidRequest", mutate: func(t *testing.T, v *Verifier) (*http.Request, string) {
			s := defaultSigner()
			s.service = "aoss"
			return build(t, s, target)
		}},
		{name: "S3 key with spaces, plus and double slash", mutate: func(t *testing.T, v *Verifier) (*http.Request, string) {
			s := defaultSigner()
			s.service, s.contentSHA = "s3", "body"
			return build(t, s, "http://example.com/bucket/a%20b+c//d/./e")
		}, check: func(t *testing.T, rec Record) {
			if rec.Path != "/bucket/a%20b+c//d/./e" {
				t.Errorf("Path %q", rec.Path)
			}
		}},
		{name: "S3 rules not applied to other services", code: "SignatureDoesNotMatch", mutate: func(t *testing.T, v *Verifier) (*http.Request, string) {
			s := defaultSigner()
			s.service, s.contentSHA = "s3", "body"
			r, sig := build(t, s, "http://example.com/bucket/a%20b//c")
			v.Rules = map[string]Rule{} // s3 now uses DefaultRule: double-encoded, normalised
			return r, sig
		}},
		{name: "missing authentication", code: "MissingAuthenticationToken", mutate: func(t *testing.T, v *Verifier) (*http.Request, string) {
			return httptest.NewRequest(http.MethodGet, target, nil), ""
		}},
		{name: "authorization without signature", code: "IncompleteSignature", mutate: func(t *testing.T, v *Verifier) (*http.Request, string) {
			r, sig := build(t, defaultSigner(), target)
			a := r.Header.Get("Authorization")
			r.Header.Set("Authorization", a[:strings.Index(a, ", Signature=")])
			return r, sig
		}},
		{name: "other algorithm", code: "IncompleteSignature", mutate: func(t *testing.T, v *Verifier) (*http.Request, string) {
			r, sig := build(t, defaultSigner(), target)
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256", 1))
			return r, sig
		}},
		{name: "body too large", code: "RequestEntityTooLarge", mutate: func(t *testing.T, v *Verifier) (*http.Request, string) {
			v.MaxBody = 4
			return build(t, defaultSigner(), target)
		}},
		{name: "presigned ok", mutate: func(t *testing.T, v *Verifier) (*http.Request, string) {
			s := defaultSigner()
			s.presign = true
			return build(t, s, target)
		}, check: func(t *testing.T, rec Record) {
			if !rec.Presigned || rec.PayloadHash != unsignedPayload || !strings.Contains(rec.RawQuery, "X-Amz-Signature=REDACTED") {
				t.Errorf("record %+v", rec)
			}
		}},
		{name: "presigned with empty-payload hash (IoT, Transcribe)", mutate: func(t *testing.T, v *Verifier) (*http.Request, string) {
			s := defaultSigner()
			s.presign, s.presignPayload = true, emptySHA256
			return build(t, s, target)
		}},
		{name: "presigned S3 must use UNSIGNED-PAYLOAD", code: "SignatureDoesNotMatch", mutate: func(t *testing.T, v *Verifier) (*http.Request, string) {
			s := defaultSigner()
			s.service, s.presign, s.presignPayload = "s3", true, emptySHA256
			return build(t, s, target)
		}},
		{name: "presigned token signed", mutate: func(t *testing.T, v *Verifier) (*http.Request, string) {
			s := tokenSigner(QuerySigned)
			s.presign = true
			return build(t, s, target)
		}, check: func(t *testing.T, rec Record) {
			wantToken(QuerySigned)(t, rec)
			if !strings.Contains(rec.RawQuery, "X-Amz-Security-Token=REDACTED") {
				t.Errorf("RawQuery %q", rec.RawQuery)
			}
		}},
		{name: "presigned token after signature (IoT)", mutate: func(t *testing.T, v *Verifier) (*http.Request, string) {
			s := tokenSigner(QueryUnsigned)
			s.presign, s.presignPayload = true, emptySHA256
			return build(t, s, target)
		}, check: wantToken(QueryUnsigned)},
		{name: "presigned unsigned token wrong", code: "InvalidToken", mutate: func(t *testing.T, v *Verifier) (*http.Request, string) {
			s := tokenSigner(QueryUnsigned)
			s.presign, s.token = true, "forged"
			return build(t, s, target)
		}},
		{name: "expired presign", code: "AccessDenied", mutate: func(t *testing.T, v *Verifier) (*http.Request, string) {
			s := defaultSigner()
			s.presign, s.expires, s.when = true, 60, testNow.Add(-61*time.Second)
			return build(t, s, target)
		}, check: func(t *testing.T, rec Record) {
			if !strings.Contains(rec.Err.Error(), "Request has expired") {
				t.Errorf("message %v", rec.Err)
			}
		}},
		{name: "presign long-lived is fine", mutate: func(t *testing.T, v *Verifier) (*http.Request, string) {
			s := defaultSigner()
			s.presign, s.expires, s.when = true, 3600, testNow.Add(-59*time.Minute)
			return build(t, s, target)
		}},
		{name: "presign expiry extended", code: "SignatureDoesNotMatch", mutate: func(t *testing.T, v *Verifier) (*http.Request, string) {
			s := defaultSigner()
			s.presign, s.expires, s.when = true, 60, testNow.Add(-61*time.Second)
			r, sig := build(t, s, target)
			setQuery(r, strings.Replace(wireQuery(r), "X-Amz-Expires=60", "X-Amz-Expires=600", 1))
			return r, sig
		}},
		{name: "presign missing signature", code: "IncompleteSignature", mutate: func(t *testing.T, v *Verifier) (*http.Request, string) {
			s := defaultSigner()
			s.presign = true
			r, _ := build(t, s, target)
			// The value is now an ordinary parameter, shown as received.
			setQuery(r, strings.Replace(wireQuery(r), "X-Amz-Signature=", "X-Amz-Sig=", 1))
			return r, ""
		}},
		{name: "presign and Authorization", code: "IncompleteSignature", mutate: func(t *testing.T, v *Verifier) (*http.Request, string) {
			s := defaultSigner()
			s.presign = true
			r, sig := build(t, s, target)
			r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=x")
			return r, sig
		}},
	}
}

func TestVerifyTampering(t *testing.T) {
	cases := tamperingCases()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := testVerifier()
			r, sig := c.mutate(t, v)
			rec := v.Verify(r)
			if got := errCode(rec.Err); got != c.code {
				t.Fatalf("code %q, want %q (%v)", got, c.code, rec.Err)
			}
			if rec.Err != nil && !strings.HasPrefix(rec.Err.Error(), "sigv4test: "+c.code+": ") {
				t.Errorf("Error() = %q", rec.Err.Error())
			}
			if c.check != nil {
				c.check(t, rec)
			}
			noLeak(t, rec, sig)
			// The body stays readable for handlers.
			if c.code != "RequestEntityTooLarge" {
				b, err := io.ReadAll(r.Body)
				if err != nil || int64(len(b)) != rec.BodyLen {
					t.Errorf("body after Verify: %q, %v (BodyLen %d)", b, err, rec.BodyLen)
				}
			}
		})
	}
}

func wantToken(p TokenPlacement) func(*testing.T, Record) {
	return func(t *testing.T, rec Record) {
		t.Helper()
		if rec.Token != p {
			t.Errorf("Token = %v, want %v", rec.Token, p)
		}
	}
}

func TestErrorRedactsToken(t *testing.T) {
	// A signature mismatch on a request with a signed token (header and
	// query): the canonical request shown must hold REDACTED, not the token.
	for _, at := range []TokenPlacement{HeaderSigned, QuerySigned} {
		s := defaultSigner()
		s.akid, s.token, s.tokenAt, s.secret = tempAKID, testToken, at, "wrong"
		r := httptest.NewRequest(http.MethodGet, "http://example.com/", nil)
		sig := s.sign(t, r, nil)
		rec := testVerifier().Verify(r)
		e, ok := rec.Err.(*Error)
		if !ok || e.Code != "SignatureDoesNotMatch" {
			t.Fatalf("%v: %v", at, rec.Err)
		}
		if !strings.Contains(e.CanonicalRequest, redacted) {
			t.Errorf("%v: canonical request lacks REDACTED:\n%s", at, e.CanonicalRequest)
		}
		noLeak(t, rec, sig)
	}
}

func TestTokenPlacementString(t *testing.T) {
	want := []string{"NoToken", "HeaderSigned", "HeaderUnsigned", "QuerySigned", "QueryUnsigned", "TokenPlacement(9)"}
	for i, p := range []TokenPlacement{NoToken, HeaderSigned, HeaderUnsigned, QuerySigned, QueryUnsigned, 9} {
		if p.String() != want[i] {
			t.Errorf("%d: %q", i, p.String())
		}
	}
}

func TestCanonicalPieces(t *testing.T) {
	for _, c := range []struct {
		raw, want string
	}{
		{"", ""},
		{"b=2&a=1", "a=1&b=2"},
		{"Param-3=Value3&Param=Value2&%E1%88%B4=Value1", "%E1%88%B4=Value1&Param=Value2&Param-3=Value3"},
		{"a=2&a=1&a=10", "a=1&a=10&a=2"},
		{"key", "key="},
		{"a+b=c+d", "a%20b=c%20d"},
		{"a%2Bb=%7e", "a%2Bb=~"},
		{"x=a/b;c", "x=a%2Fb%3Bc"},
		{"&&a=1&", "a=1"},
		{"a==b", "a=%3Db"},
	} {
		got, err := canonicalQuery(c.raw, nil, nil)
		if err != nil || got != c.want {
			t.Errorf("canonicalQuery(%q) = %q, %v; want %q", c.raw, got, err, c.want)
		}
	}
	if _, err := canonicalQuery("a=%zz", nil, nil); err == nil {
		t.Error("malformed escape accepted")
	}
	s3 := DefaultRules()["s3"]
	for _, c := range []struct {
		path string
		rule Rule
		want string
	}{
		{"", DefaultRule, "/"},
		{"/a%20b", DefaultRule, "/a%2520b"},
		{"/a%20b", s3, "/a%20b"},
		{"/a+b", s3, "/a%2Bb"},
		{"/a/../b/./c//", DefaultRule, "/b/c/"},
		{"/a/../b/./c//", s3, "/a/../b/./c//"},
		{"/a/b/..", DefaultRule, "/a"},
		{"/..", DefaultRule, "/"},
		{"/%E1%88%B4", s3, "/%E1%88%B4"},
		{"/%E1%88%B4", DefaultRule, "/%25E1%2588%25B4"},
	} {
		got, err := canonicalURI(c.path, c.rule)
		if err != nil || got != c.want {
			t.Errorf("canonicalURI(%q, %+v) = %q, %v; want %q", c.path, c.rule, got, err, c.want)
		}
	}
	if got := trimAll("  a   b \t c  "); got != "a b \t c" {
		t.Errorf("trimAll: %q", got)
	}
	if got := redactQuery("a=1&X-Amz-Signature=abc&x-amz-security-token=t&X-Amz-Security-Token"); got != "a=1&X-Amz-Signature=REDACTED&x-amz-security-token=REDACTED&X-Amz-Security-Token" {
		t.Errorf("redactQuery: %q", got)
	}
}

// TestServer drives NewServer with net/http's client.
func TestServer(t *testing.T) {
	v := testVerifier()
	var seen []string
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		seen = append(seen, string(b))
		w.WriteHeader(http.StatusNoContent)
	})
	srv := NewServer(v, handler)
	defer srv.Close()
	plain := NewServer(v, nil)
	defer plain.Close()

	do := func(r *http.Request) (*http.Response, []byte) {
		t.Helper()
		resp, err := srv.Client().Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}

	// Header-signed PUT with a body: the handler still reads the body.
	body := []byte(`{"k":"v"}`)
	r, _ := http.NewRequest(http.MethodPut, srv.URL+"/things/a%2Fb?z=1&a=2", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	defaultSigner().sign(t, r, body)
	if resp, b := do(r); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	if len(seen) != 1 || seen[0] != string(body) {
		t.Errorf("handler saw %q", seen)
	}

	// Chunked upload, signed with X-Amz-Content-Sha256.
	r, _ = http.NewRequest(http.MethodPost, srv.URL+"/upload", io.NopCloser(bytes.NewReader(body)))
	r.ContentLength = -1
	s := defaultSigner()
	s.contentSHA = "body"
	s.sign(t, r, body)
	if resp, b := do(r); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("chunked: status %d: %s", resp.StatusCode, b)
	}

	// Presigned GET with the token appended after the signature (IoT).
	r, _ = http.NewRequest(http.MethodGet, srv.URL+"/mqtt", nil)
	s = defaultSigner()
	s.akid, s.token, s.tokenAt, s.presign, s.service, s.presignPayload = tempAKID, testToken, QueryUnsigned, true, "iotdevicegateway", emptySHA256
	s.sign(t, r, nil)
	if !strings.HasSuffix(r.URL.RawQuery, "&X-Amz-Security-Token="+url.QueryEscape(testToken)) {
		t.Fatalf("token not last: %s", r.URL.RawQuery)
	}
	if resp, b := do(r); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("presigned: status %d: %s", resp.StatusCode, b)
	}

	// Wrong secret: 403, JSON error, X-Amzn-ErrorType, canonical string in
	// the message, nothing secret.
	r, _ = http.NewRequest(http.MethodGet, srv.URL+"/x", nil)
	s = defaultSigner()
	s.akid, s.token, s.tokenAt, s.secret = tempAKID, testToken, HeaderSigned, "wrong"
	sig := s.sign(t, r, nil)
	resp, b := do(r)
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Amzn-ErrorType") != "SignatureDoesNotMatch" {
		t.Fatalf("status %d, type %q", resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"))
	}
	var je struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(b, &je); err != nil || je.Type != "SignatureDoesNotMatch" ||
		!strings.Contains(je.Message, "The Canonical String for this request should have been\n'GET\n/x\n") ||
		!strings.Contains(je.Message, "x-amz-security-token:REDACTED\n") {
		t.Errorf("JSON error %s (%v)", b, err)
	}
	for _, secret := range []string{testSecret, testToken, sig} {
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("error body leaks %q", secret)
		}
	}
	if d, err := http.ParseTime(resp.Header.Get("Date")); err != nil || !d.Equal(testNow) {
		t.Errorf("Date %q, want the verifier's time", resp.Header.Get("Date"))
	}

	// Skew: the Date header gives the server time to correct with.
	r, _ = http.NewRequest(http.MethodGet, srv.URL+"/x", nil)
	s = defaultSigner()
	s.when = testNow.Add(-time.Hour)
	s.sign(t, r, nil)
	resp, b = do(r)
	if resp.Header.Get("X-Amzn-ErrorType") != "RequestTimeTooSkewed" || !strings.Contains(string(b), "RequestTimeTooSkewed") {
		t.Errorf("skew: %d %s", resp.StatusCode, b)
	}
	if d, err := http.ParseTime(resp.Header.Get("Date")); err != nil || !d.Equal(testNow) {
		t.Errorf("skew: Date %q", resp.Header.Get("Date"))
	}

	// S3 errors are XML.
	r, _ = http.NewRequest(http.MethodPut, srv.URL+"/bucket/key", bytes.NewReader(body))
	s = defaultSigner()
	s.service, s.contentSHA = "s3", "body"
	s.sign(t, r, body)
	r.Body = io.NopCloser(bytes.NewReader([]byte(`{"k":"V"}`)))
	resp, b = do(r)
	var xe struct {
		Code, Message string
	}
	if err := xml.Unmarshal(b, &xe); err != nil || resp.StatusCode != http.StatusForbidden || xe.Code != "XAmzContentSHA256Mismatch" ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "application/xml") {
		t.Errorf("S3 error: %d %s (%v)", resp.StatusCode, b, err)
	}

	recs := srv.Records()
	if len(recs) != 6 {
		t.Fatalf("%d records", len(recs))
	}
	want := []struct {
		code    string
		chunked bool
		token   TokenPlacement
		path    string
	}{
		{"", false, NoToken, "/things/a%2Fb"},
		{"", true, NoToken, "/upload"},
		{"", false, QueryUnsigned, "/mqtt"},
		{"SignatureDoesNotMatch", false, HeaderSigned, "/x"},
		{"RequestTimeTooSkewed", false, NoToken, "/x"},
		{"XAmzContentSHA256Mismatch", false, NoToken, "/bucket/key"},
	}
	for i, w := range want {
		rec := recs[i]
		if errCode(rec.Err) != w.code || rec.Chunked != w.chunked || rec.Token != w.token || rec.Path != w.path {
			t.Errorf("record %d: %+v", i, rec)
		}
		if rec.BodyLen != map[bool]int64{true: int64(len(body))}[i == 0 || i == 1 || i == 5] {
			t.Errorf("record %d: BodyLen %d", i, rec.BodyLen)
		}
		noLeak(t, rec, sig)
	}
	recs[0].SignedHeaders[0] = "mutated"
	if srv.Records()[0].SignedHeaders[0] == "mutated" {
		t.Error("Records returned shared slices")
	}
	srv.Reset()
	if n := len(srv.Records()); n != 0 {
		t.Errorf("%d records after Reset", n)
	}

	// The default handler answers JSON.
	r, _ = http.NewRequest(http.MethodPost, plain.URL+"/echo", bytes.NewReader(body))
	defaultSigner().sign(t, r, body)
	resp, err := plain.Client().Do(r)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	var ok struct {
		OK      bool   `json:"ok"`
		Service string `json:"service"`
		Bytes   int64  `json:"bytes"`
		Method  string `json:"method"`
		Path    string `json:"path"`
	}
	if err := json.Unmarshal(b, &ok); err != nil || resp.StatusCode != 200 || !ok.OK || ok.Service != "svc" ||
		ok.Bytes != int64(len(body)) || ok.Method != "POST" || ok.Path != "/echo" {
		t.Errorf("default handler: %d %s", resp.StatusCode, b)
	}
}

func FuzzCanonicalQuery(f *testing.F) {
	for _, s := range []string{"", "a=1&b=2", "Param-3=Value3&Param=Value2&%E1%88%B4=Value1", "a+b=%2B&&c", "x=%zz", "=&=", "a=b=c", "ሴ=bar", "%00=%FF"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		c1, err := canonicalQuery(raw, nil, nil)
		if err != nil {
			return
		}
		for i := 0; i < len(c1); i++ {
			ch := c1[i]
			if !unreserved(ch) && ch != '%' && ch != '=' && ch != '&' {
				t.Fatalf("canonical query %q has raw byte %q", c1, ch)
			}
		}
		c2, err := canonicalQuery(c1, nil, nil)
		if err != nil || c2 != c1 {
			t.Fatalf("not idempotent: %q -> %q -> %q (%v)", raw, c1, c2, err)
		}
	})
}

func FuzzCanonicalURI(f *testing.F) {
	for _, s := range []string{"", "/", "//a//b/", "/a/../..", "/%20/./x", "/%zz", "/ሴ/ x"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, path string, noNormalize bool) {
		for _, rule := range []Rule{{NoNormalize: noNormalize}, {SingleEncode: true, NoNormalize: noNormalize}} {
			c1, err := canonicalURI(path, rule)
			if err != nil {
				continue
			}
			if c1 == "" || (!noNormalize && c1[0] != '/') {
				t.Fatalf("canonicalURI(%q, %+v) = %q", path, rule, c1)
			}
			if rule.SingleEncode {
				// Encoding once is idempotent: decode, (normalise), encode.
				c2, err := canonicalURI(c1, rule)
				if err != nil || c2 != c1 {
					t.Fatalf("not idempotent under %+v: %q -> %q -> %q (%v)", rule, path, c1, c2, err)
				}
			}
		}
	})
}

// FuzzVerify feeds arbitrary Authorization headers and query strings to
// Verify: it must never panic, never accept, and never echo the secret.
func FuzzVerify(f *testing.F) {
	f.Add("AWS4-HMAC-SHA256 Credential=AKIDTEST/20260314/us-east-1/svc/aws4_request, SignedHeaders=host;x-amz-date, Signature=00", "a=1")
	f.Add("", "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDTEST%2F20260314%2Fus-east-1%2Fsvc%2Faws4_request&X-Amz-Date=20260314T150926Z&X-Amz-SignedHeaders=host&X-Amz-Signature=00&X-Amz-Expires=99")
	f.Add("AWS4-HMAC-SHA256 ,,,=", "X-Amz-Credential=////&X-Amz-Expires=-1")
	f.Fuzz(func(t *testing.T, authz, query string) {
		r := &http.Request{
			Method:     "GET",
			RequestURI: "/p?" + query,
			URL:        &url.URL{Path: "/p", RawQuery: query},
			Host:       "example.com",
			Header:     http.Header{"X-Amz-Date": {testNow.Format(amzDateLayout)}},
		}
		if authz != "" {
			r.Header.Set("Authorization", authz)
		}
		rec := testVerifier().Verify(r)
		if rec.Err == nil {
			t.Fatalf("accepted %q %q", authz, query)
		}
		if strings.Contains(rec.Err.Error(), testSecret) {
			t.Fatal("secret in error")
		}
	})
}

// TestLookup: Lookup converts credentials of any type with Credentials'
// fields, such as imdstest's.
func TestLookup(t *testing.T) {
	type issued struct {
		AccessKeyID     string
		SecretAccessKey string
		SessionToken    string
		Expiration      time.Time
	}
	exp := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	secrets := Lookup(func(id string) (issued, bool) {
		return issued{id, "secret", "token", exp}, id == "AKID"
	})
	c, ok := secrets("AKID")
	if !ok || c != (Credentials{"AKID", "secret", "token", exp}) {
		t.Fatalf("Lookup gave %+v, %v", c, ok)
	}
	if _, ok := secrets("other"); ok {
		t.Fatal("an unknown key was found")
	}
}

// TestAmbiguousPath: the paths AWS services read differently are the ones
// ending in a dot segment below the root, and those with a percent-encoded
// dot segment anywhere.
func TestAmbiguousPath(t *testing.T) {
	for p, want := range map[string]bool{
		"/a/.": true, "/a/b/..": true, "/a/%2E": true, "/a/%2e%2e/b": true, "/a/.%2E/b": true,
		"/": false, "/a/": false, "/a/./b": false, "/..": false, "/a/..": false, "/./": false,
		"/a%2Eb": false, "/a/%2F": false, "/a/...": false,
	} {
		if got := ambiguousPath(p); got != want {
			t.Errorf("ambiguousPath(%q) = %v, want %v", p, got, want)
		}
	}
}

// TestScopeOfTheHost (issue 19, point 2): an AWS endpoint knows its own
// service and region. A request to sts.eu-west-2.amazonaws.com signed for
// execute-api in us-east-1 is refused, naming both; the host's own scope
// passes; a host that is not AWS's, or Scope set to AnyScope, checks
// nothing; a Scope of the test's own decides.
func TestScopeOfTheHost(t *testing.T) {
	for _, tc := range []struct {
		name, host, service, region string
		scope                       func(host, path string) (string, string)
		want                        []string // "" when accepted
	}{
		{"another service and region", "sts.eu-west-2.amazonaws.com", "execute-api", "us-east-1", nil, []string{"SignatureDoesNotMatch", "'sts'", "sts.eu-west-2.amazonaws.com", "execute-api"}},
		{"another region", "sts.eu-west-2.amazonaws.com", "sts", "us-east-1", nil, []string{"SignatureDoesNotMatch", "eu-west-2", "us-east-1"}},
		{"a global endpoint's region", "iam.amazonaws.com", "iam", "eu-west-2", nil, []string{"us-east-1", "eu-west-2"}},
		{"the host's own", "sts.eu-west-2.amazonaws.com", "sts", "eu-west-2", nil, nil},
		{"the host's own, with a port", "sts.eu-west-2.amazonaws.com:443", "sts", "eu-west-2", nil, nil},
		{"a domain's signing name", "search-x.eu-west-2.es.amazonaws.com", "es", "eu-west-2", nil, nil},
		{"S3 Transfer Acceleration names no region", "b.s3-accelerate.amazonaws.com", "s3", "ap-south-1", nil, nil},
		{"not an AWS host", "127.0.0.1:9200", "anything", "anywhere-1", nil, nil},
		{"AnyScope", "sts.eu-west-2.amazonaws.com", "execute-api", "us-east-1", AnyScope, nil},
		{"a scope of the test's", "search.example.com", "es", "us-east-1", func(string, string) (string, string) { return "es", "eu-west-2" }, []string{"eu-west-2", "us-east-1", "search.example.com"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := testVerifier()
			v.Scope = tc.scope
			r := httptest.NewRequest(http.MethodGet, "http://"+tc.host+"/?Action=GetCallerIdentity&Version=2011-06-15", nil)
			s := defaultSigner()
			s.service, s.region, s.contentSHA = tc.service, tc.region, "body"
			s.sign(t, r, nil)
			rec := v.Verify(r)
			if tc.want == nil {
				if rec.Err != nil {
					t.Fatalf("refused: %v", rec.Err)
				}
				return
			}
			if rec.Err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(rec.Err.Error(), w) {
					t.Errorf("the error does not name %q: %v", w, rec.Err)
				}
			}
		})
	}
}

// signV4A returns the hex ECDSA signature of sts under the access key's
// SigV4a key.
func signV4A(t testing.TB, akid, secret, sts string) string {
	t.Helper()
	d, err := v4aScalar(akid, secret)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(sts))
	sig, err := ecdsa.SignASN1(rand.Reader, priv, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(sig)
}
