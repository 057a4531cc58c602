package dsp

import (
	"testing"
	"time"
)

// Benchmarks process 44.1 kHz stereo in blocks of benchBlock frames and
// report ns per input frame ("ns/frame"), ms of CPU per second of audio
// ("ms/audio-s") and that as a percentage of Vorbis decode cost
// ("%decode", taking decode as decodeMsPerSecond).
const (
	benchRate  = 44100
	benchBlock = 1024
	// decodeMsPerSecond is the CPU time audio/decode needs per second of
	// 44.1 kHz stereo q5 Vorbis on the build VM (BenchmarkDecode/roomcast:
	// ~500× real time).
	decodeMsPerSecond = 2.0
)

func reportPerFrame(b *testing.B, frames int) {
	ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N) / float64(frames)
	b.ReportMetric(ns, "ns/frame")
	ms := ns * benchRate / 1e6
	b.ReportMetric(ms, "ms/audio-s")
	b.ReportMetric(ms/decodeMsPerSecond*100, "%decode")
}

// benchInput returns one second of music-like stereo audio peaking at peak.
func benchInput(peak float64) []float32 { return musicLike(benchRate, 2, 1, peak, 11) }

// runBlocks calls f on consecutive blocks of src (wrapping around) with a
// scratch buffer, as the pipeline would.
func runBlocks(b *testing.B, src []float32, f func(buf []float32)) {
	buf := make([]float32, benchBlock*2)
	off := 0
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if off+len(buf) > len(src) {
			off = 0
		}
		copy(buf, src[off:off+len(buf)])
		off += len(buf)
		f(buf)
	}
	reportPerFrame(b, benchBlock)
}

func BenchmarkCopyBaseline(b *testing.B) {
	runBlocks(b, benchInput(0.9), func([]float32) {})
}

func BenchmarkGain(b *testing.B) {
	for _, c := range []struct {
		name string
		db   float64
	}{{"unity", 0}, {"-4.2dB", -4.2}} {
		b.Run(c.name, func(b *testing.B) {
			g, _ := NewGain(benchRate, 2)
			g.Jump(c.db)
			runBlocks(b, benchInput(0.9), g.Process)
		})
	}
	b.Run("ramping", func(b *testing.B) {
		g, _ := NewGain(benchRate, 2)
		flip := false
		runBlocks(b, benchInput(0.9), func(buf []float32) {
			if !g.Ramping() {
				flip = !flip
				if flip {
					g.Set(-3)
				} else {
					g.Set(2)
				}
			}
			g.Process(buf)
		})
	})
}

func BenchmarkLimiter(b *testing.B) {
	for _, c := range []struct {
		name string
		peak float64
	}{
		{"quiet-fastpath", 0.5},     // −6 dBFS peaks: block check only
		{"loud-no-reduction", 0.88}, // near the ceiling, never above
		{"limiting", 1.4},           // +3 dBFS peaks: frequent gain reduction
	} {
		b.Run(c.name, func(b *testing.B) {
			l, _ := NewLimiter(benchRate, 2, LimiterConfig{})
			runBlocks(b, benchInput(c.peak), l.Process)
		})
	}
}

func BenchmarkVolume(b *testing.B) {
	b.Run("100%", func(b *testing.B) {
		v, _ := NewVolume(benchRate, 2, 100)
		runBlocks(b, benchInput(0.9), v.Process)
	})
	b.Run("60%", func(b *testing.B) {
		v, _ := NewVolume(benchRate, 2, 60)
		runBlocks(b, benchInput(0.9), v.Process)
	})
	b.Run("ramping", func(b *testing.B) {
		v, _ := NewVolume(benchRate, 2, 60)
		flip := false
		runBlocks(b, benchInput(0.9), func(buf []float32) {
			if !v.Ramping() {
				flip = !flip
				if flip {
					v.SetVolume(40)
				} else {
					v.SetVolume(80)
				}
			}
			v.Process(buf)
		})
	})
}

