package sigv4test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The official SigV4 test vectors, copied from aws-c-auth (v4/) and botocore
// (aws4_testsuite/); see testdata/sigv4/README.md.
const vectorRoot = "../testdata/sigv4"

// rawRequest is a request as written in a vector file: the request line,
// header lines (continuation lines folded into the previous value, as
// net/textproto does) and the body.
type rawRequest struct {
	method, target, proto string
	headers               [][2]string
	body                  []byte
}

// parseRaw parses a vector request file. The request target is everything
// between the first and the last space of the request line, so targets with
// raw spaces ("GET /example space/ HTTP/1.1") keep them: the target is the
// wire path exactly as the file spells it. The files use LF line endings;
// most (despite the README) end with a newline, which is harmless here.
func parseRaw(t *testing.T, b []byte) rawRequest {
	t.Helper()
	head, body, _ := bytes.Cut(b, []byte("\n\n"))
	lines := strings.Split(string(head), "\n")
	var rr rawRequest
	first := lines[0]
	i, j := strings.IndexByte(first, ' '), strings.LastIndexByte(first, ' ')
	if i < 0 || j <= i {
		t.Fatalf("bad request line %q", first)
	}
	rr.method, rr.target, rr.proto = first[:i], first[i+1:j], first[j+1:]
	for _, l := range lines[1:] {
		if l == "" {
			continue
		}
		if l[0] == ' ' || l[0] == '\t' {
			if len(rr.headers) == 0 {
				t.Fatalf("continuation line %q before any header", l)
			}
			h := &rr.headers[len(rr.headers)-1]
			h[1] = strings.TrimRight(h[1], " \t") + " " + strings.Trim(l, " \t")
			continue
		}
		name, value, ok := strings.Cut(l, ":")
		if !ok {
			t.Fatalf("bad header line %q", l)
		}
		rr.headers = append(rr.headers, [2]string{name, strings.Trim(value, " \t")})
	}
	rr.body = body
	return rr
}

// request builds the *http.Request a net/http server would hand a handler
// for rr: RequestURI is the raw target, Host comes from the Host header and
// leaves the header map, Content-Length stays in it.
func (rr rawRequest) request() *http.Request {
	r := &http.Request{
		Method:     rr.method,
		RequestURI: rr.target,
		Proto:      rr.proto,
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     http.Header{},
	}
	u, err := url.ParseRequestURI(rr.target)
	if err != nil {
		p, q, _ := strings.Cut(rr.target, "?")
		u = &url.URL{Path: p, RawQuery: q}
	}
	r.URL = u
	for _, h := range rr.headers {
		if strings.EqualFold(h[0], "Host") {
			r.Host = h[1]
			continue
		}
		r.Header.Add(h[0], h[1])
	}
	r.ContentLength = int64(len(rr.body))
	r.Body = io.NopCloser(bytes.NewReader(rr.body))
	return r
}

// crlf renders a vector request file as it would go on the wire: CRLF line
// endings, continuation lines kept as written, the header block ended by a
// blank line, and a Content-Length added when there is a body without one.
func crlf(raw []byte) []byte {
	head, body, _ := bytes.Cut(raw, []byte("\n\n"))
	out := bytes.ReplaceAll(bytes.TrimRight(head, "\n"), []byte("\n"), []byte("\r\n"))
	if len(body) > 0 && !bytes.Contains(bytes.ToLower(head), []byte("\ncontent-length:")) {
		// The aws4_testsuite form POSTs have a body but no Content-Length
		// (it is not signed); a client sending them adds one.
		out = fmt.Appendf(out, "\r\nContent-Length: %d", len(body))
	}
	out = append(out, "\r\n\r\n"...)
	return append(out, body...)
}

// serverRequest parses a signed vector request with net/http's own request
// parser, as a server would; when net/http refuses the request line (a raw
// space in the path), it falls back to rr.request() and says why.
func serverRequest(t *testing.T, raw []byte, rr rawRequest) (*http.Request, string) {
	t.Helper()
	r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(crlf(raw))))
	if err != nil {
		return rr.request(), "net/http cannot parse it (" + err.Error() + "); built by hand"
	}
	delete(r.Header, "Host") // as net/http's server does
	return r, ""
}

type vectorContext struct {
	Credentials struct {
		AccessKeyID     string `json:"access_key_id"`
		SecretAccessKey string `json:"secret_access_key"`
		Token           string `json:"token"`
	} `json:"credentials"`
	ExpirationInSeconds int       `json:"expiration_in_seconds"`
	Normalize           bool      `json:"normalize"`
	Region              string    `json:"region"`
	Service             string    `json:"service"`
	SignBody            bool      `json:"sign_body"`
	Timestamp           time.Time `json:"timestamp"`
	OmitSessionToken    bool      `json:"omit_session_token"`
}

