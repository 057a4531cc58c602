package dsp

import (
	"math"
	"testing"
)

// TestChainUnityBitExact: 0 dB gain, limiter (nothing near the ceiling),
// 100 % volume and equal rates: the chain output is the input delayed by
// the limiter's latency, bit for bit, across a gapless track boundary
// where Set(0) is called again, for several block sizes.
func TestChainUnityBitExact(t *testing.T) {
	const rate = 44100
	a := musicLike(rate, 2, 0.5, 0.5, 101) // track 1 (fast path)
	b := sine(rate, 2, 330, 0.6, rate/2)   // track 2 (limiter active path)
	src := append(append([]float32(nil), a...), b...)
	for _, block := range []int{1, 7, 4096} {
		c := newChain(t, rate, rate, QualityPi, 0, 100)
		var out []float32
		for off := 0; off < len(src); {
			end := min(len(src), off+block*2)
			if off < len(a) && end > len(a) {
				end = len(a) // split the block at the boundary
			}
			if off == len(a) {
				c.g.Set(0) // next track, same (0 dB) gain
			}
			buf := append([]float32(nil), src[off:end]...)
			out = append(out, c.process(buf)...)
			off = end
		}
		out = append(out, c.flush()...)
		want := delayed(src, c.l.Latency(), 2)
		if i := bitsEqual(want, out); i >= 0 {
			t.Fatalf("blocks of %d: chain output differs from the delayed input at sample %d", block, i)
		}
	}
}

// TestChainTruePeak: a quiet track boosted by its capped gain, and a hot
// track whose ReplayGain tags carry no peak (so no cap), both through gain
// → limiter → volume → resampler. At the source rate the output true peak
// stays at or below −1 dBTP. Resampling after the limiter moves true peaks
// slightly (the new sample grid and the filter's roll-off above 17.6 kHz):
// the bound there is −0.9 dBTP.
func TestChainTruePeak(t *testing.T) {
	const rate = 44100
	for _, c := range []struct {
		name  string
		peak  float64
		info  LoudnessInfo
		out   int
		limit float64
	}{
		{"RG gain without peak, +6 dB", 0.9, LoudnessInfo{RGTrack: ReplayGain{GainDB: 2, HasGain: true}}, 44100, -1},
		{"measured, capped", 0.5, LoudnessInfo{Track: Measurement{LUFS: -24, TruePeakDB: -5.5, HasLoudness: true, HasPeak: true}}, 44100, -1},
		{"RG gain without peak, +6 dB, to 48 kHz", 0.9, LoudnessInfo{RGTrack: ReplayGain{GainDB: 2, HasGain: true}}, 48000, -0.9},
	} {
		d := ChooseGain(DefaultGainPolicy(), false, c.info)
		x := musicLike(rate, 2, 3, c.peak, 111)
		ch := newChain(t, rate, c.out, QualityPi, d.GainDB, 100)
		var out []float32
		for off := 0; off < len(x); off += 2048 {
			buf := append([]float32(nil), x[off:min(len(x), off+2048)]...)
			out = append(out, ch.process(buf)...)
		}
		tp := truePeakDB(t, c.out, 2, out)
		t.Logf("%s: gain %+.2f dB (%v), output true peak %+.3f dBTP", c.name, d.GainDB, d.Source, tp)
		if tp > c.limit || math.IsNaN(tp) {
			t.Errorf("%s: output true peak %+.3f dBTP", c.name, tp)
		}
	}
}

func TestChainNoAllocs(t *testing.T) {
	c := newChain(t, 44100, 48000, QualityPi, -3, 70)
	x := musicLike(44100, 2, 0.2, 1.5, 121)
	buf := make([]float32, 2*1024)
	off := 0
	allocs := testing.AllocsPerRun(100, func() {
		if off+len(buf) > len(x) {
			off = 0
		}
		copy(buf, x[off:])
		off += len(buf)
		c.v.SetVolume(float64(off % 100))
		c.process(buf)
	})
	if allocs != 0 {
		t.Errorf("%v allocs per block", allocs)
	}
}

func TestCrossfade(t *testing.T) {
	const ch, length = 2, 1000
	out := make([]float32, 2*1200)
	in := make([]float32, 2*1200)
	for i := range out {
		out[i], in[i] = 1, 1
	}
	dst := make([]float32, len(out))
	// in two calls, positions continuing
	n := Crossfade(dst[:600], out[:600], in[:600], ch, 0, length)
	n += Crossfade(dst[600:], out[600:], in[600:], ch, 300, length)
	if n != len(dst) {
		t.Fatalf("wrote %d", n)
	}
	if dst[0] != 1 || dst[2*length] != 1 {
		t.Errorf("ends: %v %v", dst[0], dst[2*length])
	}
	for i := 0; i < length; i++ {
		gOut, gIn := math.Cos(float64(i)/length*math.Pi/2), math.Sin(float64(i)/length*math.Pi/2)
		if math.Abs(float64(dst[2*i])-(gOut+gIn)) > 1e-6 || math.Abs(gOut*gOut+gIn*gIn-1) > 1e-12 {
			t.Fatalf("frame %d: %v", i, dst[2*i])
		}
	}
	if Crossfade(dst, out, in, 0, 0, 10) != 0 {
		t.Error("0 channels")
	}
}
