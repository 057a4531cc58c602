package discovery

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

type staticSource []Speaker

func (s staticSource) Speakers() []Speaker { return s }

// tokenBook is a stand-in for the broker's token store.
type tokenBook struct {
	mu   sync.Mutex
	live map[string]string // token -> user
	n    int
}

func (b *tokenBook) create(_ context.Context, user, _ string) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.n++
	tok := "rc_tok" + strconv.Itoa(b.n)
	b.live[tok] = user
	return tok, nil
}

func (b *tokenBook) delete(_ context.Context, tok string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.live, tok)
	return nil
}

// TestPickerAPIPairsARealSpeaker drives POST /v1/pair against a real
// speaker pairing endpoint over HTTP.
func TestPickerAPIPairsARealSpeaker(t *testing.T) {
	for _, c := range []struct {
		name       string
		speakerPIN string
		body       string
		status     int
		code       string
		paired     bool
	}{
		{"open", "", `{"device_id":"rc-0123456789abcdef"}`, 200, "", true},
		{"pin ok", "4242", `{"device_id":"rc-0123456789abcdef","pin":"4242"}`, 200, "", true},
		{"pin missing", "4242", `{"device_id":"rc-0123456789abcdef"}`, 400, "pin_required", false},
		{"pin wrong", "4242", `{"device_id":"rc-0123456789abcdef","pin":"1111"}`, 403, "", false},
		{"unknown speaker", "", `{"device_id":"rc-ffffffffffffffff"}`, 404, "not_found", false},
		{"bad body", "", `{"device":"x"}`, 400, "bad_request", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := make(chan [2]string, 1)
			p, err := NewPairing(PairingOptions{StateDir: t.TempDir(), DeviceID: "rc-0123456789abcdef", Name: "Kitchen", PIN: c.speakerPIN,
				Logger: slog.New(slog.DiscardHandler), OnPaired: func(u, tok string) { got <- [2]string{u, tok} }})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go p.Run(ctx)
			speakerSrv := httptest.NewServer(p.Handler())
			defer speakerSrv.Close()
			host, port, _ := net.SplitHostPort(strings.TrimPrefix(speakerSrv.URL, "http://"))
			pn, _ := strconv.Atoi(port)
			sp := Speaker{Name: "Kitchen", Info: Info{ID: "rc-0123456789abcdef", Type: "speaker", Version: 1, InfoPath: InfoPath},
				Port: pn, Addrs: []netip.Addr{netip.MustParseAddr(host)}}

			book := &tokenBook{live: map[string]string{}}
			api := &PickerAPI{Source: staticSource{sp}, BrokerURL: "http://broker.example:4100", CreateToken: book.create, DeleteToken: book.delete,
				User: func(context.Context) string { return "alice" }}
			mux := http.NewServeMux()
			api.Register(mux, func(h http.Handler) http.Handler { return h })
			brokerSrv := httptest.NewServer(mux)
			defer brokerSrv.Close()

			resp, err := http.Post(brokerSrv.URL+"/v1/pair", "application/json", bytes.NewBufferString(c.body))
			if err != nil {
				t.Fatal(err)
			}
			var out struct{ Code, Name string }
			json.NewDecoder(resp.Body).Decode(&out)
			resp.Body.Close()
			if resp.StatusCode != c.status || (c.code != "" && out.Code != c.code) {
				t.Fatalf("status %d code %q, want %d %q", resp.StatusCode, out.Code, c.status, c.code)
			}
			if !c.paired {
				if len(book.live) != 0 {
					t.Fatalf("a refused pairing left tokens: %v", book.live)
				}
				if _, _, ok := p.Credentials(); ok {
					t.Fatal("refused pairing changed the speaker")
				}
				return
			}
			select {
			case cred := <-got:
				if cred[0] != "http://broker.example:4100" || book.live[cred[1]] != "alice" {
					t.Fatalf("speaker got %v; live tokens %v", cred, book.live)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("speaker never paired")
			}
			if out.Name != "Kitchen" {
				t.Fatalf("answer name %q", out.Name)
			}
			// A second pairing without the current credential is refused.
			resp, _ = http.Post(brokerSrv.URL+"/v1/pair", "application/json", bytes.NewBufferString(c.body))
			resp.Body.Close()
			if resp.StatusCode != http.StatusConflict || len(book.live) != 1 {
				t.Fatalf("re-pair by a stranger: %d, tokens %v", resp.StatusCode, book.live)
			}
		})
	}
	// The speaker list.
	api := &PickerAPI{Source: staticSource(nil)}
	mux := http.NewServeMux()
	api.Register(mux, func(h http.Handler) http.Handler { return h })
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/speakers", nil))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"speakers":[]`) {
		t.Fatalf("empty speaker list: %d %s", rec.Code, rec.Body)
	}
}
