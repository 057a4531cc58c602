package loudness

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// writeChunked feeds samples to a fresh meter in pieces of size chunk.
func writeChunked(t *testing.T, rate, channels int, samples []float32, chunk int) Result {
	t.Helper()
	m, err := NewMeter(rate, channels)
	if err != nil {
		t.Fatal(err)
	}
	for len(samples) > 0 {
		n := min(chunk, len(samples))
		m.Write(samples[:n])
		samples = samples[n:]
	}
	return m.Result()
}

// TestChunkingInvariance: the result is bit-for-bit the same whatever the
// Write sizes, including sizes that split frames.
func TestChunkingInvariance(t *testing.T) {
	for _, rate := range []int{44100, 69313} {
		for _, nch := range []int{1, 2, 6} {
			sig := musicLike(rate, nch, 7.3, 7)
			want := writeChunked(t, rate, nch, sig, len(sig))
			if !want.HasLoudness {
				t.Fatalf("rate %d ch %d: reference has no loudness", rate, nch)
			}
			for _, chunk := range []int{1, 7, 4096} {
				got := writeChunked(t, rate, nch, sig, chunk)
				if got != want {
					t.Errorf("rate %d ch %d chunk %d:\n got %+v\nwant %+v", rate, nch, chunk, got, want)
				}
			}
		}
	}
}

func TestSilence(t *testing.T) {
	r := measure(t, 48000, 2, make([]float32, 2*48000*5))
	if r.HasLoudness || !math.IsInf(r.Integrated, -1) {
		t.Errorf("silence: Integrated = %v, HasLoudness = %v; want -Inf, false", r.Integrated, r.HasLoudness)
	}
	if r.Range != 0 || !math.IsInf(r.TruePeak, -1) || !math.IsInf(r.SamplePeak, -1) {
		t.Errorf("silence: Range %v TruePeak %v SamplePeak %v; want 0, -Inf, -Inf", r.Range, r.TruePeak, r.SamplePeak)
	}
	if !math.IsInf(r.MaxMomentary, -1) || !math.IsInf(r.MaxShortTerm, -1) {
		t.Errorf("silence: MaxMomentary %v MaxShortTerm %v; want -Inf (windows are silent)", r.MaxMomentary, r.MaxShortTerm)
	}
	if r.Frames != 5*48000 || r.Duration.Seconds() != 5 {
		t.Errorf("silence: Frames %d Duration %v; want 240000, 5s", r.Frames, r.Duration)
	}
	// Below the absolute gate (−80 dBFS sine ≈ −80 LUFS) is not loudness.
	r = measure(t, 48000, 2, sineSequence(48000, 2, []segment{{-80, 5}}))
	if r.HasLoudness {
		t.Errorf("-80 dBFS sine: HasLoudness true, Integrated %v", r.Integrated)
	}
	if math.Abs(r.SamplePeak+80) > 0.01 {
		t.Errorf("-80 dBFS sine: sample peak %v, want -80", r.SamplePeak)
	}
}

// TestShortInput: inputs shorter than one 400 ms block still give peaks and
// duration, and no loudness; nothing is NaN.
func TestShortInput(t *testing.T) {
	for _, frames := range []int{0, 1, 100, 19199} { // 19199 < 400 ms at 48 kHz
		sig := tone(48000, 1000, frames, 0, []float64{-6, -6})
		m, _ := NewMeter(48000, 2)
		m.Write(sig)
		r := m.Result()
		if r.HasLoudness || !math.IsInf(r.Integrated, -1) || r.Range != 0 {
			t.Errorf("%d frames: %+v; want no loudness", frames, r)
		}
		if !math.IsInf(m.Momentary(), -1) || !math.IsInf(m.ShortTerm(), -1) {
			t.Errorf("%d frames: Momentary %v ShortTerm %v, want -Inf", frames, m.Momentary(), m.ShortTerm())
		}
		if r.Frames != int64(frames) {
			t.Errorf("%d frames: Frames = %d", frames, r.Frames)
		}
		if frames > 100 && math.Abs(r.SamplePeak+6) > 0.05 {
			t.Errorf("%d frames: sample peak %.3f, want -6", frames, r.SamplePeak)
		}
		assertNoNaN(t, fmt.Sprintf("%d frames", frames), r)
	}
	// Exactly one block (400 ms) is enough for an integrated value.
	r := measure(t, 48000, 2, tone(48000, 1000, 19200, 0, []float64{-23, -23}))
	if !r.HasLoudness || math.Abs(r.Integrated+23) > 0.1 {
		t.Errorf("400 ms: Integrated %v HasLoudness %v, want -23", r.Integrated, r.HasLoudness)
	}
}

