package sigv4test

import (
	"fmt"
	"time"
)

// Error describes why a request was rejected. Code is one of the AWS error
// codes:
//
//   - MissingAuthenticationToken: no Authorization header and no presigned
//     query parameters.
//   - IncompleteSignature: malformed Authorization header, presigned query
//     parameters, credential scope or date.
//   - InvalidClientTokenId: unknown access key ID.
//   - SignatureDoesNotMatch: the signature differs from the one computed
//     (also: credential scope date differs from the request date, or
//     SignedHeaders lacks host).
//   - RequestTimeTooSkewed: X-Amz-Date more than 15 min from the server time.
//   - ExpiredToken: the server time is past the credentials' Expiration.
//   - InvalidToken: the session token is missing, is not the key's token, or
//     was sent with long-term credentials.
//   - XAmzContentSHA256Mismatch: the X-Amz-Content-Sha256 value is not the
//     hash of the body received (or is UNSIGNED-PAYLOAD where the service
//     rule does not allow it).
//   - AccessDenied: an expired presigned URL ("Request has expired"), or
//     x-amz-* headers that are not signed.
//   - InvalidRequest: a required X-Amz-Content-Sha256 header is missing.
//   - RequestEntityTooLarge: the body (for Verify) or an aws-chunked chunk
//     (for VerifyStream) exceeds [Verifier.MaxBody].
//   - IncompleteBody: the body ends early (inside an aws-chunked chunk, or
//     short of Content-Length or x-amz-decoded-content-length) or could
//     not be read.
//   - BadDigest: an x-amz-checksum-* value, in a header or a trailer, is
//     not the body's checksum.
//   - InvalidChunkSizeError, MalformedTrailerError, InvalidArgument,
//     MissingContentLength: aws-chunked framing, trailer or headers S3
//     does not take.
//
// No field ever holds a secret key, a session token or a signature.
type Error struct {
	Code    string // the AWS error code, such as "SignatureDoesNotMatch"
	Message string // AWS's wording of the problem
	// CanonicalRequest is what this verifier computed (with the session
	// token value replaced by "REDACTED"), for debugging, as AWS returns it.
	// It is set for signature and payload errors.
	CanonicalRequest string
	// StringToSign is the string to sign computed from the canonical
	// request (with the real token, so the hash is the one that was used).
	StringToSign string
}

// Error returns "sigv4test: Code: Message". It never includes the secret
// key, the session token or a signature.
func (e *Error) Error() string {
	return "sigv4test: " + e.Code + ": " + e.Message
}

func newErr(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

func skewErr(amzDate string, now time.Time) *Error {
	return newErr("RequestTimeTooSkewed",
		"The difference between the request time and the current time is too large: request time %s, server time %s, maximum skew %v.",
		amzDate, now.UTC().Format(amzDateLayout), maxSkew)
}
