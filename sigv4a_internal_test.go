package kivuli

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/stretchr/testify/assert"
)

// TestECDSAKeys: a Transport's SigV4a signer, and so the ECDSA key it
// derives, is one per credential set, secret included; the newest set's
// replaces the one before, whose key is then no longer held; a request
// that still holds an older set gets a signer of its own, not kept.
func TestECDSAKeys(t *testing.T) {
	var c ecdsaKeys
	now := time.Now()
	a := aws.Credentials{AccessKeyID: "ASIAONE", SecretAccessKey: "one", CanExpire: true, Expires: now.Add(time.Hour)}
	sa := c.signer(a)
	assert.Same(t, sa, c.signer(a), "one signer, one derivation, per set")

	sameID := a
	sameID.SecretAccessKey = "other"
	assert.NotSame(t, sa, c.signer(sameID), "another secret under the same key ID has a key of its own")

	b := aws.Credentials{AccessKeyID: "ASIATWO", SecretAccessKey: "two", CanExpire: true, Expires: now.Add(2 * time.Hour)}
	sb := c.signer(b)
	assert.Equal(t, signerKey{"ASIATWO", "two"}, c.cur.Load().key, "the newest set's is kept")

	late := c.signer(a)
	assert.NotSame(t, sa, late)
	assert.Same(t, sb, c.cur.Load().s, "an older set's is not kept")

	static := aws.Credentials{AccessKeyID: "AKIASTATIC", SecretAccessKey: "s"}
	c.signer(static)
	assert.Equal(t, "AKIASTATIC", c.cur.Load().key.accessKeyID, "credentials that do not expire are never older")

	var none *ecdsaKeys
	assert.NotSame(t, none.signer(a), none.signer(a), "no cache: a signer per request")
}
