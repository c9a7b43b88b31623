package curl

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/base"
)

// A URL whose query is signed already (a presigned URL pasted from aws s3
// presign or an SDK) is sent as it is, unsigned, and standard error says
// so: it carries its own authority, which is what whoever pastes it
// wants used, and signing it again cannot work (AWS refuses a request
// with two signatures, and the signer would have dropped the query's to
// make room for its own, without a word). Nothing is taken from the
// credential source. The flags that only mean something when signing are
// refused rather than ignored: --presign (a presigned URL cannot be
// presigned again), --service, --region, --checksum, --aws-retry (which
// signs each attempt) and --cap-to-credentials.

// sigV4Params are the query parameters of a SigV4 or SigV4a
// presignature, lower case.
var sigV4Params = map[string]bool{
	"x-amz-algorithm": true, "x-amz-credential": true, "x-amz-date": true,
	"x-amz-expires": true, "x-amz-signedheaders": true, "x-amz-signature": true,
	"x-amz-security-token": true, "x-amz-region-set": true,
}

// signedParam returns the name of the query parameter that shows that
// rawQuery is signed already, as typed, or "": any of SigV4's, in any
// letter case or escaping, or SigV2's Signature beside AWSAccessKeyId
// (aws s3 presign still makes those in some regions).
func signedParam(rawQuery string) string {
	var v2Key, v2Sig string
	for kv := range strings.SplitSeq(rawQuery, "&") {
		k, _, _ := strings.Cut(kv, "=")
		name := k
		if dk, err := url.QueryUnescape(k); err == nil {
			name = dk
		}
		switch lk := strings.ToLower(name); {
		case sigV4Params[lk]:
			return name
		case lk == "awsaccesskeyid":
			v2Key = name
		case lk == "signature":
			v2Sig = name
		}
	}
	if v2Key != "" && v2Sig != "" {
		return v2Sig
	}
	return ""
}

// checkSignedURL refuses the flags that sign, for a URL signed already
// by param.
func (f *curlFlags) checkSignedURL(param string) error {
	for _, c := range []struct {
		set  bool
		flag string
	}{
		{f.presign.on, "--presign"}, {f.service != "", "--service"}, {f.region != "", "--region"},
		{f.checksum != "", "--checksum"}, {f.awsRetry, "--aws-retry"},
	} {
		if c.set {
			return base.UsageErrorf("%s: the URL is signed already (its query holds %s), and is sent as it is, unsigned: leave %s out, or take the signature out of the URL to sign it anew", c.flag, param, c.flag)
		}
	}
	return nil
}

// sendAsIs sends req, whose URL is signed already, without signing it:
// through -v's and --dry-run's transport, redirects followed as -L says.
func (f *curlFlags) sendAsIs(req *http.Request, param string) error {
	f.note("the URL is signed already (its query holds %s): sending it as it is, not signed again", param)
	client := &http.Client{Transport: f.showing(f.pool())}
	return f.do(client, req)
}

// redactSigV2 hides the signature and the access key ID of a SigV2
// presigned query, which kivuli.RedactQuery leaves (SigV4's only).
func redactSigV2(raw string) string {
	if signedParam(raw) == "" {
		return raw
	}
	params := strings.Split(raw, "&")
	for i, kv := range params {
		k, _, ok := strings.Cut(kv, "=")
		name := k
		if dk, err := url.QueryUnescape(k); err == nil {
			name = dk
		}
		if lk := strings.ToLower(name); ok && (lk == "signature" || lk == "awsaccesskeyid") {
			params[i] = k + "=REDACTED"
		}
	}
	return strings.Join(params, "&")
}
