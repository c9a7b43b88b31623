package kivuli

import (
	"maps"
	"time"
)

// TokenPlacement says where the session token goes on a signed request.
type TokenPlacement int

const (
	// TokenHeader sends the token as the X-Amz-Security-Token header,
	// included in the signature. Most services want this.
	TokenHeader TokenPlacement = iota
	// TokenHeaderUnsigned sends the X-Amz-Security-Token header, added
	// after signing.
	TokenHeaderUnsigned
	// TokenQuery sends the token as the X-Amz-Security-Token query
	// parameter, included in the signature (presigned WebSocket URLs of
	// Transcribe, MSK IAM authentication).
	TokenQuery
	// TokenQueryUnsigned appends the X-Amz-Security-Token query parameter
	// after X-Amz-Signature, outside the signature (IoT Core MQTT over
	// WebSocket).
	TokenQueryUnsigned
)

// String returns the placement's name, e.g. "header (signed)".
func (p TokenPlacement) String() string {
	switch p {
	case TokenHeader:
		return "header (signed)"
	case TokenHeaderUnsigned:
		return "header (unsigned)"
	case TokenQuery:
		return "query (signed)"
	case TokenQueryUnsigned:
		return "query (unsigned)"
	}
	return "TokenPlacement(?)"
}

// PayloadMode says how the request body enters the signature.
type PayloadMode int

const (
	// PayloadHash signs the hex SHA-256 of the body.
	PayloadHash PayloadMode = iota
	// PayloadHashHeader signs the hex SHA-256 of the body and also sends it
	// as the X-Amz-Content-Sha256 header (S3, OpenSearch Service; required by
	// OpenSearch Serverless).
	PayloadHashHeader
	// PayloadUnsigned signs UNSIGNED-PAYLOAD instead of a hash, and sends it
	// as the X-Amz-Content-Sha256 header: the body is never read to sign it.
	// Only S3 accepts it.
	PayloadUnsigned
)

// String returns the mode's name, e.g. "sha256+header".
func (m PayloadMode) String() string {
	switch m {
	case PayloadHash:
		return "sha256"
	case PayloadHashHeader:
		return "sha256+header"
	case PayloadUnsigned:
		return "unsigned"
	}
	return "PayloadMode(?)"
}

// SignMode says where the signature goes.
type SignMode int

const (
	// SignHeader puts the signature in the Authorization header.
	SignHeader SignMode = iota
	// SignQuery presigns: the signature goes in the query
	// (X-Amz-Signature), as WebSocket handshakes need.
	SignQuery
	// SignQueryWebSocket presigns WebSocket handshakes (ws:// and wss://
	// URLs, or an Upgrade: websocket header) and signs other requests in
	// the Authorization header.
	SignQueryWebSocket
)

// String returns the mode's name, e.g. "query".
func (m SignMode) String() string {
	switch m {
	case SignHeader:
		return "header"
	case SignQuery:
		return "query"
	case SignQueryWebSocket:
		return "query for WebSockets"
	}
	return "SignMode(?)"
}

// Algorithm says which signature signs the requests to a service.
type Algorithm int

const (
	// AlgorithmAuto signs with SigV4a the hosts that AWS's endpoint rules
	// sign with SigV4a only (S3 Multi-Region Access Points, CloudFront
	// KeyValueStore, EventBridge global endpoints), for the region set
	// they give ("*"), and every other host with SigV4, S3 on Outposts
	// included (its rules offer both).
	AlgorithmAuto Algorithm = iota
	// AlgorithmSigV4 signs with SigV4 only: a host that takes SigV4a only
	// is refused with [ErrUnknownScope], and nothing is sent.
	AlgorithmSigV4
	// AlgorithmSigV4A signs with SigV4a every host, for the region set
	// its rules give (S3 on Outposts: "*"), else for its region as SigV4
	// would be signed (Transport.Region, which may then be "*" or a
	// comma-separated list such as "us-east-1,us-west-2", else the host's,
	// else AWS_REGION).
	AlgorithmSigV4A
)

// String returns the algorithm's name, e.g. "SigV4a".
func (a Algorithm) String() string {
	switch a {
	case AlgorithmAuto:
		return "auto"
	case AlgorithmSigV4:
		return "SigV4"
	case AlgorithmSigV4A:
		return "SigV4a"
	}
	return "Algorithm(?)"
}

