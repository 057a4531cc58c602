package player

import (
	"fmt"
	"log/slog"

	"github.com/roomcast/roomcast/audio/output"
)

// endPadMS is the silence written after the last frame of a list, and
// behind the fade before a seek or load.
const endPadMS = 50

// device is the output and the producer's side of it: the device format,
// the block and tail buffers, the samples the output has not taken yet.
//
// Invariants: out is never nil after New (after a failed reopen it is the
// last output, closed, and err says why the new one could not be opened).
// pend holds processed samples the output has not accepted; they are
// written before anything else is produced, so the frame leaving the
// limiter next gets output index prodIndex(). started is true from Start
// to the next Pause. waitOut: the ring is full, wait for Writable. Owned
// by the pipeline goroutine.
type device struct {
	out      output.Output
	err      error // the output could not be (re)opened
	rate, ch int   // out's format
	started  bool  // output.Start called since the last Pause
	buf      []float32
	tail     []float32 // the limiter's tail and the silence after it (or after a fade)
	pend     []float32 // processed samples not yet accepted by the output
	waitOut  bool      // the ring is full: wait for Writable
}

// use makes out (opened for f) the output; lat is the limiter's latency
// at f, which the tail buffer must hold.
func (d *device) use(out output.Output, f output.Format, lat int64) {
	d.out, d.err, d.started = out, nil, false
	d.rate, d.ch = f.SampleRate, f.Channels
	d.buf = make([]float32, chunkFrames*f.Channels)
	d.tail = make([]float32, (int(lat)+f.SampleRate*endPadMS/1000)*f.Channels)
	d.pend = nil
}

// prodIndex is the output index the next frame leaving the limiter gets.
func (d *device) prodIndex() int64 { return d.out.Written() + int64(len(d.pend)/d.ch) }

// consumed is the output index below which the device has taken every
// frame from the ring (it may not have played them yet).
func (d *device) consumed() int64 { return d.out.Written() - d.out.Stats().Buffered }

// writePending offers pend to the output; false means stop producing: the
// ring is full (waitOut is set) or the write failed (pend is dropped).
func (d *device) writePending(log *slog.Logger) bool {
	if len(d.pend) == 0 {
		return true
	}
	n, err := d.out.TryWrite(d.pend)
	d.pend = d.pend[n:]
	if err != nil {
		log.Warn("output write", "err", err)
		d.pend = nil
		return false
	}
	if len(d.pend) > 0 {
		d.waitOut = true
		return false
	}
	return true
}

// writeSilence writes up to ms of silence, as far as the ring takes it.
func (d *device) writeSilence(ms int) {
	n := min(len(d.tail), d.rate*ms/1000*d.ch)
	clear(d.tail[:n])
	_, _ = d.out.TryWrite(d.tail[:n])
}

// start starts the output (device failures come on Errors: it counts as
// started either way).
func (d *device) start(log *slog.Logger) {
	if err := d.out.Start(); err != nil {
		log.Warn("output start", "err", err)
	}
	d.started = true
}

// pause stops a started output once it has played what the device holds.
func (d *device) pause(log *slog.Logger) {
	if d.started {
		if err := d.out.Pause(); err != nil {
			log.Warn("output pause", "err", err)
		}
		d.started = false
	}
}

// openOutput opens the output for f and builds the device-side stages for
// its format; on failure dev.err is set and the previous output kept.
func (pl *pipe) openOutput(f output.Format) error {
	out, err := pl.p.opts.OpenOutput(f)
	if err != nil {
		pl.dev.err = fmt.Errorf("open output %d Hz × %d: %w", f.SampleRate, f.Channels, err)
		return pl.dev.err
	}
	if got := out.Format(); got != f {
		_ = out.Close()
		pl.dev.err = fmt.Errorf("output opened as %+v, asked for %+v", got, f)
		return pl.dev.err
	}
	c, err := newChain(f.SampleRate, f.Channels, pl.p.ctl.volume.Load(), pl.p.ctl.curve.Load())
	if err != nil {
		_ = out.Close()
		pl.dev.err = err
		return err
	}
	pl.chain = c
	pl.dev.use(out, f, c.lat)
	pl.p.out.Store(&outRef{out})
	pl.xf.reset(f.SampleRate, f.Channels)
	pl.feed.reset()
	return nil
}
