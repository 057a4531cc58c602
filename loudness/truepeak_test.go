package loudness

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestInterpolatorDesign: branch 0 is the identity (centre tap 1, every 4th
// tap from it 0), and the fractional-delay branches are flat (±0.02 dB) up
// to 0.42·fs.
func TestInterpolatorDesign(t *testing.T) {
	h := tpPrototype()
	centre := tpFactor * tpTaps / 2
	if len(h) != tpFactor*tpTaps+1 || h[centre] != 1 {
		t.Fatalf("prototype: len %d, centre %v", len(h), h[centre])
	}
	for k := 0; k < len(h); k += 4 {
		if k != centre && math.Abs(h[k]) > 1e-15 {
			t.Errorf("h[%d] = %g, want 0 (branch 0 must be the identity)", k, h[k])
		}
	}
	for p := 1; p < tpFactor; p++ {
		c := tpBranch(h, p)
		for _, f := range []float64{0, 0.1, 0.2, 0.25, 0.3, 0.35, 0.4, 0.42} {
			re, im := 0.0, 0.0
			for k, v := range c {
				re += v * math.Cos(2*math.Pi*f*float64(k))
				im -= v * math.Sin(2*math.Pi*f*float64(k))
			}
			if db := 20 * math.Log10(math.Hypot(re, im)); math.Abs(db) > 0.02 {
				t.Errorf("branch %d: gain at %.2f·fs = %.3f dB", p, f, db)
			}
		}
	}
}

// bruteTruePeak evaluates branches 1–3 directly from the prototype.
func bruteTruePeak(x []float64) float64 {
	h := tpPrototype()
	peak := 0.0
	for _, v := range x {
		peak = math.Max(peak, math.Abs(v))
	}
	padded := append(make([]float64, tpHist), x...)
	padded = append(padded, make([]float64, tpHist)...)
	for n := tpHist; n < len(padded); n++ {
		for p := 1; p < tpFactor; p++ {
			a := 0.0
			for k := 0; k < tpTaps; k++ {
				a += h[p+tpFactor*k] * padded[n-k]
			}
			peak = math.Max(peak, math.Abs(a))
		}
	}
	return peak
}

// TestTruePeakMatchesDirectFilter: the folded, block-skipping detector
// (through the Meter) gives the value of the plain polyphase filter.
func TestTruePeakMatchesDirectFilter(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for trial := 0; trial < 20; trial++ {
		n := 1 + rng.IntN(5000)
		x := make([]float32, n)
		scale := math.Pow(10, -rng.Float64()*3)
		for i := range x {
			// Bursty signal so that the skip test takes both branches.
			x[i] = float32(rng.NormFloat64() * scale * math.Pow(math.Sin(float64(i)/300), 8))
		}
		xd := make([]float64, n)
		for i, v := range x {
			xd[i] = float64(v)
		}
		want := 20 * math.Log10(bruteTruePeak(xd))
		m, _ := NewMeter(48000, 1)
		m.Write(x)
		got := m.Result().TruePeak
		if math.Abs(got-want) > 1e-9 {
			t.Errorf("trial %d (n=%d): true peak %.12f dB, direct filter %.12f dB", trial, n, got, want)
		}
	}
}

// TestTruePeakSweep: a full-scale sine read with 4× oversampling is within
// +0.2/−0.6 dB of 0 dBTP anywhere up to 0.42·fs (the 4× grid alone can
// under-read by up to 0.69 dB near fs/2; BS.1770 accepts this).
func TestTruePeakSweep(t *testing.T) {
	const rate = 48000
	for f := 100.0; f <= 0.42*rate; f *= 1.21 {
		r := measure(t, rate, 1, func() []float32 {
			s := tpSignal(rate, f, 33, 1)
			mono := make([]float32, len(s)/2)
			for i := range mono {
				mono[i] = s[2*i]
			}
			return mono
		}())
		if r.TruePeak > 0.2 || r.TruePeak < -0.6 {
			t.Errorf("%.0f Hz: true peak %.3f dBTP, want 0 +0.2/−0.6", f, r.TruePeak)
		}
	}
}
