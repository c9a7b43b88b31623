package kivuli

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"net/http"
	"strings"
)

// S3's flexible checksums: a checksum of the body that S3 checks on
// arrival and keeps with the object. Every current SDK sends one with S3
// uploads (CRC32 unless told otherwise); a request names the algorithm in
// x-amz-sdk-checksum-algorithm and carries the value, base64, in
// x-amz-checksum-ALGORITHM, as a header or as a trailer of an aws-chunked
// body (chunked.go). DeleteObjects, bucket configuration writes and
// Object Lock PutObject need one (or Content-MD5).

// ChecksumAlgorithm is an S3 flexible checksum algorithm, as the
// x-amz-sdk-checksum-algorithm header names it.
type ChecksumAlgorithm string

// The algorithms S3 checks.
const (
	ChecksumCRC32     ChecksumAlgorithm = "CRC32"
	ChecksumCRC32C    ChecksumAlgorithm = "CRC32C"
	ChecksumCRC64NVME ChecksumAlgorithm = "CRC64NVME"
	ChecksumSHA1      ChecksumAlgorithm = "SHA1"
	ChecksumSHA256    ChecksumAlgorithm = "SHA256"
)

const (
	headerChecksumAlgorithm = "X-Amz-Sdk-Checksum-Algorithm"
	headerChecksumPrefix    = "X-Amz-Checksum-"
	// crc64NVME is the reflected NVMe polynomial, as hash/crc64 takes it:
	// the one aws-sdk-go-v2's service/internal/checksum uses.
	crc64NVME = 0x9a6c9329ac4bc9b5
)

var (
	crc32cTable    = crc32.MakeTable(crc32.Castagnoli)
	crc64NVMETable = crc64.MakeTable(crc64NVME)
)

// New returns a hash of the algorithm, whose Sum is the checksum's value
// (base64-encoded in a header), or nil when it is none S3 knows.
func (a ChecksumAlgorithm) New() hash.Hash {
	switch a {
	case ChecksumCRC32:
		return crc32.NewIEEE()
	case ChecksumCRC32C:
		return crc32.New(crc32cTable)
	case ChecksumCRC64NVME:
		return crc64.New(crc64NVMETable)
	case ChecksumSHA1:
		return sha1.New()
	case ChecksumSHA256:
		return sha256.New()
	}
	return nil
}

// header is the name of the header (or trailer) that carries the
// algorithm's value, in canonical form: X-Amz-Checksum-Crc32.
func (a ChecksumAlgorithm) header() string {
	return http.CanonicalHeaderKey(headerChecksumPrefix + strings.ToLower(string(a)))
}

// checksumValue is the value of a checksum header: the sum, big-endian,
// in base64.
func checksumValue(h hash.Hash) string {
	var buf [sha256.Size]byte
	return base64.StdEncoding.EncodeToString(h.Sum(buf[:0]))
}

// checksumWanted returns the algorithm of the checksum r should carry and
// that kivuli is to compute: the request's x-amz-sdk-checksum-algorithm
// (an SDK's way of asking), else the policy's, where S3 takes one (an
// upload of an object or a part) or needs one (s3NeedsChecksum); none when
// the request already carries a value (x-amz-checksum-*, or Content-MD5)
// or asks for none. It refuses an algorithm S3 does not know.
func checksumWanted(r *http.Request, rt *route) (ChecksumAlgorithm, error) {
	var alg ChecksumAlgorithm
	if v := r.Header.Get(headerChecksumAlgorithm); v != "" {
		alg = ChecksumAlgorithm(strings.ToUpper(strings.TrimSpace(v)))
	} else if rt.policy.Checksum != "" && (s3Upload(r, signedHost(r)) || s3NeedsChecksum(r)) {
		alg = rt.policy.Checksum
	}
	if alg == "NONE" {
		r.Header.Del(headerChecksumAlgorithm) // kivuli's word, not S3's
		return "", nil
	}
	if alg == "" {
		return "", nil
	}
	if alg.New() == nil {
		return "", invalid(ErrInvalidRequest, "%s %q is no algorithm S3 checks: use CRC32, CRC32C, CRC64NVME, SHA1 or SHA256", headerChecksumAlgorithm, alg)
	}
	for k := range r.Header {
		if len(k) > len(headerChecksumPrefix) && strings.EqualFold(k[:len(headerChecksumPrefix)], headerChecksumPrefix) {
			return "", nil // the caller's own value: sent as it is
		}
	}
	if r.Header.Get("Content-MD5") != "" {
		return "", nil
	}
	return alg, nil
}

// s3Upload reports whether r is an S3 upload of an object or a part
// (PutObject, UploadPart): a PUT of a key, with no query but the part's
// and the SDKs' x-id. Bucket and object configuration writes are PUTs too,
// with a subresource in the query (?tagging, ?acl); CreateBucket is a PUT
// of the bucket alone.
func s3Upload(r *http.Request, host string) bool {
	if r.Method != http.MethodPut {
		return false
	}
	path := strings.TrimPrefix(r.URL.EscapedPath(), "/")
	if !bucketInHost(host) {
		_, path, _ = strings.Cut(path, "/") // the bucket, then the key
	}
	if path == "" {
		return false
	}
	for q := range strings.SplitSeq(r.URL.RawQuery, "&") {
		switch k, _, _ := strings.Cut(q, "="); k {
		case "", "partNumber", "uploadId", "x-id":
		default:
			return false
		}
	}
	return true
}

// bucketInHost reports whether host is an S3 endpoint that names the
// bucket (or access point) itself, so that the path is the key:
// bucket.s3.eu-west-2.amazonaws.com, not s3.eu-west-2.amazonaws.com. Of
// a host that is not AWS's (a tunnel's address, a custom domain) kivuli
// cannot tell, and takes the path to name the bucket too: a PUT of a
// one-segment path is then not taken for an upload, and is signed the
// way any body is.
func bucketInHost(host string) bool {
	h, err := parseHost(host)
	if err != nil || !h.isAWSEndpoint() {
		return false
	}
	a, ok := splitAWSHost(h.name)
	if !ok {
		return false
	}
	rest, last := cutLast(a.prefix)
	if regionIn(a.parts, last) {
		rest, last = cutLast(rest)
	}
	if last == "dualstack" {
		rest, _ = cutLast(rest)
	}
	return rest != ""
}

// checksumRequired are the query keys of the S3 operations that S3
// refuses without an integrity header (Content-MD5 or a flexible
// checksum): DeleteObjects (?delete), the bucket and object configuration
// writes, as aws-sdk-go-v2's service/s3 marks them (RequestChecksumRequired).
var checksumRequired = map[string]bool{
	"delete": true, "acl": true, "cors": true, "encryption": true, "lifecycle": true, "logging": true,
	"ownershipControls": true, "policy": true, "replication": true, "requestPayment": true, "tagging": true,
	"versioning": true, "website": true, "legal-hold": true, "object-lock": true, "retention": true,
	"publicAccessBlock": true, "metadataConfiguration": true, "metadataTable": true,
	"metadataAnnotationTable": true, "metadataInventoryTable": true, "metadataJournalTable": true,
}

// s3NeedsChecksum reports whether r is an S3 operation that needs an
// integrity header: a PUT or POST whose query names one of
// checksumRequired.
func s3NeedsChecksum(r *http.Request) bool {
	if r.Method != http.MethodPut && r.Method != http.MethodPost {
		return false
	}
	for q := range strings.SplitSeq(r.URL.RawQuery, "&") {
		if k, _, _ := strings.Cut(q, "="); checksumRequired[k] {
			return true
		}
	}
	return false
}