// A Policy says how requests to one service are signed.
// The zero Policy is the default: token in a signed header, body hashed,
// path normalised and escaped twice, signature in the Authorization header.
type Policy struct {
	// Token says where the session token goes and whether it is signed.
	// The zero value, TokenHeader, is a signed X-Amz-Security-Token header.
	Token TokenPlacement
	// Payload says how the body enters the signature. The zero value,
	// PayloadHash, signs its SHA-256.
	Payload PayloadMode
	// UnsignedStreaming sends a body that can be read only once (it has no
	// GetBody and is not an io.Seeker) as UNSIGNED-PAYLOAD rather than
	// buffering it to hash it. Only for services that accept
	// UNSIGNED-PAYLOAD (S3).
	UnsignedStreaming bool
	// EscapePathOnce signs the path escaped once rather than twice, as S3
	// wants; the path sent is rewritten to its strict escaped form so that
	// both agree.
	EscapePathOnce bool
	// KeepDotSegments signs the path as sent, without removing "." and ".."
	// segments and repeated slashes, as S3 wants.
	KeepDotSegments bool
	// Chunked sends the body of an S3 upload (a PUT of an object or a part)
	// of known length in aws-chunked encoding with signed chunks
	// (STREAMING-AWS4-HMAC-SHA256-PAYLOAD): read once, as it is sent, 64
	// KiB at a time, each chunk signed over its SHA-256, rather than read
	// once to hash it and again to send it (or sent as UNSIGNED-PAYLOAD,
	// unchecked). Only S3 accepts it, and kivuli signs it with SigV4 only:
	// a host signed with SigV4a gets the body hashed instead.
	Chunked bool
	// Checksum is the algorithm of the S3 flexible checksum that kivuli
	// computes, in the same pass as the body's SHA-256, where S3 takes one
	// and the request carries none (no x-amz-checksum-* header, no
	// Content-MD5): uploads of objects and parts, in the trailer of a
	// Chunked body or else in a header, and the operations S3 refuses
	// without one (DeleteObjects, bucket and object configuration
	// writes). A request that names an algorithm in
	// x-amz-sdk-checksum-algorithm (as the SDKs do) gets that one, on any
	// operation; "NONE" there sends none. Empty: none unless asked.
	Checksum ChecksumAlgorithm
	// Sign says where the signature goes. The zero value, SignHeader, is
	// the Authorization header.
	Sign SignMode
	// Expires is how long a presigned request stays valid; zero means
	// five minutes.
	Expires time.Duration
	// Algorithm says whether SigV4 or SigV4a signs. The zero value,
	// AlgorithmAuto, signs with SigV4a the hosts that take only SigV4a, as
	// AWS's endpoint rules say, and the others with SigV4.
	Algorithm Algorithm
}

// defaultPresignExpiry is how long a presigned request stays valid unless
// the policy or the caller says otherwise.
const defaultPresignExpiry = 5 * time.Minute

// DefaultService is the key of the row used for services that have none.
const DefaultService = "default"

// Policies maps signing service names (such as "s3" or "es") to the policy
// of their requests. The row [DefaultService] applies to services that have
// no row.
type Policies map[string]Policy

var builtinPolicies = Policies{
	DefaultService:     {},
	"es":               {Payload: PayloadHashHeader},
	"aoss":             {Payload: PayloadHashHeader},
	"s3":               {Payload: PayloadHashHeader, UnsignedStreaming: true, EscapePathOnce: true, KeepDotSegments: true, Checksum: ChecksumCRC32},
	"s3-object-lambda": {Payload: PayloadHashHeader, UnsignedStreaming: true, EscapePathOnce: true, KeepDotSegments: true},
	"s3-outposts":      {Payload: PayloadHashHeader, UnsignedStreaming: true, EscapePathOnce: true, KeepDotSegments: true},
	"iotdevicegateway": {Token: TokenQueryUnsigned, Sign: SignQuery},
	"transcribe":       {Token: TokenQuery, Sign: SignQueryWebSocket},
	"kafka-cluster":    {Token: TokenQuery, Sign: SignQuery, Expires: 15 * time.Minute},
	"neptune-db":       {},
	"execute-api":      {},
}

// DefaultPolicies returns a copy of the built-in table, to change or extend
// and set as [Transport.Policies]. Every row:
//
//	service            token            payload                          path                 signature
//	default            header, signed   SHA-256                          normalised, escaped  header
//	                                                                     twice
//	es                 header, signed   SHA-256 + X-Amz-Content-Sha256   as default           header
//	aoss               header, signed   SHA-256 + X-Amz-Content-Sha256   as default           header
//	s3                 header, signed   SHA-256 + X-Amz-Content-Sha256,  as sent, escaped     header
//	                                    a CRC32 checksum (Checksum);     once
//	                                    one-shot uploads of known
//	                                    length aws-chunked, the
//	                                    checksum in the trailer
//	s3-object-lambda   header, signed   SHA-256 + X-Amz-Content-Sha256;  as s3                header
//	                                    UNSIGNED-PAYLOAD for one-shot
//	                                    bodies of known length
//	s3-outposts        as s3-object-lambda
//	iotdevicegateway   query, unsigned  SHA-256 of ""                    as default           query (presigned)
//	transcribe         query, signed    SHA-256 of ""                    as default           query for WebSockets,
//	                                                                                          else header
//	kafka-cluster      query, signed    SHA-256 of ""                    as default           query, 15 minutes
//	neptune-db         as default       as default                       as default           header (WebSockets too)
//	execute-api        as default       as default                       as default           header
//
// Every row signs with SigV4, but for the hosts that take SigV4a only (S3
// Multi-Region Access Points, CloudFront KeyValueStore, EventBridge global
// endpoints), signed with SigV4a as their service's row says, never
// aws-chunked: an upload read once goes UNSIGNED-PAYLOAD, without the
// checksum unless the request asks for one (then buffered). Algorithm
// changes that per service.
func DefaultPolicies() Policies { return maps.Clone(builtinPolicies) }

// lookup returns the row for service: the table's own, else the built-in
// one, else the table's default row, else the built-in default.
func (p Policies) lookup(service string) Policy {
	if pol, ok := p[service]; ok {
		return pol
	}
	if pol, ok := builtinPolicies[service]; ok {
		return pol
	}
	if pol, ok := p[DefaultService]; ok {
		return pol
	}
	return builtinPolicies[DefaultService]
}
