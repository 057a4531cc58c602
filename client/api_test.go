package client

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/roomcast/roomcast/broker"
	"github.com/roomcast/roomcast/brokerserver"
	"github.com/roomcast/roomcast/internal/testenv"
	"github.com/roomcast/roomcast/protocol"
	"github.com/roomcast/roomcast/protocol/httpapi"
)

// server runs a real broker server (the demo library when music, no mDNS)
// until the test ends and returns it with a token.
func server(t *testing.T, music bool) (*brokerserver.Server, string) {
	t.Helper()
	opts := brokerserver.Options{Listen: "127.0.0.1:0", StateDir: t.TempDir(), MDNS: "off"}
	if music {
		opts.Music = t.TempDir()
		for _, f := range []string{"gapless-01.ogg", "gapless-02.ogg", "levels-01.ogg"} {
			testenv.CopyFile(t, filepath.Join("..", "demo", f), filepath.Join(opts.Music, f), 0o644)
		}
	}
	srv, err := brokerserver.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-srv.Ready():
	case err := <-done:
		t.Fatal(err)
	}
	tok, err := srv.Broker().Store().CreateToken(ctx, "u", "test")
	if err != nil {
		t.Fatal(err)
	}
	return srv, tok
}

// TestAPIAgainstBroker: the library page by page and whole, the speakers
// list and pairing refusals, each through the typed client against a real
// broker server.
func TestAPIAgainstBroker(t *testing.T) {
	srv, tok := server(t, true)
	ctx := context.Background()
	// ws:// is the same broker.
	api, err := NewAPI(strings.Replace(srv.LocalURL(), "http://", "ws://", 1)+"/", tok)
	if err != nil {
		t.Fatal(err)
	}
	var albums []httpapi.Album
	var total int
	for deadline := time.Now().Add(20 * time.Second); ; {
		albums, total, err = api.Library(ctx)
		if err == nil && total == 2 && len(albums) == 2 && len(albums[0].Tracks)+len(albums[1].Tracks) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("library: %v total %d %+v", err, total, albums)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, a := range albums {
		if !strings.HasPrefix(a.URI, "roomcast:album:") || a.DurationMS <= 0 || a.Tracks[0].MediaURL == "" || a.Tracks[0].URI == "" {
			t.Errorf("album %+v", a)
		}
	}
	p, err := api.LibraryPage(ctx, 1, 1)
	if err != nil || p.Total != 2 || p.Offset != 1 || len(p.Albums) != 1 || p.Albums[0].ID != albums[1].ID {
		t.Fatalf("page 2 of 1: %+v %v", p, err)
	}
	if sp, err := api.Speakers(ctx); err != nil || len(sp) != 0 {
		t.Fatalf("speakers with mDNS off: %v %v", sp, err)
	}
	_, err = api.Pair(ctx, httpapi.PairRequest{DeviceID: "rc-0000000000000000"})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusNotFound || ae.Code != "not_found" || !strings.Contains(err.Error(), "POST /v1/pair: not_found") {
		t.Fatalf("pairing an unknown speaker: %v", err)
	}
	bad, _ := NewAPI(srv.LocalURL(), "rc_wrong")
	if _, _, err := bad.Library(ctx); !IsStatus(err, http.StatusUnauthorized) || !strings.Contains(err.Error(), "unauthorized") {
		t.Fatalf("wrong token: %v", err)
	}
	// Without a library the route does not exist.
	plain, tok2 := server(t, false)
	api2, _ := NewAPI(plain.LocalURL(), tok2)
	if _, _, err := api2.Library(ctx); !IsStatus(err, http.StatusNotFound) {
		t.Fatalf("library of a broker without one: %v", err)
	}
	for _, u := range []string{"ftp://x", "http://", "::"} {
		if _, err := NewAPI(u, "t"); err == nil {
			t.Errorf("NewAPI(%q) accepted", u)
		}
	}
}

// TestTokenRefused: a real broker revoking a token closes the connection
// with 4004, and dialing again is refused with 401; both are TokenRefused,
// a plain network error is not.
func TestTokenRefused(t *testing.T) {
	srv, tok := server(t, false)
	ctx := context.Background()
	hello := protocol.Hello{Device: protocol.DeviceInfo{ID: "spk", Name: "spk", Type: protocol.DeviceSpeaker}}
	c, err := Dial(ctx, srv.LocalURL(), tok, hello, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := srv.Broker().Store().RevokeToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("the broker did not close the revoked token's connection")
	}
	var ce *CloseError
	if !errors.As(c.Err(), &ce) || ce.Code != broker.CloseTokenRevoked || !TokenRefused(c.Err()) {
		t.Fatalf("closed with %v, want 4004 and TokenRefused", c.Err())
	}
	_, err = Dial(ctx, srv.LocalURL(), tok, hello, Options{})
	if !TokenRefused(err) {
		t.Fatalf("dial with the revoked token: %v, want TokenRefused", err)
	}
	_, err = Dial(ctx, "http://127.0.0.1:1", tok, hello, Options{HandshakeTimeout: time.Second})
	if err == nil || TokenRefused(err) {
		t.Fatalf("dial to a closed port: %v, want an error that is not TokenRefused", err)
	}
}
