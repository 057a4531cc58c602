package output

import (
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// counting returns frames whose every sample is the frame's position
// (start, start+1, ...), so a reader can tell exactly which frames it got.
func counting(start, frames, channels int) []float32 {
	out := make([]float32, frames*channels)
	for i := range frames {
		for c := range channels {
			out[i*channels+c] = float32(start + i)
		}
	}
	return out
}

func TestRingWraparound(t *testing.T) {
	tests := []struct {
		name                  string
		size, channels        int
		writeChunk, readChunk int
		total                 int
	}{
		{"mono aligned", 8, 1, 4, 4, 100},
		{"stereo odd chunks", 7, 2, 3, 5, 200},
		{"read larger than ring", 5, 2, 2, 9, 100},
		{"write larger than free", 6, 3, 6, 1, 60},
		{"single frame ring", 1, 2, 1, 1, 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRing(tt.size, tt.channels)
			src := counting(0, tt.total, tt.channels)
			dst := make([]float32, tt.readChunk*tt.channels)
			next := 0 // next expected frame value
			for written := 0; next < tt.total; {
				if written < tt.total {
					end := min(written+tt.writeChunk, tt.total)
					n, err := r.write(src[written*tt.channels:end*tt.channels], false)
					if err != nil {
						t.Fatal(err)
					}
					written += n / tt.channels
				}
				if got := r.buffered(); got > int64(tt.size) {
					t.Fatalf("buffered %d > size %d", got, tt.size)
				}
				start, n := r.take(dst)
				if start != int64(next) {
					t.Fatalf("take started at %d, want %d", start, next)
				}
				for i := range n * tt.channels {
					if want := float32(next + i/tt.channels); dst[i] != want {
						t.Fatalf("sample %d of take at %d = %v, want %v", i, start, dst[i], want)
					}
				}
				next += n
			}
		})
	}
}

