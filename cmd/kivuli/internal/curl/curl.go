package curl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/kivuli-go/kivuli"
	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/base"
	"github.com/spf13/cobra"
)

// curlFlags are kivuli curl's own flags, and the run they are for.
type curlFlags struct {
	*base.App
	method       string
	headers      []string
	data         []dataPart
	upload       string
	include      bool
	output       string
	location     bool
	maxRedirs    int
	fail         bool
	failWithBody bool
	verbose      bool
	silent       bool
	showError    bool
	service      string
	region       string
	presign      presignFlag
	expiresIn    lifetimeFlag
	capToCreds   bool
	dryRun       bool
	allowHosts   []string
	awsRetry     bool
	checksum     string
	size         int64 // of -T -, when given
	sf           base.SourceFlags
}

// NewCommand is kivuli curl.
func NewCommand(a *base.App) *cobra.Command {
	f := &curlFlags{App: a}
	cmd := &cobra.Command{
		Use:   "curl [options] URL",
		Short: "send one HTTP request signed with SigV4, with curl's flags",
		Long: `kivuli curl sends one HTTP request signed with AWS Signature Version 4 by
the kivuli library's Transport, with the credentials of the source (the
instance role by default), and writes the answer's body to standard output.
Every flag it shares with curl means what it means to curl.

The signing service and region are inferred from the host, as the library
does (search-x.eu-west-2.es.amazonaws.com is es in eu-west-2; S3, API
Gateway, Lambda URLs and service.region.amazonaws.com likewise); --service
and --region set them where the host does not tell. A --service or --region
that the host contradicts (--region eu-west2 for search-x.eu-west-2.es...)
is a usage error, since the endpoint would refuse the signature; a host
that names no region (s3.amazonaws.com, whose buckets may be anywhere),
a tunnel, and a host listed with --allow-host are signed as the flags say.
The hosts that take only Signature Version 4a (S3 Multi-Region Access
Points, CloudFront KeyValueStore, EventBridge global endpoints) are signed
with it, for the region set "*", and refuse any other --region: -v,
--dry-run and --presign show and do the same. The session token goes
where the service wants it (the library's policy table).

Where the request may go is the library's rule: to an AWS endpoint, or to
a host given with --allow-host, and in clear (http://) only to loopback or
listed hosts, and never through an HTTP proxy: with HTTP_PROXY set, a
request in clear that Go would send through it (app.localhost and
LOCALHOST among them; NO_PROXY exempts hosts) is refused, since the proxy
would read the token and the signature. A tunnel is a listed URL host with
the AWS name in -H 'Host:'. With -L, redirects are followed on the same
host only: a signature is never carried, nor a new one made, for another
host.

The query string is sent exactly as given, byte for byte (only bytes that
cannot appear in a URL, such as spaces, are percent-encoded): already
encoded values (%3D, %2F), '=' and '+' in values, PromQL braces, repeated
and empty keys are signed as the service will read them. A URL whose
query is signed already (X-Amz-Signature, X-Amz-Credential, X-Amz-Date,
... in any letter case, or SigV2's AWSAccessKeyId and Signature: a
presigned URL) carries its own authority: it is sent as it is, not signed
again and without asking the source for credentials, and standard error
says so. It goes where it says, as with curl (through HTTP_PROXY if set):
the rules above guard the signatures kivuli makes, and this one is the
URL's. The flags that sign (--presign, --service, --region, --checksum,
--aws-retry) are refused with it.

Bodies stream from files and standard input and are never held in memory:
-T FILE and --data-binary @FILE send the file with its length (never
chunked, which S3 refuses); standard input that is a pipe is first copied
to a temporary file to learn its length, unless --size gives it, when it
streams as it comes. -d reads @FILE into memory and strips its newlines,
as curl does.

To S3, an upload (-T, or a PUT of a key) goes in one pass over the body,
aws-chunked: its chunks signed 64 KiB at a time and a checksum of it in
the trailer, which S3 checks on arrival and keeps with the object
(--checksum: crc32 by default, crc32c, crc64nvme, sha1, sha256, or none).
The operations S3 refuses without an integrity header (DeleteObjects,
bucket and object configuration writes) get the checksum in a header.

-v prints to standard error the canonical request and the string to sign
(as awscurl -v does), the request's headers and the answer's, with the
session token and the signature replaced by REDACTED; so is the access
key ID of the request's headers and query (its scope is kept), but not in
the canonical request, which stays as AWS quotes it when it refuses a
signature. --dry-run prints the same without sending anything.

--presign prints a presigned URL instead of sending: it carries the
signature and the token, and grants the request to whoever holds it until
it expires. --expires-in gives its lifetime, as aws s3 presign does: a
number of seconds (3600) or a duration (90s, 15m, 1h, 7d, 1d12h), from 1s
to 7d, which is all AWS accepts; 5 minutes without it. --presign=DUR and
--presign DUR URL, the older spellings, still mean the same. The URL also
stops working when the session token that signed it expires (AWS
enforces it, whatever the URL says): kivuli says so on standard error when
the URL is asked to live longer, and --cap-to-credentials makes the URL's
own lifetime end then.`,
		Annotations: map[string]string{
			base.AnnSynopsis: `kivuli curl [-X METHOD] [-H 'K: V']... [-d DATA | --data-binary @FILE | @-]
            [-T FILE [--size N]] [--checksum ALG] [-i] [-o FILE] [-L]
            [--fail | --fail-with-body] [-v]
            [--service S] [--region R] [--dry-run]
            [--presign [--expires-in DUR] [--cap-to-credentials]]
            [--allow-host HOST]... [CREDENTIAL SOURCE options] URL`,
			base.AnnExit: fmt.Sprintf(`%-4d with --fail or --fail-with-body, the answer's status was 400 or
     more (curl's 22).
%-4d -L followed more than --max-redirs redirects (curl's 47).`, base.ExitHTTPError, base.ExitRedirects),
			base.AnnSeeAlso: "curl(1), awscurl; kivuli creds --help, kivuli imds --help",
		},
		Example: `# who am I (STS, service and region from the host)
kivuli curl -d Action=GetCallerIdentity -d Version=2011-06-15 \
    https://sts.eu-west-2.amazonaws.com/

# OpenSearch: a search with a query as typed, and the signing steps shown
kivuli curl -v \
    'https://search-logs-abc.eu-west-2.es.amazonaws.com/logs-*/_search?q=status:500'

# an S3 upload from a file, and one from a pipe
kivuli curl -T backup.tar.gz https://my-bucket.s3.eu-west-2.amazonaws.com/backups/
tar cz data | kivuli curl -T - https://my-bucket.s3.eu-west-2.amazonaws.com/d.tgz

# a JSON POST to an API Gateway stage, failing on 4xx and 5xx
kivuli curl --fail -H 'Content-Type: application/json' -d @event.json \
    https://abc123.execute-api.eu-west-2.amazonaws.com/prod/events

# Amazon Managed Prometheus: braces and quotes in the query, as typed
W=https://aps-workspaces.eu-west-2.amazonaws.com/workspaces/ws-1
kivuli curl --service aps "$W"'/api/v1/query?query=up{job="api"}'

# a shareable link, valid for an hour
kivuli curl --presign --expires-in 1h \
    https://my-bucket.s3.eu-west-2.amazonaws.com/report.pdf

# through an SSH tunnel to a VPC-only OpenSearch domain
kivuli curl --allow-host localhost:9200 \
    -H 'Host: vpc-logs-abc.eu-west-2.es.amazonaws.com' \
    http://localhost:9200/_cluster/health

# offline, against the emulator: what would be signed, sending nothing
kivuli imds -- kivuli curl --dry-run -v https://sts.amazonaws.com/`,
		Args: base.UsageArgs(cobra.RangeArgs(1, 2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			err := f.curl(cmd.Context(), args)
			if err != nil && f.silent && !f.showError {
				return &base.SilentError{Code: base.ExitCode(err)}
			}
			return err
		},
	}
	fl := cmd.Flags()
	fl.SortFlags = false
	fl.StringVarP(&f.method, "request", "X", "", "use `METHOD` (default GET; POST with -d, PUT with -T)")
	fl.StringArrayVarP(&f.headers, "header", "H", nil, "add the header `'K: V'`; 'K:' removes a default header, 'K;' sends K empty, @FILE reads one header a line (repeatable)")
	fl.VarP(&dataFlag{parts: &f.data, kind: dataASCII}, "data", "d", "send `DATA` as a POST body; @FILE and @- read it with newlines removed; repeated -d are joined with &")
	fl.Var(&dataFlag{parts: &f.data, kind: dataBinary}, "data-binary", "send `DATA` as it is; @FILE streams the file, @- standard input")
	fl.Var(&dataFlag{parts: &f.data, kind: dataRaw}, "data-raw", "send `DATA` as it is, @ included")
	fl.StringVarP(&f.upload, "upload-file", "T", "", "PUT the `FILE` (- for standard input), streamed with its length; a URL ending in / gets the file's name")
	fl.BoolVarP(&f.include, "include", "i", false, "write the status line and the answer's headers before the body")
	fl.StringVarP(&f.output, "output", "o", "", "write the body to `FILE` instead of standard output")
	fl.BoolVarP(&f.location, "location", "L", false, "follow redirects on the same host (never to another)")
	fl.IntVar(&f.maxRedirs, "max-redirs", 50, "with -L, follow at most `N` redirects")
	fl.BoolVarP(&f.fail, "fail", "f", false, "on an answer of 400 or more, write nothing and exit 22")
	fl.BoolVar(&f.failWithBody, "fail-with-body", false, "on an answer of 400 or more, write the body and exit 22")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "print the canonical request, the string to sign and the headers to standard error (token, signature and access key ID redacted)")
	fl.BoolVarP(&f.silent, "silent", "s", false, "print no error message")
	fl.BoolVarP(&f.showError, "show-error", "S", false, "with -s, print error messages all the same")
	fl.StringVar(&f.service, "service", "", "the signing `SERVICE`, e.g. es, s3, execute-api (default: inferred from the host)")
	fl.StringVar(&f.region, "region", "", "the signing `REGION`, e.g. eu-west-2 (default: inferred from the host)")
	f.addPresignFlags(fl)
	fl.BoolVar(&f.dryRun, "dry-run", false, "sign and print what -v prints, but send nothing")
	fl.StringArrayVar(&f.allowHosts, "allow-host", nil, "also sign for `HOST` (host, host:port, [v6]:port, or *.domain); listed hosts may be reached over http:// (repeatable)")
	fl.StringVar(&f.checksum, "checksum", "", "the S3 flexible checksum of an upload: `ALG` crc32 (default), crc32c, crc64nvme, sha1, sha256 or none")
	fl.Int64Var(&f.size, "size", -1, "with -T -, standard input's length in `BYTES`: streamed as it comes, not copied to a temporary file first")
	fl.BoolVar(&f.awsRetry, "aws-retry", false, "retry 5xx, 429 and throttling answers, and once after an expired token or a skewed clock, as the library's NewRetryingClient does (at most 3 attempts)")
	base.AddSourceFlags(cmd, &f.sf, true)
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &base.ExitError{Code: base.ExitUsage, Err: negativeValue(err)}
	})
	return cmd
}

