package player

import (
	"fmt"
	"math"
	"time"

	"github.com/roomcast/roomcast/audio/output"
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

// pipe is the pipeline goroutine's state. Every field is owned by that
// goroutine (run), except p (shared, see Player) and opened, a channel
// the opener goroutines send to.
//
// Invariants:
//   - Every frame that enters the limiter leaves it Latency() frames later
//     and is written to the output in order, so the output index of the
//     frame entering the limiter now is prodIndex()+lat; segments and
//     marks are expressed in output indices.
//   - cur is the track whose frames are being produced (device-rate
//     frames entering the gain stage); feed reads them (see feed).
//   - retired tracks were fully produced but may still be audible; each
//     is closed when the join after it is heard (markStarted.prev), or,
//     after a crossfade, when the end of the overlap is heard (markRetire),
//     or on Load and Close.
//   - a crossfade in progress is described in crossfade.
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
	pl.chain.follow(pl.p.volume.Load(), pl.p.curve.Load())
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
	if pl.xf.out != nil { // cur ended within the overlap (decoded short)
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

func (pl *pipe) fire(m mark) {
	p := pl.p
	switch m.kind {
	case markStarted:
		pl.q.retire(m.prev)
		p.emit(playback.Event{Kind: playback.TrackStarted, URI: m.tr.meta.URI})
	case markEnded:
		pl.dev.pause(pl.p.log)
		p.emit(playback.Event{Kind: playback.Ended, URI: pl.q.curURI()})
	case markFailed:
		pl.dev.pause(pl.p.log)
		pl.nextFailed(m.at, m.tr.meta.URI, m.tr.err)
	case markRetire:
		if m.tr != pl.q.cur && m.tr != pl.xf.out {
			pl.q.retire(m.tr)
		}
	case markReopen:
		pl.dev.pause(pl.p.log)
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

// doLoad replaces everything with a new current track, opened in the
// background. The output has been flushed.
func (pl *pipe) doLoad(c cmdLoad) {
	pl.dropTracks()
	pl.fade.clear()
	pl.dev.pend = nil
	pl.q.loadReq = c
	pl.play = c.play
	if !pl.play {
		pl.dev.pause(pl.p.log)
	}
	pl.src = srcLoading
	pl.opener.openCur(c.t, c.album, c.posMS)
	// Until it is open the position is the requested one.
	pl.sched.restart(segment{start: math.MaxInt64, uri: c.t.URI, src0: c.posMS, inRate: 1000, outRate: 1, frames: -1})
	pl.publish()
}

// dropTracks closes every track and cancels the openers.
func (pl *pipe) dropTracks() {
	pl.q.closeAll()
	pl.opener.next.stop()
	pl.sched.dropMarks()
	pl.feed.drop()
	pl.xf.end() // xfOut was in retired
	pl.xf.armed = false
}

// onOpened takes an opener's result.
func (pl *pipe) onOpened(tr *track) {
	switch {
	case pl.src == srcLoading && pl.opener.cur.take(tr):
		if tr.err != nil {
			pl.src = srcNone
			pl.dev.pause(pl.p.log)
			pl.p.emit(playback.Event{Kind: playback.TrackFailed, URI: tr.meta.URI, Err: tr.err})
			return
		}
		if err := pl.startLoaded(tr, false); err != nil {
			pl.p.emit(playback.Event{Kind: playback.TrackFailed, URI: tr.meta.URI, Err: err})
		}
	case pl.opener.next.take(tr):
		pl.q.next = tr
		if tr.err != nil {
			pl.p.log.Warn("next track cannot be played", "track", tr.meta.URI, "err", tr.err)
		}
	default:
		tr.close() // superseded
	}
}

// startLoaded starts an opened track from its start position after a
// Load (or a reopen at a boundary, which reports TrackStarted when heard).
// The output is reopened if the track's format differs from it; if that
// fails, tr is closed and the error returned for the caller to report.
func (pl *pipe) startLoaded(tr *track, started bool) error {
	if tr.rate != pl.dev.rate || tr.channels != pl.dev.ch || pl.dev.err != nil {
		pl.dev.pause(pl.p.log)
		_ = pl.dev.out.Close()
		if err := pl.openOutput(output.Format{SampleRate: tr.rate, Channels: tr.channels}); err != nil {
			tr.close()
			pl.src = srcNone
			return err
		}
	} else {
		pl.chain.lim.Reset()
		_ = pl.chain.newVolume(pl.dev.rate, pl.dev.ch, pl.p.volume.Load(), pl.p.curve.Load()) // same format as before: cannot fail
	}
	pl.q.cur = tr
	pl.feed.set(tr, pl.dev.rate, pl.dev.ch, pl.p.log)
	pl.xf.armed = false
	pl.chain.gain.Jump(tr.gain.GainDB)
	if tr.start > 0 {
		pl.chain.vol.Mute()
		pl.chain.vol.FadeIn(jumpFade)
	}
	pl.src = srcPlaying
	at := pl.dev.prodIndex() + pl.chain.lat
	pl.sched.restart(segment{start: at, uri: tr.meta.URI, src0: tr.start, inRate: int64(tr.rate), outRate: int64(pl.dev.rate), frames: tr.frames})
	pl.publish()
	if started {
		pl.sched.mark(mark{at: at, kind: markStarted, tr: tr})
	}
	pl.p.log.Debug("track loaded", "track", tr.meta.URI, "rate", tr.rate, "channels", tr.channels,
		"frames", tr.frames, "gain_db", tr.gain.GainDB, "gain_source", tr.gain.Source, "capped", tr.gain.Capped)
	return nil
}

// doSeek repositions within the audible track. The output has been
// flushed (or is paused).
func (pl *pipe) doSeek(posMS int64) {
	w := pl.dev.out.Written()
	tl := pl.p.tl.Load()
	if s, ok := tl.segmentAt(w - 1); ok && pl.q.cur != nil && s.uri != pl.q.cur.meta.URI && pl.q.backTo(s.uri) {
		// The join to cur was produced but not heard: seek in the track
		// still audible and join cur again later.
		pl.opener.next.stop()
	}
	if pl.xf.out != nil {
		// A seek ends a crossfade in progress: back in the outgoing track
		// (just picked as cur above) or within the incoming one.
		if pl.xf.out != pl.q.cur {
			pl.q.retire(pl.xf.out)
		}
		pl.xf.end()
	}
	pl.xf.armed = false // re-armed only if the new position is before the last crossfade length
	// Marks not yet in the device will never be heard: drop them.
	for _, nx := range pl.sched.dropMarksAfter(w) {
		if pl.q.next == nil {
			pl.q.next = nx // join it (or fail) again at the end
		} else {
			nx.close()
		}
	}
	tr := pl.q.cur
	f := posMS * int64(tr.rate) / 1000
	if err := tr.rewind(f); err != nil {
		pl.src = srcNone
		pl.dev.pause(pl.p.log)
		pl.p.emit(playback.Event{Kind: playback.TrackFailed, URI: tr.meta.URI, Err: err})
		return
	}
	tr.start = f
	if pl.q.next != nil && pl.feed.tr == pl.q.next {
		_ = pl.q.next.rewind(0)
	}
	pl.src = srcPlaying
	pl.chain.lim.Reset()
	pl.feed.set(tr, pl.dev.rate, pl.dev.ch, pl.p.log)
	pl.chain.gain.Jump(tr.gain.GainDB)
	pl.chain.vol.Mute()
	pl.chain.vol.FadeIn(jumpFade)
	pl.dev.pend = nil
	at := pl.dev.prodIndex() + pl.chain.lat
	pl.sched.dropSegmentsAfter(w)
	pl.addSegment(segment{start: at, uri: tr.meta.URI, src0: f, inRate: int64(tr.rate), outRate: int64(pl.dev.rate), frames: tr.frames})
}
