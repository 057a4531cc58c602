package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/roomcast/roomcast/config"
	"github.com/roomcast/roomcast/library"
)

// scanCommand implements `roomcast-broker scan --music DIR [--state-dir
// DIR]`: a full scan and loudness analysis in the foreground, with
// progress on stderr and a summary on stdout. Problems with single files
// are listed, not fatal; it fails only if the library cannot be opened or
// scanned (or is interrupted).
func scanCommand(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("roomcast-broker scan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: roomcast-broker scan --music DIR [--state-dir DIR]\n\n"+
			"index the music folder and measure loudness now, in the foreground\n"+
			"(a running broker picks the result up at its next scan)\n\n")
		fs.PrintDefaults()
	}
	music := fs.String("music", "", "music folder to index (required)")
	stateDir := fs.String("state-dir", config.DefaultStateDir(), "directory of the index ("+library.DBFileName+")")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("scan: unexpected argument %q", fs.Arg(0))}
	}
	if err := config.Apply(fs, "", false); err != nil {
		return usageError{err}
	}
	if *music == "" {
		return usageError{errors.New("scan: --music DIR is required")}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	l, err := library.Open(library.Options{MusicDir: *music, StateDir: *stateDir})
	if err != nil {
		return err
	}
	defer l.Close()

	start := time.Now()
	tty := isTerminal(stderr)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		showProgress(l, stderr, tty, done)
	}()
	err = l.RunOnce(ctx)
	close(done)
	<-finished
	if errors.Is(err, context.Canceled) {
		return errors.New("scan interrupted (what was indexed and measured so far is kept)")
	}
	if err != nil {
		return err
	}
	printSummary(stdout, l.Status(), filepath.Join(*stateDir, library.DBFileName), time.Since(start))
	return nil
}

// showProgress reports l's progress until done is closed: one line
// rewritten in place on a terminal, a line every 5 s otherwise.
func showProgress(l *library.Library, w io.Writer, tty bool, done <-chan struct{}) {
	every := 5 * time.Second
	if tty {
		every = 200 * time.Millisecond
	}
	t := time.NewTicker(every)
	defer t.Stop()
	last := ""
	for {
		select {
		case <-done:
			if tty && last != "" {
				fmt.Fprint(w, "\r\033[K")
			}
			return
		case <-t.C:
		}
		line := progressLine(l.Status())
		if line == last {
			continue
		}
		last = line
		if tty {
			fmt.Fprint(w, "\r\033[K"+truncate(line, 110))
		} else {
			fmt.Fprintln(w, line)
		}
	}
}

func progressLine(s library.Status) string {
	switch s.State {
	case "scanning":
		return fmt.Sprintf("scanning: %d/%d files checked, %d read  %s", s.FilesSeen, s.FilesTotal, s.FilesRead, s.Current)
	case "analysing":
		return fmt.Sprintf("measuring loudness: %d decoded, %d to go  %s", s.Decoded, s.AnalysisPending, s.Current)
	}
	return s.State
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func printSummary(w io.Writer, s library.Status, index string, took time.Duration) {
	fmt.Fprintf(w, "%d tracks in %d albums, %d measured; %d files read, %d removed, %d decoded (%s)\n",
		s.Tracks, s.Albums, s.Measured, s.FilesRead, s.FilesRemoved, s.Decoded, took.Round(100*time.Millisecond))
	if s.Failed > 0 {
		fmt.Fprintf(w, "%d problem(s):\n", s.Failed)
		for _, f := range s.Failures {
			fmt.Fprintf(w, "  %s: %s: %s\n", f.Path, f.Stage, strings.ReplaceAll(f.Reason, "\n", " "))
		}
		if len(s.Failures) < s.Failed {
			fmt.Fprintf(w, "  ... and %d more (GET /v1/library/status)\n", s.Failed-len(s.Failures))
		}
	}
	fmt.Fprintf(w, "index: %s\n", index)
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