func assertNoNaN(t *testing.T, what string, r Result) {
	t.Helper()
	for name, v := range map[string]float64{
		"Integrated": r.Integrated, "Range": r.Range, "TruePeak": r.TruePeak,
		"SamplePeak": r.SamplePeak, "MaxMomentary": r.MaxMomentary, "MaxShortTerm": r.MaxShortTerm,
	} {
		if math.IsNaN(v) {
			t.Errorf("%s: %s is NaN", what, name)
		}
	}
}

// TestNonFiniteAndHugeInput: NaN and ±Inf samples count as 0 (documented),
// huge finite values are measured without panicking or producing NaN.
func TestNonFiniteAndHugeInput(t *testing.T) {
	const rate = 48000
	clean := sineSequence(rate, 2, []segment{{-23, 10}})
	dirty := append([]float32(nil), clean...)
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	// Replace samples by NaN/Inf only where the clean signal is 0 so the
	// documented NaN→0 rule makes both signals identical.
	for i := range dirty {
		if dirty[i] == 0 {
			switch i % 3 {
			case 0:
				dirty[i] = nan
			case 1:
				dirty[i] = inf
			default:
				dirty[i] = -inf
			}
		}
	}
	dirty = append(dirty, nan, inf, -inf, nan) // plus a tail of garbage
	clean = append(clean, 0, 0, 0, 0)
	if got, want := measure(t, rate, 2, dirty), measure(t, rate, 2, clean); got != want {
		t.Errorf("NaN/Inf not treated as 0:\n got %+v\nwant %+v", got, want)
	}
	all := make([]float32, 2*rate)
	for i := range all {
		all[i] = nan
	}
	r := measure(t, rate, 2, all)
	assertNoNaN(t, "all NaN", r)
	if r.HasLoudness || !math.IsInf(r.TruePeak, -1) {
		t.Errorf("all NaN: %+v, want silence", r)
	}

	huge := make([]float32, 2*rate*4)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range huge {
		huge[i] = float32((rng.Float64()*2 - 1) * math.MaxFloat32)
	}
	r = measure(t, rate, 2, huge)
	assertNoNaN(t, "huge", r)
	if !r.HasLoudness || math.IsInf(r.Integrated, 0) || r.TruePeak < 700 {
		t.Errorf("huge: %+v; want finite loudness and ~+770 dBTP", r)
	}
}

// TestLFEExcluded: with 6 channels (5.1) the 4th channel does not count for
// loudness but does for the peaks.
func TestLFEExcluded(t *testing.T) {
	const rate = 48000
	base := tone(rate, 1000, 5*rate, 0, []float64{-23, -23, math.Inf(-1), math.Inf(-1), math.Inf(-1), math.Inf(-1)})
	lfe := tone(rate, 60, 5*rate, 0, []float64{-23, -23, math.Inf(-1), -1, math.Inf(-1), math.Inf(-1)})
	for i := 0; i < len(lfe); i += 6 {
		lfe[i], lfe[i+1] = base[i], base[i+1]
	}
	a, b := measure(t, rate, 6, base), measure(t, rate, 6, lfe)
	if a.Integrated != b.Integrated {
		t.Errorf("LFE changed loudness: %v vs %v", a.Integrated, b.Integrated)
	}
	if math.Abs(b.SamplePeak+1) > 0.01 {
		t.Errorf("LFE peak not measured: sample peak %v, want -1", b.SamplePeak)
	}
	// Surround channels weigh +1.5 dB: a sine in Ls alone reads 1.5 dB
	// louder than the same sine in L alone.
	l := measure(t, rate, 6, tone(rate, 1000, 5*rate, 0, []float64{-20, math.Inf(-1), math.Inf(-1), math.Inf(-1), math.Inf(-1), math.Inf(-1)}))
	ls := measure(t, rate, 6, tone(rate, 1000, 5*rate, 0, []float64{math.Inf(-1), math.Inf(-1), math.Inf(-1), math.Inf(-1), -20, math.Inf(-1)}))
	if d := ls.Integrated - l.Integrated; math.Abs(d-10*math.Log10(SurroundWeight)) > 1e-6 {
		t.Errorf("surround weighting: Ls − L = %.4f dB, want %.4f", d, 10*math.Log10(SurroundWeight))
	}
}

