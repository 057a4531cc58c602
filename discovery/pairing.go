package discovery

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/roomcast/roomcast/protocol"
)

// Files in the state directory (mode 0600).
const (
	KeyFile         = "pairing.key"  // X25519 private key, hex
	CredentialsFile = "pairing.json" // broker URL and token once paired
)

// Paths served by Pairing.Handler.
const (
	InfoPath = DefaultInfoPath
	PairPath = "/v1/pair"
)

// PairWindow is how far a request's timestamp may be from the speaker's
// clock; nonces are remembered for twice as long.
const PairWindow = 2 * time.Minute

// PairingOptions configure the speaker side of pairing.
type PairingOptions struct {
	StateDir string // holds KeyFile and CredentialsFile
	DeviceID string
	Name     string
	Type     protocol.DeviceType // default speaker
	// PIN, when set, must be proven by the first pairing (it is bound into
	// the key derivation). At most 64 bytes.
	PIN    string
	Logger *slog.Logger
	// OnPaired runs on the Run goroutine after new credentials are saved;
	// it must return quickly (hand the work to another goroutine).
	OnPaired func(brokerURL, token string)

	now func() time.Time // tests
}

// Credentials are what a successful pairing stores.
type Credentials struct {
	BrokerURL  string `json:"broker_url"`
	Token      string `json:"token"`
	PairedAtMS int64  `json:"paired_at_ms"`
}

// SpeakerInfo is the JSON of GET /v1/info.
type SpeakerInfo struct {
	Name        string              `json:"name"`
	ID          string              `json:"id"`
	Type        protocol.DeviceType `json:"type"`
	Version     int                 `json:"protocol_version"`
	Paired      bool                `json:"paired"`
	PINRequired bool                `json:"pin_required"`
	PublicKey   string              `json:"public_key"` // X25519, unpadded base64url
	PairPath    string              `json:"pair_path"`
	TimeMS      int64               `json:"time_ms"` // speaker clock: senders stamp requests with it
}

// Pairing is the speaker side: its key pair, its credentials, and the
// HTTP endpoints GET /v1/info and POST /v1/pair.
//
// Invariants: no request changes anything unless its AEAD opens with the
// secret the current state demands (nothing, the PIN, or the current
// token), its timestamp is within PairWindow and its nonce is new; the
// credentials file is written (0600, atomically) before the new state is
// visible; a failed write leaves the old state.
//
// Run owns the mutable state (credentials, replay cache, rate limiters)
// and serves the handler's requests one at a time; Credentials, Paired,
// PublicKey and SetName use atomic snapshots and may be called from any
// goroutine, before Run too. Handler's requests wait for Run.
type Pairing struct {
	opts    PairingOptions
	log     *slog.Logger
	priv    *ecdh.PrivateKey
	creds   atomic.Pointer[Credentials] // nil when unpaired
	name    atomic.Pointer[string]      // shown by GET /v1/info; SetName changes it
	events  chan pairEvent
	stopped chan struct{}
	running atomic.Bool
}

type pairEvent struct {
	kind  string // "info", "pair", "reset"
	src   netip.Addr
	body  []byte
	reply chan pairReply
}

type pairReply struct {
	status     int
	body       any
	retryAfter time.Duration
	err        error // reset
}

