package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
)

// libTrack and libAlbum are the parts of GET /v1/library (package
// library's Page) that the table shows; --json passes the albums through
// unchanged.
type libTrack struct {
	URI          string   `json:"uri"`
	Title        string   `json:"title"`
	Artist       string   `json:"artist"`
	TrackNumber  int      `json:"track_number"`
	DiscNumber   int      `json:"disc_number"`
	DurationMS   int64    `json:"duration_ms"`
	LoudnessLUFS *float64 `json:"loudness_lufs"`
	TruePeakDBTP *float64 `json:"true_peak_dbtp"`
}

type libAlbum struct {
	URI          string     `json:"uri"`
	Title        string     `json:"title"`
	Artist       string     `json:"artist"`
	Date         string     `json:"date"`
	DurationMS   int64      `json:"duration_ms"`
	LoudnessLUFS *float64   `json:"loudness_lufs"`
	TruePeakDBTP *float64   `json:"true_peak_dbtp"`
	Tracks       []libTrack `json:"tracks"`
}

// libraryPageSize is the page size the CLI asks for (the broker allows
// up to 500).
const libraryPageSize = 200

// cmdLibrary implements `roomcast library [--json]`: every album with its
// tracks, URIs, durations and loudness, fetched page by page.
func cmdLibrary(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("library", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintln(e.stderr, "usage: roomcast library [--json]\n\nalbums and tracks with their URIs, durations and loudness")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{errors.New("library takes no arguments besides --json")}
	}
	raw, total, err := fetchLibrary(ctx, e)
	if err != nil {
		return err
	}
	if e.g.json {
		if raw == nil {
			raw = []json.RawMessage{}
		}
		return e.printJSON(struct {
			Total  int               `json:"total"`
			Albums []json.RawMessage `json:"albums"`
		}{total, raw})
	}
	albums := make([]libAlbum, len(raw))
	for i, r := range raw {
		if err := json.Unmarshal(r, &albums[i]); err != nil {
			return fmt.Errorf("library: unexpected answer from the broker: %v", err)
		}
	}
	return printLibrary(e.stdout, albums)
}

// fetchLibrary gets all pages of GET /v1/library.
func fetchLibrary(ctx context.Context, e *env) (albums []json.RawMessage, total int, err error) {
	base := httpBase(e.g.broker)
	for offset := 0; ; {
		url := fmt.Sprintf("%s/v1/library?offset=%d&limit=%d", base, offset, libraryPageSize)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, 0, usageError{fmt.Errorf("--broker %q: %v", e.g.broker, err)}
		}
		req.Header.Set("Authorization", "Bearer "+e.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return nil, 0, fmt.Errorf("library: no answer from the broker within %s", e.g.timeout)
			}
			return nil, 0, fmt.Errorf("library: %v", err)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
		resp.Body.Close()
		if err != nil {
			return nil, 0, fmt.Errorf("library: reading the answer: %v", err)
		}
		if resp.StatusCode != http.StatusOK {
			msg := fmt.Sprintf("library: the broker answered %s", resp.Status)
			if line := firstLine(body); line != "" {
				msg += ": " + line
			}
			if resp.StatusCode == http.StatusNotFound {
				msg += " (does it serve a library? start it with --music DIR)"
			}
			return nil, 0, errors.New(msg)
		}
		var page struct {
			Total  int               `json:"total"`
			Albums []json.RawMessage `json:"albums"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			return nil, 0, fmt.Errorf("library: unexpected answer from the broker: %v", err)
		}
		albums = append(albums, page.Albums...)
		offset += len(page.Albums)
		total = page.Total
		if offset >= page.Total || len(page.Albums) == 0 {
			return albums, total, nil
		}
	}
}

// httpBase turns the broker URL into the base of its HTTP API.
func httpBase(broker string) string {
	b := strings.TrimRight(broker, "/")
	switch {
	case strings.HasPrefix(b, "ws://"):
		b = "http://" + strings.TrimPrefix(b, "ws://")
	case strings.HasPrefix(b, "wss://"):
		b = "https://" + strings.TrimPrefix(b, "wss://")
	}
	return b
}

func firstLine(b []byte) string {
	line, _, _ := bytes.Cut(bytes.TrimSpace(b), []byte("\n"))
	s := string(line)
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

func printLibrary(w io.Writer, albums []libAlbum) error {
	if len(albums) == 0 {
		_, err := fmt.Fprintln(w, "the library is empty (or not scanned yet: see roomcast-broker's log)")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ALBUM / TRACK\tTIME\tLOUDNESS\tPEAK\tURI")
	for i, a := range albums {
		if i > 0 {
			fmt.Fprintln(tw, "\t\t\t\t")
		}
		name := a.Title
		if name == "" {
			name = "(no album)"
		}
		artist := a.Artist
		if artist == "" {
			artist = "Unknown artist"
		}
		name = artist + " – " + name
		if len(a.Date) >= 4 {
			name += " (" + a.Date[:4] + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", name, clock(a.DurationMS), lufs(a.LoudnessLUFS), dbtp(a.TruePeakDBTP), a.URI)
		discs := false
		for _, t := range a.Tracks {
			discs = discs || t.DiscNumber > 1
		}
		for _, t := range a.Tracks {
			num := "   "
			if t.TrackNumber > 0 {
				num = fmt.Sprintf("%2d.", t.TrackNumber)
			}
			if discs {
				num = fmt.Sprintf("%d-%s", max(t.DiscNumber, 1), num)
			}
			title := t.Title
			if t.Artist != "" && t.Artist != a.Artist {
				title += " (" + t.Artist + ")"
			}
			fmt.Fprintf(tw, "  %s %s\t%s\t%s\t%s\t%s\n", num, title, clock(t.DurationMS), lufs(t.LoudnessLUFS), dbtp(t.TruePeakDBTP), t.URI)
		}
	}
	return tw.Flush()
}

// lufs and dbtp print a measurement, or "-" while it is not known.
func lufs(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.1f LUFS", *v)
}

func dbtp(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.1f dBTP", *v)
}
