package player

import (
	"log/slog"
	"time"

	"github.com/roomcast/roomcast/audio/dsp"
)

// crossfade is the overlap in progress between the outgoing track and cur
// (Options.Crossfade, SetCrossfade).
//
// Invariants: out != nil only during an overlap: it is the outgoing track
// (also in the queue's retired list), cur the incoming one, both at the
// device rate and channel count (no resampler); pos frames of the n-frame
// overlap were mixed. gain is out's gain stage during the overlap (the
// chain's gain is cur's); spare is the stage the incoming track of the
// next crossfade gets; once an output is open exactly one of the two is
// set. armed: cur had more than the crossfade length left since it
// started or was sought, so the block before the overlap was cut to end
// exactly where it begins. Owned by the pipeline goroutine.
type crossfade struct {
	out    *track
	pos, n int64
	armed  bool
	gain   *dsp.Gain
	spare  *dsp.Gain
	buf    []float32 // the outgoing track's frames for one block
}

// reset prepares for a new output format (no overlap in progress).
func (x *crossfade) reset(rate, ch int) {
	x.spare, _ = dsp.NewGain(rate, ch) // same format as the chain's gain: cannot fail
	x.gain, x.buf = nil, make([]float32, chunkFrames*ch)
}

func (x *crossfade) active() bool   { return x.out != nil }
func (x *crossfade) complete() bool { return x.out != nil && x.pos >= x.n }

// begin starts an overlap of n frames with old: old keeps its gain stage
// (and any ramp in progress), c gets the spare one, jumped to db.
func (x *crossfade) begin(old *track, n int64, c *chain, db float64) {
	x.out, x.pos, x.n, x.armed = old, 0, n, false
	x.gain, c.gain, x.spare = c.gain, x.spare, nil
	c.gain.Jump(db)
}

// mix mixes the outgoing track's next frames into buf (cur's frames, gain
// applied) with dsp.Crossfade's equal-power gains.
func (x *crossfade) mix(buf []float32, ch int, log *slog.Logger) {
	k := min(int64(len(buf)/ch), x.n-x.pos)
	if k <= 0 {
		return
	}
	b := x.buf[:k*int64(ch)]
	got := 0
	for got < len(b) {
		r := x.out.read(b[got:])
		if r == 0 {
			break
		}
		got += r
	}
	if got < len(b) {
		// Decoded shorter than its length: what is missing fades as silence.
		clear(b[got:])
		if err := x.out.readErr; err != nil {
			log.Warn("track ended early in a crossfade", "track", x.out.meta.URI, "err", err)
			x.out.readErr = nil
		}
	}
	x.gain.Process(b[:got])
	dsp.Crossfade(buf[:len(b)], b, buf[:len(b)], ch, x.pos, x.n)
	x.pos += k
}

// end ends the overlap (complete, or cut short by a seek or an early end
// of cur); out stays retired.
func (x *crossfade) end() {
	if x.gain != nil {
		x.spare, x.gain = x.gain, nil
	}
	x.out, x.pos, x.n = nil, 0, 0
}

// xfadeLen returns the length in frames of the crossfade into the track
// after cur: SetCrossfade's value, at most half of cur's length and, when
// the next track is open, half of its length; 0: no crossfade (off, cur's
// length unknown or cur resampled).
func (pl *pipe) xfadeLen() int64 {
	d := time.Duration(pl.p.ctl.xfade.Load())
	cur := pl.q.cur
	if d <= 0 || pl.feed.resampled() || cur == nil || cur.frames <= 0 || cur.rate != pl.dev.rate {
		return 0
	}
	if pl.q.nextKnown && pl.q.nextReq == nil {
		return 0 // the list ends with cur
	}
	l := min(int64(d.Seconds()*float64(pl.dev.rate)), cur.frames/2)
	if nx := pl.q.next; nx != nil && nx.err == nil && nx.frames > 0 {
		l = min(l, (nx.frames-nx.start)/2)
	}
	return l
}

// xfadeBlock shortens a block of frames so that it ends exactly where the
// overlap into the next track begins, and begins the crossfade when cur
// is there.
func (pl *pipe) xfadeBlock(frames int) int {
	l := pl.xfadeLen()
	if l <= 0 {
		return frames
	}
	switch rem := pl.q.cur.remaining(); {
	case rem > l:
		pl.xf.armed = true
		frames = int(min(int64(frames), rem-l))
	case rem == l && pl.xf.armed && !pl.xf.active():
		if nx, wait := pl.joinable(); !wait && nx != nil && pl.canCrossfade(nx) {
			pl.beginCrossfade(nx, l)
		}
	}
	return frames
}

// canCrossfade reports whether nx can be crossfaded into: same format as
// the device (and as cur), known length.
func (pl *pipe) canCrossfade(nx *track) bool {
	return nx.rate == pl.dev.rate && nx.channels == pl.dev.ch && nx.frames > 0 && !pl.feed.resampled()
}

// beginCrossfade makes nx the current track with an overlap of l frames:
// cur has exactly l frames left, which the crossfade mixes into nx's
// first l. The join is where the overlap begins: nx's segment starts there
// and TrackStarted is due when its first frame is heard.
func (pl *pipe) beginCrossfade(nx *track, l int64) {
	old := pl.q.cur
	at := pl.dev.prodIndex() + pl.chain.lat
	pl.feed.set(nx, pl.dev.rate, pl.dev.ch, pl.p.log)
	pl.q.advance(nx)
	pl.opener.next.stop()
	// The incoming track starts silent: its gain applies at once.
	pl.xf.begin(old, l, &pl.chain, nx.gain.GainDB)
	pl.addSegment(segment{start: at, uri: nx.meta.URI, src0: nx.start, inRate: int64(nx.rate), outRate: int64(pl.dev.rate), frames: nx.frames})
	pl.sched.mark(mark{at: at, kind: markStarted, tr: nx})
	pl.p.log.Debug("crossfade join", "track", nx.meta.URI, "at", at, "frames", l, "gain_db", nx.gain.GainDB)
}
