package dsp

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/roomcast/roomcast/loudness"
)

// sine returns frames of an interleaved sine, the same in every channel.
func sine(rate, ch int, freq, amp float64, frames int) []float32 {
	out := make([]float32, frames*ch)
	for i := 0; i < frames; i++ {
		v := float32(amp * math.Sin(2*math.Pi*freq*float64(i)/float64(rate)))
		for c := 0; c < ch; c++ {
			out[i*ch+c] = v
		}
	}
	return out
}

// musicLike returns a deterministic signal with a music-like spectrum and
// crest factor: harmonic tones with vibrato (different per channel), pink
// noise (−3 dB/octave, Paul Kellet's three-pole approximation) and
// decaying low-passed noise bursts every 0.5 s (drum hits), scaled so that
// its sample peak is peak.
func musicLike(rate, ch int, seconds, peak float64, seed uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 7))
	frames := int(seconds * float64(rate))
	out := make([]float64, frames*ch)
	for c := 0; c < ch; c++ {
		f0 := 110.0 * float64(c+1)
		var b0, b1, b2, lp, hit float64
		for i := 0; i < frames; i++ {
			t := float64(i) / float64(rate)
			v := 0.0
			for h := 1; h <= 8; h++ {
				v += math.Sin(2*math.Pi*f0*float64(h)*t+0.3*math.Sin(2*math.Pi*5*t)) / float64(h)
			}
			w := rng.NormFloat64()
			b0 = 0.99765*b0 + w*0.0990460
			b1 = 0.96300*b1 + w*0.2965164
			b2 = 0.57000*b2 + w*1.0526913
			v += 0.3 * (b0 + b1 + b2 + w*0.1848)
			if i%(rate/2) == 0 {
				hit = 4
			}
			hit *= 0.9995
			lp = 0.6*lp + 0.4*rng.NormFloat64()
			v += hit * lp
			out[i*ch+c] = v
		}
	}
	m := 0.0
	for _, v := range out {
		m = math.Max(m, math.Abs(v))
	}
	res := make([]float32, len(out))
	for i, v := range out {
		res[i] = float32(v * peak / m)
	}
	return res
}

// whiteNoise returns uniform white noise with sample peak peak: the worst
// case for a short peak interpolator (full level up to Nyquist).
func whiteNoise(rate, ch int, seconds, peak float64, seed uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 9))
	x := make([]float32, int(seconds*float64(rate))*ch)
	for i := range x {
		x[i] = float32(peak * (2*rng.Float64() - 1))
	}
	return x
}

// truePeakDB measures the true peak with the loudness package.
func truePeakDB(t testing.TB, rate, ch int, x []float32) float64 {
	t.Helper()
	m, err := loudness.NewMeter(rate, ch)
	if err != nil {
		t.Fatal(err)
	}
	m.Write(x)
	return m.Result().TruePeak
}

// channel extracts channel c as float64.
func channel(x []float32, ch, c int) []float64 {
	out := make([]float64, len(x)/ch)
	for i := range out {
		out[i] = float64(x[i*ch+c])
	}
	return out
}

// sineFit fits a·sin(ωk) + b·cos(ωk) + d to x by least squares (ω = 2π·freq/rate,
// k counted from k0) and returns the amplitude, the phase and the RMS of the
// residual.
func sineFit(x []float64, freq, rate float64, k0 int) (amp, phase, resid float64) {
	w := 2 * math.Pi * freq / rate
	var m [3][3]float64
	var v [3]float64
	for i, y := range x {
		s, c := math.Sincos(w * float64(k0+i))
		b := [3]float64{s, c, 1}
		for r := 0; r < 3; r++ {
			for q := 0; q < 3; q++ {
				m[r][q] += b[r] * b[q]
			}
			v[r] += b[r] * y
		}
	}
	p := solve3(m, v)
	var e float64
	for i, y := range x {
		s, c := math.Sincos(w * float64(k0+i))
		d := y - (p[0]*s + p[1]*c + p[2])
		e += d * d
	}
	return math.Hypot(p[0], p[1]), math.Atan2(p[1], p[0]), math.Sqrt(e / float64(len(x)))
}

func solve3(m [3][3]float64, v [3]float64) [3]float64 {
	for i := 0; i < 3; i++ {
		piv := i
		for r := i + 1; r < 3; r++ {
			if math.Abs(m[r][i]) > math.Abs(m[piv][i]) {
				piv = r
			}
		}
		m[i], m[piv] = m[piv], m[i]
		v[i], v[piv] = v[piv], v[i]
		for r := i + 1; r < 3; r++ {
			f := m[r][i] / m[i][i]
			for q := i; q < 3; q++ {
				m[r][q] -= f * m[i][q]
			}
			v[r] -= f * v[i]
		}
	}
	var x [3]float64
	for i := 2; i >= 0; i-- {
		s := v[i]
		for q := i + 1; q < 3; q++ {
			s -= m[i][q] * x[q]
		}
		x[i] = s / m[i][i]
	}
	return x
}

func rms(x []float64) float64 {
	s := 0.0
	for _, v := range x {
		s += v * v
	}
	return math.Sqrt(s / float64(len(x)))
}

func db(x float64) float64 { return 20 * math.Log10(x) }

// bitsEqual compares float32 slices bit for bit and returns the first
// differing index or -1.
func bitsEqual(a, b []float32) int {
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return i
		}
	}
	return -1
}

// resampleAll runs x through a new resampler with the given block sizes
// (cycled) and drains it.
func resampleAll(t testing.TB, in, out, ch int, q Quality, x []float32, inBlock, outBlock int) []float32 {
	t.Helper()
	r, err := NewResampler(in, out, ch, q)
	if err != nil {
		t.Fatal(err)
	}
	var res []float32
	buf := make([]float32, outBlock*ch)
	for len(x) > 0 {
		c, p := r.Process(x[:min(len(x), inBlock*ch)], buf)
		res = append(res, buf[:p]...)
		x = x[c:]
		if c == 0 && p == 0 {
			t.Fatal("no progress")
		}
	}
	for {
		n := r.Drain(buf)
		if n == 0 {
			break
		}
		res = append(res, buf[:n]...)
	}
	return res
}
