package discovery

import (
	"bytes"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"

	"golang.org/x/crypto/chacha20poly1305"
)

// Pairing request, version 1 (POST /v1/pair, JSON):
//
//	{"v":1, "id":"<device id>", "epk":"<ephemeral X25519 public key>", "ct":"<ciphertext>"}
//
// epk and ct are unpadded base64url. The sender makes an ephemeral X25519
// key pair and computes
//
//	shared = X25519(ephemeral private, speaker public)
//	okm    = HKDF-SHA256(ikm = shared || SHA-256(secret), salt = epk || speaker public,
//	                     info = "roomcast pair v1 " + mode, 44 bytes)
//	key, nonce = okm[:32], okm[32:44]
//	ct     = ChaCha20-Poly1305(key, nonce, plaintext, ad)
//	ad     = "roomcast pair v1" 0x00 || device id || 0x00 || speaker public || epk
//
// where mode and secret follow the speaker's state: "open" and "" for an
// unpaired speaker without a setup PIN, "pin" and the PIN for one with a
// PIN, "token" and its current broker token for a paired speaker. A wrong
// PIN, a stranger's request to a paired speaker, a flipped byte anywhere
// (ciphertext, id, keys) all end as one failure: the AEAD does not open.
// The key is fresh per request (ephemeral key), so the derived nonce is
// never reused. The plaintext is JSON:
//
//	{"broker_url":"http://host:4100", "token":"rc_...", "ts_ms":<speaker clock>, "nonce":"<16 random bytes>"}
//
// ts_ms must be within PairWindow of the speaker's clock (the sender uses
// the time_ms the speaker's info gave, plus the time elapsed since), and
// the nonce must not have been seen within the window (replay cache).
const (
	pairVersion      = 1
	pairLabel        = "roomcast pair v1"
	maxPairRequest   = 4096
	maxPairPlaintext = 2048
	maxTokenLen      = 512
	maxBrokerURLLen  = 512
	payloadNonceLen  = 16
)

// Pairing modes: which secret is bound into the key.
const (
	modeOpen  = "open"
	modePIN   = "pin"
	modeToken = "token"
)

var b64 = base64.RawURLEncoding

// PairRequest is a decoded, not yet opened, pairing request.
type PairRequest struct {
	DeviceID   string
	Ephemeral  []byte // 32 bytes
	Ciphertext []byte
}

type pairRequestJSON struct {
	V   int    `json:"v"`
	ID  string `json:"id"`
	EPK string `json:"epk"`
	CT  string `json:"ct"`
}

// pairPayload is the plaintext inside a request.
type pairPayload struct {
	BrokerURL string `json:"broker_url"`
	Token     string `json:"token"`
	TSMilli   int64  `json:"ts_ms"`
	Nonce     string `json:"nonce"`
}

// DecodePairRequest parses the body of POST /v1/pair. It is strict: one
// JSON object, no unknown or missing fields, version 1, a valid device id,
// a 32-byte key and a ciphertext of plausible size.
func DecodePairRequest(body []byte) (*PairRequest, error) {
	if len(body) > maxPairRequest {
		return nil, fmt.Errorf("pair request: %d bytes, at most %d", len(body), maxPairRequest)
	}
	var w pairRequestJSON
	if err := strictJSON(body, &w); err != nil {
		return nil, fmt.Errorf("pair request: %w", err)
	}
	if w.V != pairVersion {
		return nil, fmt.Errorf("pair request: version %d, this speaker reads %d", w.V, pairVersion)
	}
	if err := checkDeviceID(w.ID); err != nil {
		return nil, fmt.Errorf("pair request: %w", err)
	}
	epk, err := b64.DecodeString(w.EPK)
	if err != nil || len(epk) != 32 {
		return nil, errors.New("pair request: epk is not 32 bytes of base64url")
	}
	ct, err := b64.DecodeString(w.CT)
	if err != nil {
		return nil, errors.New("pair request: ct is not base64url")
	}
	if len(ct) <= chacha20poly1305.Overhead || len(ct) > maxPairPlaintext+chacha20poly1305.Overhead {
		return nil, fmt.Errorf("pair request: ct of %d bytes is out of range", len(ct))
	}
	return &PairRequest{DeviceID: w.ID, Ephemeral: epk, Ciphertext: ct}, nil
}

// strictJSON decodes exactly one object with only known fields; every
// field must be present (checked by the callers' validation: zero values
// are invalid for all of them).
func strictJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the object")
	}
	return nil
}

func (r *PairRequest) encode() ([]byte, error) {
	return json.Marshal(pairRequestJSON{V: pairVersion, ID: r.DeviceID, EPK: b64.EncodeToString(r.Ephemeral), CT: b64.EncodeToString(r.Ciphertext)})
}

func pairAD(deviceID string, speakerPub, epk []byte) []byte {
	ad := make([]byte, 0, len(pairLabel)+len(deviceID)+2+64)
	ad = append(ad, pairLabel...)
	ad = append(ad, 0)
	ad = append(ad, deviceID...)
	ad = append(ad, 0)
	ad = append(ad, speakerPub...)
	return append(ad, epk...)
}

