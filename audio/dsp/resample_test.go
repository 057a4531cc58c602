package dsp

import (
	"math"
	"math/rand/v2"
	"testing"
)

// toneResult resamples a full-scale-ish sine (−1 dBFS) of freq Hz and
// reports the fitted output amplitude relative to the input (dB), the
// residual after removing the fitted sine relative to the input amplitude
// (THD+N, aliases and images, dB), and the delay of the output relative to
// the ideal k·in/out timing, in output frames.
func toneResult(t testing.TB, in, out int, q Quality, freq float64) (gainDB, residDB, delay float64) {
	t.Helper()
	const amp = 0.891
	frames := in / 2 // 0.5 s
	x := sine(in, 1, freq, amp, frames)
	y := resampleAll(t, in, out, 1, q, x, 4096, 4096)
	r, _ := NewResampler(in, out, 1, q)
	edge := r.FilterTaps()*out/in + 64 // skip the start and end transients
	seg := channel(y, 1, 0)[edge : len(y)-edge]
	a, ph, e := sineFit(seg, freq, float64(out), edge)
	// The ideal output at frame k is amp·sin(2π·freq·k/out): phase 0.
	dph := math.Remainder(0-ph, 2*math.Pi) // positive: output lags
	return db(a / amp), db(e / amp), dph / (2 * math.Pi * freq) * float64(out)
}

func TestResamplerQuality(t *testing.T) {
	cases := []struct {
		in, out int
		q       Quality
		// limits
		thdn    float64 // THD+N of a 1 kHz tone, dB below the tone
		alias   float64 // worst residual of the alias/image tones
		ripple  float64 // |gain| in dB up to passEdge
		passHz  float64
		aliasHz []float64
	}{
		{44100, 48000, QualityPi, -90, -85, 0.01, 15000, []float64{18000, 19500, 20500, 21500, 22000}},
		{48000, 44100, QualityPi, -90, -85, 0.01, 15000, []float64{18000, 21000, 22500, 23000, 23900}},
		{22050, 48000, QualityPi, -90, -85, 0.01, 7500, []float64{9000, 10500, 11000}},
		{96000, 48000, QualityPi, -90, -85, 0.01, 15000, []float64{19000, 25000, 30000, 40000, 47000}},
		{44100, 48000, QualityHigh, -110, -110, 0.001, 19000, []float64{20500, 21500, 22000}},
		{48000, 44100, QualityHigh, -110, -110, 0.001, 19000, []float64{21000, 22500, 23900}},
		{44100, 47999, QualityPi, -90, -85, 0.01, 15000, []float64{20500, 22000}}, // interpolated phases
		{44100, 47999, QualityHigh, -110, -110, 0.001, 19000, []float64{21500}},   // interpolated phases
	}
	for _, c := range cases {
		t.Run(c.q.String()+"/"+itoa(c.in)+"-"+itoa(c.out), func(t *testing.T) {
			g, e, d := toneResult(t, c.in, c.out, c.q, 1000)
			t.Logf("1 kHz: gain %+.5f dB, THD+N %.1f dB, delay %+.4f frames", g, e, d)
			if e > c.thdn || math.Abs(g) > c.ripple || math.Abs(d) > 0.01 {
				t.Errorf("1 kHz: gain %+.5f dB THD+N %.1f dB delay %.4f; want THD+N ≤ %v, |gain| ≤ %v, |delay| ≤ 0.01", g, e, d, c.thdn, c.ripple)
			}
			worstRipple := 0.0
			for f := 100.0; f <= c.passHz; f *= 1.25 {
				g, e, _ := toneResult(t, c.in, c.out, c.q, f)
				worstRipple = math.Max(worstRipple, math.Abs(g))
				if math.Abs(g) > c.ripple || e > c.thdn+5 {
					t.Errorf("%.0f Hz: gain %+.5f dB, residual %.1f dB", f, g, e)
				}
			}
			g, _, _ = toneResult(t, c.in, c.out, c.q, c.passHz)
			t.Logf("passband ripple ≤ %.5f dB up to %.0f Hz (at %.0f Hz: %+.5f dB)", worstRipple, c.passHz, c.passHz, g)
			nyqOut := float64(c.out) / 2
			worst := math.Inf(-1)
			for _, f := range c.aliasHz {
				var resid float64
				if f < nyqOut && f < float64(c.in)/2 {
					// The tone itself may pass (attenuated); what is left
					// after removing it are the images/aliases.
					g, e, _ := toneResult(t, c.in, c.out, c.q, f)
					resid = e
					t.Logf("%.0f Hz: tone %+.2f dB, aliases/images %.1f dB", f, g, e)
				} else {
					// Above the output Nyquist: everything that comes out is
					// an alias.
					x := sine(c.in, 1, f, 0.891, c.in/4)
					y := resampleAll(t, c.in, c.out, 1, c.q, x, 4096, 4096)
					edge := 400
					resid = db(rms(channel(y, 1, 0)[edge:len(y)-edge]) * math.Sqrt2 / 0.891)
					t.Logf("%.0f Hz (above output Nyquist): alias %.1f dB", f, resid)
				}
				worst = math.Max(worst, resid)
			}
			if worst > c.alias {
				t.Errorf("worst alias %.1f dB, want ≤ %v", worst, c.alias)
			}
		})
	}
}

func itoa(i int) string { return fmtInt(i) }

func fmtInt(i int) string {
	if i == 0 {
		return "0"
	}
	var b [20]byte
	p := len(b)
	for i > 0 {
		p--
		b[p] = byte('0' + i%10)
		i /= 10
	}
	return string(b[p:])
}