// errDryRun ends a --dry-run request at the transport, after signing.
var errDryRun = errors.New("kivuli: dry run: nothing sent")

func (f *curlFlags) curl(ctx context.Context, args []string) error {
	args, err := f.presignArgs(args)
	if err != nil {
		return err
	}
	u, err := f.target(args)
	if err != nil {
		return err
	}
	signedBy := signedParam(u.RawQuery) // a URL signed already: sent as it is
	if signedBy != "" {
		if err := f.checkSignedURL(signedBy); err != nil {
			return err
		}
	}
	body, err := f.requestBody()
	if err != nil {
		return err
	}
	defer body.cleanup()
	req, err := f.request(ctx, u)
	if err != nil {
		return err
	}
	if err := f.checkScope(req); err != nil {
		return err
	}
	body.attach(req)
	if signedBy != "" {
		return f.sendAsIs(req, signedBy)
	}
	src, err := f.sf.Open(ctx, f.App, f.region, false)
	if err != nil {
		return err
	}
	defer src.Close()
	t := f.signer(src.Creds)
	if f.presign.on {
		return f.presignURL(ctx, t, src.Creds, req)
	}
	return f.send(t, req)
}

// target checks the arguments and the flags that exclude each other, and
// returns the URL to request.
func (f *curlFlags) target(args []string) (*url.URL, error) {
	if len(args) == 2 {
		return nil, base.UsageErrorf("one URL expected, got %q and %q", args[0], args[1])
	}
	if f.fail && f.failWithBody {
		return nil, base.UsageErrorf("--fail and --fail-with-body exclude each other")
	}
	if f.upload != "" && len(f.data) > 0 {
		return nil, base.UsageErrorf("-T and -d/--data-binary exclude each other: one body per request")
	}
	u, err := parseURL(args[len(args)-1])
	if err != nil {
		return nil, err
	}
	if f.upload != "" && f.upload != "-" && strings.HasSuffix(u.Path, "/") {
		u = u.JoinPath(path.Base(f.upload))
	}
	return u, nil
}