// NewPairing loads (or creates) the key pair and loads the credentials
// from opts.StateDir.
func NewPairing(opts PairingOptions) (*Pairing, error) {
	if opts.StateDir == "" {
		return nil, errors.New("pairing: no state directory")
	}
	if err := checkDeviceID(opts.DeviceID); err != nil {
		return nil, fmt.Errorf("pairing: %w", err)
	}
	if opts.Type == "" {
		opts.Type = protocol.DeviceSpeaker
	}
	if err := checkDeviceType(string(opts.Type)); err != nil {
		return nil, fmt.Errorf("pairing: %w", err)
	}
	if len(opts.PIN) > 64 {
		return nil, errors.New("pairing: PIN longer than 64 bytes")
	}
	if opts.now == nil {
		opts.now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if err := os.MkdirAll(opts.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("pairing: state dir: %w", err)
	}
	priv, err := loadOrCreateKey(filepath.Join(opts.StateDir, KeyFile))
	if err != nil {
		return nil, fmt.Errorf("pairing: %w", err)
	}
	p := &Pairing{opts: opts, log: log, priv: priv, events: make(chan pairEvent), stopped: make(chan struct{})}
	c, err := loadCredentials(opts.StateDir)
	if err != nil {
		return nil, fmt.Errorf("pairing: %w (roomcastd reset-pairing starts over)", err)
	}
	p.creds.Store(c)
	name := opts.Name
	p.name.Store(&name)
	return p, nil
}

// SetName changes the name GET /v1/info reports (a configuration
// reload). Safe from any goroutine.
func (p *Pairing) SetName(name string) { p.name.Store(&name) }

func loadOrCreateKey(path string) (*ecdh.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		raw, err := hex.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(raw) != 32 {
			return nil, fmt.Errorf("%s: not a hex X25519 key", path)
		}
		_ = os.Chmod(path, 0o600)
		return ecdh.X25519().NewPrivateKey(raw)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	k, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(path, []byte(hex.EncodeToString(k.Bytes())+"\n")); err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	return k, nil
}

// loadCredentials returns nil when the speaker is not paired.
func loadCredentials(dir string) (*Credentials, error) {
	b, err := os.ReadFile(filepath.Join(dir, CredentialsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var c Credentials
	if err := strictJSON(b, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", CredentialsFile, err)
	}
	if err := checkBrokerURL(c.BrokerURL); err != nil {
		return nil, fmt.Errorf("%s: %w", CredentialsFile, err)
	}
	if err := checkToken(c.Token); err != nil {
		return nil, fmt.Errorf("%s: %w", CredentialsFile, err)
	}
	return &c, nil
}

// writeFileAtomic writes data to path with mode 0600 through a synced
// temporary file and a rename.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// ResetPairing forgets the credentials in stateDir (the key pair stays).
// It is what `roomcastd reset-pairing` does; a running roomcastd keeps its
// current session until restarted. It reports whether there was anything
// to forget.
func ResetPairing(stateDir string) (bool, error) {
	err := os.Remove(filepath.Join(stateDir, CredentialsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, nil
}

// Credentials is the broker URL and token from the last pairing.
func (p *Pairing) Credentials() (brokerURL, token string, ok bool) {
	c := p.creds.Load()
	if c == nil {
		return "", "", false
	}
	return c.BrokerURL, c.Token, true
}

// Paired reports whether the speaker holds credentials.
func (p *Pairing) Paired() bool { return p.creds.Load() != nil }

// PublicKey is the speaker's X25519 public key.
func (p *Pairing) PublicKey() []byte { return p.priv.PublicKey().Bytes() }

// Reset forgets the credentials (local owner action). It needs Run.
func (p *Pairing) Reset(ctx context.Context) error {
	r, ok := p.call(ctx, pairEvent{kind: "reset"})
	if !ok {
		return errors.New("pairing: not running")
	}
	return r.err
}

// call hands ev to Run and waits for the answer.
func (p *Pairing) call(ctx context.Context, ev pairEvent) (pairReply, bool) {
	ev.reply = make(chan pairReply, 1)
	select {
	case p.events <- ev:
	case <-p.stopped:
		return pairReply{}, false
	case <-ctx.Done():
		return pairReply{}, false
	}
	select {
	case r := <-ev.reply:
		return r, true
	case <-ctx.Done():
		return pairReply{}, false
	}
}

// Limits of the pairing endpoints.
const (
	reqBurst       = 20                     // any request, per source
	reqEvery       = 200 * time.Millisecond // refill: 5 per second
	failBurst      = 5                      // failed pair attempts, per source
	failEvery      = 30 * time.Second
	failBurstAll   = 20 // failed pair attempts, all sources together
	failEveryAll   = 10 * time.Second
	maxSources     = 4096
	maxReplayCache = 4096
)

// pairState is owned by Run.
type pairState struct {
	reqs, fails, failsAll *limiter
	seen                  map[string]time.Time // nonce -> forget after
	limited               int                  // requests refused since the last log line
	limitedLogAt          time.Time
}

// Run serves the handler's requests until ctx is done; it returns nil
// then. Only one Run may be active.
func (p *Pairing) Run(ctx context.Context) error {
	if p.running.Swap(true) {
		return errors.New("pairing: Run called twice")
	}
	defer close(p.stopped)
	st := &pairState{
		reqs:     newLimiter(reqBurst, reqEvery, maxSources),
		fails:    newLimiter(failBurst, failEvery, maxSources),
		failsAll: newLimiter(failBurstAll, failEveryAll, 1),
		seen:     map[string]time.Time{},
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-p.events:
			ev.reply <- p.handle(st, ev)
		}
	}
}

func (p *Pairing) handle(st *pairState, ev pairEvent) pairReply {
	now := p.opts.now()
	if ev.kind == "reset" {
		return p.reset()
	}
	src := sourceKey(ev.src)
	if !st.reqs.allow(src, now) {
		return p.limited(st, now, st.reqs.retryAfter(src, now), ev.src)
	}
	if ev.kind == "info" {
		return pairReply{status: http.StatusOK, body: p.info(now)}
	}
	if !st.fails.has(src, now) {
		return p.limited(st, now, st.fails.retryAfter(src, now), ev.src)
	}
	if !st.failsAll.has("", now) {
		return p.limited(st, now, st.failsAll.retryAfter("", now), ev.src)
	}
	r, reason := p.pair(st, ev.body, now)
	if r.status != http.StatusOK && r.status != http.StatusInternalServerError {
		st.fails.take(src, now)
		st.failsAll.take("", now)
		p.log.Warn("pairing: request refused", "source", ev.src.String(), "reason", reason)
	}
	return r
}

func (p *Pairing) limited(st *pairState, now time.Time, after time.Duration, src netip.Addr) pairReply {
	st.limited++
	if now.Sub(st.limitedLogAt) >= time.Minute {
		p.log.Warn("pairing: rate limited", "requests", st.limited, "last_source", src.String())
		st.limited, st.limitedLogAt = 0, now
	}
	return pairReply{status: http.StatusTooManyRequests, retryAfter: after,
		body: apiError{Code: "rate_limited", Message: "too many requests; retry later"}}
}

func (p *Pairing) info(now time.Time) SpeakerInfo {
	paired := p.Paired()
	return SpeakerInfo{Name: *p.name.Load(), ID: p.opts.DeviceID, Type: p.opts.Type, Version: protocol.Version,
		Paired: paired, PINRequired: !paired && p.opts.PIN != "", PublicKey: b64.EncodeToString(p.PublicKey()),
		PairPath: PairPath, TimeMS: now.UnixMilli()}
}

type apiError struct {
	Code    string `json:"code"`
	Message string `json:"error"`
}

type pairOK struct {
	Paired bool   `json:"paired"`
	ID     string `json:"id"`
}

func refuse(status int, code, msg string) pairReply {
	return pairReply{status: status, body: apiError{Code: code, Message: msg}}
}

// pair decides one request; reason is for the log.
func (p *Pairing) pair(st *pairState, body []byte, now time.Time) (r pairReply, reason string) {
	req, err := DecodePairRequest(body)
	if err != nil {
		return refuse(http.StatusBadRequest, "bad_request", err.Error()), err.Error()
	}
	if req.DeviceID != p.opts.DeviceID {
		return refuse(http.StatusBadRequest, "wrong_device", "request is for device "+req.DeviceID), "wrong device id"
	}
	mode, secret := modeOpen, ""
	cur := p.creds.Load()
	switch {
	case cur != nil:
		mode, secret = modeToken, cur.Token
	case p.opts.PIN != "":
		mode, secret = modePIN, p.opts.PIN
	}
	pl, err := req.open(p.priv, mode, secret)
	if errors.Is(err, errPairAuth) {
		msg := "authentication failed (tampered request?)"
		switch mode {
		case modeToken:
			msg = "speaker is paired: re-pairing must be authenticated with its current credential"
		case modePIN:
			msg = "authentication failed: wrong PIN?"
		}
		return refuse(http.StatusForbidden, "auth_failed", msg), "authentication failed (" + mode + ")"
	}
	if err != nil {
		return refuse(http.StatusBadRequest, "bad_request", err.Error()), err.Error()
	}
	if d := now.Sub(time.UnixMilli(pl.TSMilli)); d > PairWindow || d < -PairWindow {
		return refuse(http.StatusBadRequest, "expired", "request timestamp outside the speaker's window (clock or replay)"), "timestamp off by " + d.Round(time.Second).String()
	}
	for n, until := range st.seen {
		if now.After(until) {
			delete(st.seen, n)
		}
	}
	if _, dup := st.seen[pl.Nonce]; dup {
		return refuse(http.StatusConflict, "replayed", "request was already used"), "replayed nonce"
	}
	if len(st.seen) >= maxReplayCache {
		return refuse(http.StatusServiceUnavailable, "busy", "too many recent pairings; retry later"), "replay cache full"
	}
	st.seen[pl.Nonce] = now.Add(2 * PairWindow)

	c := &Credentials{BrokerURL: pl.BrokerURL, Token: pl.Token, PairedAtMS: now.UnixMilli()}
	data, err := json.Marshal(c)
	if err != nil {
		return refuse(http.StatusInternalServerError, "internal", "cannot encode credentials"), err.Error()
	}
	if err := writeFileAtomic(filepath.Join(p.opts.StateDir, CredentialsFile), append(data, '\n')); err != nil {
		p.log.Error("pairing: saving credentials", "err", err)
		return refuse(http.StatusInternalServerError, "internal", "cannot save credentials"), err.Error()
	}
	p.creds.Store(c)
	p.log.Info("pairing: paired", "broker", c.BrokerURL, "re_pairing", cur != nil)
	if p.opts.OnPaired != nil {
		p.opts.OnPaired(c.BrokerURL, c.Token)
	}
	return pairReply{status: http.StatusOK, body: pairOK{Paired: true, ID: p.opts.DeviceID}}, ""
}

func (p *Pairing) reset() pairReply {
	if _, err := ResetPairing(p.opts.StateDir); err != nil {
		return pairReply{err: fmt.Errorf("pairing: reset: %w", err)}
	}
	p.creds.Store(nil)
	p.log.Info("pairing: reset by the owner")
	return pairReply{}
}

// Handler serves GET /v1/info and POST /v1/pair. Bodies are limited to 4
// KiB; the source address (RemoteAddr, never a forwarding header) keys the
// rate limits. Requests wait for Run; when Run has ended they get 503.
func (p *Pairing) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+InfoPath, func(w http.ResponseWriter, r *http.Request) {
		p.serve(w, r, pairEvent{kind: "info"})
	})
	mux.HandleFunc("POST "+PairPath, func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxPairRequest))
		if err != nil {
			writeJSON(w, http.StatusRequestEntityTooLarge, apiError{Code: "bad_request", Message: "body too large or unreadable"})
			return
		}
		p.serve(w, r, pairEvent{kind: "pair", body: body})
	})
	return mux
}

func (p *Pairing) serve(w http.ResponseWriter, r *http.Request, ev pairEvent) {
	ev.src = remoteAddr(r)
	rep, ok := p.call(r.Context(), ev)
	if !ok {
		writeJSON(w, http.StatusServiceUnavailable, apiError{Code: "unavailable", Message: "pairing service not running"})
		return
	}
	if rep.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(rep.retryAfter.Round(time.Second)/time.Second)+1))
	}
	writeJSON(w, rep.status, rep.body)
}

func remoteAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.IPv4Unspecified()
	}
	return a
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
