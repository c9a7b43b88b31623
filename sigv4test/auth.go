package sigv4test

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// authParams is what a request says about its own signature.
type authParams struct {
	presigned     bool
	v4a           bool // SigV4a: region is the region set
	accessKeyID   string
	scopeDate     string
	region        string
	service       string
	signedHeaders []string
	signature     string
	amzDate       string // as it enters the string to sign
	when          time.Time
	expires       int64 // presigned X-Amz-Expires in seconds, -1 if absent
}

func (a *authParams) scope() string {
	if a.v4a {
		return a.scopeDate + "/" + a.service + "/" + terminator
	}
	return a.scopeDate + "/" + a.region + "/" + a.service + "/" + terminator
}

// algorithm is the request's signing algorithm.
func (a *authParams) algorithm() string {
	if a.v4a {
		return algorithmV4A
	}
	return algorithm
}

// parseAuth reads the Authorization header or the presigned query
// parameters. It returns the parameters read so far along with an error,
// so that the Record can tell what a rejected request claimed.
func parseAuth(r *http.Request, q []pair, qerr error) (*authParams, *Error) {
	authz := r.Header.Values("Authorization")
	_, hasAlg := queryValues(q, "X-Amz-Algorithm")
	_, hasQSig := queryValues(q, querySig)
	_, hasQCred := queryValues(q, "X-Amz-Credential")
	presigned := hasAlg || hasQSig || hasQCred
	switch {
	case len(authz) == 0 && !presigned:
		if qerr != nil {
			return nil, newErr("MissingAuthenticationToken", "Request is missing Authentication Token (the query string is malformed: %v).", qerr)
		}
		return nil, newErr("MissingAuthenticationToken", "Request is missing Authentication Token.")
	case len(authz) > 0 && presigned:
		return nil, newErr("IncompleteSignature", "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header should be specified.")
	case len(authz) > 1:
		return nil, newErr("IncompleteSignature", "The request has %d Authorization headers; it must have one.", len(authz))
	}
	a := &authParams{presigned: presigned, expires: -1}
	var credential, signedHeaders string
	var e *Error
	if presigned {
		credential, signedHeaders, e = a.parseQuery(q)
	} else {
		credential, signedHeaders, e = a.parseHeader(r, authz[0])
	}
	if e != nil {
		return a, e
	}
	if e := a.parseCredential(credential); e != nil {
		return a, e
	}
	if a.v4a {
		if e := a.parseRegionSet(r, q); e != nil {
			return a, e
		}
	}
	if signedHeaders == "" {
		return a, newErr("IncompleteSignature", "SignedHeaders must not be empty.")
	}
	a.signedHeaders = strings.Split(signedHeaders, ";")
	return a, nil
}

// parseHeader reads the Authorization header form: the header's
// parameters, and the date from X-Amz-Date or else Date.
func (a *authParams) parseHeader(r *http.Request, authz string) (credential, signedHeaders string, e *Error) {
	alg, rest, _ := strings.Cut(strings.TrimSpace(authz), " ")
	if alg != algorithm && alg != algorithmV4A {
		return "", "", newErr("IncompleteSignature", "Unsupported Authorization type: the algorithm must be %s or %s.", algorithm, algorithmV4A)
	}
	a.v4a = alg == algorithmV4A
	var haveCred, haveSH, haveSig bool
	for part := range strings.SplitSeq(rest, ",") {
		k, val, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Credential":
			credential, haveCred = val, true
		case "SignedHeaders":
			signedHeaders, haveSH = val, true
		case "Signature":
			a.signature, haveSig = val, true
		}
	}
	var missing []string
	for _, m := range []struct {
		ok   bool
		name string
	}{{haveCred, "Credential"}, {haveSig, "Signature"}, {haveSH, "SignedHeaders"}} {
		if !m.ok {
			missing = append(missing, "Authorization header requires '"+m.name+"' parameter.")
		}
	}
	if len(missing) > 0 {
		return "", "", newErr("IncompleteSignature", "%s", strings.Join(missing, " "))
	}
	return credential, signedHeaders, a.parseHeaderDate(r)
}

