package proxy

import (
	"errors"
	"strings"
	"testing"

	"github.com/kivuli-go/kivuli"
	"github.com/kivuli-go/kivuli/internal/wiretest"
)

// Validate refuses what cannot be served, with an ErrInvalidConfig that
// names the Config field and never a flag; the zero value of every field
// but Upstream is valid.
func TestConfigValidate(t *testing.T) {
	if err := (Config{Upstream: "https://sts.amazonaws.com"}).Validate(); err != nil {
		t.Fatalf("the zero Config with an Upstream: %v", err)
	}
	for _, c := range []struct {
		cfg   Config
		field string
	}{
		{Config{}, "Config.Upstream"},
		{Config{Upstream: "ftp://x"}, "Config.Upstream"},
		{Config{Upstream: "https://user:pw@sts.amazonaws.com"}, "Config.Upstream"},
		{Config{Upstream: "https://sts.amazonaws.com/?a=1"}, "Config.Upstream"},
		{Config{Upstream: "https://aps-workspaces.us-east-1.amazonaws.com/workspaces/../ws-1"}, "Config.Upstream"},
		{Config{Upstream: "https://sts.amazonaws.com", MaxBuffer: 2 << 30, MaxBody: 1 << 30}, "Config.MaxBuffer"},
		{Config{Upstream: "https://sts.amazonaws.com", MaxRequests: -1}, "Config.MaxRequests"},
		{Config{Upstream: "https://sts.amazonaws.com", SignHost: "a/b"}, "Config.SignHost"},
		{Config{Upstream: "https://sts.amazonaws.com", ServeHosts: []string{"a/b"}}, "Config.ServeHosts"},
		{Config{Upstream: "https://sts.amazonaws.com", AllowOrigins: []string{"null"}}, "Config.AllowOrigins"},
		{Config{Upstream: "https://sts.amazonaws.com", SignHeaders: []string{"Connection"}}, "Config.SignHeaders"},
		{Config{Upstream: "https://sts.amazonaws.com", SignHeaders: []string{"Authorization"}}, "Config.SignHeaders"},
		{Config{Upstream: "https://sts.amazonaws.com", DropHeaders: []string{"*"}}, "Config.DropHeaders"},
		{Config{Upstream: "https://sts.amazonaws.com", SpoolDir: "/no/such/dir"}, "Config.SpoolDir"},
	} {
		err := c.cfg.Validate()
		var ke *kivuli.Error
		if !errors.Is(err, kivuli.ErrInvalidConfig) || !errors.As(err, &ke) || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%+v: %v, want an ErrInvalidConfig naming %s", c.cfg, err, c.field)
		}
		if err != nil && strings.Contains(err.Error(), "--") {
			t.Errorf("%+v: %v names a flag", c.cfg, err)
		}
	}
}

// New wants credentials, and refuses an upstream the signer refuses with
// the signer's error, before anything is served.
func TestNewRefusesUpstream(t *testing.T) {
	f := wiretest.NewFixture(t, imdstestConfig(), nil)
	if _, err := New(t.Context(), Config{Upstream: "https://sts.amazonaws.com"}); !errors.Is(err, kivuli.ErrInvalidConfig) || !strings.Contains(err.Error(), "Config.Credentials") {
		t.Errorf("no credentials: %v", err)
	}
	creds, err := kivuli.New(t.Context(), kivuli.WithEndpoint(f.IMDS.URL))
	if err != nil {
		t.Fatal(err)
	}
	defer creds.Close()
	for _, c := range []struct {
		cfg  Config
		kind error
	}{
		{Config{Upstream: "https://search.example.com"}, kivuli.ErrHostNotAllowed},
		{Config{Upstream: "http://search-x.eu-west-2.es.amazonaws.com"}, kivuli.ErrPlaintext},
		{Config{Upstream: "https://search.example.com", AllowedHosts: []string{"search.example.com"}}, kivuli.ErrUnknownScope},
	} {
		c.cfg.Credentials = creds
		if _, err := New(t.Context(), c.cfg); !errors.Is(err, c.kind) {
			t.Errorf("%s: %v, want %v", c.cfg.Upstream, err, c.kind)
		}
	}
}