func TestRingWriteBlocksUntilConsumed(t *testing.T) {
	r := newRing(4, 2)
	done := make(chan error, 1)
	go func() {
		_, err := r.write(counting(0, 10, 2), true)
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("write of 10 frames into a ring of 4 returned early: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	dst := make([]float32, 4)
	got := 0
	for got < 10 {
		_, n := r.take(dst)
		got += n
		time.Sleep(time.Millisecond)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestRingTryWriteAndWritable(t *testing.T) {
	r := newRing(4, 1)
	n, err := r.write(counting(0, 6, 1), false)
	if n != 4 || err != nil {
		t.Fatalf("TryWrite into empty ring of 4 = %d, %v; want 4, nil", n, err)
	}
	select { // drain a stale signal
	case <-r.space:
	default:
	}
	r.take(make([]float32, 3))
	select {
	case <-r.space:
	default:
		t.Fatal("no space signal after take")
	}
	if n, _ := r.write(counting(4, 6, 1), false); n != 3 {
		t.Fatalf("TryWrite after taking 3 wrote %d, want 3", n)
	}
}

func TestRingPartialFrame(t *testing.T) {
	r := newRing(4, 2)
	if n, err := r.write(make([]float32, 3), true); n != 0 || !errors.Is(err, ErrPartialFrame) {
		t.Fatalf("write of 3 samples in stereo = %d, %v; want 0, ErrPartialFrame", n, err)
	}
}

func TestRingFlush(t *testing.T) {
	t.Run("idle consumer", func(t *testing.T) {
		r := newRing(8, 1)
		r.write(counting(0, 8, 1), false)
		r.flush()
		if b := r.buffered(); b != 0 {
			t.Fatalf("buffered after flush = %d", b)
		}
		if r.flushed.Load() != 8 {
			t.Fatalf("flushed = %d, want 8", r.flushed.Load())
		}
		// The space is usable at once (consumer not running: paused).
		if n, _ := r.write(counting(100, 8, 1), false); n != 8 {
			t.Fatalf("write after flush = %d frames, want 8", n)
		}
		dst := make([]float32, 8)
		start, n := r.take(dst)
		if start != 8 || n != 8 || dst[0] != 100 {
			t.Fatalf("take after flush: start %d n %d first %v; want 8 8 100", start, n, dst[0])
		}
	})
	t.Run("consumer holding the token", func(t *testing.T) {
		r := newRing(8, 1)
		r.write(counting(0, 6, 1), false)
		r.token.Store(tokenConsumer) // as if a callback were running
		r.flush()
		if r.read.Load() != 0 {
			t.Fatal("flush moved read while the consumer held the token")
		}
		r.token.Store(tokenFree)
		r.tryApplyFlush() // what the consumer does after releasing
		if r.read.Load() != 6 || r.buffered() != 0 {
			t.Fatalf("read %d buffered %d after the consumer released", r.read.Load(), r.buffered())
		}
	})
	t.Run("interrupts blocked write", func(t *testing.T) {
		r := newRing(4, 1)
		done := make(chan error, 1)
		go func() {
			_, err := r.write(counting(0, 100, 1), true)
			done <- err
		}()
		waitFor(t, time.Second, "ring to fill", func() bool { return r.buffered() == 4 })
		r.flush()
		select {
		case err := <-done:
			if !errors.Is(err, ErrFlushed) {
				t.Fatalf("blocked write returned %v, want ErrFlushed", err)
			}
		case <-time.After(time.Second):
			t.Fatal("flush did not interrupt the blocked write")
		}
		if b := r.buffered(); b != 0 {
			t.Fatalf("stale frames survived the flush: %d", b)
		}
	})
	t.Run("close interrupts blocked write", func(t *testing.T) {
		r := newRing(4, 1)
		done := make(chan error, 1)
		go func() {
			_, err := r.write(counting(0, 100, 1), true)
			done <- err
		}()
		waitFor(t, time.Second, "ring to fill", func() bool { return r.buffered() == 4 })
		r.close()
		if err := <-done; !errors.Is(err, ErrClosed) {
			t.Fatalf("write after close returned %v, want ErrClosed", err)
		}
	})
}

// TestRingConcurrent runs a producer and a consumer (and, in one case, a
// third goroutine flushing) flat out; run with -race. Every frame the
// consumer gets must be the frame written at that position: values equal
// positions.
func TestRingConcurrent(t *testing.T) {
	for _, flushes := range []bool{false, true} {
		name := map[bool]string{false: "exact sequence", true: "with flushes"}[flushes]
		t.Run(name, func(t *testing.T) {
			const channels, total = 2, 300_000
			r := newRing(1000, channels)
			var wg sync.WaitGroup
			wg.Add(1)
			go func() { // producer
				defer wg.Done()
				rng := rand.New(rand.NewPCG(1, 2))
				for pos := 0; pos < total; {
					n := min(1+rng.IntN(700), total-pos)
					// Value = ring position, so readers can check.
					w := int(r.written.Load())
					k, err := r.write(counting(w, n, channels), true)
					if err != nil && !errors.Is(err, ErrFlushed) {
						t.Error(err)
						return
					}
					pos += k / channels
				}
			}()
			stop := make(chan struct{})
			if flushes {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						select {
						case <-stop:
							return
						case <-time.After(200 * time.Microsecond):
							r.flush()
						}
					}
				}()
			}
			dst := make([]float32, 441*channels)
			var got int64
			last := int64(-1)
			deadline := time.Now().Add(20 * time.Second)
			for r.read.Load() < total && time.Now().Before(deadline) {
				start, n := r.take(dst)
				if !flushes && start != got {
					t.Fatalf("take at %d, want %d", start, got)
				}
				if start < last {
					t.Fatalf("read position went back from %d to %d", last, start)
				}
				for i := range n * channels {
					if want := float32(start + int64(i/channels)); dst[i] != want {
						t.Fatalf("sample %d at position %d = %v, want %v", i, start, dst[i], want)
					}
				}
				got = start + int64(n)
				last = got
			}
			close(stop)
			r.close()
			wg.Wait()
			if r.read.Load() < total {
				t.Fatalf("consumer got to %d of %d frames", r.read.Load(), total)
			}
			if flushes && r.flushed.Load() == 0 {
				t.Error("no frame was flushed: the flush path was not exercised")
			}
		})
	}
}

func TestConsumerUnderruns(t *testing.T) {
	const ch = 2
	r := newRing(100, ch)
	c := newConsumer(r, ch)
	c.reset(0, 10)
	buf := make([]float32, 10*ch)

	c.prime.Store(true)
	c.fill(buf) // priming: nothing written yet, no underrun
	if u := c.underrunFrames.Load(); u != 0 {
		t.Fatalf("underrun before any audio: %d frames", u)
	}
	r.write(counting(0, 15, ch), false)
	c.fill(buf) // 10 frames of audio
	c.fill(buf) // 5 audio + 5 silence: underrun event 1
	c.fill(buf) // 10 silence: same event
	if e, f := c.underrunEvents.Load(), c.underrunFrames.Load(); e != 1 || f != 15 {
		t.Fatalf("underruns = %d events %d frames, want 1, 15", e, f)
	}
	for i := 5 * ch; i < len(buf); i++ {
		if buf[i] != 0 {
			t.Fatalf("sample %d not silent on underrun: %v", i, buf[i])
		}
	}
	r.write(counting(15, 10, ch), false)
	c.fill(buf) // full
	c.fill(buf) // empty again: event 2
	if e, f := c.underrunEvents.Load(), c.underrunFrames.Load(); e != 2 || f != 25 {
		t.Fatalf("underruns = %d events %d frames, want 2, 25", e, f)
	}
	r.flush()
	c.fill(buf) // after a flush: unarmed until audio again
	if f := c.underrunFrames.Load(); f != 25 {
		t.Fatalf("silence after flush counted as underrun: %d frames", f)
	}
	if got := c.played.Load(); got != 25 {
		t.Fatalf("played = %d, want 25 (latency 0)", got)
	}
}

// TestTrackerLatency checks the position with a device latency: a frame
// counts as played latency device frames after it was handed over, and
// silence and flushed frames are not counted as played.
func TestTrackerLatency(t *testing.T) {
	const ch = 1
	r := newRing(1000, ch)
	c := newConsumer(r, ch)
	c.reset(25, 10) // latency 25 frames, periods of 10
	buf := make([]float32, 10)
	r.write(counting(0, 40, ch), false)

	steps := []struct {
		do              func()
		idx, played     int64
		describeOutcome string
	}{
		{func() { c.fill(buf) }, 0, 0, "10 handed over, none audible"},
		{func() { c.fill(buf) }, 0, 0, "20 handed over"},
		{func() { c.fill(buf) }, 5, 5, "30 handed over: 5 audible"},
		{func() { c.fill(buf) }, 15, 15, "40 handed over"},
		{func() { c.fill(buf) }, 25, 25, "10 silence handed over"},
		{func() {
			r.write(counting(40, 100, ch), false)
			r.flush()
			r.write(counting(140, 30, ch), false)
			c.fill(buf)
		}, 35, 35, "flush then audio"},
		{func() { c.fill(buf) }, 40, 40, "silence of the underrun is playing"},
		{func() { c.fill(buf) }, 145, 45, "frames after the flush are playing"},
	}
	for i, s := range steps {
		s.do()
		if idx, p := c.playedIndex.Load(), c.played.Load(); idx != s.idx || p != s.played {
			t.Fatalf("step %d (%s): playedIndex %d played %d; want %d %d", i, s.describeOutcome, idx, p, s.idx, s.played)
		}
	}

	// A lost device takes the unheard frames with it.
	c.reset(0, 10)
	if lost := c.lostFrames.Load(); lost != 40+30-45 {
		// handed over: 40, then 30 after the flush; heard: 45
		t.Fatalf("lost frames = %d, want 25", lost)
	}
}

func TestFillDoesNotAllocate(t *testing.T) {
	r := newRing(4096, 2)
	c := newConsumer(r, 2)
	c.reset(3528, 882)
	buf := make([]float32, 882*2)
	allocs := testing.AllocsPerRun(1000, func() {
		r.written.Add(882) // publish without copying: content is irrelevant here
		c.fill(buf)
	})
	if allocs != 0 {
		t.Fatalf("fill allocates %v times per call", allocs)
	}
}

// BenchmarkFill measures the data callback's work for one 20 ms stereo
// period at 44.1 kHz (882 frames): the copy out of the ring, counters and
// position tracking.
func BenchmarkFill(b *testing.B) {
	for _, bc := range []struct {
		name   string
		period int
		empty  bool
	}{
		{"882frames", 882, false},
		{"256frames", 256, false},
		{"882frames_underrun", 882, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := newRing(22050, 2)
			c := newConsumer(r, 2)
			c.reset(int64(4*bc.period), bc.period)
			buf := make([]float32, bc.period*2)
			b.ReportAllocs()
			b.SetBytes(int64(len(buf) * 4))
			for b.Loop() {
				if !bc.empty {
					r.written.Add(int64(bc.period))
				}
				c.fill(buf)
			}
		})
	}
}
