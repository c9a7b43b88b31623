package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/kivuli-go/kivuli/internal/wiretest"
)

// Shutdown waits for a WebSocket tunnel, which http.Server.Shutdown
// forgets, and ends it when its context ends; without tunnels it returns
// at once.
func TestShutdownEndsTunnels(t *testing.T) {
	f := wiretest.NewFixture(t, imdstestConfig(), websocketUpgrade(t))
	p := startProxy(t, f, Config{SignHost: "db.cluster-abc.eu-west-2.neptune.amazonaws.com"})
	if err := p.p.Shutdown(t.Context()); err != nil {
		t.Fatalf("no tunnel: %v", err)
	}
	conn, err := net.Dial("tcp", p.host())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(wiretest.FailAfter))
	io.WriteString(conn, "GET /gremlin HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("the handshake: %v %v", resp, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if err := p.p.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a tunnel open: Shutdown returned %v", err)
	}
	if _, err := br.ReadByte(); err == nil {
		t.Error("the tunnel is still open after Shutdown's time")
	}
	p.waitMetric(t, "kivuli_proxy_in_flight_requests", 0)
}
