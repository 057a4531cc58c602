package brokerserver

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/roomcast/roomcast/broker"
	"github.com/roomcast/roomcast/internal/testenv"
)

// start runs a server with opts until the test ends and waits until it
// is ready.
func start(t *testing.T, opts Options) (*Server, <-chan error) {
	t.Helper()
	srv, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("Run after cancel: %v", err)
		}
	})
	select {
	case <-srv.Ready():
	case err := <-errc:
		t.Fatalf("Run: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("not ready within 20 s")
	}
	return srv, errc
}

func get(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestServerServesEveryPart: one server carries the broker's routes, the
// library's, the pairing API's and the mounted ones, all behind the
// broker's tokens; the owner token is created once (0600) and kept.
func TestServerServesEveryPart(t *testing.T) {
	state := t.TempDir()
	music := t.TempDir()
	for _, f := range []string{"gapless-01.ogg", "levels-01.ogg"} {
		testenv.CopyFile(t, filepath.Join("..", "demo", f), filepath.Join(music, f), 0o644)
	}
	tokFile := filepath.Join(state, "owner.token")
	opts := Options{Listen: "127.0.0.1:0", StateDir: state, Music: music, MDNS: "off", OwnerTokenFile: tokFile,
		Mount: func(mux *http.ServeMux, b *broker.Broker) error {
			mux.Handle("GET /app/whoami", b.RequireToken(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, broker.UserFrom(r.Context()))
			})))
			return nil
		}}
	srv, _ := start(t, opts)
	if !strings.HasPrefix(srv.LocalURL(), "http://127.0.0.1:") || srv.URL() != srv.LocalURL() {
		t.Fatalf("URL %q, LocalURL %q", srv.URL(), srv.LocalURL())
	}
	tok := srv.OwnerToken()
	if fi, err := os.Stat(tokFile); err != nil || fi.Mode().Perm() != 0o600 || tok == "" {
		t.Fatalf("owner token file: %v %v %q", fi, err, tok)
	}
	base := srv.LocalURL()
	if code, body := get(t, base+"/healthz", ""); code != 200 || !strings.Contains(body, `"ok"`) {
		t.Fatalf("/healthz: %d %s", code, body)
	}
	for _, path := range []string{"/v1/devices", "/v1/library", "/v1/speakers", "/app/whoami"} {
		if code, _ := get(t, base+path, ""); code != http.StatusUnauthorized {
			t.Errorf("%s without a token: %d, want 401", path, code)
		}
	}
	if code, body := get(t, base+"/app/whoami", tok); code != 200 || body != "owner" {
		t.Fatalf("mounted route: %d %q", code, body)
	}
	if code, body := get(t, base+"/v1/speakers", tok); code != 200 || !strings.Contains(body, `"speakers":[]`) {
		t.Fatalf("/v1/speakers: %d %s", code, body)
	}
	// The library scans in the background: both tracks appear.
	deadline := time.Now().Add(20 * time.Second)
	for {
		var page struct{ Total int }
		_, body := get(t, base+"/v1/library", tok)
		if json.Unmarshal([]byte(body), &page) == nil && page.Total == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("library never listed two albums: %s", body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Revoked: RenewOwnerToken writes a new one; an accepted one is kept.
	ctx := context.Background()
	if again, err := srv.RenewOwnerToken(ctx); err != nil || again != tok {
		t.Fatalf("renew of a valid token: %q %v, want the same", again, err)
	}
	if _, err := srv.Broker().Store().RevokeToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	renewed, err := srv.RenewOwnerToken(ctx)
	if err != nil || renewed == tok {
		t.Fatalf("renew after revocation: %q %v", renewed, err)
	}
	if b, _ := os.ReadFile(tokFile); strings.TrimSpace(string(b)) != renewed {
		t.Fatalf("the file holds %q, want the new token", b)
	}
}

// TestServerPublicURLAndListenError: a taken address is Run's error and
// Ready stays open; PublicURL is what URL reports.
func TestServerPublicURLAndListenError(t *testing.T) {
	srv, _ := start(t, Options{Listen: "127.0.0.1:0", StateDir: t.TempDir(), MDNS: "off", PublicURL: "https://hub.example/"})
	if srv.URL() != "https://hub.example" || srv.OwnerToken() != "" {
		t.Fatalf("URL %q, OwnerToken %q", srv.URL(), srv.OwnerToken())
	}
	taken, err := New(Options{Listen: srv.Addr().String(), StateDir: t.TempDir(), MDNS: "off"})
	if err != nil {
		t.Fatal(err)
	}
	err = taken.Run(context.Background())
	var oe *net.OpError
	if !errors.As(err, &oe) {
		t.Fatalf("Run on a taken address: %v", err)
	}
	select {
	case <-taken.Ready():
		t.Fatal("Ready closed although nothing listens")
	default:
	}
	if _, err := New(Options{StateDir: t.TempDir(), MDNS: "eth0,,"}); err == nil {
		t.Fatal("New accepted a bad interface list")
	}
}
