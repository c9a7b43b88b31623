package sigv4test

import (
	"crypto/hmac"
	"crypto/subtle"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// check is one request under verification: what the steps of verify
// learn and pass on.
type check struct {
	v      *Verifier
	r      *http.Request
	rec    *Record
	q      []pair          // the query, decoded
	a      *authParams     // what the request says of its signature
	rule   Rule            // the signing service's
	signed map[string]bool // the signed header names
	creds  Credentials     // the key's
	now    time.Time
	qTok   bool // a session token is in the query

	// What the head leaves to the body's end, or to the aws-chunked decoder.
	claimed    []string    // the payload hashes the request states
	shown      *Error      // what a payload rejection shows of the signature
	sigLater   bool        // the signature covers the body's hash
	hashLater  bool        // a stated hash is compared with the body's
	sums       []headerSum // x-amz-checksum-* headers, checked at the end
	chunkMode  string      // the aws-chunked payload mode, or "" for a plain body
	decodedLen int64       // x-amz-decoded-content-length, for aws-chunked
}

// checkHead checks r's head step by step, in the order AWS reports
// problems, and returns the first problem found; what depends on the body
// is left to [check.checkEnd] or the aws-chunked decoder.
func (c *check) checkHead() *Error {
	for _, step := range []func() *Error{
		c.parse,
		c.checkScopeDate,
		c.checkScopeHost,
		c.checkPath,
		c.checkSignedHeaders,
		c.checkKey,
		c.checkToken,
		c.checkTime,
		c.checkSignatureHead,
	} {
		if e := step(); e != nil {
			return e
		}
	}
	return nil
}

// parse reads the query and the request's statement of its signature.
func (c *check) parse() *Error {
	q, qerr := parseQuery(wireQuery(c.r))
	a, e := parseAuth(c.r, q, qerr)
	if a != nil {
		c.rec.Presigned = a.presigned
		c.rec.Service, c.rec.Region, c.rec.AccessKeyID = a.service, a.region, a.accessKeyID
		if a.accessKeyID != "" {
			c.rec.Algorithm = a.algorithm()
		}
		c.rec.SignedHeaders = a.signedHeaders
	}
	if e != nil {
		return e
	}
	if qerr != nil {
		return newErr("SignatureDoesNotMatch", "The query string is malformed: %v", qerr)
	}
	c.q, c.a, c.rule = q, a, c.v.rule(a.service)
	return nil
}

// checkScopeDate: the credential scope's date is the request's.
func (c *check) checkScopeDate() *Error {
	if a := c.a; a.scopeDate != a.amzDate[:8] {
		return newErr("SignatureDoesNotMatch",
			"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s', from '%s'.",
			a.scopeDate, a.amzDate[:8], a.amzDate)
	}
	return nil
}

// checkScopeHost: the credential scope is the one of the endpoint the
// request was sent to, as the Host names it.
func (c *check) checkScopeHost() *Error {
	scope := c.v.Scope
	if scope == nil {
		scope = HostScope
	}
	host := c.r.Host
	if host == "" {
		host = c.r.URL.Host
	}
	service, region := scope(host, c.r.URL.Path)
	switch a := c.a; {
	case service != "" && a.service != service:
		return newErr("SignatureDoesNotMatch", "Credential should be scoped to correct service: '%s'. The host %s answers for %s, and the request was signed for %s.", service, host, service, a.service)
	case region == "":
	case a.v4a && !regionSetCovers(a.region, region):
		return newErr("SignatureDoesNotMatch", "The region set %q does not cover the host %s, which answers for %s.", a.region, host, region)
	case !a.v4a && region == "*":
		return newErr("SignatureDoesNotMatch", "The host %s answers for all regions and takes %s only; the request was signed with %s for %s.", host, algorithmV4A, algorithm, a.region)
	case !a.v4a && a.region != region:
		return newErr("SignatureDoesNotMatch", "Credential should be scoped to a valid region: '%s'. The host %s is in %s, and the request was signed for %s.", region, host, region, a.region)
	}
	return nil
}

// checkPath: a normalised path does not end in a dot segment that
// services read differently.
func (c *check) checkPath() *Error {
	if p := wirePath(c.r); !c.rule.NoNormalize && ambiguousPath(p) {
		return newErr("AmbiguousPath",
			"The path %q ends in a '.' or '..' segment, which AWS services canonicalise differently (RFC 3986 and smithy-rs as a trailing slash, botocore without): send the path with its dot segments removed.", p)
	}
	return nil
}

// checkSignedHeaders: host and every x-amz-* header but the session token
// are signed.
func (c *check) checkSignedHeaders() *Error {
	c.signed = make(map[string]bool, len(c.a.signedHeaders))
	for _, h := range c.a.signedHeaders {
		c.signed[h] = true
	}
	if !c.signed["host"] {
		return newErr("SignatureDoesNotMatch", "'Host' must be a 'SignedHeader' in the AWS Authorization.")
	}
	var unsigned []string
	for k := range c.r.Header {
		lk := strings.ToLower(k)
		if strings.HasPrefix(lk, "x-amz-") && lk != headerToken && !c.signed[lk] && !slices.Contains(unsigned, lk) {
			unsigned = append(unsigned, lk)
		}
	}
	if len(unsigned) > 0 {
		slices.Sort(unsigned)
		return newErr("AccessDenied", "There were headers present in the request which were not signed: %s", strings.Join(unsigned, ", "))
	}
	return nil
}

// checkKey: the access key is known and has not expired.
func (c *check) checkKey() *Error {
	ok := false
	if c.v.Secrets != nil {
		c.creds, ok = c.v.Secrets(c.a.accessKeyID)
	}
	if !ok {
		return newErr("InvalidClientTokenId", "The security token included in the request is invalid: access key ID %q is not known.", c.a.accessKeyID)
	}
	c.now = c.v.now()
	if !c.creds.Expiration.IsZero() && c.now.After(c.creds.Expiration) {
		return newErr("ExpiredToken", "The security token included in the request is expired.")
	}
	return nil
}

// checkToken: the session token presented, in a header or the query, is
// the key's, and a key with a token presents it.
func (c *check) checkToken() *Error {
	hdrTok, hdrTokOK := headerValues(c.r, headerToken)
	qTok, qTokOK := queryValues(c.q, queryToken)
	c.qTok = qTokOK
	if hdrTokOK || qTokOK {
		if c.creds.SessionToken == "" {
			return newErr("InvalidToken", "A security token was presented with long-term credentials (access key ID %q has no session token).", c.a.accessKeyID)
		}
		for _, t := range append(hdrTok, qTok...) {
			if subtle.ConstantTimeCompare([]byte(t), []byte(c.creds.SessionToken)) != 1 {
				return newErr("InvalidToken", "The provided token is malformed or otherwise invalid.")
			}
		}
	} else if c.creds.SessionToken != "" {
		return newErr("InvalidToken", "The request is missing the session token (X-Amz-Security-Token) of temporary credentials.")
	}
	switch {
	case qTokOK:
		c.rec.Token = QuerySigned // unless the signature matches without it
	case hdrTokOK && c.signed[headerToken]:
		c.rec.Token = HeaderSigned
	case hdrTokOK:
		c.rec.Token = HeaderUnsigned
	}
	return nil
}

// checkTime: the request is within the allowed skew, or the presigned URL
// within its lifetime.
func (c *check) checkTime() *Error {
	a, now := c.a, c.now
	if a.presigned && a.expires >= 0 {
		if a.when.Sub(now) > maxSkew {
			return skewErr(a.amzDate, now)
		}
		if now.After(a.when.Add(time.Duration(a.expires) * time.Second)) {
			return newErr("AccessDenied", "Request has expired: X-Amz-Date %s + X-Amz-Expires %d s is before the server time %s.",
				a.amzDate, a.expires, now.UTC().Format(amzDateLayout))
		}
	} else if d := a.when.Sub(now); d > maxSkew || d < -maxSkew {
		return skewErr(a.amzDate, now)
	}
	return nil
}

// payloadHashes returns the payload hashes a valid signature may have
// used, and those the request states, which the body must then match.
// The body's hash is bodyHash, or "" while the body is unread.
func (c *check) payloadHashes(bodyHash string) (candidates, claimed []string, e *Error) {
	hdrSHA, _ := headerValues(c.r, headerSHA256)
	if len(hdrSHA) > 0 {
		claimed = append(claimed, strings.TrimSpace(hdrSHA[0]))
	}
	switch {
	case !c.a.presigned && len(hdrSHA) > 0:
		candidates = append(candidates, strings.TrimSpace(hdrSHA[0]))
	case !c.a.presigned && c.rule.RequireContentSHA256:
		return nil, nil, newErr("InvalidRequest", "Missing required header for this request: x-amz-content-sha256")
	case !c.a.presigned:
		candidates = append(candidates, bodyHash)
	default:
		if qs, ok := queryValues(c.q, querySHA256); ok {
			return []string{qs[0]}, append(claimed, qs[0]), nil
		}
		if len(hdrSHA) > 0 {
			candidates = append(candidates, strings.TrimSpace(hdrSHA[0]))
		}
		candidates = append(candidates, unsignedPayload)
		if !c.rule.AllowUnsignedPayload {
			// Services other than S3 hash the payload in presigned
			// URLs too; IoT, Transcribe and MSK sign sha256("").
			candidates = append(candidates, bodyHash, emptySHA256)
		}
	}
	return dedupe(candidates), claimed, nil
}

// checkSignatureHead checks the signature before the body is read, with
// the payload hashes that do not depend on it; when only the body's hash
// can make it hold, the signature is checked at the body's end instead.
// Then the payload hashes stated are checked as far as the head allows.
func (c *check) checkSignatureHead() *Error {
	if e := c.checkSignature(""); e != nil {
		return e
	}
	if c.sigLater {
		if c.rule.Checksums {
			c.watchChecksums()
		}
		return nil
	}
	return c.checkClaimed("")
}

// checkSignature recomputes the signature with each candidate payload
// hash, and with a query token first in the canonical query and then
// without it (a token added after signing). With bodyHash "" (the body
// unread) a candidate that is the body's hash is skipped, and if none
// other holds, the check is left to the body's end (c.sigLater).
func (c *check) checkSignature(bodyHash string) *Error {
	candidates, claimed, e := c.payloadHashes(bodyHash)
	if e != nil {
		return e
	}
	c.claimed, c.sigLater = claimed, false
	excludes := [][]string{nil}
	if c.qTok {
		excludes = append(excludes, []string{queryToken})
	}
	var shown *Error // what a rejection shows: the first attempt, or the match
	for i, ex := range excludes {
		for _, ph := range candidates {
			if ph == "" {
				c.sigLater = true
				continue
			}
			ok, attempt, e := c.trySignature(ph, ex, shown == nil)
			if e != nil {
				return e
			}
			if attempt != nil {
				shown = attempt
				c.rec.PayloadHash = ph
			}
			if ok {
				if i == 1 {
					c.rec.Token = QueryUnsigned
				}
				c.shown, c.sigLater = shown, false
				return nil
			}
		}
	}
	if c.sigLater {
		c.rec.PayloadHash = ""
		return nil
	}
	shown.Code = "SignatureDoesNotMatch"
	shown.Message = "The request signature we calculated does not match the signature you provided. " +
		"Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
	return shown
}

// trySignature computes the signature with payload hash ph and the query
// parameters exclude left out, and reports whether it is the request's;
// attempt holds what a rejection would show of it, when asked to or when
// it matches.
func (c *check) trySignature(ph string, exclude []string, show bool) (ok bool, attempt *Error, e *Error) {
	a := c.a
	creq, err := buildCanonical(c.r, c.rule, a.signedHeaders, ph, a.presigned, false, exclude)
	if err != nil {
		return false, nil, newErr("SignatureDoesNotMatch", "The request could not be canonicalised: %v", err)
	}
	var sts string
	if a.v4a {
		sts = a.algorithm() + "\n" + a.amzDate + "\n" + a.scope() + "\n" + hexSHA256([]byte(creq))
		pub, err := v4aPublicKey(a.accessKeyID, c.creds.SecretAccessKey)
		if err != nil {
			return false, nil, newErr("SignatureDoesNotMatch", "No SigV4a key derives from the access key: %v", err)
		}
		ok = verifyV4A(pub, sts, a.signature)
	} else {
		sts = StringToSign(a.amzDate, a.scope(), creq)
		sig := Signature(c.creds.SecretAccessKey, a.scopeDate, a.region, a.service, sts)
		ok = hmac.Equal([]byte(sig), []byte(a.signature))
	}
	if show || ok {
		red, _ := buildCanonical(c.r, c.rule, a.signedHeaders, ph, a.presigned, true, exclude)
		attempt = &Error{CanonicalRequest: red, StringToSign: sts}
	}
	return ok, attempt, nil
}

// checkClaimed: once the signature holds, the body must match the payload
// hashes the request states. With bodyHash "" (the body unread) it decides
// what it can: a stated hash is left to the body's end (c.hashLater), as
// are the checksum headers; an aws-chunked mode starts the decoder.
func (c *check) checkClaimed(bodyHash string) *Error {
	shown := c.shown
	for _, h := range c.claimed {
		switch {
		case bodyHash != "" && h == bodyHash:
			continue
		case h == unsignedPayload && (c.a.presigned || c.rule.AllowUnsignedPayload):
			continue
		case h == unsignedPayload:
			shown.Message = fmt.Sprintf("UNSIGNED-PAYLOAD is not accepted for service %q; the payload must be signed.", c.a.service)
		case c.rule.AWSChunked && (h == streamingUnsigned || !c.a.v4a && (h == streamingSigned || h == streamingSignedTrailer)):
			return c.startChunked(h, bodyHash != "")
		case c.a.v4a && strings.HasPrefix(h, "STREAMING-"):
			shown.Message = fmt.Sprintf("The payload signing mode %q (aws-chunked) is not one this verifier checks with %s.", h, algorithmV4A)
		case strings.HasPrefix(h, "STREAMING-"):
			shown.Message = fmt.Sprintf("The payload signing mode %q (aws-chunked) is not one S3 takes with SigV4.", h)
		case bodyHash == "":
			c.hashLater = true
			continue
		default:
			shown.Message = fmt.Sprintf("The provided 'x-amz-content-sha256' header does not match what was computed: ClientComputedContentSHA256 %s, S3ComputedContentSHA256 %s.", h, bodyHash)
		}
		shown.Code = "XAmzContentSHA256Mismatch"
		return shown
	}
	switch {
	case !c.rule.Checksums:
	case bodyHash == "":
		c.watchChecksums()
	default:
		return c.checkChecksumHeaders()
	}
	return nil
}

// checkEnd checks, at a plain body's end, what depends on it: the
// signature, when it covers the body's hash (bodyHash, taken only then or
// when a stated hash needs it), then the stated payload hashes and the
// checksum headers.
func (c *check) checkEnd(bodyHash string) *Error {
	switch {
	case c.sigLater:
		if e := c.checkSignature(bodyHash); e != nil {
			return e
		}
		return c.checkClaimed(bodyHash)
	case c.hashLater:
		return c.checkClaimed(bodyHash)
	case c.rule.Checksums:
		return c.checkChecksumHeaders()
	}
	return nil
}

func dedupe(s []string) []string {
	var out []string
	for _, x := range s {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}
