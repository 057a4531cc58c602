package player

import (
	"context"
	"time"

	"github.com/roomcast/roomcast/playback"
)

// openers starts opener goroutines (openTrack: fetch, headers, seek,
// decode ahead) and tells their results apart.
//
// Invariants: every open gets a new generation, which its result
// carries. cur is the open of the loaded track, next the prefetch of the
// next one; each is pending while its cancel is set, and take accepts
// only the result of a pending open (once). Any other result was
// superseded and is closed by the pipeline. Owned by the pipeline
// goroutine; the opener goroutines only send on results (or close their
// track once the Player is closed).
type openers struct {
	p       *Player
	results chan *track
	gen     uint64 // generations handed out
	cur     openSlot
	next    openSlot
}

// openSlot is one awaited open.
type openSlot struct {
	gen    uint64
	cancel context.CancelFunc // set while the open is pending
}

func (s *openSlot) pending() bool { return s.cancel != nil }

// stop cancels a pending open; its result, if it still comes, is stale.
func (s *openSlot) stop() {
	if s.cancel != nil {
		s.cancel()
		s.cancel = nil
	}
}

// take reports whether tr is the result of this pending open, which it
// then no longer is.
func (s *openSlot) take(tr *track) bool {
	if tr.gen != s.gen || s.cancel == nil {
		return false
	}
	s.cancel = nil
	return true
}

// openCur opens the loaded track at posMS (any pending open of it is
// superseded).
func (o *openers) openCur(t playback.Track, album bool, posMS int64) {
	o.cur.stop()
	o.cur = o.start(t, album, posMS)
}

// openNext prefetches the next track.
func (o *openers) openNext(t playback.Track, album bool) {
	o.next = o.start(t, album, 0)
	o.p.log.Debug("prefetch", "track", t.URI)
}

// start runs openTrack on an opener goroutine; the slot's cancel stops it
// (a superseded open). The result reaches the pipeline on results.
func (o *openers) start(t playback.Track, album bool, posMS int64) openSlot {
	p := o.p
	o.gen++
	gen := o.gen
	ctx, cancel := context.WithCancel(p.ctx)
	p.openers.Add(1)
	go func() {
		defer p.openers.Done()
		defer cancel()
		tr := openTrack(ctx, p.opts.Source, t, album, *p.ctl.norm.Load(), posMS, aheadFrames)
		tr.gen = gen
		select {
		case o.results <- tr:
		case <-p.quit:
			tr.close()
		}
	}()
	return openSlot{gen: gen, cancel: cancel}
}

// prefetch opens the next track once the current one has less than
// Prefetch left to produce (at once when its length is unknown).
func (pl *pipe) prefetch() {
	q := &pl.q
	if q.nextReq == nil || q.next != nil || pl.opener.next.pending() || q.cur == nil || pl.src != srcPlaying {
		return
	}
	rem := q.cur.remaining()
	ahead := pl.p.opts.Prefetch + time.Duration(pl.p.ctl.xfade.Load()) // a crossfade joins earlier
	if rem < 0 || rem <= int64(ahead.Seconds()*float64(q.cur.rate)) {
		pl.opener.openNext(*q.nextReq, q.nextAlb)
	}
}
