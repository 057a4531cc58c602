package output

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// Errors returned by Write and TryWrite.
var (
	// ErrClosed is returned by every method of a closed output.
	ErrClosed = errors.New("output closed")
	// ErrFlushed is returned by a Write that Flush (called from another
	// goroutine) interrupted; the frames of that Write not yet consumed were
	// dropped with the rest of the buffer.
	ErrFlushed = errors.New("write interrupted by flush")
	// ErrPartialFrame is returned when a slice does not hold whole frames.
	ErrPartialFrame = errors.New("sample count is not a multiple of the channel count")
)

// Holders of ring.token: the token gives the right to move ring.read.
const (
	tokenFree int32 = iota
	tokenConsumer
	tokenFlusher
)

// ring is a bounded single-producer, single-consumer queue of interleaved
// float32 frames between the pipeline goroutine (producer) and the device
// (consumer: the malgo data callback or the WAV sink's clock goroutine).
//
// Positions are frame counts since the ring was made and only grow; the
// frame at position p lives at buf[(p%size)*channels:]. Invariants:
// read ≤ flushTo ≤ written after a flush is applied, read ≤ written always,
// written-read ≤ size.
//
// No lock is taken: positions are atomics, and the copy of samples is
// ordered by the atomic publication of written (producer → consumer) and of
// read (consumer → producer). Only the holder of token moves read; the
// consumer takes the token with one CompareAndSwap and never waits for it
// (if Flush holds it, the consumer plays silence for that one period).
type ring struct {
	buf      []float32
	channels int
	size     int64 // capacity in frames

	written atomic.Int64 // frames published by the producer; stored only by the producer
	read    atomic.Int64 // frames consumed or dropped; stored only by the token holder
	flushTo atomic.Int64 // position a Flush asked read to skip to; only raised
	flushes atomic.Int64 // number of Flush calls: an epoch that interrupts writers
	flushed atomic.Int64 // frames dropped by Flush (never played)
	token   atomic.Int32 // tokenFree, tokenConsumer or tokenFlusher

	space     chan struct{} // cap 1: non-blocking send when space may have appeared
	done      chan struct{} // closed by close
	closeOnce sync.Once
}

func newRing(frames, channels int) *ring {
	return &ring{
		buf:      make([]float32, frames*channels),
		channels: channels,
		size:     int64(frames),
		space:    make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
}

// buffered returns the number of frames written and not yet consumed or
// flushed. Safe from any goroutine.
func (r *ring) buffered() int64 {
	b := r.written.Load() - max(r.read.Load(), r.flushTo.Load())
	return max(b, 0)
}

// write copies whole frames from p into the ring. With block set it waits
// for space until all of p is written, Flush interrupts it (ErrFlushed) or
// the ring is closed (ErrClosed); otherwise it writes what fits and returns.
// It returns the number of samples of p consumed. Only the producer
// goroutine may call write.
func (r *ring) write(p []float32, block bool) (int, error) {
	ch := r.channels
	if len(p)%ch != 0 {
		return 0, fmt.Errorf("output: write of %d samples with %d channels: %w", len(p), ch, ErrPartialFrame)
	}
	epoch := r.flushes.Load()
	n := 0
	for n < len(p) {
		select {
		case <-r.done:
			return n, ErrClosed
		default:
		}
		w := r.written.Load()
		free := r.size - (w - r.read.Load())
		if free == 0 {
			if !block {
				return n, nil
			}
			select {
			case <-r.space:
			case <-r.done:
				return n, ErrClosed
			}
			if r.flushes.Load() != epoch {
				return n, ErrFlushed
			}
			continue
		}
		k := min(free, int64((len(p)-n)/ch))
		at := w % r.size
		first := min(k, r.size-at)
		copy(r.buf[at*int64(ch):], p[n:n+int(first)*ch])
		copy(r.buf, p[n+int(first)*ch:n+int(k)*ch])
		r.written.Store(w + k)
		n += int(k) * ch
		if r.flushes.Load() != epoch {
			// A Flush raced with this copy: drop what we just published too.
			r.raiseFlushTo(w + k)
			r.tryApplyFlush()
			return n, ErrFlushed
		}
	}
	return n, nil
}

// flush drops every frame written so far. Safe from any goroutine. If the
// consumer is inside a callback the drop is applied by it, at the latest at
// the start of its next callback; the producer sees the space once applied.
func (r *ring) flush() {
	r.flushes.Add(1)
	r.raiseFlushTo(r.written.Load())
	r.tryApplyFlush()
	r.signal()
}

func (r *ring) raiseFlushTo(pos int64) {
	for {
		cur := r.flushTo.Load()
		if pos <= cur || r.flushTo.CompareAndSwap(cur, pos) {
			return
		}
	}
}

// tryApplyFlush applies a pending flush if nobody holds the token. Whoever
// holds the token calls it again after releasing, so a pending flush is
// never left behind by a lost race.
func (r *ring) tryApplyFlush() {
	for r.flushTo.Load() > r.read.Load() {
		if !r.token.CompareAndSwap(tokenFree, tokenFlusher) {
			return
		}
		r.applyFlush(r.read.Load())
		r.token.Store(tokenFree)
	}
}

// applyFlush moves read to flushTo if it is behind; the caller holds the
// token. It returns the new read position.
func (r *ring) applyFlush(read int64) int64 {
	if f := r.flushTo.Load(); f > read {
		r.flushed.Add(f - read)
		read = f
		r.read.Store(read)
	}
	return read
}

// take copies up to len(dst)/channels frames into the front of dst and
// returns the position of the first one and how many it copied. It never
// blocks, allocates or writes the rest of dst. Only the consumer calls it.
func (r *ring) take(dst []float32) (start int64, frames int) {
	if !r.token.CompareAndSwap(tokenFree, tokenConsumer) {
		return r.read.Load(), 0 // a Flush is moving read right now
	}
	ch := int64(r.channels)
	read := r.applyFlush(r.read.Load())
	n := min(r.written.Load()-read, int64(len(dst))/ch)
	at := read % r.size
	first := min(n, r.size-at)
	copy(dst, r.buf[at*ch:(at+first)*ch])
	copy(dst[first*ch:], r.buf[:(n-first)*ch])
	r.read.Store(read + n)
	r.token.Store(tokenFree)
	r.tryApplyFlush()
	r.signal()
	return read, int(n)
}

// signal wakes a producer waiting for space; it never blocks.
func (r *ring) signal() {
	select {
	case r.space <- struct{}{}:
	default:
	}
}

// close wakes and fails blocked and future writes. Idempotent.
func (r *ring) close() {
	r.closeOnce.Do(func() { close(r.done) })
}
