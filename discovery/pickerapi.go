package discovery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/roomcast/roomcast/protocol/httpapi"
)

// SpeakerSource lists the speakers seen on the LAN (a *Browser).
type SpeakerSource interface {
	Speakers() []Speaker
}

// PickerAPI is the broker's side of pairing, for pickers:
//
//	GET  /v1/speakers   the speakers on the LAN, paired or not
//	POST /v1/pair       {"device_id": "...", "pin": "...", "current_token": "..."}
//
// Pairing creates a new token for the caller's user (never the caller's
// own), seals it with the broker URL to the speaker's key, and deletes it
// again when the speaker refuses. Safe for concurrent use.
type PickerAPI struct {
	Source SpeakerSource
	// BrokerURL is the address speakers should use to reach this broker.
	BrokerURL string
	// CreateToken makes a token for user; DeleteToken revokes one.
	CreateToken func(ctx context.Context, user, label string) (string, error)
	DeleteToken func(ctx context.Context, token string) error
	// User returns the authenticated user of a request.
	User func(ctx context.Context) string
	Log  *slog.Logger
}

// Register adds the routes to mux behind auth.
func (a *PickerAPI) Register(mux *http.ServeMux, auth func(http.Handler) http.Handler) {
	mux.Handle("GET /v1/speakers", auth(http.HandlerFunc(a.speakers)))
	mux.Handle("POST /v1/pair", auth(http.HandlerFunc(a.pair)))
}

func (a *PickerAPI) speakers(w http.ResponseWriter, r *http.Request) {
	list := a.Source.Speakers()
	if list == nil {
		list = []Speaker{}
	}
	writeJSON(w, http.StatusOK, httpapi.SpeakerList{Speakers: list})
}

// PairRequestBody is the body of POST /v1/pair.
type PairRequestBody = httpapi.PairRequest

func (a *PickerAPI) pair(w http.ResponseWriter, r *http.Request) {
	var body PairRequestBody
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil || body.DeviceID == "" {
		writeJSON(w, http.StatusBadRequest, apiError{Code: "bad_request", Message: "body must be {\"device_id\": ..., \"pin\"?: ...}"})
		return
	}
	var sp *Speaker
	for _, s := range a.Source.Speakers() {
		if s.Info.ID == body.DeviceID {
			sp = &s
			break
		}
	}
	if sp == nil {
		writeJSON(w, http.StatusNotFound, apiError{Code: "not_found", Message: fmt.Sprintf("no speaker %q on the LAN (see GET /v1/speakers)", body.DeviceID)})
		return
	}
	user := a.User(r.Context())
	tok, err := a.CreateToken(r.Context(), user, "speaker "+body.DeviceID)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, apiError{Code: "internal", Message: err.Error()})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	info, err := PairWith(ctx, PairParams{InfoURL: sp.InfoURL(), BrokerURL: a.BrokerURL, Token: tok,
		PIN: body.PIN, CurrentToken: body.CurrentToken, ExpectID: body.DeviceID})
	if err != nil {
		if derr := a.DeleteToken(context.Background(), tok); derr != nil && a.Log != nil {
			a.Log.Error("pair: revoking the unused token", "err", derr)
		}
		status, code := http.StatusBadGateway, "pair_failed"
		var pe *PairError
		switch {
		case errors.Is(err, ErrPINRequired):
			status, code = http.StatusBadRequest, "pin_required"
		case errors.Is(err, ErrAlreadyPaired):
			status, code = http.StatusConflict, "already_paired"
		case errors.As(err, &pe):
			status, code = pe.Status, pe.Code
			if pe.RetryAfter > 0 {
				w.Header().Set("Retry-After", fmt.Sprint(int(pe.RetryAfter.Seconds()+0.5)))
			}
		}
		writeJSON(w, status, apiError{Code: code, Message: err.Error()})
		return
	}
	if a.Log != nil {
		a.Log.Info("paired a speaker", "user", user, "device", body.DeviceID, "name", info.Name)
	}
	writeJSON(w, http.StatusOK, httpapi.Paired{DeviceID: body.DeviceID, Name: info.Name})
}

// NoSpeakers is the SpeakerSource of a broker that does not browse
// (--mdns off).
type NoSpeakers struct{}

// Speakers returns nothing.
func (NoSpeakers) Speakers() []Speaker { return nil }

// PickerConfig wires the pairing API into a broker.
type PickerConfig struct {
	Mux  *http.ServeMux
	Auth func(http.Handler) http.Handler
	// Interfaces to browse on: "", "off" or a list (ParseInterfaces).
	Interfaces  string
	BrokerURL   string
	CreateToken func(ctx context.Context, user, label string) (string, error)
	DeleteToken func(ctx context.Context, token string) error
	User        func(ctx context.Context) string
	Log         *slog.Logger
}

// StartPickerAPI browses for speakers (unless Interfaces is "off") until
// ctx ends and registers the PickerAPI routes on c.Mux.
func StartPickerAPI(ctx context.Context, c PickerConfig) error {
	spec, err := ParseInterfaces(c.Interfaces)
	if err != nil {
		return fmt.Errorf("--mdns: %w", err)
	}
	var source SpeakerSource = NoSpeakers{}
	if !spec.Off {
		br, err := NewBrowser(BrowserOptions{Interfaces: spec, Logger: c.Log.With("component", "browse")})
		if err != nil {
			return err
		}
		go func() {
			if err := br.Run(ctx); err != nil {
				c.Log.Error("speaker browsing stopped", "err", err)
			}
		}()
		source = br
	}
	api := &PickerAPI{Source: source, BrokerURL: c.BrokerURL, CreateToken: c.CreateToken, DeleteToken: c.DeleteToken, User: c.User, Log: c.Log}
	api.Register(c.Mux, c.Auth)
	return nil
}