func TestMonoAndGenericChannels(t *testing.T) {
	const rate = 44100
	// Mono 1 kHz at −20 dBFS reads −23 LUFS (−3 dB against stereo).
	r := measure(t, rate, 1, tone(rate, 1000, 5*rate, 0, []float64{-20}))
	if math.Abs(r.Integrated+23.0) > 0.05 {
		t.Errorf("mono: %v, want -23.0", r.Integrated)
	}
	// 4 channels, all weight 1: 4× the energy of one = +6.02 dB.
	r4 := measure(t, rate, 4, tone(rate, 1000, 5*rate, 0, []float64{-20, -20, -20, -20}))
	if d := r4.Integrated - r.Integrated; math.Abs(d-10*math.Log10(4)) > 1e-6 {
		t.Errorf("4 channels: %.4f dB above mono, want 6.02", d)
	}
}

func TestConstructorErrors(t *testing.T) {
	bad := []struct {
		rate int
		w    []float64
	}{
		{7999, []float64{1}},
		{768001, []float64{1}},
		{48000, nil},
		{48000, make([]float64, MaxChannels+1)},
		{48000, []float64{1, math.NaN()}},
		{48000, []float64{1, -1}},
		{48000, []float64{math.Inf(1)}},
	}
	for _, b := range bad {
		if m, err := NewMeterWeights(b.rate, b.w); err == nil || m != nil {
			t.Errorf("NewMeterWeights(%d, %v) = %v, %v; want error", b.rate, b.w, m, err)
		}
	}
	if _, err := NewMeter(48000, 0); err == nil {
		t.Error("NewMeter(48000, 0): want error")
	}
	if _, err := NewMeter(48000, 65); err == nil {
		t.Error("NewMeter(48000, 65): want error")
	}
	m, err := NewMeter(69313, 3)
	if err != nil || m.SampleRate() != 69313 || m.Channels() != 3 {
		t.Errorf("NewMeter(69313, 3) = %v, %v", m, err)
	}
}

// TestAlbum: album loudness gates the blocks of all tracks together, which
// is not the mean of the track values; album peak is the maximum.
func TestAlbum(t *testing.T) {
	tracks := []struct {
		rate int
		segs []segment
	}{
		{44100, []segment{{-20, 30}}},
		{48000, []segment{{-26, 10}}},
		{48000, []segment{{-45, 20}}}, // gated out by the album relative gate
		{69313, nil},                  // silent/empty track
	}
	var meters []*Meter
	var all []float32 // every track at 48 kHz in one programme
	for _, tr := range tracks {
		m, _ := NewMeter(tr.rate, 2)
		m.Write(sineSequence(tr.rate, 2, tr.segs))
		meters = append(meters, m)
		all = append(all, sineSequence(48000, 2, tr.segs)...)
	}
	album := Album(meters...)
	// Reference: the concatenation measured as one programme (blocks that
	// straddle track boundaries aside, the two must agree closely).
	one := measure(t, 48000, 2, all)
	if math.Abs(album.Integrated-one.Integrated) > 0.05 {
		t.Errorf("album integrated %.3f, concatenated programme %.3f", album.Integrated, one.Integrated)
	}
	// Analytic: blocks at −20 (30 s, ~297 blocks) and −26 (10 s, ~97
	// blocks); −45 is gated out.
	n20, n26 := 297.0, 97.0
	want := 10 * math.Log10((n20*math.Pow(10, -2.0)+n26*math.Pow(10, -2.6))/(n20+n26))
	if math.Abs(album.Integrated-want) > 0.05 {
		t.Errorf("album integrated %.3f, want ≈ %.3f", album.Integrated, want)
	}
	if math.Abs(album.SamplePeak+20) > 0.01 || album.TruePeak < album.SamplePeak {
		t.Errorf("album peaks: sample %.3f true %.3f, want -20", album.SamplePeak, album.TruePeak)
	}
	if album.Frames != meters[0].Result().Frames+meters[1].Result().Frames+meters[2].Result().Frames {
		t.Errorf("album frames %d", album.Frames)
	}
	if album.Duration.Seconds() < 59.99 || album.Duration.Seconds() > 60.01 {
		t.Errorf("album duration %v, want 60s", album.Duration)
	}
	// Album of one meter equals its Result; Album of nothing is empty.
	if a, r := Album(meters[0]), meters[0].Result(); a != r {
		t.Errorf("Album(m) = %+v, m.Result() = %+v", a, r)
	}
	if e := Album(nil); e.HasLoudness || !math.IsInf(e.Integrated, -1) || !math.IsInf(e.TruePeak, -1) {
		t.Errorf("Album(nil) = %+v", e)
	}
}

// TestResetReuse: a reset meter measures like a new one.
func TestResetReuse(t *testing.T) {
	sig := musicLike(48000, 2, 5, 3)
	m, _ := NewMeter(48000, 2)
	m.Write(sineSequence(48000, 2, []segment{{-3, 4}}))
	m.Write(sig[:3]) // leave a partial frame behind
	m.Reset()
	m.Write(sig)
	if got, want := m.Result(), measure(t, 48000, 2, sig); got != want {
		t.Errorf("after Reset:\n got %+v\nwant %+v", got, want)
	}
}

