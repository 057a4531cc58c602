package player

import (
	"fmt"
	"math"
	"time"

	"github.com/roomcast/roomcast/playback"
)

// srcState is where the source side of the pipeline stands.
type srcState int

const (
	srcNone    srcState = iota // nothing loaded (or the loaded track failed)
	srcLoading                 // the current track is being opened
	srcPlaying                 // frames can be produced
	srcEnded                   // everything was written; end-of-list mark pending or fired
)

// pipe is the pipeline goroutine's state: it coordinates the stages,
// each a small type that owns its own invariants (device, chain, queue,
// openers, feed, fader, crossfade, schedule), and emits the events. Every
// field is owned by that goroutine (run), except p (shared, see Player).
//
// Invariants across the stages:
//   - Every frame that enters the limiter leaves it chain.lat frames later
//     and is written to the output in order, so the output index of the
//     frame entering the limiter now is dev.prodIndex()+chain.lat; the
//     schedule's segments and marks are expressed in output indices.
//   - src == srcPlaying: q.cur is set and feed reads its frames;
//     srcLoading: opener.cur is pending and q.cur is nil.
//   - An event is emitted only after the state it implies is stored
//     (timeline published, output paused at the end): whoever reacts to
//     it and calls Position sees that state.
type pipe struct {
	p *Player

	dev   device // the output, its format, the samples it has not taken
	chain chain  // gain → limiter → volume at the device format

	src  srcState
	play bool // the user wants sound

	q      queue   // current, next and retired tracks
	opener openers // opener goroutines and whose result is whose
	feed   feed    // cur's frames, resampled if its rate differs from the device's

	fade fader // pause, seek and load fades; Settle callers

	xf crossfade // the overlap in progress (Options.Crossfade, SetCrossfade)

	sched schedule // segments and marks in output indices, not yet heard
}

// run is the pipeline goroutine.
func (pl *pipe) run() {
	p := pl.p
	defer close(p.done)
	defer func() {
		if r := recover(); r != nil {
			// A bug, not bad media (decoding recovers by itself): stop
			// playback rather than crash the daemon.
			p.log.Error("player: pipeline stopped by a panic", "panic", r)
			pl.shutdown()
			p.emit(playback.Event{Kind: playback.TrackFailed, URI: pl.q.curURI(), Err: fmt.Errorf("player: internal error: %v", r)})
			go pl.refuse()
		}
	}()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	alive := time.NewTicker(time.Second)
	defer alive.Stop()
	for {
		if hb := p.opts.Heartbeat; hb != nil {
			hb.Beat()
		}
		pl.fill()
		var writable <-chan struct{}
		if pl.dev.waitOut {
			writable = pl.dev.out.Writable()
		}
		var tc <-chan time.Time
		if len(pl.sched.marks) > 0 || pl.fade.active || (pl.q.waitNext && !pl.q.nextKnown) {
			tc = tick.C
		}
		select {
		case c := <-p.cmds:
			if _, ok := c.msg.(cmdClose); ok {
				pl.shutdown()
				c.reply <- nil
				return
			}
			c.reply <- pl.handle(c.msg)
		case tr := <-pl.opener.results:
			pl.onOpened(tr)
		case <-writable:
		case <-tc:
			pl.onTick()
		case err := <-pl.dev.out.Errors():
			p.log.Warn("output error", "err", err)
		case <-alive.C:
		}
		pl.fade.release()
	}
}

// refuse answers commands with ErrClosed after a panic stopped the
// pipeline, until Close.
func (pl *pipe) refuse() {
	for {
		select {
		case c := <-pl.p.cmds:
			c.reply <- ErrClosed
		case <-pl.p.quit:
			return
		}
	}
}

// shutdown releases everything (Close).
func (pl *pipe) shutdown() {
	pl.dropTracks()
	pl.opener.cur.stop()
	if pl.dev.out != nil {
		_ = pl.dev.out.Close()
	}
}

// fill produces and writes blocks while the output takes them.
func (pl *pipe) fill() {
	pl.dev.waitOut, pl.q.waitNext = false, false
	for {
		if !pl.dev.writePending(pl.p.log) || !pl.produce() {
			break
		}
	}
	if pl.play && !pl.dev.started && pl.src == srcPlaying && pl.dev.err == nil {
		pl.dev.start(pl.p.log)
	}
	pl.prefetch()
	if pl.fade.active && pl.checkFade() {
		pl.fill() // the action after the fade may have work for us
	}
}

// produce makes one block into pend; false: nothing to do now.
func (pl *pipe) produce() bool {
	if pl.src != srcPlaying || (!pl.play && !pl.fade.active) {
		return false
	}
	frames := chunkFrames
	if pl.fade.active {
		left := pl.fade.end - pl.dev.prodIndex()
		if left <= 0 {
			return false
		}
		frames = int(min(int64(frames), left))
	}
	pl.chain.follow(pl.p.ctl.volume.Load(), pl.p.ctl.curve.Load())
	frames = pl.xfadeBlock(frames)
	buf := pl.dev.buf[:frames*pl.dev.ch]
	n, wait := pl.feed.read(buf, pl.dev.rate, pl.dev.ch, pl.joinable)
	if wait {
		pl.q.waitNext = true
		return false
	}
	if n == 0 {
		return pl.advance()
	}
	pl.chain.gain.Process(buf[:n])
	if pl.xf.active() {
		pl.xf.mix(buf[:n], pl.dev.ch, pl.p.log)
	}
	pl.chain.lim.Process(buf[:n])
	pl.chain.vol.Process(buf[:n])
	pl.dev.pend = buf[:n]
	if pl.xf.complete() {
		// The overlap is complete: the outgoing track is closed once its
		// last frame was heard (a seek before that may still go back to it).
		pl.sched.mark(mark{at: pl.dev.prodIndex() + pl.chain.lat, kind: markRetire, tr: pl.xf.out})
		pl.xf.end()
	}
	return true
}

