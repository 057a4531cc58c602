package output

import (
	"sync/atomic"
	"time"
)

// consumer is the device side of an output: fill is the whole of what the
// malgo data callback and the WAV sink's clock goroutine do. It copies
// frames out of the ring, pads with silence, counts underruns and keeps the
// position. fill never blocks, allocates or logs.
//
// Concurrency: fill is called by one device thread at a time (the active
// consumer). Fields under "consumer-owned" are touched only by fill, or by
// the output loop while no device is open (after the driver's close
// returned, so no fill can run). Everything else is atomic and may be read
// from any goroutine.
type consumer struct {
	ring     *ring
	channels int
	base     time.Time // origin of lastFill

	// Set by the output loop, read by fill.
	hold    atomic.Bool   // play silence without taking from the ring (Pause drains the device)
	held    atomic.Int64  // silence frames played since hold was set
	drainAt atomic.Int64  // held frames after which drained is signalled
	drained chan struct{} // cap 1, non-blocking send
	prime   atomic.Bool   // set by Start: the next fill is unarmed (no underrun before first audio)

	// Published by fill.
	lastFill       atomic.Int64 // time of the latest fill, ns since base (watchdog)
	fills          atomic.Int64 // number of fills (device callbacks)
	deviceFrames   atomic.Int64 // frames handed to devices, audio and silence
	underrunEvents atomic.Int64
	underrunFrames atomic.Int64
	playedIndex    atomic.Int64 // see Stream.PlayedIndex
	played         atomic.Int64 // see Stream.Played
	lostFrames     atomic.Int64 // frames handed to a device that was lost before they were heard

	// Consumer-owned.
	armed      bool  // audio was played since the last Start, Flush or reopen
	short      bool  // the previous fill was short (inside an underrun event)
	flushEpoch int64 // ring.flushes seen by the previous fill
	track      tracker
}

func newConsumer(r *ring, channels int) *consumer {
	return &consumer{
		ring:     r,
		channels: channels,
		base:     time.Now(),
		drained:  make(chan struct{}, 1),
	}
}

// fill writes len(dst)/channels frames into dst: audio from the ring, then
// silence if the ring runs short. dst must hold whole frames.
func (c *consumer) fill(dst []float32) {
	c.lastFill.Store(int64(time.Since(c.base)))
	c.fills.Add(1)
	frames := len(dst) / c.channels
	c.deviceFrames.Add(int64(frames))
	if c.prime.Load() {
		c.prime.Store(false)
		c.armed, c.short = false, false
	}

	var start int64
	n := 0
	if c.hold.Load() {
		start = c.ring.read.Load()
		clear(dst)
		if c.held.Add(int64(frames)) >= c.drainAt.Load() {
			select {
			case c.drained <- struct{}{}:
			default:
			}
		}
	} else {
		start, n = c.ring.take(dst)
		clear(dst[n*c.channels:])
		if e := c.ring.flushes.Load(); e != c.flushEpoch {
			c.flushEpoch = e
			c.armed, c.short = false, false
		}
		if n > 0 {
			c.armed = true
		}
		if missing := frames - n; missing == 0 {
			c.short = false
		} else if c.armed {
			c.underrunFrames.Add(int64(missing))
			if !c.short {
				c.underrunEvents.Add(1)
				c.short = true
			}
		}
	}

	if idx, real, ok := c.track.add(start, int64(n), int64(frames)); ok {
		c.playedIndex.Store(idx)
		c.played.Store(real)
	}
}

// reset prepares the consumer for a new device whose latency is latency
// frames. Frames handed to the previous device and not yet heard are
// counted as lost. Only the output loop calls reset, while no device is
// open.
func (c *consumer) reset(latency int64, periodFrames int) {
	c.lostFrames.Add(c.track.real - c.played.Load())
	c.track.reset(latency, periodFrames, c.played.Load())
	c.armed, c.short = false, false
	c.flushEpoch = c.ring.flushes.Load()
}

// span records one fill: total frames handed to the device starting at
// device frame dev, of which the first n were ring frames starting at ring
// position idx (the rest silence); real counts ring frames handed to the
// device before this span.
type span struct {
	dev, idx, real, n, total int64
}

// tracker maps device frames back to ring positions. A frame handed to the
// device is taken as heard latency frames later (in device frames).
// Consumer-owned; add never allocates.
type tracker struct {
	spans   []span // circular log, oldest at first
	first   int
	count   int
	dev     int64 // device frames handed over since reset
	real    int64 // ring frames handed over, cumulative across resets
	latency int64
}

// reset empties the log and sizes it for the latency; real restarts from
// played (what was handed over but not heard is gone with the device).
func (t *tracker) reset(latency int64, periodFrames int, played int64) {
	need := int(latency)/max(periodFrames/2, 1) + 8
	if cap(t.spans) < need {
		t.spans = make([]span, need)
	}
	t.spans = t.spans[:cap(t.spans)]
	t.first, t.count, t.dev = 0, 0, 0
	t.real = played
	t.latency = latency
}

// add records a fill and returns the ring position one past the last
// audible ring frame and the number of ring frames heard so far; ok is false
// while nothing handed to this device is audible yet.
func (t *tracker) add(idx, n, total int64) (playedIdx, played int64, ok bool) {
	if len(t.spans) == 0 {
		return 0, 0, false
	}
	if t.count == len(t.spans) { // log full: forget the oldest span
		t.first = (t.first + 1) % len(t.spans)
		t.count--
	}
	t.spans[(t.first+t.count)%len(t.spans)] = span{dev: t.dev, idx: idx, real: t.real, n: n, total: total}
	t.count++
	t.dev += total
	t.real += n

	audible := t.dev - t.latency // device frames before this one have been heard
	for t.count > 1 {
		s := t.spans[t.first]
		if s.dev+s.total > audible {
			break
		}
		t.first = (t.first + 1) % len(t.spans)
		t.count--
	}
	s := t.spans[t.first]
	if audible < s.dev {
		if t.count < len(t.spans) {
			return 0, 0, false // still inside the device latency of the first span
		}
		audible = s.dev // log too short for the latency: report its start
	}
	k := min(audible-s.dev, s.n)
	return s.idx + k, s.real + k, true
}
