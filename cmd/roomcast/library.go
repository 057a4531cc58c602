package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"text/tabwriter"

	"github.com/roomcast/roomcast/client"
	"github.com/roomcast/roomcast/protocol/httpapi"
)

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
	api, err := e.api()
	if err != nil {
		return err
	}
	albums, total, err := api.Library(ctx)
	switch {
	case err != nil && ctx.Err() != nil:
		return fmt.Errorf("library: no answer from the broker within %s", e.g.timeout)
	case client.IsStatus(err, http.StatusNotFound):
		return fmt.Errorf("library: %w (does it serve a library? start it with --music DIR)", err)
	case err != nil:
		return fmt.Errorf("library: %w", err)
	}
	if albums == nil {
		albums = []httpapi.Album{}
	}
	if e.g.json {
		return e.printJSON(struct {
			Total  int             `json:"total"`
			Albums []httpapi.Album `json:"albums"`
		}{total, albums})
	}
	return printLibrary(e.stdout, albums)
}

func printLibrary(w io.Writer, albums []httpapi.Album) error {
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