// advance is called when cur has no more frames: join the next track,
// wait for it, or end the list.
func (pl *pipe) advance() bool {
	if pl.xf.active() { // cur ended within the overlap (decoded short)
		pl.q.retire(pl.xf.out)
		pl.xf.end()
	}
	if err := pl.q.cur.readErr; err != nil {
		pl.p.log.Warn("track ended early; playing what decoded and moving on", "track", pl.q.cur.meta.URI, "err", err)
		pl.q.cur.readErr = nil
	}
	if pl.feed.tr != pl.q.cur { // the resampler already carries the next track
		pl.startNext(pl.feed.tr)
		return true
	}
	nx, wait := pl.joinable()
	if wait {
		pl.q.waitNext = true
		return false
	}
	if nx != nil {
		pl.feed.set(nx, pl.dev.rate, pl.dev.ch, pl.p.log)
		pl.startNext(nx)
		return true
	}
	pl.finishList(pl.q.next)
	return len(pl.dev.pend) > 0
}

// startNext makes nx the current track: its first frame enters the gain
// stage now. The gain changes exactly there (no change when equal: album
// mode), and TrackStarted is due when that frame is heard.
func (pl *pipe) startNext(nx *track) {
	at := pl.dev.prodIndex() + pl.chain.lat
	prev := pl.q.advance(nx)
	pl.opener.next.stop()
	pl.feed.joined()
	pl.chain.gain.Set(nx.gain.GainDB)
	pl.addSegment(segment{start: at, uri: nx.meta.URI, src0: nx.start, inRate: int64(nx.rate), outRate: int64(pl.dev.rate), frames: nx.frames})
	pl.sched.mark(mark{at: at, kind: markStarted, tr: nx, prev: prev})
	pl.p.log.Debug("gapless join", "track", nx.meta.URI, "at", at, "gain_db", nx.gain.GainDB)
}

// finishList writes the limiter's tail after the last frame and schedules
// the end: Ended, or the report of a next track that failed, or a reopen
// for one that needs another channel count.
func (pl *pipe) finishList(nx *track) {
	n := pl.chain.flushTail(pl.dev.tail)
	clear(pl.dev.tail[n:])
	end := pl.dev.prodIndex() + int64(n/pl.dev.ch)
	// Silence after the tail keeps the device fed until the output is
	// paused, so the end is not counted as an underrun.
	pl.dev.pend = pl.dev.tail
	pl.src = srcEnded
	m := mark{at: end, kind: markEnded}
	if nx != nil && pl.q.nextReq != nil {
		m.tr = nx
		m.kind = markReopen
		if nx.err != nil {
			m.kind = markFailed
		}
		pl.q.next = nil // owned by the mark now
	}
	pl.sched.mark(m)
}

// onTick fires marks the output has played past and completes fades.
func (pl *pipe) onTick() {
	played := pl.dev.out.PlayedIndex()
	consumed := pl.dev.consumed()
	for {
		m, ok := pl.sched.due(played, consumed)
		if !ok {
			break
		}
		pl.fire(m)
	}
	if pl.fade.active {
		pl.checkFade()
	}
	if pl.q.waitNext && !pl.q.nextKnown && played >= pl.dev.prodIndex() {
		// Everything was heard and the receiver has not said what comes
		// next: take the list as ended.
		pl.q.nextKnown = true
	}
}

// fire carries out a mark that is due.
func (pl *pipe) fire(m mark) {
	p := pl.p
	switch m.kind {
	case markStarted:
		pl.q.retire(m.prev)
		p.emit(playback.Event{Kind: playback.TrackStarted, URI: m.tr.meta.URI})
	case markEnded:
		pl.dev.pause(p.log)
		p.emit(playback.Event{Kind: playback.Ended, URI: pl.q.curURI()})
	case markFailed:
		pl.dev.pause(p.log)
		pl.nextFailed(m.at, m.tr.meta.URI, m.tr.err)
	case markRetire:
		if m.tr != pl.q.cur && m.tr != pl.xf.out {
			pl.q.retire(m.tr)
		}
	case markReopen:
		pl.dev.pause(p.log)
		pl.q.retire(pl.q.cur)
		pl.q.cur = nil
		if err := pl.startLoaded(m.tr, true); err != nil {
			pl.nextFailed(m.at, m.tr.meta.URI, err)
		}
	}
}

// nextFailed reports a next track that cannot be played, at output index
// at where it would have started: TrackStarted, then TrackFailed (the
// receiver skips to the track after it), its position 0 from then on.
// The timeline is stored before the events are emitted, so whoever
// reacts to them finds the failed track in Position.
func (pl *pipe) nextFailed(at int64, uri string, err error) {
	pl.addSegment(segment{start: at, uri: uri, inRate: 1000, outRate: math.MaxInt64})
	pl.p.emit(playback.Event{Kind: playback.TrackStarted, URI: uri})
	pl.p.emit(playback.Event{Kind: playback.TrackFailed, URI: uri, Err: err})
}
