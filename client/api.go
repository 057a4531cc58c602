package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/roomcast/roomcast/protocol/httpapi"
)

// API is a client of a broker's HTTP API (the library, the speakers on the
// LAN, pairing) with one token. The bodies are the httpapi types. Safe for
// concurrent use.
type API struct {
	base  string // http(s)://host:port[/prefix], no trailing slash
	token string
	hc    *http.Client
}

// NewAPI returns a client of the HTTP API of the broker at broker
// (http://, https://, or the ws:// and wss:// forms of the same address).
func NewAPI(broker, token string) (*API, error) {
	base, err := HTTPBase(broker)
	if err != nil {
		return nil, err
	}
	return &API{base: base, token: token, hc: &http.Client{}}, nil
}

// HTTPBase turns a broker URL into the base of its HTTP API: ws:// and
// wss:// become http:// and https://, a trailing slash goes.
func HTTPBase(broker string) (string, error) {
	u, err := url.Parse(broker)
	if err != nil {
		return "", fmt.Errorf("broker URL %q: %w", broker, err)
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "ws":
		u.Scheme = "http"
	case "https", "wss":
		u.Scheme = "https"
	default:
		return "", fmt.Errorf("broker URL %q: scheme must be http or https", broker)
	}
	if u.Host == "" {
		return "", fmt.Errorf("broker URL %q: no host", broker)
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}

// APIError is a refusal from the broker's HTTP API: its status and, when
// the body was the JSON httpapi.Error, its code; else the body's first
// line as the message.
type APIError struct {
	Method, Path string
	Status       int
	Code         string // "" when the body had none
	Message      string
}

func (e *APIError) Error() string {
	if e.Code != "" {
		return fmt.Sprintf("%s %s: %s: %s", e.Method, e.Path, e.Code, e.Message)
	}
	return fmt.Sprintf("%s %s: HTTP %d: %s", e.Method, e.Path, e.Status, e.Message)
}

// Limits on answers read.
const (
	maxLibraryBody = 256 << 20 // a page of up to 500 albums with their tracks
	maxBody        = 1 << 20
)

// LibraryPageSize is the page size Library asks for (the broker allows up
// to 500).
const LibraryPageSize = 200

// LibraryPage is one page of GET /v1/library.
func (a *API) LibraryPage(ctx context.Context, offset, limit int) (*httpapi.LibraryPage, error) {
	var p httpapi.LibraryPage
	path := fmt.Sprintf("/v1/library?offset=%d&limit=%d", offset, limit)
	if err := a.do(ctx, http.MethodGet, path, nil, &p, maxLibraryBody); err != nil {
		return nil, err
	}
	return &p, nil
}

// Library returns every album, fetched page by page, and the total the
// broker reported last.
func (a *API) Library(ctx context.Context) ([]httpapi.Album, int, error) {
	var albums []httpapi.Album
	for offset := 0; ; {
		p, err := a.LibraryPage(ctx, offset, LibraryPageSize)
		if err != nil {
			return nil, 0, err
		}
		albums = append(albums, p.Albums...)
		offset += len(p.Albums)
		if offset >= p.Total || len(p.Albums) == 0 {
			return albums, p.Total, nil
		}
	}
}

// Speakers lists the speakers the broker sees on the LAN (GET
// /v1/speakers), paired or not.
func (a *API) Speakers(ctx context.Context) ([]httpapi.Speaker, error) {
	var l httpapi.SpeakerList
	if err := a.do(ctx, http.MethodGet, "/v1/speakers", nil, &l, maxBody); err != nil {
		return nil, err
	}
	return l.Speakers, nil
}

// Pair asks the broker to pair a speaker with the caller's user (POST
// /v1/pair).
func (a *API) Pair(ctx context.Context, req httpapi.PairRequest) (*httpapi.Paired, error) {
	var p httpapi.Paired
	if err := a.do(ctx, http.MethodPost, "/v1/pair", req, &p, maxBody); err != nil {
		return nil, err
	}
	return &p, nil
}

// do sends one authenticated request with body (JSON, when not nil) and
// decodes a 2xx answer into out; anything else is an *APIError.
func (a *API) do(ctx context.Context, method, path string, body, out any, limit int64) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s %s: %w", method, path, ctx.Err())
		}
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	if int64(len(data)) > limit {
		return fmt.Errorf("%s %s: answer larger than %d bytes", method, path, limit)
	}
	if resp.StatusCode/100 != 2 {
		return apiError(method, path, resp.StatusCode, data)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: unexpected answer from the broker: %w", method, path, err)
	}
	return nil
}

func apiError(method, path string, status int, body []byte) *APIError {
	e := &APIError{Method: method, Path: path, Status: status}
	var he httpapi.Error
	if json.Unmarshal(body, &he) == nil && (he.Code != "" || he.Message != "") {
		e.Code, e.Message = he.Code, he.Message
		return e
	}
	line, _, _ := bytes.Cut(bytes.TrimSpace(body), []byte("\n"))
	e.Message = string(line)
	if len(e.Message) > 200 {
		e.Message = e.Message[:200] + "…"
	}
	if e.Message == "" {
		e.Message = http.StatusText(status)
	}
	return e
}

// IsStatus reports whether err is an *APIError with that HTTP status.
func IsStatus(err error, status int) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == status
}
