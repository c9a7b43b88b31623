// Package sigv4test checks AWS Signature Version 4 (SigV4) the way AWS
// services do: it recomputes each request's signature from what arrived on
// the wire and compares it with the one the request carries.
//
// It is an independent implementation, written against the published
// algorithm and the official test vectors (see testdata/sigv4), and shares no
// code with any SDK signer, so it can check a signer's output rather than
// agree with its bugs.
//
// A [Verifier] checks one *http.Request as a server received it. A [Server]
// is a loopback HTTP endpoint (an [httptest.Server]) that verifies every
// request, records a [Record] of each, answers rejected requests with an
// AWS-style error and passes accepted ones to a handler.
//
// Both forms of SigV4 are checked: the Authorization header form and the
// presigned (query string) form, with session tokens that are signed or
// added after signing, in a header or in the query.
//
// SigV4a (AWS4-ECDSA-P256-SHA256: S3 Multi-Region Access Points,
// CloudFront KeyValueStore, EventBridge global endpoints) is checked the
// same way, from the same canonical request: the credential scope names
// no region, the signed X-Amz-Region-Set (a header, or a query parameter
// when presigned) must cover the endpoint's region ([Verifier.Scope]),
// and the ECDSA P-256 signature is verified with the public key derived
// from the secret the [Secrets] give ([SigV4APublicKey]), by code of this
// package's own, checked against aws-c-auth's vectors (testdata/sigv4a).
// Its aws-chunked forms (STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD) are
// not checked: such a request is rejected.
//
// # What is checked
//
//   - The canonical request is rebuilt from the wire: the path as received
//     (double-encoded and normalised, or for S3 decoded and encoded once,
//     see [Rule]); the query split on '&' and '=', percent-decoded ('+' is a
//     space), re-encoded with the RFC 3986 unreserved set, sorted by key then
//     value, repeats kept; the signed headers trimmed, inner runs of spaces
//     collapsed, repeats joined with ',' in arrival order.
//   - A path that is normalised (every rule but S3's) must not end in a
//     "." or ".." segment below the root ("/a/.", "/a/b/..") nor hold a
//     percent-encoded one anywhere ("/a/%2E%2E/b"): AWS services read such
//     paths differently (RFC 3986 and smithy-rs keep a trailing slash and
//     decode %2E, botocore does neither), so a signer must send paths with
//     their dot segments removed. Such requests are rejected with the code
//     AmbiguousPath, which is this package's own, not AWS's.
//   - SignedHeaders must include host, and every x-amz-* header present
//     except X-Amz-Security-Token must be signed.
//   - The credential scope date must be the date of X-Amz-Date (or, for the
//     header form, of the Date header, in basic or HTTP format).
//   - X-Amz-Date must be within 15 minutes of [Verifier.Now]; a presigned
//     URL with X-Amz-Expires is instead valid from 15 minutes before
//     X-Amz-Date until X-Amz-Date plus X-Amz-Expires (at most 7 days).
//   - The key must be known and unexpired; a key with a session token must
//     present exactly that token, and a key without one must present none.
//   - Payload: an X-Amz-Content-Sha256 header (or presigned query
//     parameter) is the canonical payload hash and must be the SHA-256 of
//     the body received, or UNSIGNED-PAYLOAD where the rule allows it. With
//     no such header the body is hashed. A presigned URL without one is
//     checked against UNSIGNED-PAYLOAD and, for services other than S3, also
//     against the SHA-256 of the body and of an empty body (IoT, Transcribe
//     and MSK sign sha256("")). Where the rule allows it (S3), an
//     aws-chunked payload (STREAMING-AWS4-HMAC-SHA256-PAYLOAD, its -TRAILER
//     form, STREAMING-UNSIGNED-PAYLOAD-TRAILER) is decoded as S3 decodes
//     it: every chunk's signature chained from the request's, the final
//     chunk, the decoded length, the trailer's signature and checksum.
//   - x-amz-checksum-* headers (S3) must be the body's checksums.
//   - A session token in the query is tried first as part of the canonical
//     query, then without it (a token appended after signing).
//
// # Large bodies
//
// [Verifier.Verify] reads the whole body (up to [Verifier.MaxBody]) before
// it checks anything, and hands the handler a copy. [Verifier.VerifyStream]
// checks the request's head at once and returns a [Stream] of the body's
// data that checks the rest as it is read: an aws-chunked upload chunk by
// chunk, each chunk's data handed on once its signature holds; a hashed
// body's hash and its checksums at its end. A body of any length is then
// checked in the memory of one chunk, so that an upstream measuring a
// proxy's upload throughput measures the proxy. Both share one
// implementation, and give the same verdicts; a [Server] uses the stream
// when [Verifier.Stream] is set.
package sigv4test
