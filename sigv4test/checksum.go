package sigv4test

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"maps"
	"slices"
	"strings"
)

// S3's flexible checksums (x-amz-checksum-*), in a header of a plain body
// or in an aws-chunked trailer: taken over the body as it is read, and
// compared at its end, as S3 does on arrival.

// checksumHash returns a hash of S3's algorithm name (crc32, crc32c,
// crc64nvme, sha1, sha256; any case), or nil.
func checksumHash(name string) hash.Hash {
	switch strings.ToLower(name) {
	case "crc32":
		return crc32.NewIEEE()
	case "crc32c":
		return crc32.New(crc32.MakeTable(crc32.Castagnoli))
	case "crc64nvme":
		// The NVMe polynomial 0xad93d23594c93659, bit-reversed as
		// hash/crc64 takes it.
		return crc64.New(crc64.MakeTable(0x9a6c9329ac4bc9b5))
	case "sha1":
		return sha1.New()
	case "sha256":
		return sha256.New()
	}
	return nil
}

// headerSum is one x-amz-checksum-* header of a plain body, and the sum
// taken of the body (nil for an algorithm S3 does not take).
type headerSum struct {
	key, alg, value string
	h               hash.Hash
}

// watchChecksums notes the x-amz-checksum-* headers of a plain body, in
// the order of their names, so that the body is summed as it is read.
func (c *check) watchChecksums() {
	c.sums = c.sums[:0]
	for _, k := range slices.Sorted(maps.Keys(c.r.Header)) {
		alg, ok := strings.CutPrefix(strings.ToLower(k), "x-amz-checksum-")
		if ok && alg != "type" && alg != "algorithm" {
			c.sums = append(c.sums, headerSum{key: k, alg: alg, value: c.r.Header[k][0], h: checksumHash(alg)})
		}
	}
}

// writeSums adds p, the next bytes of a plain body, to its checksums.
func (c *check) writeSums(p []byte) {
	for _, s := range c.sums {
		if s.h != nil {
			s.h.Write(p)
		}
	}
}

// checkChecksumHeaders: at a plain body's end, its x-amz-checksum-*
// headers are its checksums, and x-amz-sdk-checksum-algorithm names one
// that is sent.
func (c *check) checkChecksumHeaders() *Error {
	named := strings.ToLower(c.r.Header.Get("X-Amz-Sdk-Checksum-Algorithm"))
	found := named == ""
	for _, s := range c.sums {
		if s.h == nil {
			return newErr("InvalidRequest", "%s names no checksum S3 takes.", s.key)
		}
		if e := compareChecksum(s.alg, s.value, s.h); e != nil {
			return e
		}
		c.rec.Checksum = strings.ToUpper(s.alg)
		found = found || s.alg == named
	}
	if !found && c.r.Header.Get("X-Amz-Trailer") == "" {
		return newErr("InvalidRequest", "x-amz-sdk-checksum-algorithm is %s, but no x-amz-checksum-%s header or trailer is sent.", strings.ToUpper(named), named)
	}
	return nil
}

// compareChecksum checks value, a base64 checksum of algorithm alg,
// against h, the sum taken of the data.
func compareChecksum(alg, value string, h hash.Hash) *Error {
	if base64.StdEncoding.EncodeToString(h.Sum(nil)) != strings.TrimSpace(value) {
		return newErr("BadDigest", "The %s you specified did not match the calculated checksum.", strings.ToUpper(alg))
	}
	return nil
}