// request is the request the flags describe, to u, without its body.
func (f *curlFlags) request(ctx context.Context, u *url.URL) (*http.Request, error) {
	method := f.method
	switch {
	case method != "":
	case f.upload != "":
		method = http.MethodPut
	case len(f.data) > 0:
		method = http.MethodPost
	default:
		method = http.MethodGet
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return nil, base.UsageErrorf("%v", err)
	}
	req.URL = u // as given: String and Parse would not keep every byte
	if !f.presign.on {
		// Not for a presigned URL: each header signed is one that
		// whoever uses the URL must send.
		req.Header.Set("User-Agent", "kivuli-curl")
		req.Header.Set("Accept", "*/*")
	}
	if len(f.data) > 0 {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if err := f.setHeaders(req, f.headers); err != nil {
		return nil, err
	}
	if err := f.checksumHeader(req); err != nil {
		return nil, err
	}
	return req, nil
}

// checksumHeader asks the signer for the --checksum algorithm, as an SDK
// asks it, in x-amz-sdk-checksum-algorithm; and checks --size.
func (f *curlFlags) checksumHeader(req *http.Request) error {
	switch {
	case f.size < -1:
		return base.UsageErrorf("--size %d: want the length of standard input in bytes", f.size)
	case f.size >= 0 && f.upload != "-":
		return base.UsageErrorf("--size gives the length of standard input: use it with -T -")
	}
	switch alg := strings.ToLower(f.checksum); alg {
	case "":
	case "crc32", "crc32c", "crc64nvme", "sha1", "sha256", "none":
		req.Header.Set("X-Amz-Sdk-Checksum-Algorithm", strings.ToUpper(alg))
	default:
		return base.UsageErrorf("--checksum %q: want crc32, crc32c, crc64nvme, sha1, sha256 or none", f.checksum)
	}
	return nil
}

// signer is the library's Transport with creds, as the flags set it,
// over a transport that shows (-v) or only shows (--dry-run) what it
// sends.
func (f *curlFlags) signer(creds aws.CredentialsProvider) *kivuli.Transport {
	// S3 uploads in one pass, signed chunk by chunk (the file would be
	// read twice to hash it first).
	policies := kivuli.DefaultPolicies()
	s3 := policies["s3"]
	s3.Chunked = true
	policies["s3"] = s3
	return &kivuli.Transport{
		Credentials:  creds,
		Service:      f.service,
		Region:       f.region,
		Policies:     policies,
		AllowedHosts: f.allowHosts,
		Logger:       newSigningLogger(f.Stderr, f.verbose || f.dryRun),
		Base:         f.showing(f.pool()),
	}
}

// pool is the HTTP transport requests go out by.
func (f *curlFlags) pool() *http.Transport {
	pool := http.DefaultTransport.(*http.Transport).Clone()
	pool.DisableCompression = true // as curl without --compressed: the body as sent
	return pool
}

// showing is next showing what it sends with -v, and sending nothing with
// --dry-run.
func (f *curlFlags) showing(next http.RoundTripper) *showingTransport {
	return &showingTransport{next: next, w: f.Stderr, show: f.verbose || f.dryRun, dry: f.dryRun}
}

// send sends req signed by t, following redirects as -L says, and writes
// the answer.
func (f *curlFlags) send(t *kivuli.Transport, req *http.Request) error {
	client := &http.Client{Transport: t}
	if f.awsRetry && !f.dryRun {
		client = kivuli.NewRetryingClient(t)
	}
	return f.do(client, req)
}

// do sends req by client, following redirects as -L says, and writes the
// answer.
func (f *curlFlags) do(client *http.Client, req *http.Request) error {
	client.CheckRedirect = redirectPolicy(f.location, f.maxRedirs)
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if errors.Is(err, errDryRun) {
			return nil
		}
		return err
	}
	defer resp.Body.Close()
	return f.writeResponse(resp)
}