func readFile(t *testing.T, parts ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(parts...))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func caseDirs(t *testing.T, root string) []string {
	t.Helper()
	ents, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, e := range ents {
		if e.IsDir() {
			dirs = append(dirs, e.Name())
		}
	}
	return dirs
}

// allHeaderNames lists the lowercase names of r's headers plus host, as the
// aws-c-auth and botocore signers sign them.
func allHeaderNames(r *http.Request) []string {
	names := []string{"host"}
	for k := range r.Header {
		names = append(names, strings.ToLower(k))
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// compare reports a mismatch between got and the vector file want.
func compare(t *testing.T, what, got string, want []byte) bool {
	t.Helper()
	if got != string(want) {
		t.Errorf("%s mismatch\n--- got ---\n%s\n--- want ---\n%s", what, got, want)
		return false
	}
	return true
}

func vectorVerifier(c vectorContext) *Verifier {
	return &Verifier{
		Secrets: Static(Credentials{
			AccessKeyID:     c.Credentials.AccessKeyID,
			SecretAccessKey: c.Credentials.SecretAccessKey,
			SessionToken:    c.Credentials.Token,
		}),
		Now:   func() time.Time { return c.Timestamp },
		Rules: map[string]Rule{c.Service: {NoNormalize: !c.Normalize}},
	}
}

// TestVectorsV4 runs the 38 aws-c-auth cases in both forms: canonical
// request, string to sign and signature computed from request.txt must
// equal the files byte for byte, and Verify must accept the signed requests.
func TestVectorsV4(t *testing.T) {
	root := filepath.Join(vectorRoot, "v4")
	dirs := caseDirs(t, root)
	if len(dirs) != 38 {
		t.Errorf("v4: %d case folders, want 38", len(dirs))
	}
	passed := map[string]int{}
	for _, name := range dirs {
		dir := filepath.Join(root, name)
		var c vectorContext
		if err := json.Unmarshal(readFile(t, dir, "context.json"), &c); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		rule := Rule{NoNormalize: !c.Normalize}
		amzDate := c.Timestamp.UTC().Format(amzDateLayout)
		date := amzDate[:8]
		scope := date + "/" + c.Region + "/" + c.Service + "/aws4_request"
		token := c.Credentials.Token
		raw := parseRaw(t, readFile(t, dir, "request.txt"))
		payload := hexSHA256(raw.body)

		t.Run("header/"+name, func(t *testing.T) {
			r := raw.request()
			r.Header.Set("X-Amz-Date", amzDate)
			if token != "" && !c.OmitSessionToken {
				r.Header.Set("X-Amz-Security-Token", token)
			}
			if c.SignBody {
				r.Header.Set("X-Amz-Content-Sha256", payload)
			}
			creq, err := CanonicalRequest(r, rule, allHeaderNames(r), payload, false)
			if err != nil {
				t.Fatal(err)
			}
			sts := StringToSign(amzDate, scope, creq)
			sig := Signature(c.Credentials.SecretAccessKey, date, c.Region, c.Service, sts)
			ok := compare(t, "canonical request", creq, readFile(t, dir, "header-canonical-request.txt"))
			ok = compare(t, "string to sign", sts, readFile(t, dir, "header-string-to-sign.txt")) && ok
			ok = compare(t, "signature", sig, readFile(t, dir, "header-signature.txt")) && ok
			if ok {
				passed["header"]++
			}
		})

		t.Run("query/"+name, func(t *testing.T) {
			r := raw.request()
			signed := allHeaderNames(r)
			params := []string{
				"X-Amz-Algorithm=AWS4-HMAC-SHA256",
				"X-Amz-Credential=" + url.QueryEscape(c.Credentials.AccessKeyID+"/"+scope),
				"X-Amz-Date=" + amzDate,
				"X-Amz-SignedHeaders=" + url.QueryEscape(strings.Join(signed, ";")),
				fmt.Sprintf("X-Amz-Expires=%d", c.ExpirationInSeconds),
			}
			if token != "" && !c.OmitSessionToken {
				params = append(params, "X-Amz-Security-Token="+url.QueryEscape(token))
			}
			sep := "?"
			if strings.Contains(r.RequestURI, "?") {
				sep = "&"
			}
			r.RequestURI += sep + strings.Join(params, "&")
			creq, err := CanonicalRequest(r, rule, signed, payload, true)
			if err != nil {
				t.Fatal(err)
			}
			sts := StringToSign(amzDate, scope, creq)
			sig := Signature(c.Credentials.SecretAccessKey, date, c.Region, c.Service, sts)
			ok := compare(t, "canonical request", creq, readFile(t, dir, "query-canonical-request.txt"))
			ok = compare(t, "string to sign", sts, readFile(t, dir, "query-string-to-sign.txt")) && ok
			ok = compare(t, "signature", sig, readFile(t, dir, "query-signature.txt")) && ok
			if ok {
				passed["query"]++
			}
		})

		for _, form := range []string{"header", "query"} {
			t.Run("verify-"+form+"/"+name, func(t *testing.T) {
				signedRaw := readFile(t, dir, form+"-signed-request.txt")
				r, note := serverRequest(t, signedRaw, parseRaw(t, signedRaw))
				if note != "" {
					t.Log(note)
				}
				rec := vectorVerifier(c).Verify(r)
				if rec.Err != nil {
					t.Fatalf("rejected: %v\n%s", rec.Err, rec.Err.(*Error).CanonicalRequest)
				}
				if rec.Presigned != (form == "query") {
					t.Errorf("Presigned = %v", rec.Presigned)
				}
				want := NoToken
				switch {
				case token == "":
				case form == "header" && c.OmitSessionToken:
					want = HeaderUnsigned
				case form == "header":
					want = HeaderSigned
				case c.OmitSessionToken:
					want = QueryUnsigned
				default:
					want = QuerySigned
				}
				if rec.Token != want {
					t.Errorf("Token = %v, want %v", rec.Token, want)
				}
				if rec.BodyLen != int64(len(raw.body)) {
					t.Errorf("BodyLen = %d, want %d", rec.BodyLen, len(raw.body))
				}
				passed["verify-"+form]++
			})
		}
	}
	t.Logf("v4 (aws-c-auth): header form %d/%d, query form %d/%d; Verify accepts signed requests: header %d/%d, query %d/%d",
		passed["header"], len(dirs), passed["query"], len(dirs),
		passed["verify-header"], len(dirs), passed["verify-query"], len(dirs))
	for _, k := range []string{"header", "query", "verify-header", "verify-query"} {
		if passed[k] != 38 {
			t.Errorf("v4 %s: %d/38 passed", k, passed[k])
		}
	}
}

// TestVectorsV4OverTheWire sends every signed v4 request as raw bytes to a
// real NewServer and expects 200, except where net/http itself refuses the
// request line (raw spaces in the path), which TestVectorsV4 covers in
// memory.
func TestVectorsV4OverTheWire(t *testing.T) {
	root := filepath.Join(vectorRoot, "v4")
	sent, refused := 0, 0
	for _, name := range caseDirs(t, root) {
		dir := filepath.Join(root, name)
		var c vectorContext
		if err := json.Unmarshal(readFile(t, dir, "context.json"), &c); err != nil {
			t.Fatal(err)
		}
		srv := NewServer(vectorVerifier(c), nil)
		for _, form := range []string{"header", "query"} {
			raw := readFile(t, dir, form+"-signed-request.txt")
			rr := parseRaw(t, raw)
			if strings.ContainsAny(strings.SplitN(rr.target, "?", 2)[0], " ") {
				refused++
				continue
			}
			conn, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			conn.Write(crlf(raw))
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("%s/%s: %v", form, name, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			conn.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("%s/%s: status %d: %s", form, name, resp.StatusCode, body)
			}
			if resp.Header.Get("Date") != c.Timestamp.Format(http.TimeFormat) {
				t.Errorf("%s/%s: Date %q, want the verifier's time", form, name, resp.Header.Get("Date"))
			}
			sent++
		}
		recs := srv.Records()
		srv.Close()
		for _, rec := range recs {
			if rec.Err != nil {
				t.Errorf("%s: record error %v", name, rec.Err)
			}
		}
	}
	t.Logf("over the wire: %d signed requests accepted, %d not sendable (raw space in path)", sent, refused)
	if sent < 70 {
		t.Errorf("only %d requests sent", sent)
	}
}

// aws4Case is one case folder of the botocore aws4_testsuite.
type aws4Case struct{ dir, name string }

func aws4Cases(t *testing.T) []aws4Case {
	t.Helper()
	var cases []aws4Case
	root := filepath.Join(vectorRoot, "aws4_testsuite")
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".req") {
			cases = append(cases, aws4Case{filepath.Dir(p), strings.TrimSuffix(d.Name(), ".req")})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return cases
}

// TestVectorsAWS4TestSuite runs the 34 classic cases: the .req file (which
// already holds X-Amz-Date) signed with every header it has must give the
// .creq, .sts and .authz files; Verify must accept each .sreq, except the
// stale get-vanilla-with-session-token.sreq.
func TestVectorsAWS4TestSuite(t *testing.T) {
	const (
		akid   = "AKIDEXAMPLE"
		secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
		region = "us-east-1"
		svc    = "service"
	)
	when := time.Date(2015, 8, 30, 12, 36, 0, 0, time.UTC)
	amzDate := when.Format(amzDateLayout)
	scope := amzDate[:8] + "/" + region + "/" + svc + "/aws4_request"

	// The STS token is the last line of post-sts-token/readme.txt; the
	// get-vanilla-with-session-token token is not in its .req (only in its
	// .creq), so it is taken from the v4 copy of that case.
	readme := strings.TrimSpace(string(readFile(t, vectorRoot, "aws4_testsuite", "post-sts-token", "readme.txt")))
	stsToken := readme[strings.LastIndexByte(readme, '\n')+1:]
	var vc vectorContext
	if err := json.Unmarshal(readFile(t, vectorRoot, "v4", "get-vanilla-with-session-token", "context.json"), &vc); err != nil {
		t.Fatal(err)
	}
	vanillaToken := vc.Credentials.Token
	if stsToken == "" || vanillaToken == "" {
		t.Fatal("tokens not found")
	}

	cases := aws4Cases(t)
	if len(cases) != 34 {
		t.Errorf("aws4_testsuite: %d cases, want 34", len(cases))
	}
	passed, verified := 0, 0
	for _, c := range cases {
		token := ""
		switch {
		case strings.HasPrefix(c.name, "post-sts-header-"):
			token = stsToken
		case c.name == "get-vanilla-with-session-token":
			token = vanillaToken
		}
		file := func(ext string) []byte { return readFile(t, c.dir, c.name+ext) }
		t.Run("header/"+c.name, func(t *testing.T) {
			raw := parseRaw(t, file(".req"))
			r := raw.request()
			if c.name == "get-vanilla-with-session-token" {
				r.Header.Set("X-Amz-Security-Token", token)
			}
			signed := allHeaderNames(r)
			creq, err := CanonicalRequest(r, DefaultRule, signed, hexSHA256(raw.body), false)
			if err != nil {
				t.Fatal(err)
			}
			sts := StringToSign(amzDate, scope, creq)
			sig := Signature(secret, amzDate[:8], region, svc, sts)
			authz := fmt.Sprintf("AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s",
				akid, scope, strings.Join(signed, ";"), sig)
			ok := compare(t, "canonical request", creq, file(".creq"))
			ok = compare(t, "string to sign", sts, file(".sts")) && ok
			ok = compare(t, "authorization", authz, file(".authz")) && ok
			if ok {
				passed++
			}
		})
		t.Run("verify-sreq/"+c.name, func(t *testing.T) {
			sreq := file(".sreq")
			r, note := serverRequest(t, sreq, parseRaw(t, sreq))
			if note != "" {
				t.Log(note)
			}
			v := &Verifier{
				Secrets: Static(Credentials{AccessKeyID: akid, SecretAccessKey: secret, SessionToken: token}),
				Now:     func() time.Time { return when },
			}
			rec := v.Verify(r)
			if c.name == "get-vanilla-with-session-token" {
				// Its .sreq carries the stale get-vanilla signature.
				if code := errCode(rec.Err); code != "SignatureDoesNotMatch" {
					t.Fatalf("stale .sreq: got %v, want SignatureDoesNotMatch", rec.Err)
				}
				verified++
				return
			}
			if rec.Err != nil {
				t.Fatalf("rejected: %v", rec.Err)
			}
			if c.name == "post-sts-header-after" && rec.Token != HeaderUnsigned {
				t.Errorf("Token = %v, want HeaderUnsigned", rec.Token)
			}
			verified++
		})
	}
	t.Logf("aws4_testsuite (botocore): header form %d/%d; .sreq verified as expected %d/%d (get-vanilla-with-session-token.sreq rejected: stale signature)",
		passed, len(cases), verified, len(cases))
	if passed != 34 || verified != 34 {
		t.Errorf("aws4_testsuite: %d/34 computed, %d/34 verified", passed, verified)
	}
}

func errCode(err error) string {
	if e, ok := err.(*Error); ok {
		return e.Code
	}
	if err != nil {
		return "non-*Error: " + err.Error()
	}
	return ""
}