// TestMomentaryShortTerm follows EBU Tech 3341 cases 9 and 12 in spirit: a
// steady −23 LUFS tone reads −23 on the momentary and short-term meters,
// and Result reports their maxima.
func TestMomentaryShortTerm(t *testing.T) {
	for _, rate := range testRates {
		m, _ := NewMeter(rate, 2)
		m.Write(sineSequence(rate, 2, []segment{{-23, 3}}))
		if v := m.Momentary(); math.Abs(v+23) > 0.1 {
			t.Errorf("%d: momentary %.3f", rate, v)
		}
		if v := m.ShortTerm(); math.Abs(v+23) > 0.1 {
			t.Errorf("%d: short-term %.3f", rate, v)
		}
		m.Write(sineSequence(rate, 2, []segment{{-13, 0.5}}))
		r := m.Result()
		if math.Abs(r.MaxMomentary+13) > 0.1 {
			t.Errorf("%d: max momentary %.3f, want -13", rate, r.MaxMomentary)
		}
		// The last 3 s window (0.5–3.5 s) holds 2.5 s at −23 and 0.5 s at −13.
		want := 10 * math.Log10((2.5*math.Pow(10, -2.3)+0.5*math.Pow(10, -1.3))/3)
		if math.Abs(r.MaxShortTerm-want) > 0.1 {
			t.Errorf("%d: max short-term %.3f, want %.3f", rate, r.MaxShortTerm, want)
		}
	}
}

// TestWriteDoesNotAllocate: steady-state Write allocates nothing.
func TestWriteDoesNotAllocate(t *testing.T) {
	sig := musicLike(44100, 2, 2, 5)
	m, _ := NewMeter(44100, 2)
	chunk := sig[:4093] // odd size: exercises the partial-frame carry
	allocs := testing.AllocsPerRun(200, func() { m.Write(chunk) })
	if allocs != 0 {
		t.Errorf("Write allocates %.1f times per call, want 0", allocs)
	}
}

// TestResultDoesNotChangeMeter: Result is a snapshot; writing may continue.
func TestResultDoesNotChangeMeter(t *testing.T) {
	sig := musicLike(48000, 2, 6, 11)
	m, _ := NewMeter(48000, 2)
	m.Write(sig[:len(sig)/2+1])
	first := m.Result()
	if first != m.Result() {
		t.Error("Result is not repeatable")
	}
	m.Write(sig[len(sig)/2+1:])
	if got, want := m.Result(), measure(t, 48000, 2, sig); got != want {
		t.Errorf("Result in the middle changed the measurement:\n got %+v\nwant %+v", got, want)
	}
}

// TestRelativeGates pins the relative gates (−10 LU for integrated, −20 LU
// for LRA), which the EBU sequences above do not discriminate. Stereo
// 1 kHz at X dBFS per channel reads X LUFS.
func TestRelativeGates(t *testing.T) {
	energy := func(lufs float64) float64 { return math.Pow(10, lufs/10) }
	lufs := func(e float64) float64 { return 10 * math.Log10(e) }
	for _, rate := range testRates {
		// −31 is 8.3 LU under the mean (−22.68): inside the −10 LU gate.
		r := measure(t, rate, 2, sineSequence(rate, 2, []segment{{-20, 20}, {-31, 20}}))
		want := lufs((energy(-20) + energy(-31)) / 2)
		if math.Abs(r.Integrated-want) > 0.05 {
			t.Errorf("%d: −20/−31: integrated %.3f, want %.3f (−31 must pass the −10 LU gate)", rate, r.Integrated, want)
		}
		// −34 is 11.2 LU under the mean (−22.84): gated out.
		r = measure(t, rate, 2, sineSequence(rate, 2, []segment{{-20, 20}, {-34, 20}}))
		if math.Abs(r.Integrated+20) > 0.05 {
			t.Errorf("%d: −20/−34: integrated %.3f, want −20.0 (−34 must be gated out)", rate, r.Integrated)
		}
		// LRA: −39 is 16 LU under the short-term mean (−22.96), inside
		// the −20 LU gate, so the range spans both levels.
		r = measure(t, rate, 2, sineSequence(rate, 2, []segment{{-20, 20}, {-39, 20}}))
		if math.Abs(r.Range-19) > 0.5 {
			t.Errorf("%d: −20/−39: LRA %.3f, want 19", rate, r.Range)
		}
	}
}
