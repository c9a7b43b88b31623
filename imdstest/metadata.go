package imdstest

import (
	"encoding/json"
	"net/http"
	"time"
)

// identityDocument is the instance identity document, with the fields the
// SDKs read (region, availabilityZone) and made-up values in the shapes of
// real ones for the rest.
type identityDocument struct {
	AccountID        string `json:"accountId"`
	Architecture     string `json:"architecture"`
	AvailabilityZone string `json:"availabilityZone"`
	ImageID          string `json:"imageId"`
	InstanceID       string `json:"instanceId"`
	InstanceType     string `json:"instanceType"`
	PendingTime      string `json:"pendingTime"`
	PrivateIP        string `json:"privateIp"`
	Region           string `json:"region"`
	Version          string `json:"version"`
}

// metadata answers the instance metadata paths other than the token and
// the credentials: the region, the availability zone (the region's first,
// "a") and the instance identity document, launched when the server was
// made. ok is false for a path it does not know. st.mu is held.
func (st *state) metadata(path string) (_ response, ok bool) {
	zone := st.cfg.Region + "a"
	switch path {
	case regionPath:
		return response{status: http.StatusOK, ctype: textPlain, body: st.cfg.Region}, true
	case zonePath:
		return response{status: http.StatusOK, ctype: textPlain, body: zone}, true
	case identityPath:
		b, err := json.MarshalIndent(identityDocument{
			AccountID:        "123456789012",
			Architecture:     "x86_64",
			AvailabilityZone: zone,
			ImageID:          "ami-0123456789abcdef0",
			InstanceID:       "i-0123456789abcdef0",
			InstanceType:     "t3.micro",
			PendingTime:      st.started.UTC().Format(time.RFC3339),
			PrivateIP:        "127.0.0.1",
			Region:           st.cfg.Region,
			Version:          "2017-09-30",
		}, "", "  ")
		if err != nil {
			panic(err) // cannot happen: the document holds strings only
		}
		return response{status: http.StatusOK, ctype: appJSON, body: string(b)}, true
	}
	return response{}, false
}
