package proxy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/kivuli-go/kivuli/proxy"
)

// One proxy for an OpenSearch domain, chosen by the Host es.localhost,
// and an Amazon Managed Prometheus workspace under the path prefix /aps/,
// which is removed before the request is signed and sent; any other
// request gets 404 and goes nowhere. Each route signs with credentials of
// its own: here two emulated instances' roles, each stand-in checking its
// own; on AWS, the instance role for one and, for the other, a role it
// assumes (stscreds.NewAssumeRoleProvider in an aws.CredentialsCache).
func ExampleNewRouter() {
	esCreds, es, doneES := standIns(nil)
	defer doneES()
	apsCreds, aps, doneAPS := standIns(nil)
	defer doneAPS()
	// On AWS: https://search-logs-abc.eu-west-2.es.amazonaws.com and
	// https://aps-workspaces.eu-west-2.amazonaws.com/workspaces/ws-1,
	// without AllowedHosts and SignHost.
	route := func(name, host, prefix string, creds aws.CredentialsProvider, up net.Addr, upath, signHost string) proxy.Route {
		return proxy.Route{Name: name, Host: host, PathPrefix: prefix, Config: proxy.Config{
			Upstream: "http://" + up.String() + upath, Credentials: creds,
			AllowedHosts: []string{up.String()}, SignHost: signHost}}
	}
	rt, err := proxy.NewRouter(context.Background(), proxy.RouterConfig{Routes: []proxy.Route{
		route("es", "es.localhost", "", esCreds, es.Listener.Addr(), "", "search-logs-abc.eu-west-2.es.amazonaws.com"),
		route("aps", "", "/aps/", apsCreds, aps.Listener.Addr(), "/workspaces/ws-1", "aps-workspaces.eu-west-2.amazonaws.com"),
	}})
	if err != nil {
		log.Fatal(err)
	}
	defer rt.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: rt, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Shutdown(context.Background())

	for _, c := range []struct{ host, path string }{
		{"es.localhost", "/_cluster/health"},
		{"localhost", "/aps/api/v1/query?query=up"},
		{"localhost", "/elsewhere"},
	} {
		req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+c.path, nil)
		req.Host = c.host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var got struct{ Service, Path string }
		if json.Unmarshal(body, &got) != nil {
			got.Path = string(body)
		}
		fmt.Printf("%s %s: %s %s %s", c.host, c.path, resp.Status, got.Service, got.Path)
		fmt.Println()
	}
	// Output:
	// es.localhost /_cluster/health: 200 OK es /_cluster/health
	// localhost /aps/api/v1/query?query=up: 200 OK aps /workspaces/ws-1/api/v1/query
	// localhost /elsewhere: 404 Not Found  kivuli proxy: no route for the path /elsewhere with this Host: the routes are the Host names and path prefixes of RouterConfig.Routes
}
