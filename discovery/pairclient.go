package discovery

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// PairParams say what to pair and how to prove the right to do it.
type PairParams struct {
	InfoURL   string // the speaker's info endpoint, e.g. Speaker.InfoURL()
	BrokerURL string // broker the speaker is to join
	Token     string // credential the speaker will use with it
	// PIN is needed for the first pairing of a speaker that requires one.
	PIN string
	// CurrentToken is needed to re-pair a paired speaker: its current
	// broker credential.
	CurrentToken string
	// ExpectID, when set, refuses a speaker whose info has another id
	// (e.g. the id its TXT record announced).
	ExpectID string
	Client   *http.Client // default: no proxy, no redirects, 10 s timeout
}

// Errors PairWith returns before it sends anything.
var (
	ErrAlreadyPaired = errors.New("speaker is already paired: re-pairing needs its current credential")
	ErrPINRequired   = errors.New("speaker requires its setup PIN")
)

// PairError is a refusal from the speaker.
type PairError struct {
	Status     int    // HTTP status
	Code       string // bad_request, wrong_device, auth_failed, expired, replayed, rate_limited, ...
	Message    string
	RetryAfter time.Duration
}

func (e *PairError) Error() string {
	return fmt.Sprintf("speaker refused pairing (%d %s): %s", e.Status, e.Code, e.Message)
}

// Pair pairs the speaker whose info is at speakerInfoURL with brokerURL
// and token; pin is its setup PIN when it requires one ("" otherwise).
func Pair(ctx context.Context, speakerInfoURL, brokerURL, token, pin string) error {
	_, err := PairWith(ctx, PairParams{InfoURL: speakerInfoURL, BrokerURL: brokerURL, Token: token, PIN: pin})
	return err
}

// PairWith fetches the speaker's info, encrypts the broker URL and token
// to its key (see the request format in paircrypto.go) and posts them to
// the speaker's pair path on the same host and port. It returns the info
// it paired against.
func PairWith(ctx context.Context, pp PairParams) (*SpeakerInfo, error) {
	if err := checkBrokerURL(pp.BrokerURL); err != nil {
		return nil, err
	}
	if err := checkToken(pp.Token); err != nil {
		return nil, err
	}
	iu, err := url.Parse(pp.InfoURL)
	if err != nil || (iu.Scheme != "http" && iu.Scheme != "https") || iu.Host == "" {
		return nil, fmt.Errorf("speaker info URL %q: want http://host:port/path", pp.InfoURL)
	}
	hc := pp.Client
	if hc == nil {
		hc = &http.Client{
			Transport:     &http.Transport{Proxy: nil, ResponseHeaderTimeout: 10 * time.Second},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			Timeout:       10 * time.Second,
		}
	}
	start := time.Now()
	info, err := fetchInfo(ctx, hc, iu.String())
	if err != nil {
		return nil, err
	}
	if pp.ExpectID != "" && info.ID != pp.ExpectID {
		return nil, fmt.Errorf("speaker at %s is %q, not %q", iu.Host, info.ID, pp.ExpectID)
	}
	mode, secret := modeOpen, ""
	switch {
	case info.Paired:
		if pp.CurrentToken == "" {
			return info, ErrAlreadyPaired
		}
		mode, secret = modeToken, pp.CurrentToken
	case info.PINRequired:
		if pp.PIN == "" {
			return info, ErrPINRequired
		}
		mode, secret = modePIN, pp.PIN
	}
	pub, err := b64.DecodeString(info.PublicKey)
	if err != nil || len(pub) != 32 {
		return nil, errors.New("speaker info: public_key is not 32 bytes of base64url")
	}
	nonce := make([]byte, payloadNonceLen)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	// The speaker's clock, not ours: a speaker without a real-time clock
	// may be off, and the window is checked against its clock.
	ts := info.TimeMS + time.Since(start).Milliseconds()
	req, err := sealPairRequest(info.ID, pub, mode, secret, pairPayload{BrokerURL: pp.BrokerURL, Token: pp.Token, TSMilli: ts, Nonce: b64.EncodeToString(nonce)})
	if err != nil {
		return nil, err
	}
	body, err := req.encode()
	if err != nil {
		return nil, err
	}
	pu := *iu
	pu.Path, pu.RawPath, pu.RawQuery, pu.Fragment = info.PairPath, "", "", ""
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, pu.String(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	hreq.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(hreq)
	if err != nil {
		return nil, fmt.Errorf("pair: %w", err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<10))
	if resp.StatusCode == http.StatusOK {
		return info, nil
	}
	pe := &PairError{Status: resp.StatusCode}
	var ae apiError
	if json.Unmarshal(rb, &ae) == nil {
		pe.Code, pe.Message = ae.Code, ae.Message
	}
	if s := resp.Header.Get("Retry-After"); s != "" {
		var n int
		if _, err := fmt.Sscan(s, &n); err == nil && n > 0 && n < 86400 {
			pe.RetryAfter = time.Duration(n) * time.Second
		}
	}
	return info, pe
}

// FetchInfo reads and validates a speaker's info.
func FetchInfo(ctx context.Context, infoURL string) (*SpeakerInfo, error) {
	hc := &http.Client{
		Transport:     &http.Transport{Proxy: nil},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       10 * time.Second,
	}
	return fetchInfo(ctx, hc, infoURL)
}

func fetchInfo(ctx context.Context, hc *http.Client, u string) (*SpeakerInfo, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("speaker info: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<10))
	if err != nil {
		return nil, fmt.Errorf("speaker info: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("speaker info: HTTP %d", resp.StatusCode)
	}
	var info SpeakerInfo
	// Unknown fields are allowed here: a newer speaker may say more.
	if err := json.Unmarshal(b, &info); err != nil {
		return nil, fmt.Errorf("speaker info: %w", err)
	}
	if err := checkDeviceID(info.ID); err != nil {
		return nil, fmt.Errorf("speaker info: %w", err)
	}
	if err := checkInfoPath(info.PairPath); err != nil {
		return nil, fmt.Errorf("speaker info: pair_path: %w", err)
	}
	if info.TimeMS <= 0 {
		return nil, errors.New("speaker info: time_ms missing")
	}
	return &info, nil
}