func BenchmarkResampler(b *testing.B) {
	for _, c := range []struct {
		in, out int
		q       Quality
	}{
		{44100, 48000, QualityPi}, {44100, 48000, QualityHigh},
		{48000, 44100, QualityPi}, {48000, 44100, QualityHigh},
		{96000, 48000, QualityPi}, {44100, 47999, QualityPi},
		{44100, 44100, QualityPi},
	} {
		b.Run(c.q.String()+"/"+itoa(c.in)+"-"+itoa(c.out), func(b *testing.B) {
			r, _ := NewResampler(c.in, c.out, 2, c.q)
			src := musicLike(c.in, 2, 1, 0.9, 12)
			out := make([]float32, benchBlock*2)
			off := 0
			b.ReportAllocs()
			b.ResetTimer()
			inFrames := 0
			for b.Loop() {
				need := r.InputFramesFor(benchBlock)
				if off+need*2 > len(src) {
					off = 0
				}
				cons, _ := r.Process(src[off:off+need*2], out)
				off += cons
				inFrames += cons / 2
			}
			// per input frame, so that figures add up with the other stages
			ns := float64(b.Elapsed().Nanoseconds()) / float64(inFrames)
			b.ReportMetric(ns, "ns/frame")
			ms := ns * float64(c.in) / 1e6
			b.ReportMetric(ms, "ms/audio-s")
			b.ReportMetric(ms/decodeMsPerSecond*100, "%decode")
		})
	}
}

// chain is the pipeline of one speaker: gain → limiter → volume →
// resampler.
type chain struct {
	g   *Gain
	l   *Limiter
	v   *Volume
	r   *Resampler
	out []float32
}

func newChain(tb testing.TB, in, out int, q Quality, gainDB, vol float64) *chain {
	g, err := NewGain(in, 2)
	if err != nil {
		tb.Fatal(err)
	}
	g.Jump(gainDB)
	l, err := NewLimiter(in, 2, LimiterConfig{})
	if err != nil {
		tb.Fatal(err)
	}
	v, err := NewVolume(in, 2, vol)
	if err != nil {
		tb.Fatal(err)
	}
	r, err := NewResampler(in, out, 2, q)
	if err != nil {
		tb.Fatal(err)
	}
	return &chain{g: g, l: l, v: v, r: r, out: make([]float32, 8192*2)}
}

// process runs one input block through the chain; it returns the output
// samples (valid until the next call).
func (c *chain) process(buf []float32) []float32 {
	c.g.Process(buf)
	c.l.Process(buf)
	c.v.Process(buf)
	var produced int
	for len(buf) > 0 {
		cons, p := c.r.Process(buf, c.out[produced:])
		produced += p
		buf = buf[cons:]
	}
	return c.out[:produced]
}

// flush drains the limiter and the resampler at the end of the stream.
func (c *chain) flush() []float32 {
	tail := make([]float32, 2*c.l.Latency())
	n := c.l.Flush(tail)
	c.v.Process(tail[:n])
	var res []float32
	buf := tail[:n]
	for len(buf) > 0 {
		cons, p := c.r.Process(buf, c.out)
		res = append(res, c.out[:p]...)
		buf = buf[cons:]
	}
	for p := c.r.Drain(c.out); p > 0; p = c.r.Drain(c.out) {
		res = append(res, c.out[:p]...)
	}
	return res
}

func BenchmarkChain(b *testing.B) {
	for _, c := range []struct {
		name   string
		out    int
		q      Quality
		gain   float64
		peak   float64
		volume float64
	}{
		{"unity-native", 44100, QualityPi, 0, 0.7, 100},
		{"typical-native", 44100, QualityPi, -5.3, 1.0, 60},
		{"boost-limiting-native", 44100, QualityPi, 4, 0.99, 60},
		{"typical-48k-pi", 48000, QualityPi, -5.3, 1.0, 60},
		{"typical-48k-high", 48000, QualityHigh, -5.3, 1.0, 60},
	} {
		b.Run(c.name, func(b *testing.B) {
			ch := newChain(b, benchRate, c.out, c.q, c.gain, c.volume)
			runBlocks(b, benchInput(c.peak), func(buf []float32) { ch.process(buf) })
		})
	}
}

var _ = time.Millisecond