func TestResamplerPassthrough(t *testing.T) {
	x := musicLike(48000, 2, 0.2, 1.2, 1)
	x[10] = float32(math.NaN())
	r, err := NewResampler(48000, 48000, 2, QualityHigh)
	if err != nil {
		t.Fatal(err)
	}
	y := make([]float32, len(x))
	c, p := r.Process(x, y)
	if c != len(x) || p != len(x) || bitsEqual(x, y) >= 0 || r.Drain(y) != 0 || r.InputFramesFor(10) != 10 {
		t.Fatalf("passthrough not exact: consumed %d produced %d first diff %d", c, p, bitsEqual(x, y))
	}
}

func TestResamplerChunkInvariance(t *testing.T) {
	for _, rates := range [][2]int{{44100, 48000}, {48000, 44100}, {96000, 48000}, {22050, 48000}, {44100, 47999}} {
		x := musicLike(rates[0], 2, 0.3, 0.9, 2)
		ref := resampleAll(t, rates[0], rates[1], 2, QualityPi, x, 4096, 4096)
		want := (len(x)/2*rates[1] + rates[0] - 1) / rates[0]
		if len(ref)/2 != want {
			t.Errorf("%v: %d frames out of %d, want ⌈n·out/in⌉ = %d", rates, len(ref)/2, len(x)/2, want)
		}
		for _, b := range [][2]int{{1, 1}, {7, 7}, {7, 4096}, {4096, 1}, {4096, 7}, {1, 4096}} {
			got := resampleAll(t, rates[0], rates[1], 2, QualityPi, x, b[0], b[1])
			if i := bitsEqual(ref, got); i >= 0 {
				t.Errorf("%v blocks %v: differs from 4096-frame blocks at sample %d", rates, b, i)
			}
		}
	}
}

// TestResamplerExactPull pulls exactly n output frames at a time with
// InputFramesFor, as the pipeline does, and checks the result against one
// big call.
func TestResamplerExactPull(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	for _, rates := range [][2]int{{44100, 48000}, {48000, 44100}, {96000, 48000}, {8000, 192000}, {192000, 8000}} {
		x := musicLike(rates[0], 2, 0.25, 0.9, 4)
		ref := resampleAll(t, rates[0], rates[1], 2, QualityPi, x, 1<<20, 1<<20)
		r, _ := NewResampler(rates[0], rates[1], 2, QualityPi)
		var got []float32
		src := x
		for len(got) < len(ref) {
			n := 1 + rng.IntN(700)
			need := r.InputFramesFor(n)
			if need*2 > len(src) {
				break
			}
			out := make([]float32, n*2)
			c, p := r.Process(src[:need*2], out)
			if c != need*2 || p != n*2 {
				t.Fatalf("%v: pull %d frames with %d input frames: consumed %d produced %d samples", rates, n, need, c, p)
			}
			if r.InputFramesFor(0) != 0 {
				t.Fatal("InputFramesFor(0) != 0")
			}
			src = src[c:]
			got = append(got, out...)
		}
		if i := bitsEqual(ref[:len(got)], got); i >= 0 || len(got) < len(ref)/2 {
			t.Errorf("%v: exact pulls differ at %d (got %d of %d samples)", rates, i, len(got), len(ref))
		}
	}
}

func TestResamplerResetAndNonFinite(t *testing.T) {
	r, _ := NewResampler(44100, 48000, 2, QualityPi)
	x := musicLike(44100, 2, 0.1, 0.9, 5)
	out1 := make([]float32, 2*5000)
	_, p1 := r.Process(x, out1)
	bad := append([]float32(nil), x...)
	for i := 0; i < len(bad); i += 97 {
		bad[i] = []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 3e38}[i%4]
	}
	junk := make([]float32, len(bad))
	r.Process(bad, junk)
	for i, v := range junk {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) || math.Abs(float64(v)) > 2*maxSample {
			t.Fatalf("non-finite or unbounded output %v at %d", v, i)
		}
	}
	r.Reset()
	out2 := make([]float32, 2*5000)
	_, p2 := r.Process(x, out2)
	if p1 != p2 || bitsEqual(out1[:p1], out2[:p2]) >= 0 {
		t.Fatal("output after Reset differs from a fresh resampler")
	}
}

func TestResamplerErrors(t *testing.T) {
	for _, c := range [][3]int{{0, 48000, 2}, {44100, 48000, 0}, {44100, 48000, 33}, {1000, 48000, 1}, {48000, 44100, -1}, {2_000_000, 48000, 2}} {
		if _, err := NewResampler(c[0], c[1], c[2], QualityPi); err == nil {
			t.Errorf("NewResampler%v: no error", c)
		}
	}
	if _, err := NewResampler(44100, 48000, 2, Quality(7)); err == nil {
		t.Error("bad quality accepted")
	}
}

func TestResamplerNoAllocs(t *testing.T) {
	for _, q := range []Quality{QualityPi, QualityHigh} {
		r, _ := NewResampler(44100, 48000, 2, q)
		x := musicLike(44100, 2, 0.1, 0.9, 6)
		out := make([]float32, 2*1024)
		allocs := testing.AllocsPerRun(50, func() {
			n := r.InputFramesFor(1024)
			r.Process(x[:n*2], out)
		})
		if allocs != 0 {
			t.Errorf("%v: %v allocs per block", q, allocs)
		}
	}
}
