package sigv4test

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// aws-c-auth's SigV4a vectors (testdata/sigv4a, see its README): the
// public key derived for AKIDEXAMPLE is public-key.json's; the canonical
// request and string to sign rebuilt from request.txt are the vector's
// byte for byte; the vector's signatures, which aws-c-auth's ECDSA
// randomised, verify under the derived key; and Verify accepts the signed
// requests of both forms.
const vectorRootV4A = "../testdata/sigv4a/v4a"

func TestVectorsV4A(t *testing.T) {
	var dirs []string
	for _, name := range caseDirs(t, vectorRootV4A) {
		if _, err := os.Stat(filepath.Join(vectorRootV4A, name, "header-canonical-request.txt")); err == nil {
			dirs = append(dirs, name)
		}
	}
	if len(dirs) != 38 {
		t.Fatalf("v4a: %d complete case folders, want 38", len(dirs))
	}
	passed := map[string]int{}
	for _, name := range dirs {
		dir := filepath.Join(vectorRootV4A, name)
		var c vectorContext
		if err := json.Unmarshal(readFile(t, dir, "context.json"), &c); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		pub, err := SigV4APublicKey(c.Credentials.AccessKeyID, c.Credentials.SecretAccessKey)
		if err != nil {
			t.Fatal(err)
		}
		var want struct{ X, Y string }
		if err := json.Unmarshal(readFile(t, dir, "public-key.json"), &want); err != nil {
			t.Fatal(err)
		}
		pubRaw, err := pub.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(pubRaw); got != "04"+want.X+want.Y {
			t.Errorf("%s: derived public key %s, public-key.json 04%s%s", name, got, want.X, want.Y)
		} else {
			passed["key"]++
		}
		rule := Rule{NoNormalize: !c.Normalize}
		amzDate := c.Timestamp.UTC().Format(amzDateLayout)
		scope := amzDate[:8] + "/" + c.Service + "/aws4_request"
		token := c.Credentials.Token
		raw := parseRaw(t, readFile(t, dir, "request.txt"))
		payload := hexSHA256(raw.body)

		for _, form := range []string{"header", "query"} {
			t.Run(form+"/"+name, func(t *testing.T) {
				r := raw.request()
				signed := allHeaderNames(r)
				if form == "header" {
					r.Header.Set("X-Amz-Date", amzDate)
					r.Header.Set("X-Amz-Region-Set", c.Region)
					if token != "" && !c.OmitSessionToken {
						r.Header.Set("X-Amz-Security-Token", token)
					}
					if c.SignBody {
						r.Header.Set("X-Amz-Content-Sha256", payload)
					}
					signed = allHeaderNames(r)
				} else {
					params := []string{
						"X-Amz-Algorithm=" + algorithmV4A,
						"X-Amz-Credential=" + url.QueryEscape(c.Credentials.AccessKeyID+"/"+scope),
						"X-Amz-Date=" + amzDate,
						"X-Amz-SignedHeaders=" + url.QueryEscape(strings.Join(signed, ";")),
						fmt.Sprintf("X-Amz-Expires=%d", c.ExpirationInSeconds),
						"X-Amz-Region-Set=" + url.QueryEscape(c.Region),
					}
					if token != "" && !c.OmitSessionToken {
						params = append(params, "X-Amz-Security-Token="+url.QueryEscape(token))
					}
					sep := "?"
					if strings.Contains(r.RequestURI, "?") {
						sep = "&"
					}
					r.RequestURI += sep + strings.Join(params, "&")
				}
				creq, err := CanonicalRequest(r, rule, signed, payload, form == "query")
				if err != nil {
					t.Fatal(err)
				}
				sts := algorithmV4A + "\n" + amzDate + "\n" + scope + "\n" + hexSHA256([]byte(creq))
				ok := compare(t, "canonical request", creq, readFile(t, dir, form+"-canonical-request.txt"))
				ok = compare(t, "string to sign", sts, readFile(t, dir, form+"-string-to-sign.txt")) && ok
				if !verifyV4A(pub, sts, string(readFile(t, dir, form+"-signature.txt"))) {
					t.Errorf("the vector's signature does not verify under the derived key")
					ok = false
				}
				if ok {
					passed[form]++
				}
			})
			t.Run("verify-"+form+"/"+name, func(t *testing.T) {
				signedRaw := readFile(t, dir, form+"-signed-request.txt")
				r, note := serverRequest(t, signedRaw, parseRaw(t, signedRaw))
				if note != "" {
					t.Log(note)
				}
				v := vectorVerifier(c)
				v.Scope = func(string, string) (string, string) { return c.Service, c.Region }
				rec := v.Verify(r)
				if rec.Err != nil {
					t.Fatalf("rejected: %v\n%s", rec.Err, rec.Err.(*Error).CanonicalRequest)
				}
				if rec.Algorithm != algorithmV4A || rec.Region != c.Region || rec.Service != c.Service || rec.Presigned != (form == "query") {
					t.Errorf("Record: algorithm %q, region %q, service %q, presigned %v", rec.Algorithm, rec.Region, rec.Service, rec.Presigned)
				}
				passed["verify-"+form]++
			})
		}
	}
	t.Logf("v4a (aws-c-auth): public key %d/%d; header form %d/%d, query form %d/%d; Verify accepts signed requests: header %d/%d, query %d/%d",
		passed["key"], len(dirs), passed["header"], len(dirs), passed["query"], len(dirs),
		passed["verify-header"], len(dirs), passed["verify-query"], len(dirs))
	for _, k := range []string{"key", "header", "query", "verify-header", "verify-query"} {
		if passed[k] != 38 {
			t.Errorf("v4a %s: %d/38 passed", k, passed[k])
		}
	}
}