// pairKey derives the AEAD key and nonce.
func pairKey(shared, epk, speakerPub []byte, mode, secret string) (key, nonce []byte, err error) {
	sh := sha256.Sum256([]byte(secret))
	ikm := append(append([]byte(nil), shared...), sh[:]...)
	salt := append(append([]byte(nil), epk...), speakerPub...)
	okm, err := hkdf.Key(sha256.New, ikm, salt, pairLabel+" "+mode, chacha20poly1305.KeySize+chacha20poly1305.NonceSize)
	if err != nil {
		return nil, nil, err
	}
	return okm[:chacha20poly1305.KeySize], okm[chacha20poly1305.KeySize:], nil
}

// sealPairRequest is the sender's side.
func sealPairRequest(deviceID string, speakerPub []byte, mode, secret string, p pairPayload) (*PairRequest, error) {
	pub, err := ecdh.X25519().NewPublicKey(speakerPub)
	if err != nil {
		return nil, fmt.Errorf("speaker public key: %w", err)
	}
	eph, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	return sealWith(eph, pub, deviceID, mode, secret, p)
}

// sealWith seals with a given ephemeral key (tests need determinism).
func sealWith(eph *ecdh.PrivateKey, pub *ecdh.PublicKey, deviceID, mode, secret string, p pairPayload) (*PairRequest, error) {
	speakerPub := pub.Bytes()
	shared, err := eph.ECDH(pub)
	if err != nil {
		return nil, fmt.Errorf("speaker public key: %w", err)
	}
	epk := eph.PublicKey().Bytes()
	key, nonce, err := pairKey(shared, epk, speakerPub, mode, secret)
	if err != nil {
		return nil, err
	}
	aead, err := chacha20poly1305.New(key)
	if err != nil {
		return nil, err
	}
	pt, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	if len(pt) > maxPairPlaintext {
		return nil, errors.New("broker URL and token are too long")
	}
	return &PairRequest{DeviceID: deviceID, Ephemeral: epk, Ciphertext: aead.Seal(nil, nonce, pt, pairAD(deviceID, speakerPub, epk))}, nil
}

var errPairAuth = errors.New("authentication failed")

// open is the speaker's side: decrypt and validate the payload.
func (r *PairRequest) open(priv *ecdh.PrivateKey, mode, secret string) (pairPayload, error) {
	epk, err := ecdh.X25519().NewPublicKey(r.Ephemeral)
	if err != nil {
		return pairPayload{}, errPairAuth
	}
	shared, err := priv.ECDH(epk) // fails on low-order points
	if err != nil {
		return pairPayload{}, errPairAuth
	}
	spub := priv.PublicKey().Bytes()
	key, nonce, err := pairKey(shared, r.Ephemeral, spub, mode, secret)
	if err != nil {
		return pairPayload{}, errPairAuth
	}
	aead, err := chacha20poly1305.New(key)
	if err != nil {
		return pairPayload{}, errPairAuth
	}
	pt, err := aead.Open(nil, nonce, r.Ciphertext, pairAD(r.DeviceID, spub, r.Ephemeral))
	if err != nil {
		return pairPayload{}, errPairAuth
	}
	var p pairPayload
	if err := strictJSON(pt, &p); err != nil {
		return pairPayload{}, fmt.Errorf("payload: %w", err)
	}
	if err := validatePayload(p); err != nil {
		return pairPayload{}, err
	}
	return p, nil
}

func validatePayload(p pairPayload) error {
	if err := checkBrokerURL(p.BrokerURL); err != nil {
		return err
	}
	if err := checkToken(p.Token); err != nil {
		return err
	}
	if p.TSMilli <= 0 {
		return errors.New("payload: ts_ms missing")
	}
	n, err := b64.DecodeString(p.Nonce)
	if err != nil || len(n) != payloadNonceLen {
		return fmt.Errorf("payload: nonce is not %d bytes of base64url", payloadNonceLen)
	}
	return nil
}

// checkBrokerURL accepts http(s)://host[:port][/path] without user info,
// query or fragment.
func checkBrokerURL(s string) error {
	if s == "" || len(s) > maxBrokerURLLen {
		return fmt.Errorf("broker URL: empty or longer than %d bytes", maxBrokerURLLen)
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("broker URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("broker URL %q: scheme must be http or https", s)
	}
	if u.Host == "" || u.Hostname() == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return fmt.Errorf("broker URL %q: want http(s)://host[:port] without user, query or fragment", s)
	}
	for _, c := range []byte(s) {
		if c <= ' ' || c >= 0x7f {
			return fmt.Errorf("broker URL %q: control, space or non-ASCII byte", s)
		}
	}
	return nil
}

// checkToken accepts 1-512 printable ASCII bytes without spaces.
func checkToken(t string) error {
	if t == "" || len(t) > maxTokenLen {
		return fmt.Errorf("token: empty or longer than %d bytes", maxTokenLen)
	}
	if strings.IndexFunc(t, func(r rune) bool { return r <= ' ' || r >= 0x7f }) >= 0 {
		return errors.New("token: only printable ASCII without spaces")
	}
	return nil
}
