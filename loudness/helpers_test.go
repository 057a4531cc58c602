package loudness

import (
	"math"
	"math/rand/v2"
	"testing"
)

// testRates are the sample rates every EBU case runs at: the two common
// rates and an odd (prime) rate that is not a multiple of 10 Hz.
var testRates = []int{44100, 48000, 69313}

// tone returns frames of a sine of freq Hz, one amplitude per channel given
// in dBFS (peak level, 0 dBFS = amplitude 1), starting at frame start so
// consecutive segments join without a phase jump.
func tone(rate int, freq float64, frames, start int, chanDB []float64) []float32 {
	nch := len(chanDB)
	out := make([]float32, frames*nch)
	amp := make([]float64, nch)
	for c, db := range chanDB {
		amp[c] = math.Pow(10, db/20)
	}
	w := 2 * math.Pi * freq / float64(rate)
	for i := 0; i < frames; i++ {
		s := math.Sin(w * float64(start+i))
		for c := range amp {
			out[i*nch+c] = float32(amp[c] * s)
		}
	}
	return out
}

// segment is a part of a test sequence: a 1 kHz sine at the same level in
// every channel for a duration.
type segment struct {
	dBFS    float64
	seconds float64
}

// sineSequence concatenates 1 kHz stereo segments (EBU Tech 3341/3342 style).
func sineSequence(rate, channels int, segs []segment) []float32 {
	var out []float32
	start := 0
	for _, s := range segs {
		n := int(math.Round(s.seconds * float64(rate)))
		db := make([]float64, channels)
		for c := range db {
			db[c] = s.dBFS
		}
		out = append(out, tone(rate, 1000, n, start, db)...)
		start += n
	}
	return out
}

// measure runs samples through a fresh meter in one Write.
func measure(t testing.TB, rate, channels int, samples []float32) Result {
	t.Helper()
	m, err := NewMeter(rate, channels)
	if err != nil {
		t.Fatal(err)
	}
	m.Write(samples)
	return m.Result()
}

// musicLike returns a deterministic, music-like stereo-or-more signal:
// pinkish noise plus a few drifting harmonic tones, shaped by a beat
// envelope and by slower section level changes (range roughly 15 dB),
// peaking around −1 dBFS.
func musicLike(rate, channels int, seconds float64, seed uint64) []float32 {
	n := int(seconds * float64(rate))
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	out := make([]float32, n*channels)
	// Pinkish noise: sum of three one-pole low-passes of white noise.
	var p1, p2, p3 [8]float64
	a1 := math.Exp(-2 * math.Pi * 60 / float64(rate))
	a2 := math.Exp(-2 * math.Pi * 600 / float64(rate))
	a3 := math.Exp(-2 * math.Pi * 6000 / float64(rate))
	freqs := []float64{110, 220, 330, 440 * 1.5}
	var phase [4]float64
	section := 1.0
	for i := 0; i < n; i++ {
		tsec := float64(i) / float64(rate)
		if i%(rate*8) == 0 { // new section every 8 s
			section = math.Pow(10, (rng.Float64()*15-15)/20)
			for k := range freqs {
				freqs[k] *= math.Pow(2, float64(rng.IntN(5)-2)/12)
			}
		}
		beat := 0.55 + 0.45*math.Pow(math.Abs(math.Sin(math.Pi*2*tsec)), 4)
		var tones float64
		for k, f := range freqs {
			phase[k] += 2 * math.Pi * f / float64(rate)
			tones += math.Sin(phase[k]) / float64(k+2)
		}
		for c := 0; c < channels && c < 8; c++ {
			wn := rng.NormFloat64()
			p1[c] = a1*p1[c] + (1-a1)*wn
			p2[c] = a2*p2[c] + (1-a2)*wn
			p3[c] = a3*p3[c] + (1-a3)*wn
			noise := 6*p1[c] + 2.5*p2[c] + 0.9*p3[c] + 0.08*wn
			v := section * beat * (0.22*noise + 0.35*tones)
			out[i*channels+c] = float32(math.Max(-0.89, math.Min(0.89, v)))
		}
	}
	return out
}
