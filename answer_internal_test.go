package kivuli

import "testing"

// TestBodyCode: the code and message of an error body are read where
// they stand, in the JSON and XML forms AWS answers with, and text that
// merely holds a code is not one.
func TestBodyCode(t *testing.T) {
	for _, tc := range []struct{ body, code, message string }{
		{`{"__type":"com.amazonaws.sts#ExpiredTokenException","message":"The security token included in the request is expired"}`, "ExpiredTokenException", "The security token included in the request is expired"},
		{`{"message":"The security token included in the request is expired"}`, "", "The security token included in the request is expired"},
		{`{"Message":"Signature expired: 20260101T000000Z is now earlier than ...","__type":"InvalidSignatureException"}`, "InvalidSignatureException", "Signature expired: 20260101T000000Z is now earlier than ..."},
		{`{"Error":{"Code":"Throttling","Message":"Rate exceeded"},"RequestId":"x"}`, "Throttling", "Rate exceeded"},
		{`<?xml version="1.0"?><ErrorResponse><Error><Type>Sender</Type><Code>ExpiredToken</Code><Message>The security token included in the request is expired</Message></Error></ErrorResponse>`, "ExpiredToken", "The security token included in the request is expired"},
		{`<Error><Code>RequestTimeTooSkewed</Code><Message>The difference between the request time and the current time is too large.</Message></Error>`, "RequestTimeTooSkewed", "The difference between the request time and the current time is too large."},
		{`{"error":"invalid index name [ExpiredToken]","status":400}`, "", ""},
		{`{"error":{"root_cause":[{"type":"x","reason":"ExpiredToken"}],"type":"ExpiredToken"},"status":400}`, "", ""},
		{`{"a":["code","ExpiredToken"],"b":{"c":1},"code":"SlowDown"}`, "SlowDown", ""},
		{`{"__type":"ExpiredTokenException","message":"cut sh`, "ExpiredTokenException", ""},
		{`ExpiredToken`, "", ""},
		{``, "", ""},
	} {
		code, message := bodyCode([]byte(tc.body))
		if code != tc.code || message != tc.message {
			t.Errorf("bodyCode(%s) = %q, %q; want %q, %q", tc.body, code, message, tc.code, tc.message)
		}
	}
}