// redirectPolicy follows redirects with -L, on the URL's host only.
func redirectPolicy(follow bool, max int) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if !follow {
			return http.ErrUseLastResponse
		}
		if len(via) > max {
			return &base.ExitError{Code: base.ExitRedirects, Err: fmt.Errorf("kivuli: more than %d redirects (--max-redirs)", max)}
		}
		first := via[0].URL
		if !strings.EqualFold(req.URL.Host, first.Host) || !strings.EqualFold(req.URL.Scheme, first.Scheme) {
			return &base.ExitError{Code: base.ExitRefused, Err: fmt.Errorf("kivuli: not following the redirect to %s://%s: signed requests go only to %s://%s, the host on the command line",
				req.URL.Scheme, req.URL.Host, first.Scheme, first.Host)}
		}
		return nil
	}
}

// writeResponse writes the answer as curl does: -i's head, then the body
// unless --fail says otherwise.
func (f *curlFlags) writeResponse(resp *http.Response) error {
	out := f.Stdout
	if f.output != "" && f.output != "-" {
		file, err := os.Create(f.output)
		if err != nil {
			return fmt.Errorf("kivuli: -o: %w", err)
		}
		defer file.Close()
		out = file
	}
	failed := resp.StatusCode >= 400 && (f.fail || f.failWithBody)
	if f.include && !(failed && f.fail) {
		if _, err := io.WriteString(out, responseHead(resp)); err != nil {
			return err
		}
	}
	if !(failed && f.fail) {
		if _, err := io.Copy(out, resp.Body); err != nil {
			return fmt.Errorf("kivuli: reading the answer: %w", err)
		}
	}
	if c, ok := out.(io.Closer); ok && out != f.Stdout {
		if err := c.Close(); err != nil {
			return fmt.Errorf("kivuli: -o: %w", err)
		}
	}
	if failed {
		return &base.ExitError{Code: base.ExitHTTPError, Err: fmt.Errorf("kivuli: the requested URL returned error: %d", resp.StatusCode)}
	}
	return nil
}

