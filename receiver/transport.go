package receiver

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/roomcast/roomcast/playback"
	"github.com/roomcast/roomcast/protocol"
)

// transport decides what the device plays and drives the engine that
// plays it: it owns the queue (what comes next), the state machine
// (fsm.go: idle, loading, playing, paused, ended, error) and the
// playback.Engine, and turns commands, transfers and the engine's reports
// into engine calls. Nothing else calls the engine.
//
// It is a plain value owned by the receiver's goroutine (not safe for
// concurrent use); the engine's own goroutines reach it only through
// Events, which the receiver's loop reads and hands to onEngine.
type transport struct {
	deviceID string
	log      *slog.Logger
	engine   playback.Engine
	status   protocol.Status
	q        *queue                    // nil until something is loaded
	meta     map[string]protocol.Track // metadata and loudness by URI
	volume   int
	errMsg   string
	// Shuffle and repeat chosen while nothing was loaded; they apply to
	// the next list.
	prefShuffle bool
	prefRepeat  protocol.Repeat
}

func newTransport(id string, volume int, e playback.Engine, log *slog.Logger) *transport {
	e.SetVolume(volume)
	return &transport{deviceID: id, log: log, engine: e, status: protocol.StatusIdle, volume: volume,
		meta: map[string]protocol.Track{}, prefRepeat: protocol.RepeatOff}
}

// to moves the state machine; impossible transitions are errors.
func (tr *transport) to(ev event) error {
	next, err := step(tr.status, ev)
	if err != nil {
		return err
	}
	tr.status = next
	return nil
}

func (tr *transport) track(uri string) protocol.Track {
	if t, ok := tr.meta[uri]; ok {
		return t
	}
	return protocol.Track{URI: uri}
}

// engineTrack is what the engine needs of a track.
func engineTrack(t protocol.Track) playback.Track {
	return playback.Track{URI: t.URI, DurationMS: t.DurationMS,
		Track: playback.Loudness{LUFS: t.LoudnessLUFS, TruePeakDB: t.TruePeakDBTP},
		Album: playback.Loudness{LUFS: t.AlbumLoudnessLUFS, TruePeakDB: t.AlbumTruePeakDBTP}}
}

func (tr *transport) albumContext() bool {
	return tr.q != nil && strings.HasPrefix(tr.q.context, protocol.URIScheme+":album:")
}

// setNext tells the engine what to join gaplessly after the current track.
func (tr *transport) setNext() {
	if tr.q == nil {
		tr.engine.SetNext(nil, false)
		return
	}
	if uri, ok := tr.q.peekNext(); ok {
		t := engineTrack(tr.track(uri))
		tr.engine.SetNext(&t, tr.albumContext())
		return
	}
	tr.engine.SetNext(nil, false)
}

// load starts the queue's current track at posMS.
func (tr *transport) load(posMS int64, play bool) error {
	if err := tr.to(evLoad); err != nil {
		return err
	}
	tr.errMsg = ""
	if err := tr.engine.Load(engineTrack(tr.track(tr.q.current())), tr.albumContext(), posMS, play); err != nil {
		tr.fail(tr.q.current(), err)
		return nil
	}
	if !play {
		_ = tr.to(evPause)
	}
	if err := tr.to(evLoaded); err != nil {
		return err
	}
	tr.setNext()
	return nil
}

// list returns the URIs to play, recording metadata when the broker
// resolved the list.
func (tr *transport) list(tracks []protocol.Track, uris []string) ([]string, error) {
	if len(tracks) > 0 {
		out := make([]string, len(tracks))
		for i, t := range tracks {
			out[i] = t.URI
			tr.meta[t.URI] = t
		}
		return out, nil
	}
	if len(uris) > 0 {
		return uris, nil
	}
	return nil, errors.New("the broker sent no track list (a context needs a broker with a library)")
}

