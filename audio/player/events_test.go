package player

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/roomcast/roomcast/audio/dsp"
	"github.com/roomcast/roomcast/audio/output"
	"github.com/roomcast/roomcast/playback"
)

// seenEvent is an event together with what Position reported at the
// moment the pipeline goroutine emitted it.
type seenEvent struct {
	kind, uri string
	posURI    string
	posMS     int64
}

func (s seenEvent) String() string {
	return fmt.Sprintf("%s:%s@%s/%d", s.kind, short(s.uri), short(s.posURI), s.posMS)
}

func short(uri string) string { return uri[strings.LastIndexByte(uri, ':')+1:] }

// atEmit is a slog.Handler that catches the "engine event dropped" line:
// once Events is full, every event is logged by the pipeline goroutine
// synchronously, at the very moment it is emitted, so Position called
// from the handler shows exactly the state a consumer of that event may
// find (a later call could only show a later state).
type atEmit struct {
	p    atomic.Pointer[Player]
	seen chan seenEvent
}

func (h *atEmit) Enabled(context.Context, slog.Level) bool { return true }
func (h *atEmit) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *atEmit) WithGroup(string) slog.Handler            { return h }

func (h *atEmit) Handle(_ context.Context, r slog.Record) error {
	p := h.p.Load()
	if p == nil || !strings.HasPrefix(r.Message, "engine event dropped") {
		return nil
	}
	var s seenEvent
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "kind":
			s.kind = a.Value.String()
		case "track":
			s.uri = a.Value.String()
		}
		return true
	})
	s.posURI, s.posMS = p.Position()
	select {
	case h.seen <- s:
	default:
	}
	return nil
}

// fillEvents fills Events with failed loads, so that from then on every
// event is dropped and logged while the pipeline goroutine emits it.
func fillEvents(t *testing.T, p *Player) {
	t.Helper()
	missing := playback.Track{URI: "roomcast:track:missing"}
	deadline := time.Now().Add(10 * time.Second)
	for n := len(p.Events()); n < cap(p.Events()); n = len(p.Events()) {
		if err := p.Load(missing, false, 0, true); err != nil {
			t.Fatal(err)
		}
		for len(p.Events()) == n {
			if time.Now().After(deadline) {
				t.Fatalf("failed loads filled only %d of %d events", n, cap(p.Events()))
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// TestStateStoredBeforeEvent checks that each event is emitted only after
// the state it implies is stored: at the moment of TrackStarted and
// TrackFailed, Position reports the event's track (a failed next track at
// 0 ms, a failed Load at the requested position); at Ended, the last
// track at its end.
func TestStateStoredBeforeEvent(t *testing.T) {
	t.Parallel()
	const rate = 44100
	dir := t.TempDir()
	src := newFileSource()
	sig := chord(2*rate, rate, 0.3)
	a, b := filepath.Join(dir, "a.ogg"), filepath.Join(dir, "b.ogg")
	encodeOgg(t, a, sig[:2*rate], rate, 2, "2")
	encodeOgg(t, b, sig[2*rate:], rate, 2, "2")
	ta, tb := src.add("a", a), src.add("b", b)
	missing := playback.Track{URI: "roomcast:track:missing"} // the source does not have it

	h := &atEmit{seen: make(chan seenEvent, 16)}
	p, _ := newWAVPlayer(t, src, Options{Logger: slog.New(h), Normalize: dsp.GainPolicy{Mode: dsp.ModeOff}})
	fillEvents(t, p)
	h.p.Store(p)

	next := func(want string) seenEvent {
		t.Helper()
		select {
		case s := <-h.seen:
			if got := s.kind + ":" + short(s.uri); got != want {
				t.Fatalf("event %v, want %s", s, want)
			}
			return s
		case <-time.After(15 * time.Second):
			t.Fatalf("no %s event", want)
		}
		return seenEvent{}
	}
	check := func(s seenEvent, uri string, posMS int64) {
		t.Helper()
		if s.posURI != uri || s.posMS != posMS {
			t.Errorf("at %s Position reported %s at %d ms, want %s at %d ms", s, short(s.posURI), s.posMS, short(uri), posMS)
		}
	}

	// A Load that fails: the requested track at the requested position.
	if err := p.Load(missing, false, 1234, true); err != nil {
		t.Fatal(err)
	}
	check(next("failed:missing"), missing.URI, 1234)

	// a, then b gaplessly, then a next track that cannot be opened.
	if err := p.Load(ta, false, 0, true); err != nil {
		t.Fatal(err)
	}
	p.SetNext(&tb, false)
	s := next("started:b")
	if s.posURI != tb.URI || s.posMS < 0 || s.posMS > 500 { // at most the 200 ms ring past the join
		t.Errorf("at %s Position reported %s at %d ms, want b near its start", s, short(s.posURI), s.posMS)
	}
	p.SetNext(&missing, false)
	check(next("started:missing"), missing.URI, 0)
	check(next("failed:missing"), missing.URI, 0)

	// b alone to the end of the list.
	if err := p.Load(tb, false, 0, true); err != nil {
		t.Fatal(err)
	}
	p.SetNext(nil, false)
	check(next("ended:b"), tb.URI, 1000)
}

// TestReopenFailureReported: a next track with another channel count is
// joined by reopening the output; when that fails, it is reported like
// any next track that cannot be played (TrackStarted, then TrackFailed, so
// the receiver skips it), with the failed track stored in Position first.
func TestReopenFailureReported(t *testing.T) {
	t.Parallel()
	const rate = 44100
	dir := t.TempDir()
	src := newFileSource()
	sig := chord(rate, rate, 0.3)
	mono := make([]float32, rate)
	for i := range mono {
		mono[i] = sig[2*i]
	}
	a, m := filepath.Join(dir, "a.ogg"), filepath.Join(dir, "mono.ogg")
	encodeOgg(t, a, sig, rate, 2, "2")
	encodeOgg(t, m, mono, rate, 1, "2")
	ta, tm := src.add("a", a), src.add("mono", m)

	h := &atEmit{seen: make(chan seenEvent, 16)}
	wav := filepath.Join(dir, "out.wav")
	p, err := New(Options{Source: src, Logger: slog.New(h), Normalize: dsp.GainPolicy{Mode: dsp.ModeOff},
		OpenOutput: func(f output.Format) (output.Output, error) {
			if f.Channels != 2 {
				return nil, errors.New("this device plays stereo only")
			}
			return output.Open(output.Spec{Kind: output.KindWAV, Path: wav},
				output.Options{SampleRate: f.SampleRate, Channels: f.Channels, RingFrames: f.SampleRate / 5}, nil)
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	fillEvents(t, p)
	h.p.Store(p)

	if err := p.Load(ta, false, 0, true); err != nil {
		t.Fatal(err)
	}
	p.SetNext(&tm, false)
	for _, want := range []string{"started:mono", "failed:mono"} {
		select {
		case s := <-h.seen:
			if got := s.kind + ":" + short(s.uri); got != want {
				t.Fatalf("event %v, want %s", s, want)
			}
			if s.posURI != tm.URI || s.posMS != 0 {
				t.Errorf("at %s Position reported %s at %d ms, want mono at 0 ms", s, short(s.posURI), s.posMS)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("no %s event", want)
		}
	}
}
