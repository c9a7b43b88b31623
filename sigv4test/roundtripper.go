package sigv4test

import (
	"net/http"
	"net/url"
)

// RoundTripper returns an [http.RoundTripper] that sends every request to
// the server, whatever host its URL names, with the Host header kept as
// the name the request was signed for. A client can then be pointed at
// AWS's own URLs (https://sts.eu-west-2.amazonaws.com/) and be answered
// by this server, which checks the credential scope against that name
// ([Verifier.Scope]): use it as a kivuli Transport's Base,
//
//	t := &kivuli.Transport{Credentials: creds, Base: endpoint.RoundTripper()}
//
// as imdstest's Server.RoundTripper stands in for IMDS. A request of any
// scheme (https, wss) reaches the server as plain http on loopback, and
// never through a proxy, as its ProxyURL method tells the kivuli
// Transport. The response's Request is the request given. Connections
// close with the server.
func (s *Server) RoundTripper() http.RoundTripper { return roundTripper{s} }

type roundTripper struct{ s *Server }

func (rt roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	out := req.Clone(req.Context())
	if out.Host == "" {
		out.Host = req.URL.Host
	}
	out.URL.Scheme, out.URL.Host = "http", rt.s.Listener.Addr().String()
	resp, err := rt.s.Client().Transport.RoundTrip(out)
	if resp != nil {
		resp.Request = req
	}
	return resp, err
}

// ProxyURL says that no proxy sees the requests: they go to loopback.
func (roundTripper) ProxyURL(*http.Request) (*url.URL, error) { return nil, nil }
