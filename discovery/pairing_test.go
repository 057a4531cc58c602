package discovery

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is the speaker's clock in these tests.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// syncBuffer collects log output from the Run goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type speakerFixture struct {
	p       *Pairing
	srv     *httptest.Server
	dir     string
	clock   *fakeClock
	logs    *syncBuffer
	paired  chan [2]string
	infoURL string
}

func newSpeaker(t *testing.T, pin string) *speakerFixture {
	t.Helper()
	f := &speakerFixture{dir: t.TempDir(), clock: &fakeClock{}, logs: &syncBuffer{}, paired: make(chan [2]string, 10)}
	f.clock.ns.Store(time.Now().UnixNano())
	p, err := NewPairing(PairingOptions{StateDir: f.dir, DeviceID: "rc-test-1", Name: "Kitchen", PIN: pin,
		Logger: slog.New(slog.NewTextHandler(f.logs, nil)), now: f.clock.now,
		OnPaired: func(u, tok string) { f.paired <- [2]string{u, tok} }})
	if err != nil {
		t.Fatal(err)
	}
	f.p = p
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	f.srv = httptest.NewServer(p.Handler())
	f.infoURL = f.srv.URL + InfoPath
	t.Cleanup(func() {
		f.srv.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return f
}

func (f *speakerFixture) info(t *testing.T) *SpeakerInfo {
	t.Helper()
	info, err := FetchInfo(context.Background(), f.infoURL)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// seal builds a request as a sender would, with the speaker's clock.
func (f *speakerFixture) seal(t *testing.T, mode, secret, brokerURL, token string) *PairRequest {
	t.Helper()
	pl := pairPayload{BrokerURL: brokerURL, Token: token, TSMilli: f.clock.now().UnixMilli(), Nonce: b64.EncodeToString(randomBytes(t, 16))}
	req, err := sealPairRequest("rc-test-1", f.p.PublicKey(), mode, secret, pl)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// post sends a raw body to /v1/pair.
func (f *speakerFixture) post(t *testing.T, body []byte) (int, apiError) {
	t.Helper()
	resp, err := http.Post(f.srv.URL+PairPath, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ae apiError
	_ = json.NewDecoder(resp.Body).Decode(&ae)
	return resp.StatusCode, ae
}

func mustEncode(t *testing.T, r *PairRequest) []byte {
	t.Helper()
	b, err := r.encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// state is what must not change on a refused request.
func (f *speakerFixture) state(t *testing.T) string {
	t.Helper()
	u, tok, ok := f.p.Credentials()
	b, err := os.ReadFile(filepath.Join(f.dir, CredentialsFile))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return fmt.Sprintf("%s|%s|%v|%s", u, tok, ok, b)
}

func TestPairHappyPath(t *testing.T) {
	f := newSpeaker(t, "")
	info := f.info(t)
	if info.Paired || info.PINRequired || info.ID != "rc-test-1" || info.Name != "Kitchen" || info.Type != "speaker" || info.Version != 1 {
		t.Fatalf("info %+v", info)
	}
	if pk, _ := b64.DecodeString(info.PublicKey); !bytes.Equal(pk, f.p.PublicKey()) {
		t.Fatal("info public key differs")
	}
	if err := Pair(context.Background(), f.infoURL, "http://10.0.0.5:4100", "rc_tok1", ""); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-f.paired:
		if got != [2]string{"http://10.0.0.5:4100", "rc_tok1"} {
			t.Fatalf("OnPaired(%v)", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("OnPaired not called")
	}
	u, tok, ok := f.p.Credentials()
	if !ok || u != "http://10.0.0.5:4100" || tok != "rc_tok1" || !f.info(t).Paired {
		t.Fatalf("credentials %q %q %v", u, tok, ok)
	}
	for _, name := range []string{CredentialsFile, KeyFile} {
		st, err := os.Stat(filepath.Join(f.dir, name))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v, mode %v; want 0600", name, err, st.Mode())
		}
	}
	// A restart reads the same key and credentials.
	p2, err := NewPairing(PairingOptions{StateDir: f.dir, DeviceID: "rc-test-1"})
	if err != nil {
		t.Fatal(err)
	}
	if u2, tok2, ok2 := p2.Credentials(); !ok2 || u2 != u || tok2 != tok || !bytes.Equal(p2.PublicKey(), f.p.PublicKey()) {
		t.Fatal("state not persisted")
	}
}

func TestPairRefusesTamperedTruncatedReplayed(t *testing.T) {
	f := newSpeaker(t, "")
	good := f.seal(t, modeOpen, "", "http://10.0.0.5:4100", "rc_tok1")
	goodBody := mustEncode(t, good)
	flip := func(b []byte, i int) []byte {
		c := append([]byte(nil), b...)
		c[i] ^= 0x01
		return c
	}
	other, err := NewPairing(PairingOptions{StateDir: t.TempDir(), DeviceID: "rc-test-1"})
	if err != nil {
		t.Fatal(err)
	}
	wrongKey, err := sealPairRequest("rc-test-1", other.PublicKey(), modeOpen, "", pairPayload{BrokerURL: "http://x", Token: "t", TSMilli: f.clock.now().UnixMilli(), Nonce: b64.EncodeToString(randomBytes(t, 16))})
	if err != nil {
		t.Fatal(err)
	}
	bad := map[string]struct {
		body   []byte
		status int
	}{
		"ciphertext byte":   {mustEncode(t, &PairRequest{DeviceID: good.DeviceID, Ephemeral: good.Ephemeral, Ciphertext: flip(good.Ciphertext, 3)}), 403},
		"tag byte":          {mustEncode(t, &PairRequest{DeviceID: good.DeviceID, Ephemeral: good.Ephemeral, Ciphertext: flip(good.Ciphertext, len(good.Ciphertext)-1)}), 403},
		"ephemeral key":     {mustEncode(t, &PairRequest{DeviceID: good.DeviceID, Ephemeral: flip(good.Ephemeral, 0), Ciphertext: good.Ciphertext}), 403},
		"other speaker key": {mustEncode(t, wrongKey), 403},
		"truncated ct":      {mustEncode(t, &PairRequest{DeviceID: good.DeviceID, Ephemeral: good.Ephemeral, Ciphertext: good.Ciphertext[:len(good.Ciphertext)-5]}), 403},
		"truncated body":    {goodBody[:len(goodBody)/2], 400},
		"empty body":        {nil, 400},
		"unknown field":     {[]byte(strings.Replace(string(goodBody), `{"v":1`, `{"v":1,"x":2`, 1)), 400},
		"wrong device (AD)": {mustEncode(t, &PairRequest{DeviceID: "rc-test-2", Ephemeral: good.Ephemeral, Ciphertext: good.Ciphertext}), 400},
		"stale timestamp": {func() []byte {
			f.clock.advance(-3 * time.Minute)
			defer f.clock.advance(3 * time.Minute)
			return mustEncode(t, f.seal(t, modeOpen, "", "http://10.0.0.5:4100", "rc_tok1"))
		}(), 400},
	}
	before := f.state(t)
	for name, c := range bad {
		status, ae := f.post(t, c.body)
		if status != c.status {
			t.Errorf("%s: status %d (%s: %s), want %d", name, status, ae.Code, ae.Message, c.status)
		}
		if got := f.state(t); got != before {
			t.Fatalf("%s changed the state: %s", name, got)
		}
		f.clock.advance(time.Minute) // keep clear of the failure rate limit
	}
	// The AD binds the device id: a request sealed for another id but
	// relabelled fails authentication, not just the id check.
	relabelled, err := sealPairRequest("rc-test-2", f.p.PublicKey(), modeOpen, "", pairPayload{BrokerURL: "http://x", Token: "t", TSMilli: f.clock.now().UnixMilli(), Nonce: b64.EncodeToString(randomBytes(t, 16))})
	if err != nil {
		t.Fatal(err)
	}
	relabelled.DeviceID = "rc-test-1"
	if status, _ := f.post(t, mustEncode(t, relabelled)); status != 403 {
		t.Fatalf("relabelled request: %d, want 403", status)
	}
	f.clock.advance(time.Minute)

	// The genuine request (sealed before all this, still in the window).
	good = f.seal(t, modeOpen, "", "http://10.0.0.5:4100", "rc_tok1")
	goodBody = mustEncode(t, good)
	if status, ae := f.post(t, goodBody); status != 200 {
		t.Fatalf("genuine request: %d %+v", status, ae)
	}
	// Reset, then replay the first-pairing request: it decrypts (open mode
	// again) but its nonce was seen.
	if err := f.p.Reset(context.Background()); err != nil {
		t.Fatal(err)
	}
	before = f.state(t)
	if status, ae := f.post(t, goodBody); status != 409 || ae.Code != "replayed" {
		t.Fatalf("replay: %d %+v, want 409 replayed", status, ae)
	}
	if f.state(t) != before {
		t.Fatal("replay changed the state")
	}
	if !strings.Contains(f.logs.String(), "request refused") {
		t.Fatal("refusals not logged")
	}
}

func TestRepairing(t *testing.T) {
	f := newSpeaker(t, "")
	ctx := context.Background()
	if err := Pair(ctx, f.infoURL, "http://10.0.0.5:4100", "rc_tok1", ""); err != nil {
		t.Fatal(err)
	}
	before := f.state(t)
	// A stranger: the client refuses by itself...
	if _, err := PairWith(ctx, PairParams{InfoURL: f.infoURL, BrokerURL: "http://evil:4100", Token: "rc_evil"}); !errors.Is(err, ErrAlreadyPaired) {
		t.Fatalf("stranger: %v, want ErrAlreadyPaired", err)
	}
	// ...and the speaker refuses a hand-made open-mode request, a PIN-mode
	// one and one that guesses the token wrong.
	for _, c := range []struct{ mode, secret string }{{modeOpen, ""}, {modePIN, "1234"}, {modeToken, "rc_tok2"}} {
		status, ae := f.post(t, mustEncode(t, f.seal(t, c.mode, c.secret, "http://evil:4100", "rc_evil")))
		if status != 403 || ae.Code != "auth_failed" {
			t.Fatalf("stranger (%s): %d %+v", c.mode, status, ae)
		}
		f.clock.advance(time.Minute)
	}
	_, err := PairWith(ctx, PairParams{InfoURL: f.infoURL, BrokerURL: "http://evil:4100", Token: "rc_evil", CurrentToken: "rc_wrong"})
	var pe *PairError
	if !errors.As(err, &pe) || pe.Status != 403 {
		t.Fatalf("wrong current token: %v", err)
	}
	if f.state(t) != before {
		t.Fatal("a stranger changed the state")
	}
	<-f.paired
	// The holder of the current credential moves it to another broker.
	if _, err := PairWith(ctx, PairParams{InfoURL: f.infoURL, BrokerURL: "http://10.0.0.6:4100", Token: "rc_tok2", CurrentToken: "rc_tok1", ExpectID: "rc-test-1"}); err != nil {
		t.Fatal(err)
	}
	if u, tok, _ := f.p.Credentials(); u != "http://10.0.0.6:4100" || tok != "rc_tok2" {
		t.Fatalf("after re-pairing: %s %s", u, tok)
	}
	if got := <-f.paired; got[1] != "rc_tok2" {
		t.Fatalf("OnPaired %v", got)
	}
	// A replay of a re-pairing request whose secret is still current is
	// caught by the replay cache.
	req := mustEncode(t, f.seal(t, modeToken, "rc_tok2", "http://10.0.0.6:4100", "rc_tok2"))
	if status, _ := f.post(t, req); status != 200 {
		t.Fatalf("re-pair to the same credential: %d", status)
	}
	if status, ae := f.post(t, req); status != 409 {
		t.Fatalf("replayed re-pairing: %d %+v", status, ae)
	}
	// ExpectID guards against pairing the wrong device.
	if _, err := PairWith(ctx, PairParams{InfoURL: f.infoURL, BrokerURL: "http://x:1", Token: "t", CurrentToken: "rc_tok2", ExpectID: "rc-other"}); err == nil {
		t.Fatal("ExpectID mismatch accepted")
	}
}

func TestResetPairing(t *testing.T) {
	f := newSpeaker(t, "")
	ctx := context.Background()
	if err := Pair(ctx, f.infoURL, "http://10.0.0.5:4100", "rc_tok1", ""); err != nil {
		t.Fatal(err)
	}
	if err := f.p.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if f.p.Paired() || f.info(t).Paired {
		t.Fatal("still paired after Reset")
	}
	if _, err := os.Stat(filepath.Join(f.dir, CredentialsFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("credentials file: %v", err)
	}
	if err := Pair(ctx, f.infoURL, "http://10.0.0.7:4100", "rc_tok3", ""); err != nil {
		t.Fatalf("pairing after reset: %v", err)
	}
	// The offline reset (roomcastd reset-pairing) on the state dir.
	had, err := ResetPairing(f.dir)
	if err != nil || !had {
		t.Fatalf("ResetPairing = %v, %v", had, err)
	}
	if had, err := ResetPairing(f.dir); err != nil || had {
		t.Fatalf("second ResetPairing = %v, %v", had, err)
	}
	p2, err := NewPairing(PairingOptions{StateDir: f.dir, DeviceID: "rc-test-1"})
	if err != nil || p2.Paired() {
		t.Fatalf("after offline reset: paired %v, %v", p2 != nil && p2.Paired(), err)
	}
}

func TestPairPINAndFailureRateLimit(t *testing.T) {
	f := newSpeaker(t, "2468")
	ctx := context.Background()
	if !f.info(t).PINRequired {
		t.Fatal("info does not say a PIN is required")
	}
	if err := Pair(ctx, f.infoURL, "http://10.0.0.5:4100", "rc_tok1", ""); !errors.Is(err, ErrPINRequired) {
		t.Fatalf("no PIN: %v", err)
	}
	before := f.state(t)
	for i := 0; i < failBurst; i++ {
		err := Pair(ctx, f.infoURL, "http://10.0.0.5:4100", "rc_tok1", fmt.Sprintf("%04d", i))
		var pe *PairError
		if !errors.As(err, &pe) || pe.Status != 403 || pe.Code != "auth_failed" {
			t.Fatalf("wrong PIN %d: %v", i, err)
		}
	}
	// The next attempt is refused before any check, even with the right PIN.
	err := Pair(ctx, f.infoURL, "http://10.0.0.5:4100", "rc_tok1", "2468")
	var pe *PairError
	if !errors.As(err, &pe) || pe.Status != 429 || pe.RetryAfter <= 0 {
		t.Fatalf("after %d failures: %v, want 429 with Retry-After", failBurst, err)
	}
	if f.state(t) != before {
		t.Fatal("refused attempts changed the state")
	}
	f.clock.advance(failEvery)
	if err := Pair(ctx, f.infoURL, "http://10.0.0.5:4100", "rc_tok1", "2468"); err != nil {
		t.Fatalf("right PIN after waiting: %v", err)
	}
	if info := f.info(t); !info.Paired || info.PINRequired {
		t.Fatalf("info after PIN pairing: %+v", info)
	}
	if !strings.Contains(f.logs.String(), "wrong PIN") && !strings.Contains(f.logs.String(), "authentication failed (pin)") {
		t.Fatalf("wrong PINs not logged: %s", f.logs.String())
	}
}

// TestRateLimits drives the Run goroutine directly to vary the source.
func TestRateLimits(t *testing.T) {
	f := newSpeaker(t, "2468")
	ctx := context.Background()
	call := func(kind string, src string, body []byte) int {
		r, ok := f.p.call(ctx, pairEvent{kind: kind, src: netip.MustParseAddr(src), body: body})
		if !ok {
			t.Fatal("Run not answering")
		}
		return r.status
	}
	// Requests of one source: a burst, then 429.
	n429 := 0
	for i := 0; i < reqBurst+5; i++ {
		if call("info", "10.1.1.1", nil) == 429 {
			n429++
		}
	}
	if n429 != 5 {
		t.Fatalf("%d of %d info requests limited, want 5", n429, reqBurst+5)
	}
	if call("info", "10.1.1.2", nil) != 200 {
		t.Fatal("another source is limited too")
	}
	// Failures from many sources hit the global failure limit; IPv6
	// sources of one /64 share a bucket.
	bad := []byte(`{"v":1}`)
	for i := 0; i < failBurstAll; i++ {
		if s := call("pair", fmt.Sprintf("10.2.0.%d", i+1), bad); s != 400 {
			t.Fatalf("failure %d: status %d", i, s)
		}
	}
	if s := call("pair", "10.3.0.1", bad); s != 429 {
		t.Fatalf("after %d failures from many sources: %d, want 429", failBurstAll, s)
	}
	f.clock.advance(time.Hour)
	for i := 0; i < failBurst; i++ {
		call("pair", fmt.Sprintf("fd00::%x", i+1), bad)
	}
	if s := call("pair", "fd00::ffff", bad); s != 429 {
		t.Fatalf("same /64: %d, want 429", s)
	}
	if !strings.Contains(f.logs.String(), "rate limited") {
		t.Fatal("rate limiting not logged")
	}
}

func TestHandlerBasics(t *testing.T) {
	f := newSpeaker(t, "")
	for _, c := range []struct {
		method, path string
		body         io.Reader
		want         int
	}{
		{"GET", "/nope", nil, 404},
		{"POST", InfoPath, nil, 405},
		{"GET", PairPath, nil, 405},
		{"POST", PairPath, strings.NewReader(strings.Repeat("x", maxPairRequest+1)), 413},
	} {
		req, _ := http.NewRequest(c.method, f.srv.URL+c.path, c.body)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, resp.StatusCode, c.want)
		}
	}
	// After Run ends, requests get 503 instead of hanging.
	p, err := NewPairing(PairingOptions{StateDir: t.TempDir(), DeviceID: "rc-x"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	p.Handler().ServeHTTP(rec, httptest.NewRequest("GET", InfoPath, nil))
	if rec.Code != 503 {
		t.Fatalf("after Run: %d", rec.Code)
	}
}

func TestNewPairingRejectsCorruptState(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, CredentialsFile), []byte(`{"broker_url":"ftp://x","token":"t","paired_at_ms":1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewPairing(PairingOptions{StateDir: dir, DeviceID: "rc-x"}); err == nil || !strings.Contains(err.Error(), "reset-pairing") {
		t.Fatalf("corrupt credentials: %v", err)
	}
	dir2 := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir2, KeyFile), []byte("zz\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewPairing(PairingOptions{StateDir: dir2, DeviceID: "rc-x"}); err == nil {
		t.Fatal("corrupt key accepted")
	}
}
