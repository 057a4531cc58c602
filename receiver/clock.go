package receiver

import (
	"fmt"
	"time"

	"github.com/roomcast/roomcast/protocol"
)

// clockPlayer is a silent player: queue, status and a position that
// advances with the wall clock while playing. It emits no audio; the
// audio pipeline takes its place.
type clockPlayer struct {
	deviceID string
	status   protocol.Status
	context  string
	uris     []string
	index    int
	track    string
	queue    []string
	shuffle  bool
	seed     int64
	repeat   protocol.Repeat
	volume   int
	// position is posBase plus, while playing, the time since since.
	posBase int64
	since   time.Time
}

func newClockPlayer(id string, volume int) *clockPlayer {
	return &clockPlayer{deviceID: id, status: protocol.StatusIdle, repeat: protocol.RepeatOff, volume: volume}
}

func (p *clockPlayer) position() int64 {
	if p.status == protocol.StatusPlaying {
		return p.posBase + time.Since(p.since).Milliseconds()
	}
	return p.posBase
}

func (p *clockPlayer) setPosition(ms int64) {
	p.posBase, p.since = ms, time.Now()
}

func (p *clockPlayer) pause() {
	if p.status == protocol.StatusPlaying {
		p.setPosition(p.position())
		p.status = protocol.StatusPaused
	}
}

func (p *clockPlayer) resume() error {
	switch p.status {
	case protocol.StatusPaused:
		p.since = time.Now()
		p.status = protocol.StatusPlaying
	case protocol.StatusPlaying:
	default:
		return fmt.Errorf("nothing to resume (status %s)", p.status)
	}
	return nil
}

func (p *clockPlayer) load(index int, pos int64) {
	p.index = index
	p.track = ""
	if index >= 0 && index < len(p.uris) {
		p.track = p.uris[index]
	}
	p.setPosition(pos)
	p.status = protocol.StatusPlaying
}

// apply executes a command.
func (p *clockPlayer) apply(c *protocol.Command) error {
	switch c.Name {
	case protocol.CmdPlay:
		p.context, p.uris = c.ContextURI, c.URIs
		var pos int64
		if c.PositionMS != nil {
			pos = *c.PositionMS
		}
		p.load(c.Offset, pos)
	case protocol.CmdPause:
		p.pause()
	case protocol.CmdResume:
		return p.resume()
	case protocol.CmdSeek:
		if p.status == protocol.StatusIdle {
			return fmt.Errorf("nothing to seek in")
		}
		p.setPosition(*c.PositionMS)
	case protocol.CmdSkipNext:
		if len(p.queue) > 0 {
			p.track, p.queue = p.queue[0], p.queue[1:]
			p.setPosition(0)
			p.status = protocol.StatusPlaying
			return nil
		}
		next := p.index + 1
		if len(p.uris) > 0 && next >= len(p.uris) {
			if p.repeat != protocol.RepeatContext {
				p.status, p.posBase = protocol.StatusEnded, 0
				return nil
			}
			next = 0
		}
		p.load(next, 0)
	case protocol.CmdSkipPrev:
		if p.position() > 3000 || p.index == 0 {
			p.setPosition(0)
			return nil
		}
		p.load(p.index-1, 0)
	case protocol.CmdVolume:
		p.volume = *c.Volume
	case protocol.CmdShuffle:
		p.shuffle = *c.Shuffle
		if p.shuffle && p.seed == 0 {
			p.seed = time.Now().UnixNano()
		}
	case protocol.CmdRepeat:
		p.repeat = c.Repeat
	case protocol.CmdAddToQueue:
		p.queue = append(p.queue, c.URI)
	default:
		return fmt.Errorf("unsupported command %q", c.Name)
	}
	return nil
}

// adopt takes over a transferred state.
func (p *clockPlayer) adopt(s *protocol.PlayerState) {
	p.context, p.uris, p.index, p.queue = s.ContextURI, s.URIs, s.Index, s.Queue
	p.shuffle, p.seed, p.repeat = s.Shuffle, s.ShuffleSeed, s.Repeat
	if p.repeat == "" {
		p.repeat = protocol.RepeatOff
	}
	p.track = ""
	if s.Track != nil {
		p.track = s.Track.URI
	}
	p.setPosition(s.PositionMS)
	p.status = s.Status
	if p.status == protocol.StatusLoading {
		p.status = protocol.StatusPlaying
	}
}

func (p *clockPlayer) state() protocol.PlayerState {
	st := protocol.PlayerState{
		DeviceID: p.deviceID, Status: p.status, ContextURI: p.context, URIs: p.uris, Index: p.index,
		PositionMS: p.position(), Shuffle: p.shuffle, ShuffleSeed: p.seed, Repeat: p.repeat,
		Queue: p.queue, Volume: p.volume,
	}
	if p.track != "" {
		st.Track = &protocol.Track{URI: p.track}
	}
	return st
}
