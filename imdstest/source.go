package imdstest

import (
	"context"
	"net/http"
	"time"
)

// sourceDocument is the credential document of what Config.Credentials
// returns now, with an Expiration in the past if expired (a fault's). It is
// called without st.mu: Retrieve may take its time, or block until ctx
// ends, as a real source does; a request abandoned meanwhile gets no
// answer (the error of ctx).
func (st *state) sourceDocument(ctx context.Context, expired bool) (response, error) {
	v, err := st.cfg.Credentials.Retrieve(ctx)
	if ctx.Err() != nil {
		return response{}, ctx.Err()
	}
	if err != nil {
		return response{status: http.StatusInternalServerError, ctype: textPlain, body: err.Error()}, nil
	}
	now := st.clock()
	exp := now.Add(st.cfg.Lifetime)
	switch {
	case expired:
		exp = now.Add(-time.Minute)
	case v.CanExpire:
		exp = v.Expires
	}
	return jsonResponse(http.StatusOK, credentialDoc{
		Code:            "Success",
		LastUpdated:     timestamp(now),
		Type:            "AWS-HMAC",
		AccessKeyID:     v.AccessKeyID,
		SecretAccessKey: v.SecretAccessKey,
		Token:           v.SessionToken,
		Expiration:      timestamp(exp),
	}), nil
}