// responseHead is the status line and headers as -i writes them.
func responseHead(resp *http.Response) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\r\n", resp.Proto, resp.Status)
	for _, kv := range sortedHeader(resp.Header) {
		fmt.Fprintf(&b, "%s: %s\r\n", kv[0], kv[1])
	}
	b.WriteString("\r\n")
	return b.String()
}

// parseURL parses a URL from the command line keeping its query exactly
// as typed: RawQuery is the text after '?', and only bytes that cannot
// be sent in a request line (controls, space, non-ASCII) are
// percent-encoded. Without a scheme, https:// is assumed.
func parseURL(raw string) (*url.URL, error) {
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	raw, _, _ = strings.Cut(raw, "#") // curl sends no fragment either
	target, query, hasQuery := strings.Cut(raw, "?")
	u, err := url.Parse(escapeWire(target))
	if err != nil {
		return nil, base.UsageErrorf("bad URL: %v", err)
	}
	if u.Host == "" {
		return nil, base.UsageErrorf("bad URL %q: no host", raw)
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
	default:
		return nil, base.UsageErrorf("bad URL %q: kivuli curl speaks http and https", raw)
	}
	u.RawQuery = escapeWire(query)
	u.ForceQuery = hasQuery && query == ""
	return u, nil
}

// escapeWire percent-encodes the bytes that a request line cannot hold.
func escapeWire(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f {
			fmt.Fprintf(&b, "%%%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// setHeaders applies -H as curl does.
func (f *curlFlags) setHeaders(req *http.Request, headers []string) error {
	var lines []string
	for _, h := range headers {
		if file, ok := strings.CutPrefix(h, "@"); ok {
			b, err := f.readArg(file)
			if err != nil {
				return base.UsageErrorf("-H @%s: %v", file, err)
			}
			for l := range strings.SplitSeq(string(b), "\n") {
				if l = strings.TrimRight(l, "\r"); strings.TrimSpace(l) != "" {
					lines = append(lines, l)
				}
			}
			continue
		}
		lines = append(lines, h)
	}
	user := map[string]bool{} // the headers -H set, as opposed to defaults
	for _, h := range lines {
		name, value, colon := strings.Cut(h, ":")
		if !colon {
			// "K;" sends K with an empty value, as curl does.
			n, rest, semi := strings.Cut(h, ";")
			if !semi || strings.TrimSpace(rest) != "" {
				return base.UsageErrorf("-H %q: want 'Name: value'", h)
			}
			name, value = n, ""
			if name = strings.TrimSpace(name); name == "" {
				return base.UsageErrorf("-H %q: no header name", h)
			}
			req.Header[http.CanonicalHeaderKey(name)] = []string{""}
			continue
		}
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if name == "" {
			return base.UsageErrorf("-H %q: no header name", h)
		}
		if strings.EqualFold(name, "Host") {
			req.Host = value
			continue
		}
		if value == "" {
			req.Header.Del(name) // "K:" removes a default header
			continue
		}
		if !user[http.CanonicalHeaderKey(name)] {
			req.Header.Del(name) // a default, replaced; a repeated -H adds
		}
		req.Header.Add(name, value)
		user[http.CanonicalHeaderKey(name)] = true
	}
	return nil
}

// readArg reads the file named by an @ argument, "-" being standard
// input.
func (f *curlFlags) readArg(name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(f.Stdin)
	}
	return os.ReadFile(name)
}
