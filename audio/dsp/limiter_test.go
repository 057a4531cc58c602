package dsp

import (
	"math"
	"testing"
)

// limitAll runs x through a new limiter in blocks of block frames and
// flushes it; the result has Latency() more frames than x.
func limitAll(t testing.TB, rate, ch int, x []float32, block int) ([]float32, *Limiter) {
	t.Helper()
	l, err := NewLimiter(rate, ch, LimiterConfig{})
	if err != nil {
		t.Fatal(err)
	}
	y := append([]float32(nil), x...)
	for off := 0; off < len(y); off += block * ch {
		l.Process(y[off:min(len(y), off+block*ch)])
	}
	tail := make([]float32, 3*ch)
	for {
		n := l.Flush(tail)
		if n == 0 {
			break
		}
		y = append(y, tail[:n]...)
	}
	return y, l
}

// delayed returns x delayed by d frames (d frames of silence in front).
func delayed(x []float32, d, ch int) []float32 {
	return append(make([]float32, d*ch), x...)
}

func TestLimiterPassthroughBelowCeiling(t *testing.T) {
	for _, c := range []struct {
		name string
		ch   int
		peak float64
	}{
		{"quiet stereo (fast path)", 2, 0.5},
		{"loud stereo (active path)", 2, 0.7},
		{"loud mono", 1, 0.7},
		{"loud 6ch", 6, 0.7},
	} {
		// Low frequencies only, so that the 2× estimate stays below the
		// ceiling too.
		x := sine(44100, c.ch, 220, c.peak, 20000)
		// (0.7: the abrupt end of the sine at Flush overshoots in the
		// interpolator, still below the ceiling.)
		for _, block := range []int{1, 7, 4096} {
			y, l := limitAll(t, 44100, c.ch, x, block)
			if i := bitsEqual(delayed(x, l.Latency(), c.ch), y); i >= 0 {
				t.Errorf("%s, blocks of %d: not the delayed input at sample %d", c.name, block, i)
			}
		}
	}
}

func TestLimiterLatency(t *testing.T) {
	for _, rate := range []int{44100, 48000, 96000} {
		l, _ := NewLimiter(rate, 2, LimiterConfig{})
		want := int(math.Round(0.002*float64(rate))) + 11
		if l.Latency() != want {
			t.Errorf("%d Hz: latency %d frames, want %d", rate, l.Latency(), want)
		}
	}
}

// TestLimiterBurst: quiet music with a +6 dB burst (peaks at +2 dBFS) in
// the middle. Nothing may exceed the ceiling; the audio before the burst
// (minus the look-ahead) and after the release must be untouched.
func TestLimiterBurst(t *testing.T) {
	const rate, ch = 44100, 2
	for _, block := range []int{1, 7, 4096} {
		x := musicLike(rate, ch, 3, 0.63, 21) // peaks −4 dBFS
		bs, be := rate, rate+rate/10          // 100 ms burst at 1 s
		for i := bs * ch; i < be*ch; i++ {
			x[i] *= 2 // +6 dB
		}
		y, l := limitAll(t, rate, ch, x, block)
		d := l.Latency()
		thr := float32(math.Pow(10, -1.0/20))
		for i, v := range y {
			if math.Abs(float64(v)) > float64(thr)*(1+1e-6) {
				t.Fatalf("block %d: sample %d = %v above the ceiling %v", block, i, v, thr)
			}
		}
		ref := delayed(x, d, ch)
		// Untouched before the burst enters the look-ahead window.
		if i := bitsEqual(ref[:(bs)*ch], y[:(bs)*ch]); i >= 0 {
			t.Errorf("block %d: altered before the burst at frame %d", block, i/ch)
		}
		// Untouched after the release (1.2 s after the burst ends).
		after := (be + d + rate*12/10) * ch
		if i := bitsEqual(ref[after:], y[after:]); i >= 0 {
			t.Errorf("block %d: still altered %d frames after the release", block, i/ch)
		}
		// The gain was actually reduced during the burst.
		reduced := false
		for i := (bs + d) * ch; i < (be+d)*ch; i++ {
			if y[i] != ref[i] {
				reduced = true
				break
			}
		}
		if !reduced || l.Reducing() {
			t.Errorf("block %d: reduced during burst %v, still reducing at the end %v", block, reduced, l.Reducing())
		}
	}
}

