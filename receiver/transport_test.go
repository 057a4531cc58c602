package receiver

import (
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/roomcast/roomcast/playback"
	"github.com/roomcast/roomcast/protocol"
)

// failingEngine is the clock engine, except that loading bad fails.
type failingEngine struct {
	*clockEngine
	bad string
}

func (f failingEngine) Load(t playback.Track, album bool, pos int64, play bool) error {
	if t.URI == f.bad {
		return errors.New("decode: corrupt file")
	}
	return f.clockEngine.Load(t, album, pos, play)
}

func albumTracks(ms int64, uris ...string) []protocol.Track {
	var ts []protocol.Track
	for _, u := range uris {
		ts = append(ts, protocol.Track{URI: u, DurationMS: ms})
	}
	return ts
}

// pump feeds engine events to the transport until cond holds.
func pump(t *testing.T, p *transport, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.After(timeout)
	for !cond() {
		select {
		case ev := <-p.engine.Events():
			p.onEngine(ev)
		case <-deadline:
			t.Fatalf("timed out; state %+v", p.state())
		}
	}
}

func ms(v int64) *int64 { return &v }

func TestTransportPlaysListToTheEnd(t *testing.T) {
	p := newTransport("d", 50, newClockEngine(), slog.New(slog.DiscardHandler))
	err := p.apply(&protocol.Command{Name: protocol.CmdPlay, ContextURI: "roomcast:album:x",
		Tracks: albumTracks(150, "roomcast:track:1", "roomcast:track:2", "roomcast:track:3")})
	if err != nil {
		t.Fatal(err)
	}
	if st := p.state(); st.Status != protocol.StatusPlaying || st.Track.URI != "roomcast:track:1" {
		t.Fatalf("after play: %+v", st)
	}
	var seen []string
	pump(t, p, 3*time.Second, func() bool {
		if p.q != nil && (len(seen) == 0 || seen[len(seen)-1] != p.q.current()) {
			seen = append(seen, p.q.current())
		}
		return p.status == protocol.StatusEnded
	})
	if len(seen) != 3 || seen[2] != "roomcast:track:3" {
		t.Fatalf("played %v", seen)
	}
	// Resume after the end plays the list again from the start.
	if err := p.apply(&protocol.Command{Name: protocol.CmdResume}); err != nil {
		t.Fatal(err)
	}
	if st := p.state(); st.Status != protocol.StatusPlaying || st.Track.URI != "roomcast:track:1" {
		t.Fatalf("resume after end: %+v", st)
	}
}

func TestTransportCommands(t *testing.T) {
	p := newTransport("d", 50, newClockEngine(), slog.New(slog.DiscardHandler))
	// Nothing loaded: commands that need a track are refused, and the
	// state machine says why.
	for _, c := range []*protocol.Command{{Name: protocol.CmdPause}, {Name: protocol.CmdResume}, {Name: protocol.CmdSeek, PositionMS: ms(1)}, {Name: protocol.CmdSkipNext}} {
		if err := p.apply(c); err == nil {
			t.Errorf("%s while idle accepted", c.Name)
		}
	}
	if err := p.apply(&protocol.Command{Name: protocol.CmdPlay, URIs: []string{"roomcast:track:a", "roomcast:track:b"}}); err != nil {
		t.Fatal(err)
	}
	p.apply(&protocol.Command{Name: protocol.CmdSeek, PositionMS: ms(5000)})
	p.apply(&protocol.Command{Name: protocol.CmdSkipNext})
	if p.q.current() != "roomcast:track:b" {
		t.Fatalf("next: %s", p.q.current())
	}
	// prev past 3 s restarts the track; within 3 s goes back.
	p.apply(&protocol.Command{Name: protocol.CmdSeek, PositionMS: ms(4000)})
	p.apply(&protocol.Command{Name: protocol.CmdSkipPrev})
	if _, pos := p.engine.Position(); p.q.current() != "roomcast:track:b" || pos > 100 {
		t.Fatalf("prev after 4 s: %s at %d", p.q.current(), pos)
	}
	p.apply(&protocol.Command{Name: protocol.CmdSkipPrev})
	if p.q.current() != "roomcast:track:a" {
		t.Fatalf("prev within 3 s: %s", p.q.current())
	}
	if err := p.apply(&protocol.Command{Name: protocol.CmdPause}); err != nil || p.status != protocol.StatusPaused {
		t.Fatalf("pause: %v %s", err, p.status)
	}
	_, before := p.engine.Position()
	time.Sleep(50 * time.Millisecond)
	if _, after := p.engine.Position(); after != before {
		t.Fatal("position moved while paused")
	}
	// skip_next past the last track while paused ends the list.
	p.apply(&protocol.Command{Name: protocol.CmdSkipNext})
	if err := p.apply(&protocol.Command{Name: protocol.CmdSkipNext}); err != nil || p.status != protocol.StatusEnded {
		t.Fatalf("next past the end: %v %s", err, p.status)
	}
	// A context without a resolved list is refused with a reason.
	if err := p.apply(&protocol.Command{Name: protocol.CmdPlay, ContextURI: "roomcast:album:z"}); err == nil {
		t.Fatal("unresolved context accepted")
	}
}