// parseHeaderDate reads the request time of the header form: X-Amz-Date,
// or the Date header as a fallback, in basic or HTTP format.
func (a *authParams) parseHeaderDate(r *http.Request) *Error {
	if d, ok := headerValues(r, "x-amz-date"); ok {
		t, err := time.Parse(amzDateLayout, strings.TrimSpace(d[0]))
		if err != nil {
			return newErr("IncompleteSignature", "Date must be in ISO-8601 'basic format'. Got '%s'.", d[0])
		}
		a.amzDate, a.when = strings.TrimSpace(d[0]), t
		return nil
	}
	d, ok := headerValues(r, "date")
	if !ok {
		return newErr("IncompleteSignature", "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
	}
	ds := strings.TrimSpace(d[0])
	if t, err := time.Parse(amzDateLayout, ds); err == nil {
		a.amzDate, a.when = ds, t
	} else if t, err := http.ParseTime(ds); err == nil {
		a.when = t.UTC()
		a.amzDate = a.when.Format(amzDateLayout)
	} else {
		return newErr("IncompleteSignature", "The Date header is neither ISO-8601 'basic format' nor an HTTP date. Got '%s'.", ds)
	}
	return nil
}

// parseQuery reads the presigned form's query parameters.
func (a *authParams) parseQuery(q []pair) (credential, signedHeaders string, e *Error) {
	get := func(name string) (string, bool) {
		vs, ok := queryValues(q, name)
		if !ok {
			return "", false
		}
		return vs[0], true
	}
	alg, okAlg := get("X-Amz-Algorithm")
	credential, okCred := get("X-Amz-Credential")
	signedHeaders, okSH := get("X-Amz-SignedHeaders")
	sig, okSig := get(querySig)
	date, okDate := get("X-Amz-Date")
	a.signature = sig
	if !okAlg || !okCred || !okSH || !okSig || !okDate {
		return "", "", newErr("IncompleteSignature",
			"AWS query-string parameters must include 'X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Signature', 'X-Amz-Date', 'X-Amz-SignedHeaders'. Re-examine the query-string parameters.")
	}
	if alg != algorithm && alg != algorithmV4A {
		return "", "", newErr("IncompleteSignature", "X-Amz-Algorithm only supports %q and %q.", algorithm, algorithmV4A)
	}
	a.v4a = alg == algorithmV4A
	t, err := time.Parse(amzDateLayout, date)
	if err != nil {
		return "", "", newErr("IncompleteSignature", "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\". Got '%s'.", date)
	}
	a.amzDate, a.when = date, t
	if exp, ok := get("X-Amz-Expires"); ok {
		n, err := strconv.ParseInt(exp, 10, 64)
		if err != nil || n < 0 {
			return "", "", newErr("IncompleteSignature", "X-Amz-Expires should be a number of seconds. Got '%s'.", exp)
		}
		if n > maxPresignExpires {
			return "", "", newErr("IncompleteSignature", "X-Amz-Expires must be less than a week (in seconds) that is %d.", maxPresignExpires)
		}
		a.expires = n
	}
	return credential, signedHeaders, nil
}

// parseCredential reads <AccessKeyID>/<YYYYMMDD>/<region>/<service>/aws4_request,
// or for SigV4a <AccessKeyID>/<YYYYMMDD>/<service>/aws4_request.
func (a *authParams) parseCredential(credential string) *Error {
	parts := strings.Split(credential, "/")
	if a.v4a {
		if len(parts) != 4 || parts[0] == "" || parts[2] == "" {
			return newErr("IncompleteSignature", "Credential must have the form <AccessKeyID>/<YYYYMMDD>/<service>/aws4_request with %s.", algorithmV4A)
		}
		parts = []string{parts[0], parts[1], "", parts[2], parts[3]}
	}
	if len(parts) != 5 || parts[0] == "" || parts[2] == "" && !a.v4a || parts[3] == "" {
		return newErr("IncompleteSignature", "Credential must have the form <AccessKeyID>/<YYYYMMDD>/<region>/<service>/aws4_request.")
	}
	a.accessKeyID, a.scopeDate, a.region, a.service = parts[0], parts[1], parts[2], parts[3]
	if parts[4] != terminator {
		return newErr("IncompleteSignature", "Credential should be scoped with a valid terminator: 'aws4_request', not '%s'.", parts[4])
	}
	if _, err := time.Parse(scopeDateLayout, a.scopeDate); err != nil {
		return newErr("IncompleteSignature", "Credential scope date must be YYYYMMDD. Got '%s'.", a.scopeDate)
	}
	return nil
}

// parseRegionSet reads SigV4a's X-Amz-Region-Set: a header, or a query
// parameter when presigned.
func (a *authParams) parseRegionSet(r *http.Request, q []pair) *Error {
	var set []string
	if a.presigned {
		set, _ = queryValues(q, "X-Amz-Region-Set")
	} else {
		set, _ = headerValues(r, "x-amz-region-set")
	}
	if len(set) != 1 || strings.TrimSpace(set[0]) == "" {
		return newErr("IncompleteSignature", "A request signed with %s must carry one X-Amz-Region-Set, the regions it is signed for.", algorithmV4A)
	}
	a.region = strings.TrimSpace(set[0])
	return nil
}