// TestLimiterTruePeak measures the output true peak with the loudness
// meter on signals that exceed the ceiling: music-like audio 4 and 10 dB
// over it, a hard-clipped "loudness war" master, high tones whose
// inter-sample peaks exceed their sample peaks, and (worst case, looser
// bound) white noise at full level up to Nyquist.
func TestLimiterTruePeak(t *testing.T) {
	const rate, ch = 44100, 2
	clipped := musicLike(rate, ch, 4, 2.5, 31)
	for i, v := range clipped {
		clipped[i] = max(-1.1, min(1.1, v))
	}
	high := make([]float32, 4*rate*ch)
	for i := 0; i < len(high)/ch; i++ {
		tt := float64(i) / rate
		v := 0.6*math.Sin(2*math.Pi*9000*tt+0.7) + 0.5*math.Sin(2*math.Pi*11025*tt+math.Pi/4) + 0.3*math.Sin(2*math.Pi*3000*tt)
		high[i*ch], high[i*ch+1] = float32(v), float32(-v)
	}
	for _, c := range []struct {
		name  string
		x     []float32
		limit float64 // dBTP
	}{
		{"music +3 dBFS", musicLike(rate, ch, 4, 1.41, 32), -1},
		{"music +9 dBFS", musicLike(rate, ch, 4, 2.8, 33), -1},
		{"clipped master", clipped, -1},
		{"high tones", high, -1},
		{"white noise +3 dBFS (worst case)", whiteNoise(rate, ch, 2, 1.41, 34), 0},
	} {
		y, _ := limitAll(t, rate, ch, c.x, 1024)
		in, out := truePeakDB(t, rate, ch, c.x), truePeakDB(t, rate, ch, y)
		t.Logf("%s: input true peak %+.2f dBTP, output %+.3f dBTP", c.name, in, out)
		if out > c.limit {
			t.Errorf("%s: output true peak %+.3f dBTP above %v dBTP", c.name, out, c.limit)
		}
		if out < -2 {
			t.Errorf("%s: output true peak %+.3f dBTP: limiting far more than needed", c.name, out)
		}
	}
}

func TestLimiterChunkInvariance(t *testing.T) {
	x := musicLike(48000, 2, 1, 1.6, 41)
	ref, _ := limitAll(t, 48000, 2, x, 4096)
	for _, b := range []int{1, 7, 1000, 1025, 3000} {
		got, _ := limitAll(t, 48000, 2, x, b)
		if i := bitsEqual(ref, got); i >= 0 {
			t.Errorf("blocks of %d differ from 4096 at sample %d", b, i)
		}
	}
	x3 := musicLike(48000, 3, 0.5, 1.6, 42)
	ref, _ = limitAll(t, 48000, 3, x3, 4096)
	got, _ := limitAll(t, 48000, 3, x3, 7)
	if i := bitsEqual(ref, got); i >= 0 {
		t.Errorf("3 channels: blocks of 7 differ at %d", i)
	}
}

func TestLimiterNonFinite(t *testing.T) {
	for _, ch := range []int{1, 2} {
		x := musicLike(44100, ch, 0.5, 0.5, 51)
		for i := 1000; i < len(x); i += 1711 {
			x[i] = []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 1e38}[i%4]
		}
		y, _ := limitAll(t, 44100, ch, x, 512)
		for i, v := range y {
			if math.IsNaN(float64(v)) || math.Abs(float64(v)) > 0.8913 {
				t.Fatalf("%d ch: sample %d = %v", ch, i, v)
			}
		}
	}
}

func TestLimiterResetAndFlush(t *testing.T) {
	l, _ := NewLimiter(44100, 2, LimiterConfig{LookAhead: 3e6, Release: 50e6})
	if l.Latency() != 132+11 {
		t.Fatalf("latency %d", l.Latency())
	}
	x := musicLike(44100, 2, 0.2, 2, 61)
	a := append([]float32(nil), x...)
	l.Process(a)
	l.Reset()
	b := append([]float32(nil), x...)
	l.Process(b)
	if bitsEqual(a, b) >= 0 {
		t.Error("Reset does not restore the initial state")
	}
	total := 0
	buf := make([]float32, 100)
	for n := l.Flush(buf); n > 0; n = l.Flush(buf) {
		total += n
	}
	if total != l.Latency()*2 {
		t.Errorf("flushed %d samples, want %d", total, l.Latency()*2)
	}
}

func TestLimiterConfigErrors(t *testing.T) {
	for _, c := range []LimiterConfig{{CeilingDB: 1}, {CeilingDB: -30}, {CeilingDB: math.NaN()}, {LookAhead: -1}, {LookAhead: 1e9}, {Release: 1e10}} {
		if _, err := NewLimiter(44100, 2, c); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}

func TestLimiterNoAllocs(t *testing.T) {
	l, _ := NewLimiter(44100, 2, LimiterConfig{})
	x := musicLike(44100, 2, 0.1, 1.5, 71)
	buf := make([]float32, len(x))
	if a := testing.AllocsPerRun(20, func() { copy(buf, x); l.Process(buf); l.Flush(buf[:10]) }); a != 0 {
		t.Errorf("%v allocs", a)
	}
}
