package proxy

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/kivuli-go/kivuli/internal/wiretest"
)

// TestProxySigV4A (issue 22): a proxy whose upstream is an S3
// Multi-Region Access Point signs what it forwards with SigV4a for every
// region; the upstream checks the ECDSA signatures, small and streamed
// bodies alike.
func TestProxySigV4A(t *testing.T) {
	store := &objectStore{objects: map[string][]byte{}}
	f := wiretest.NewFixture(t, imdstestConfig(), store)
	p := startProxy(t, f, Config{SignHost: "mfzwi23gnjvgw.mrap.accesspoint.s3-global.amazonaws.com", MaxBuffer: 64 << 10})
	for _, n := range []int{10, 200 << 10} {
		data := wiretest.BulkBytes(n)
		f.AWS.Reset()
		req, _ := http.NewRequest(http.MethodPut, p.url+"/object", bytes.NewReader(data))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		recs := wiretest.Accepted(t, f.AWS)
		if resp.StatusCode != http.StatusOK || len(recs) != 1 || recs[0].Algorithm != "AWS4-ECDSA-P256-SHA256" {
			t.Errorf("PUT of %d bytes: %d, %+v", n, resp.StatusCode, recs)
		}
		store.mu.Lock()
		got := store.objects["/object"]
		store.mu.Unlock()
		if !bytes.Equal(got, data) {
			t.Errorf("PUT of %d bytes: %d stored", n, len(got))
		}
	}
}