func TestTransportSkipsFailedTrack(t *testing.T) {
	e := failingEngine{newClockEngine(), "roomcast:track:bad"}
	p := newTransport("d", 50, e, slog.New(slog.DiscardHandler))
	err := p.apply(&protocol.Command{Name: protocol.CmdPlay,
		Tracks: albumTracks(100_000, "roomcast:track:bad", "roomcast:track:good")})
	if err != nil {
		t.Fatal(err)
	}
	st := p.state()
	if st.Status != protocol.StatusPlaying || st.Track.URI != "roomcast:track:good" || st.Error != "" {
		t.Fatalf("after a bad first track: %+v", st)
	}
	// A failing last track ends the list with the error reported.
	p2 := newTransport("d", 50, e, slog.New(slog.DiscardHandler))
	p2.apply(&protocol.Command{Name: protocol.CmdPlay, Tracks: albumTracks(100_000, "roomcast:track:bad")})
	if st := p2.state(); st.Status != protocol.StatusEnded || st.Error == "" {
		t.Fatalf("only a bad track: %+v", st)
	}
}

func TestTransferKeepsQueueShuffleAndPosition(t *testing.T) {
	tracks := albumTracks(300_000, "roomcast:track:1", "roomcast:track:2", "roomcast:track:3", "roomcast:track:4", "roomcast:track:5")
	a := newTransport("a", 50, newClockEngine(), slog.New(slog.DiscardHandler))
	a.apply(&protocol.Command{Name: protocol.CmdPlay, ContextURI: "roomcast:album:x", Tracks: tracks, Offset: 1})
	a.apply(&protocol.Command{Name: protocol.CmdShuffle, Shuffle: func() *bool { b := true; return &b }()})
	a.apply(&protocol.Command{Name: protocol.CmdRepeat, Repeat: protocol.RepeatContext})
	a.apply(&protocol.Command{Name: protocol.CmdSkipNext})
	a.apply(&protocol.Command{Name: protocol.CmdSeek, PositionMS: ms(61_000)})
	a.apply(&protocol.Command{Name: protocol.CmdPause})
	st := a.state()

	b := newTransport("b", 50, newClockEngine(), slog.New(slog.DiscardHandler))
	st.Status = protocol.StatusPlaying
	if err := b.adopt(&st, tracks, true); err != nil {
		t.Fatal(err)
	}
	got := b.state()
	if got.Track.URI != st.Track.URI || got.PositionMS < 61_000 || got.PositionMS > 61_200 || !got.Shuffle || got.Repeat != protocol.RepeatContext {
		t.Fatalf("after transfer: %+v (was %+v)", got, st)
	}
	// Both continue with the same order.
	for i := 0; i < 6; i++ {
		a.q.advance(false)
		b.q.advance(false)
		if a.q.current() != b.q.current() {
			t.Fatalf("orders diverge at step %d: %s vs %s", i, a.q.current(), b.q.current())
		}
	}
}
