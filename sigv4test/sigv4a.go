package sigv4test

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math/big"
	"strings"
	"sync"
)

// SigV4a (AWS4-ECDSA-P256-SHA256), checked with code of this package's
// own, from the algorithm as aws-c-auth and the SDKs publish it: the
// credential scope names no region (AKID/DATE/SERVICE/aws4_request), a
// signed X-Amz-Region-Set (header, or query parameter when presigned)
// names the regions the request is good for ("*" for all), and the string
// to sign is signed with ECDSA P-256 over its SHA-256, the key derived
// from the secret access key.

const algorithmV4A = "AWS4-ECDSA-P256-SHA256"

// SigV4APublicKey returns the public key of the ECDSA P-256 key that
// SigV4a derives from an access key: HMAC-SHA256 in NIST SP 800-108
// counter mode, keyed with "AWS4A" and the secret, over the label
// "AWS4-ECDSA-P256-SHA256", the access key ID and a one-byte counter
// (from 1), gives 256 bits c; the first c below n-2 (n the curve's order)
// gives the private scalar c+1. For AKIDEXAMPLE and the vectors' secret
// it is aws-c-auth's public-key.json.
func SigV4APublicKey(accessKeyID, secretAccessKey string) (*ecdsa.PublicKey, error) {
	d, err := v4aScalar(accessKeyID, secretAccessKey)
	if err != nil {
		return nil, err
	}
	priv, err := ecdh.P256().NewPrivateKey(d)
	if err != nil {
		return nil, err
	}
	return ecdsa.ParseUncompressedPublicKey(elliptic.P256(), priv.PublicKey().Bytes())
}

// v4aScalar returns SigV4a's private scalar for the access key, 32 bytes
// big-endian (see SigV4APublicKey).
func v4aScalar(accessKeyID, secretAccessKey string) ([]byte, error) {
	nMinus2 := new(big.Int).Sub(elliptic.P256().Params().N, big.NewInt(2))
	mac := hmac.New(sha256.New, []byte("AWS4A"+secretAccessKey))
	for counter := 1; counter <= 0xff; counter++ {
		var fixed bytes.Buffer
		fixed.WriteString(algorithmV4A)
		fixed.WriteByte(0)
		fixed.WriteString(accessKeyID)
		fixed.WriteByte(byte(counter))
		fixed.Write(binary.BigEndian.AppendUint32(nil, 256)) // the bits asked for
		mac.Reset()
		mac.Write(binary.BigEndian.AppendUint32(nil, 1)) // the KDF's block counter: one block
		mac.Write(fixed.Bytes())
		c := new(big.Int).SetBytes(mac.Sum(nil))
		if c.Cmp(nMinus2) >= 0 {
			continue
		}
		return c.Add(c, big.NewInt(1)).FillBytes(make([]byte, 32)), nil
	}
	return nil, errors.New("sigv4test: no SigV4a key within 255 counters")
}

// v4aKeys caches the public keys derived, by access key ID and secret: a
// derivation costs a scalar multiplication, and a test verifies many
// requests of one key. It is bounded, and emptied when full.
var v4aKeys struct {
	mu sync.Mutex
	m  map[[2]string]*ecdsa.PublicKey
}

func v4aPublicKey(accessKeyID, secret string) (*ecdsa.PublicKey, error) {
	k := [2]string{accessKeyID, secret}
	v4aKeys.mu.Lock()
	pub := v4aKeys.m[k]
	v4aKeys.mu.Unlock()
	if pub != nil {
		return pub, nil
	}
	pub, err := SigV4APublicKey(accessKeyID, secret)
	if err != nil {
		return nil, err
	}
	v4aKeys.mu.Lock()
	if v4aKeys.m == nil || len(v4aKeys.m) >= 64 {
		v4aKeys.m = map[[2]string]*ecdsa.PublicKey{}
	}
	v4aKeys.m[k] = pub
	v4aKeys.mu.Unlock()
	return pub, nil
}

// verifyV4A reports whether sig (hex, ASN.1 DER) is the key's ECDSA
// signature of the string to sign.
func verifyV4A(pub *ecdsa.PublicKey, stringToSign, sig string) bool {
	der, err := hex.DecodeString(sig)
	if err != nil {
		return false
	}
	sum := sha256.Sum256([]byte(stringToSign))
	return ecdsa.VerifyASN1(pub, sum[:], der)
}

// regionSetCovers reports whether the region set (comma-separated
// regions, "*" for all, or patterns such as "us-*") covers region, the
// endpoint's; an endpoint of all regions ("*", a Multi-Region Access
// Point) is covered by "*" alone.
func regionSetCovers(set, region string) bool {
	for r := range strings.SplitSeq(set, ",") {
		r = strings.TrimSpace(r)
		switch {
		case r == "*" || r == region:
			return true
		case region == "*":
			continue
		case strings.HasSuffix(r, "*") && strings.HasPrefix(region, strings.TrimSuffix(r, "*")):
			return true
		}
	}
	return false
}
