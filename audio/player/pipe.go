package player

import (
	"context"
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

// markKind is what happens when the output plays past a mark.
type markKind int

const (
	markStarted markKind = iota // a joined track became audible
	markEnded                   // the last frame of the list was heard
	markFailed                  // the next track could not be opened: report it
	markReopen                  // the next track needs another channel count: reopen
	markRetire                  // a crossfade's outgoing track was fully heard: close it
)

// mark is an action due when the output's played index reaches at.
type mark struct {
	at   int64
	kind markKind
	tr   *track // markStarted: the track that started; markFailed, markReopen: the next track; markRetire: the track to close
	prev *track // markStarted: the track before, closed once the join is heard (nil after a crossfade)
}

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
	p      *Player
	opened chan *track

	dev   device // the output, its format, the samples it has not taken
	chain chain  // gain → limiter → volume at the device format

	// Source side.
	src      srcState
	play     bool // the user wants sound
	gen      uint64
	cur      *track
	curGen   uint64
	curCtx   context.CancelFunc
	loadReq  cmdLoad
	retired  []*track
	next     *track
	nextReq  *playback.Track
	nextAlb  bool
	nextGen  uint64
	nextCtx  context.CancelFunc
	nextOpen bool // an opener is working on nextReq
	// nextKnown: SetNext was called since cur started; until then the
	// pipeline does not assume the list ends after cur.
	nextKnown bool
	waitNext  bool // production stalled on the next track (opening or unknown)

	feed feed // cur's frames, resampled if its rate differs from the device's

	fade fader // pause, seek and load fades; Settle callers

	xf crossfade // the overlap in progress (Options.Crossfade, SetCrossfade)

	segs  []segment
	marks []mark
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
			p.emit(playback.Event{Kind: playback.TrackFailed, URI: pl.curURI(), Err: fmt.Errorf("player: internal error: %v", r)})
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
		if len(pl.marks) > 0 || pl.fade.active || (pl.waitNext && !pl.nextKnown) {
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
		case tr := <-pl.opened:
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

func (pl *pipe) curURI() string {
	if pl.cur != nil {
		return pl.cur.meta.URI
	}
	return pl.loadReq.t.URI
}

// shutdown releases everything (Close).
func (pl *pipe) shutdown() {
	pl.dropTracks()
	if pl.curCtx != nil {
		pl.curCtx()
	}
	if pl.dev.out != nil {
		_ = pl.dev.out.Close()
	}
}

// fill produces and writes blocks while the output takes them.
func (pl *pipe) fill() {
	pl.dev.waitOut, pl.waitNext = false, false
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
		pl.waitNext = true
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
		pl.marks = append(pl.marks, mark{at: pl.dev.prodIndex() + pl.chain.lat, kind: markRetire, tr: pl.xf.out})
		pl.xf.end()
	}
	return true
}

// joinable returns the next track if it can be joined now; wait means it
// is not known or not opened yet.
func (pl *pipe) joinable() (nx *track, wait bool) {
	if !pl.nextKnown {
		return nil, true
	}
	if pl.nextReq == nil {
		return nil, false
	}
	if pl.next == nil {
		if !pl.nextOpen {
			pl.openNext()
		}
		return nil, true
	}
	if pl.next.err != nil || pl.next.channels != pl.dev.ch {
		return nil, false
	}
	return pl.next, false
}

// advance is called when cur has no more frames: join the next track,
// wait for it, or end the list.
func (pl *pipe) advance() bool {
	if pl.xf.out != nil { // cur ended within the overlap (decoded short)
		pl.retire(pl.xf.out)
		pl.xf.end()
	}
	if err := pl.cur.readErr; err != nil {
		pl.p.log.Warn("track ended early; playing what decoded and moving on", "track", pl.cur.meta.URI, "err", err)
		pl.cur.readErr = nil
	}
	if pl.feed.tr != pl.cur { // the resampler already carries the next track
		pl.startNext(pl.feed.tr)
		return true
	}
	nx, wait := pl.joinable()
	if wait {
		pl.waitNext = true
		return false
	}
	if nx != nil {
		pl.feed.set(nx, pl.dev.rate, pl.dev.ch, pl.p.log)
		pl.startNext(nx)
		return true
	}
	pl.finishList(pl.next)
	return len(pl.dev.pend) > 0
}

// startNext makes nx the current track: its first frame enters the gain
// stage now. The gain changes exactly there (no change when equal: album
// mode), and TrackStarted is due when that frame is heard.
func (pl *pipe) startNext(nx *track) {
	at := pl.dev.prodIndex() + pl.chain.lat
	prev := pl.cur
	pl.retired = append(pl.retired, prev)
	pl.cur, pl.next, pl.nextReq, pl.nextOpen, pl.nextKnown = nx, nil, nil, false, false
	pl.feed.joined()
	pl.chain.gain.Set(nx.gain.GainDB)
	pl.addSegment(segment{start: at, uri: nx.meta.URI, src0: nx.start, inRate: int64(nx.rate), outRate: int64(pl.dev.rate), frames: nx.frames})
	pl.marks = append(pl.marks, mark{at: at, kind: markStarted, tr: nx, prev: prev})
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
	if nx != nil && pl.nextReq != nil {
		m.tr = nx
		m.kind = markReopen
		if nx.err != nil {
			m.kind = markFailed
		}
		pl.next = nil // owned by the mark now
	}
	pl.marks = append(pl.marks, m)
}

// onTick fires marks the output has played past and completes fades.
func (pl *pipe) onTick() {
	played := pl.dev.out.PlayedIndex()
	consumed := pl.dev.consumed()
	for len(pl.marks) > 0 {
		m := pl.marks[0]
		// A join is due when heard; an end once the device has taken the
		// last frame: pausing then plays out what the device holds.
		due := played
		if m.kind != markStarted {
			due = consumed
		}
		if due < m.at {
			break
		}
		pl.marks = pl.marks[1:]
		pl.fire(m)
	}
	if pl.fade.active {
		pl.checkFade()
	}
	if pl.waitNext && !pl.nextKnown && played >= pl.dev.prodIndex() {
		// Everything was heard and the receiver has not said what comes
		// next: take the list as ended.
		pl.nextKnown = true
	}
}

func (pl *pipe) fire(m mark) {
	p := pl.p
	switch m.kind {
	case markStarted:
		pl.retire(m.prev)
		p.emit(playback.Event{Kind: playback.TrackStarted, URI: m.tr.meta.URI})
	case markEnded:
		pl.dev.pause(pl.p.log)
		p.emit(playback.Event{Kind: playback.Ended, URI: pl.curURI()})
	case markFailed:
		pl.dev.pause(pl.p.log)
		pl.nextFailed(m.at, m.tr.meta.URI, m.tr.err)
	case markRetire:
		if m.tr != pl.cur && m.tr != pl.xf.out {
			pl.retire(m.tr)
		}
	case markReopen:
		pl.dev.pause(pl.p.log)
		pl.retire(pl.cur)
		pl.cur = nil
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

// retire closes a track that is no longer audible.
func (pl *pipe) retire(tr *track) {
	for i, r := range pl.retired {
		if r == tr {
			pl.retired = append(pl.retired[:i], pl.retired[i+1:]...)
			break
		}
	}
	tr.close()
}

// doLoad replaces everything with a new current track, opened in the
// background. The output has been flushed.
func (pl *pipe) doLoad(c cmdLoad) {
	pl.dropTracks()
	pl.marks = nil
	pl.fade.clear()
	pl.dev.pend = nil
	pl.loadReq = c
	pl.play = c.play
	if !pl.play {
		pl.dev.pause(pl.p.log)
	}
	pl.src = srcLoading
	pl.gen++
	pl.curGen = pl.gen
	if pl.curCtx != nil {
		pl.curCtx()
	}
	pl.curCtx = pl.startOpen(c.t, c.album, c.posMS, pl.curGen)
	// Until it is open the position is the requested one.
	pl.segs = []segment{{start: math.MaxInt64, uri: c.t.URI, src0: c.posMS, inRate: 1000, outRate: 1, frames: -1}}
	pl.publish()
}

// dropTracks closes every track and cancels the openers.
func (pl *pipe) dropTracks() {
	for _, tr := range pl.retired {
		tr.close()
	}
	pl.retired = nil
	pl.cur.close()
	pl.next.close()
	if pl.nextCtx != nil {
		pl.nextCtx()
	}
	for _, m := range pl.marks {
		if m.kind == markFailed || m.kind == markReopen {
			m.tr.close()
		}
	}
	pl.cur, pl.next, pl.nextReq, pl.nextOpen, pl.nextKnown = nil, nil, nil, false, false
	pl.feed.drop()
	pl.xf.end() // xfOut was in retired
	pl.xf.armed = false
}

// startOpen runs openTrack on an opener goroutine; the returned function
// cancels it (a superseded open). Results reach the pipeline on opened.
func (pl *pipe) startOpen(t playback.Track, album bool, posMS int64, gen uint64) context.CancelFunc {
	p := pl.p
	ctx, cancel := context.WithCancel(p.ctx)
	p.openers.Add(1)
	go func() {
		defer p.openers.Done()
		defer cancel()
		tr := openTrack(ctx, p.opts.Source, t, album, *p.norm.Load(), posMS, aheadFrames)
		tr.gen = gen
		select {
		case pl.opened <- tr:
		case <-p.quit:
			tr.close()
		}
	}()
	return cancel
}

// openNext starts prefetching nextReq.
func (pl *pipe) openNext() {
	pl.gen++
	pl.nextGen = pl.gen
	pl.nextOpen = true
	pl.nextCtx = pl.startOpen(*pl.nextReq, pl.nextAlb, 0, pl.nextGen)
	pl.p.log.Debug("prefetch", "track", pl.nextReq.URI)
}

// prefetch opens the next track once the current one has less than
// Prefetch left to produce (at once when its length is unknown).
func (pl *pipe) prefetch() {
	if pl.nextReq == nil || pl.next != nil || pl.nextOpen || pl.cur == nil || pl.src != srcPlaying {
		return
	}
	rem := pl.cur.remaining()
	ahead := pl.p.opts.Prefetch + time.Duration(pl.p.xfade.Load()) // a crossfade joins earlier
	if rem < 0 || rem <= int64(ahead.Seconds()*float64(pl.cur.rate)) {
		pl.openNext()
	}
}

// onOpened takes an opener's result.
func (pl *pipe) onOpened(tr *track) {
	switch {
	case tr.gen == pl.curGen && pl.src == srcLoading:
		pl.curCtx = nil
		if tr.err != nil {
			pl.src = srcNone
			pl.dev.pause(pl.p.log)
			pl.p.emit(playback.Event{Kind: playback.TrackFailed, URI: tr.meta.URI, Err: tr.err})
			return
		}
		if err := pl.startLoaded(tr, false); err != nil {
			pl.p.emit(playback.Event{Kind: playback.TrackFailed, URI: tr.meta.URI, Err: err})
		}
	case tr.gen == pl.nextGen && pl.nextOpen:
		pl.nextOpen, pl.nextCtx = false, nil
		pl.next = tr
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
	pl.cur = tr
	pl.feed.set(tr, pl.dev.rate, pl.dev.ch, pl.p.log)
	pl.xf.armed = false
	pl.chain.gain.Jump(tr.gain.GainDB)
	if tr.start > 0 {
		pl.chain.vol.Mute()
		pl.chain.vol.FadeIn(jumpFade)
	}
	pl.src = srcPlaying
	at := pl.dev.prodIndex() + pl.chain.lat
	pl.segs = nil
	pl.addSegment(segment{start: at, uri: tr.meta.URI, src0: tr.start, inRate: int64(tr.rate), outRate: int64(pl.dev.rate), frames: tr.frames})
	if started {
		pl.marks = append(pl.marks, mark{at: at, kind: markStarted, tr: tr})
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
	if s, ok := tl.segmentAt(w - 1); ok && pl.cur != nil && s.uri != pl.cur.meta.URI {
		// The join to cur was produced but not heard: seek in the track
		// still audible and join cur again later.
		for i := len(pl.retired) - 1; i >= 0; i-- {
			if r := pl.retired[i]; r.meta.URI == s.uri && r.st != nil {
				pl.retired = pl.retired[:i]
				if pl.next != nil {
					pl.next.close()
				}
				if pl.nextCtx != nil {
					pl.nextCtx()
				}
				old := pl.cur
				if err := old.rewind(0); err != nil {
					old.close()
					old = nil
				}
				pl.cur, pl.next, pl.nextOpen, pl.nextKnown = r, old, false, true
				pl.nextReq = nil
				if old != nil {
					m := old.meta
					pl.nextReq, pl.nextAlb = &m, old.album
				}
				break
			}
		}
	}
	if pl.xf.out != nil {
		// A seek ends a crossfade in progress: back in the outgoing track
		// (just picked as cur above) or within the incoming one.
		if pl.xf.out != pl.cur {
			pl.retire(pl.xf.out)
		}
		pl.xf.end()
	}
	pl.xf.armed = false // re-armed only if the new position is before the last crossfade length
	// Marks not yet in the device will never be heard: drop them.
	keep := pl.marks[:0]
	for _, m := range pl.marks {
		if m.at <= w {
			keep = append(keep, m)
		} else if m.kind == markFailed || m.kind == markReopen {
			if pl.next == nil {
				pl.next = m.tr // join it (or fail) again at the end
			} else {
				m.tr.close()
			}
		}
	}
	pl.marks = keep
	tr := pl.cur
	f := posMS * int64(tr.rate) / 1000
	if err := tr.rewind(f); err != nil {
		pl.src = srcNone
		pl.dev.pause(pl.p.log)
		pl.p.emit(playback.Event{Kind: playback.TrackFailed, URI: tr.meta.URI, Err: err})
		return
	}
	tr.start = f
	if pl.next != nil && pl.feed.tr == pl.next {
		_ = pl.next.rewind(0)
	}
	pl.src = srcPlaying
	pl.chain.lim.Reset()
	pl.feed.set(tr, pl.dev.rate, pl.dev.ch, pl.p.log)
	pl.chain.gain.Jump(tr.gain.GainDB)
	pl.chain.vol.Mute()
	pl.chain.vol.FadeIn(jumpFade)
	pl.dev.pend = nil
	at := pl.dev.prodIndex() + pl.chain.lat
	for len(pl.segs) > 0 && pl.segs[len(pl.segs)-1].start > w {
		pl.segs = pl.segs[:len(pl.segs)-1]
	}
	pl.addSegment(segment{start: at, uri: tr.meta.URI, src0: f, inRate: int64(tr.rate), outRate: int64(pl.dev.rate), frames: tr.frames})
}

// setNext records the track to join after cur.
func (pl *pipe) setNext(c cmdSetNext) {
	pl.nextKnown = true
	same := c.t != nil && pl.nextReq != nil && c.t.URI == pl.nextReq.URI && c.album == pl.nextAlb
	if same {
		return
	}
	for _, m := range pl.marks {
		if m.kind == markStarted && c.t != nil && m.tr.meta.URI == c.t.URI {
			// The receiver has not heard the join to this track yet: it
			// names what follows its current track, which is cur already.
			return
		}
	}
	if pl.next != nil && pl.feed.tr == pl.next && pl.src == srcPlaying {
		pl.p.log.Debug("next track already joined; SetNext ignored")
		return
	}
	pl.next.close()
	pl.next = nil
	if pl.nextCtx != nil {
		pl.nextCtx()
		pl.nextCtx = nil
	}
	pl.nextOpen = false
	pl.nextReq, pl.nextAlb = c.t, c.album
}

// addSegment appends a timeline segment, forgets those already played
// through, and publishes the timeline.
func (pl *pipe) addSegment(s segment) {
	played := pl.dev.out.PlayedIndex()
	i := 0
	for i+1 < len(pl.segs) && pl.segs[i+1].start <= played {
		i++
	}
	pl.segs = append(pl.segs[i:], s)
	pl.publish()
}

// publish stores an immutable copy of the timeline for Position.
func (pl *pipe) publish() {
	pl.p.tl.Store(&timeline{out: pl.dev.out, segs: append([]segment(nil), pl.segs...)})
}
