package loudness

import (
	"fmt"
	"math"
	"testing"
)

// EBU Tech 3341 (V3 2016 / V4 2023) minimum requirements, cases 1–6:
// integrated loudness of 1 kHz sine sequences, ±0.1 LU. Levels are peak
// dBFS per channel. Case 6 is 5.0 material (L, R, C, Ls, Rs at −28, −28,
// −24, −30, −30 dBFS); it runs once as 6-channel 5.1 with a silent LFE (as
// the test set's WAVE_FORMAT_EXTENSIBLE file) and once as 5 channels with
// explicit 5.0 weights.
func TestTech3341Integrated(t *testing.T) {
	type tc struct {
		name  string
		segs  []segment // stereo 1 kHz segments
		multi []float64 // per-channel dBFS for the 20 s multichannel case
		w     []float64 // explicit weights for multi; nil = DefaultWeights
		want  float64
	}
	cases := []tc{
		{name: "case1", segs: []segment{{-23, 20}}, want: -23},
		{name: "case2", segs: []segment{{-33, 20}}, want: -33},
		{name: "case3", segs: []segment{{-36, 10}, {-23, 60}, {-36, 10}}, want: -23},
		{name: "case4", segs: []segment{{-72, 10}, {-36, 10}, {-23, 60}, {-36, 10}, {-72, 10}}, want: -23},
		{name: "case5", segs: []segment{{-26, 20}, {-20, 20.1}, {-26, 20}}, want: -23},
		{name: "case6/5.1", multi: []float64{-28, -28, -24, math.Inf(-1), -30, -30}, want: -23},
		{name: "case6/5.0", multi: []float64{-28, -28, -24, -30, -30}, w: []float64{1, 1, 1, SurroundWeight, SurroundWeight}, want: -23},
	}
	for _, c := range cases {
		for _, rate := range testRates {
			t.Run(fmt.Sprintf("%s/%d", c.name, rate), func(t *testing.T) {
				t.Parallel()
				var r Result
				if c.multi != nil {
					w := c.w
					if w == nil {
						w = DefaultWeights(len(c.multi))
					}
					m, err := NewMeterWeights(rate, w)
					if err != nil {
						t.Fatal(err)
					}
					m.Write(tone(rate, 1000, 20*rate, 0, c.multi))
					r = m.Result()
				} else {
					r = measure(t, rate, 2, sineSequence(rate, 2, c.segs))
				}
				t.Logf("TECH3341 %s rate=%d I=%.3f LUFS (want %.1f ±0.1)", c.name, rate, r.Integrated, c.want)
				if !r.HasLoudness || math.Abs(r.Integrated-c.want) > 0.1 {
					t.Errorf("integrated = %.3f LUFS (has=%v), want %.1f ±0.1", r.Integrated, r.HasLoudness, c.want)
				}
			})
		}
	}
}

// tpSignal regenerates an EBU Tech 3341 true-peak test signal at any rate:
// a stereo sine of the analog frequency the 48 kHz file uses, the same
// start phase and peak amplitude, 2 s long, with 10 ms raised-cosine
// fade-in and fade-out (so the start does not add a step whose
// reconstruction rings above the sine's peak). Because frequency, phase and
// amplitude are analog quantities, the true peak is the amplitude at every
// rate; at 48 kHz it is the EBU signal itself.
func tpSignal(rate int, freq, phaseDeg, amp float64) []float32 {
	n := 2 * rate
	fade := rate / 100
	out := make([]float32, 2*n)
	w := 2 * math.Pi * freq / float64(rate)
	ph := phaseDeg * math.Pi / 180
	for i := 0; i < n; i++ {
		g := 1.0
		if k := min(i, n-1-i); k < fade {
			g = 0.5 - 0.5*math.Cos(math.Pi*float64(k)/float64(fade))
		}
		v := float32(g * amp * math.Sin(w*float64(i)+ph))
		out[2*i], out[2*i+1] = v, v
	}
	return out
}

// EBU Tech 3341 true-peak cases 15–19 (defined at 48 kHz): sines at fs/4
// (12 kHz), fs/6 (8 kHz) and fs/8 (6 kHz) with phase offsets that put the
// waveform peaks between samples; expected true peak −6.0 dBTP (amplitude
// 0.5) or +3.0 dBTP (amplitude 1.41), tolerance +0.2/−0.4 dB.
func TestTech3341TruePeak(t *testing.T) {
	cases := []struct {
		name             string
		freq, phase, amp float64
		want             float64
	}{
		{"case15", 12000, 0, 0.5, -6.0},
		{"case16", 12000, 45, 0.5, -6.0},
		{"case17", 8000, 60, 0.5, -6.0},
		{"case18", 6000, 67.5, 0.5, -6.0},
		{"case19", 12000, 45, 1.41, 3.0},
	}
	for _, c := range cases {
		for _, rate := range testRates {
			t.Run(fmt.Sprintf("%s/%d", c.name, rate), func(t *testing.T) {
				t.Parallel()
				r := measure(t, rate, 2, tpSignal(rate, c.freq, c.phase, c.amp))
				t.Logf("TECH3341 %s rate=%d TP=%.3f dBTP SP=%.3f dBFS (want %.1f +0.2/-0.4)", c.name, rate, r.TruePeak, r.SamplePeak, c.want)
				if r.TruePeak > c.want+0.2 || r.TruePeak < c.want-0.4 {
					t.Errorf("true peak = %.3f dBTP, want %.1f +0.2/−0.4", r.TruePeak, c.want)
				}
				if r.SamplePeak > r.TruePeak {
					t.Errorf("sample peak %.3f above true peak %.3f", r.SamplePeak, r.TruePeak)
				}
			})
		}
	}
	// At 48 kHz, cases 16 and 19 have every sample at amp/√2: the sample
	// peak must be 3 dB under the true peak (this is what the test is for).
	r := measure(t, 48000, 2, tpSignal(48000, 12000, 45, 0.5))
	if d := r.TruePeak - r.SamplePeak; d < 2.8 || d > 3.2 {
		t.Errorf("case16 at 48 kHz: true peak − sample peak = %.3f dB, want ≈ 3.01", d)
	}
}

// EBU Tech 3342 LRA cases 1–4 (1 kHz stereo sine sequences), ±1 LU.
// Cases 5 and 6 of Tech 3342 are authentic programme material distributed
// only as WAV files (seq-3341-7_seq-3342-5, seq-3341-2011-8_seq-3342-6)
// and cannot be generated in code, so they are not part of this test.
func TestTech3342LoudnessRange(t *testing.T) {
	cases := []struct {
		name string
		segs []segment
		want float64
	}{
		{"case1", []segment{{-20, 20}, {-30, 20}}, 10},
		{"case2", []segment{{-20, 20}, {-15, 20}}, 5},
		{"case3", []segment{{-40, 20}, {-20, 20}}, 20},
		{"case4", []segment{{-50, 20}, {-35, 20}, {-20, 20}, {-35, 20}, {-50, 20}}, 15},
	}
	for _, c := range cases {
		for _, rate := range testRates {
			t.Run(fmt.Sprintf("%s/%d", c.name, rate), func(t *testing.T) {
				t.Parallel()
				r := measure(t, rate, 2, sineSequence(rate, 2, c.segs))
				t.Logf("TECH3342 %s rate=%d LRA=%.3f LU (want %.0f ±1)", c.name, rate, r.Range, c.want)
				if math.Abs(r.Range-c.want) > 1 {
					t.Errorf("LRA = %.3f LU, want %.0f ±1", r.Range, c.want)
				}
			})
		}
	}
}
