package receiver

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"

	"github.com/roomcast/roomcast/playback"
	"github.com/roomcast/roomcast/protocol"
)

// player is what a device plays: the queue, the state machine and the
// engine that makes the sound. It is owned by the receiver's goroutine.
type player struct {
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

func newPlayer(id string, volume int, e playback.Engine, log *slog.Logger) *player {
	e.SetVolume(volume)
	return &player{deviceID: id, log: log, engine: e, status: protocol.StatusIdle, volume: volume,
		meta: map[string]protocol.Track{}, prefRepeat: protocol.RepeatOff}
}

// to moves the state machine; impossible transitions are errors.
func (p *player) to(ev event) error {
	next, err := step(p.status, ev)
	if err != nil {
		return err
	}
	p.status = next
	return nil
}

func (p *player) track(uri string) protocol.Track {
	if t, ok := p.meta[uri]; ok {
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

func (p *player) albumContext() bool {
	return p.q != nil && strings.HasPrefix(p.q.context, protocol.URIScheme+":album:")
}

// setNext tells the engine what to join gaplessly after the current track.
func (p *player) setNext() {
	if p.q == nil {
		p.engine.SetNext(nil, false)
		return
	}
	if uri, ok := p.q.peekNext(); ok {
		t := engineTrack(p.track(uri))
		p.engine.SetNext(&t, p.albumContext())
		return
	}
	p.engine.SetNext(nil, false)
}

// load starts the queue's current track at posMS.
func (p *player) load(posMS int64, play bool) error {
	if err := p.to(evLoad); err != nil {
		return err
	}
	p.errMsg = ""
	if err := p.engine.Load(engineTrack(p.track(p.q.current())), p.albumContext(), posMS, play); err != nil {
		p.fail(p.q.current(), err)
		return nil
	}
	if !play {
		_ = p.to(evPause)
	}
	if err := p.to(evLoaded); err != nil {
		return err
	}
	p.setNext()
	return nil
}

// list returns the URIs to play, recording metadata when the broker
// resolved the list.
func (p *player) list(tracks []protocol.Track, uris []string) ([]string, error) {
	if len(tracks) > 0 {
		out := make([]string, len(tracks))
		for i, t := range tracks {
			out[i] = t.URI
			p.meta[t.URI] = t
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
func (p *player) apply(c *protocol.Command) error {
	switch c.Name {
	case protocol.CmdPlay:
		uris, err := p.list(c.Tracks, c.URIs)
		if err != nil {
			return err
		}
		q, err := newQueue(c.ContextURI, uris, c.Offset)
		if err != nil {
			return err
		}
		q.repeat = p.prefRepeat
		if p.q != nil {
			q.repeat = p.q.repeat
			p.prefShuffle = p.q.shuffle
		}
		q.setShuffle(p.prefShuffle, rand.Int64())
		var pos int64
		if c.PositionMS != nil {
			pos = *c.PositionMS
		}
		if _, err := step(p.status, evLoad); err != nil {
			return err
		}
		p.q = q
		return p.load(pos, true)
	case protocol.CmdPause:
		if err := p.to(evPause); err != nil {
			return err
		}
		return p.engine.Pause()
	case protocol.CmdResume:
		if p.status == protocol.StatusEnded && p.q != nil {
			// Play the list again from its start.
			p.q.index = p.q.order()[0]
			p.q.playingUser = ""
			return p.load(0, true)
		}
		if err := p.to(evResume); err != nil {
			return err
		}
		return p.engine.Resume()
	case protocol.CmdSeek:
		if err := p.to(evSeek); err != nil {
			return err
		}
		pos := *c.PositionMS
		if d := p.track(p.q.current()).DurationMS; d > 0 && pos > d {
			pos = d
		}
		return p.engine.SeekTo(pos)
	case protocol.CmdSkipNext:
		if p.q == nil {
			return errors.New("nothing to skip")
		}
		playing := p.status == protocol.StatusPlaying || p.status == protocol.StatusLoading
		if !p.q.advance(true) {
			if err := p.to(evEnd); err != nil {
				return err
			}
			return p.engine.Pause()
		}
		if p.status == protocol.StatusError || p.status == protocol.StatusEnded {
			playing = true
		}
		return p.load(0, playing)
	case protocol.CmdSkipPrev:
		if p.q == nil {
			return errors.New("nothing to go back to")
		}
		if _, pos := p.engine.Position(); pos > 3000 && (p.status == protocol.StatusPlaying || p.status == protocol.StatusPaused) {
			if err := p.to(evSeek); err != nil {
				return err
			}
			return p.engine.SeekTo(0)
		}
		playing := p.status != protocol.StatusPaused
		p.q.back()
		return p.load(0, playing)
	case protocol.CmdVolume:
		p.volume = *c.Volume
		p.engine.SetVolume(p.volume)
	case protocol.CmdShuffle:
		if p.q == nil {
			p.prefShuffle = *c.Shuffle
			return nil
		}
		p.q.setShuffle(*c.Shuffle, rand.Int64())
		p.setNext()
	case protocol.CmdRepeat:
		if p.q == nil {
			p.prefRepeat = c.Repeat
			return nil
		}
		p.q.repeat = c.Repeat
		p.setNext()
	case protocol.CmdAddToQueue:
		if p.q == nil {
			return errors.New("nothing is playing: use play")
		}
		p.q.add(c.URI)
		p.setNext()
	default:
		return fmt.Errorf("unsupported command %q", c.Name)
	}
	return nil
}

// adopt continues a transferred state, with the broker-resolved tracks.
func (p *player) adopt(st *protocol.PlayerState, tracks []protocol.Track, play bool) error {
	uris, err := p.list(tracks, st.URIs)
	if err != nil && st.Track != nil {
		uris, err = []string{st.Track.URI}, nil
		st.Index = 0
		p.meta[st.Track.URI] = *st.Track
	}
	if err != nil {
		// Nothing to play: an empty handover.
		p.q = nil
		if p.status != protocol.StatusIdle {
			_ = p.engine.Pause()
			_ = p.to(evStop)
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
		p.meta[st.Track.URI] = *st.Track
	}
	p.q = q
	return p.load(st.PositionMS, play)
}

// stop silences everything (another device took over).
func (p *player) stop() {
	if p.status == protocol.StatusPlaying || p.status == protocol.StatusLoading {
		_ = p.engine.Pause()
		_ = p.to(evPause)
	}
}

func (p *player) fail(uri string, err error) {
	p.log.Warn("track failed", "track", uri, "err", err)
	p.errMsg = fmt.Sprintf("%s: %v", uri, err)
	if p.to(evFail) != nil {
		return
	}
	// Skip to the next track (error --load--> loading); the list ends
	// if there is none.
	if p.q != nil && p.q.advance(true) {
		if e := p.load(0, true); e != nil {
			p.log.Warn("skip after failure", "err", e)
		}
		return
	}
	_ = p.to(evEnd)
}

// onEngine applies an engine report. It returns whether the state changed.
func (p *player) onEngine(ev playback.Event) bool {
	switch ev.Kind {
	case playback.TrackStarted:
		if p.q == nil {
			return false
		}
		if p.q.advance(false) && p.q.current() != ev.URI {
			p.log.Warn("engine and queue disagree", "engine", ev.URI, "queue", p.q.current())
		}
		_ = p.to(evAdvance)
		p.setNext()
	case playback.Ended:
		if p.to(evEnd) != nil {
			return false
		}
	case playback.TrackFailed:
		p.fail(ev.URI, ev.Err)
	}
	return true
}

// state is the player as a protocol state (without broker fields).
func (p *player) state() protocol.PlayerState {
	st := protocol.PlayerState{DeviceID: p.deviceID, Status: p.status, Volume: p.volume, Error: p.errMsg,
		Repeat: p.prefRepeat, Shuffle: p.prefShuffle}
	if p.q == nil {
		return st
	}
	p.q.fill(&st)
	t := p.track(p.q.current())
	st.Track = &t
	if uri, pos := p.engine.Position(); uri == t.URI {
		st.PositionMS = pos
	}
	return st
}