// apply executes a command; an error means it was refused (the state did
// not change).
func (tr *transport) apply(c *protocol.Command) error {
	switch c.Name {
	case protocol.CmdPlay:
		uris, err := tr.list(c.Tracks, c.URIs)
		if err != nil {
			return err
		}
		q, err := newQueue(c.ContextURI, uris, c.Offset)
		if err != nil {
			return err
		}
		q.repeat = tr.prefRepeat
		if tr.q != nil {
			q.repeat = tr.q.repeat
			tr.prefShuffle = tr.q.shuffle
		}
		q.setShuffle(tr.prefShuffle, rand.Int64())
		var pos int64
		if c.PositionMS != nil {
			pos = *c.PositionMS
		}
		if _, err := step(tr.status, evLoad); err != nil {
			return err
		}
		tr.q = q
		return tr.load(pos, true)
	case protocol.CmdPause:
		if err := tr.to(evPause); err != nil {
			return err
		}
		return tr.engine.Pause()
	case protocol.CmdResume:
		if tr.status == protocol.StatusEnded && tr.q != nil {
			// Play the list again from its start.
			tr.q.index = tr.q.order()[0]
			tr.q.playingUser = ""
			return tr.load(0, true)
		}
		if err := tr.to(evResume); err != nil {
			return err
		}
		return tr.engine.Resume()
	case protocol.CmdSeek:
		if err := tr.to(evSeek); err != nil {
			return err
		}
		pos := *c.PositionMS
		if d := tr.track(tr.q.current()).DurationMS; d > 0 && pos > d {
			pos = d
		}
		return tr.engine.SeekTo(pos)
	case protocol.CmdSkipNext:
		if tr.q == nil {
			return errors.New("nothing to skip")
		}
		playing := tr.status == protocol.StatusPlaying || tr.status == protocol.StatusLoading
		if !tr.q.advance(true) {
			if err := tr.to(evEnd); err != nil {
				return err
			}
			return tr.engine.Pause()
		}
		if tr.status == protocol.StatusError || tr.status == protocol.StatusEnded {
			playing = true
		}
		return tr.load(0, playing)
	case protocol.CmdSkipPrev:
		if tr.q == nil {
			return errors.New("nothing to go back to")
		}
		if _, pos := tr.engine.Position(); pos > 3000 && (tr.status == protocol.StatusPlaying || tr.status == protocol.StatusPaused) {
			if err := tr.to(evSeek); err != nil {
				return err
			}
			return tr.engine.SeekTo(0)
		}
		playing := tr.status != protocol.StatusPaused
		tr.q.back()
		return tr.load(0, playing)
	case protocol.CmdVolume:
		tr.volume = *c.Volume
		tr.engine.SetVolume(tr.volume)
	case protocol.CmdShuffle:
		if tr.q == nil {
			tr.prefShuffle = *c.Shuffle
			return nil
		}
		tr.q.setShuffle(*c.Shuffle, rand.Int64())
		tr.setNext()
	case protocol.CmdRepeat:
		if tr.q == nil {
			tr.prefRepeat = c.Repeat
			return nil
		}
		tr.q.repeat = c.Repeat
		tr.setNext()
	case protocol.CmdAddToQueue:
		if tr.q == nil {
			return errors.New("nothing is playing: use play")
		}
		tr.q.add(c.URI)
		tr.setNext()
	default:
		return fmt.Errorf("unsupported command %q", c.Name)
	}
	return nil
}

// adopt continues a transferred state, with the broker-resolved tracks.
func (tr *transport) adopt(st *protocol.PlayerState, tracks []protocol.Track, play bool) error {
	uris, err := tr.list(tracks, st.URIs)
	if err != nil && st.Track != nil {
		uris, err = []string{st.Track.URI}, nil
		st.Index = 0
		tr.meta[st.Track.URI] = *st.Track
	}
	if err != nil {
		// Nothing to play: an empty handover.
		tr.q = nil
		if tr.status != protocol.StatusIdle {
			_ = tr.engine.Pause()
			_ = tr.to(evStop)
		}
		return nil
	}
	q, err := restoreQueue(st, uris)
	if err != nil {
		return err
	}
	if st.Track != nil && q.current() != st.Track.URI {
		// A user-queued track was playing: continue with it.
		q.playingUser = st.Track.URI
		tr.meta[st.Track.URI] = *st.Track
	}
	tr.q = q
	return tr.load(st.PositionMS, play)
}

// stop silences everything (another device took over).
func (tr *transport) stop() {
	if tr.status == protocol.StatusPlaying || tr.status == protocol.StatusLoading {
		_ = tr.engine.Pause()
		_ = tr.to(evPause)
	}
}

func (tr *transport) fail(uri string, err error) {
	tr.log.Warn("track failed", "track", uri, "err", err)
	tr.errMsg = fmt.Sprintf("%s: %v", uri, err)
	if tr.to(evFail) != nil {
		return
	}
	// Skip to the next track (error --load--> loading); the list ends
	// if there is none.
	if tr.q != nil && tr.q.advance(true) {
		if e := tr.load(0, true); e != nil {
			tr.log.Warn("skip after failure", "err", e)
		}
		return
	}
	_ = tr.to(evEnd)
}

// onEngine applies an engine report. It returns whether the state changed.
func (tr *transport) onEngine(ev playback.Event) bool {
	switch ev.Kind {
	case playback.TrackStarted:
		if tr.q == nil {
			return false
		}
		if tr.q.advance(false) && tr.q.current() != ev.URI {
			tr.log.Warn("engine and queue disagree", "engine", ev.URI, "queue", tr.q.current())
		}
		_ = tr.to(evAdvance)
		tr.setNext()
	case playback.Ended:
		if tr.to(evEnd) != nil {
			return false
		}
	case playback.TrackFailed:
		tr.fail(ev.URI, ev.Err)
	}
	return true
}

// state is the transport as a protocol state (without broker fields).
func (tr *transport) state() protocol.PlayerState {
	st := protocol.PlayerState{DeviceID: tr.deviceID, Status: tr.status, Volume: tr.volume, Error: tr.errMsg,
		Repeat: tr.prefRepeat, Shuffle: tr.prefShuffle}
	if tr.q == nil {
		return st
	}
	tr.q.fill(&st)
	t := tr.track(tr.q.current())
	st.Track = &t
	if uri, pos := tr.engine.Position(); uri == t.URI {
		st.PositionMS = pos
	}
	return st
}

// events is the engine's report channel, for the owner's select loop.
func (tr *transport) events() <-chan playback.Event { return tr.engine.Events() }

// position is the track audible now and its position (from the engine).
func (tr *transport) position() (uri string, posMS int64) { return tr.engine.Position() }

// settle waits (at most limit) until a pause has been heard to its end;
// it reports whether it was.
func (tr *transport) settle(limit time.Duration) bool { return tr.engine.Settle(limit) }
