package loudness

import (
	"math"
	"testing"
)

// TestKWeighting48kMatchesBS1770 checks the filters designed from the analog
// prototype against the coefficients tabulated in ITU-R BS.1770-4 (Tables 1
// and 2) for 48 kHz.
func TestKWeighting48kMatchesBS1770(t *testing.T) {
	sh := shelfFilter(48000)
	hp := highPassFilter(48000)
	tests := []struct {
		name      string
		got, want float64
	}{
		{"shelf b0", sh.b0, 1.53512485958697},
		{"shelf b1", sh.b1, -2.69169618940638},
		{"shelf b2", sh.b2, 1.19839281085285},
		{"shelf a1", sh.a1, -1.69065929318241},
		{"shelf a2", sh.a2, 0.73248077421585},
		{"hp b0", hp.b0, 1.0},
		{"hp b1", hp.b1, -2.0},
		{"hp b2", hp.b2, 1.0},
		{"hp a1", hp.a1, -1.99004745483398},
		{"hp a2", hp.a2, 0.99007225036621},
	}
	for _, tt := range tests {
		if d := math.Abs(tt.got - tt.want); d > 1e-6 {
			t.Errorf("%s = %.14f, want %.14f (|diff| %.2g > 1e-6)", tt.name, tt.got, tt.want, d)
		}
	}
}

// TestKWeightingAcrossRates checks that the filter rebuilt at other rates
// has the same response as the 48 kHz reference at the frequencies that
// matter (the 1 kHz calibration point, the shelf, the high-pass).
func TestKWeightingAcrossRates(t *testing.T) {
	resp := func(f, rate float64) float64 {
		return 20 * math.Log10(shelfFilter(rate).response(f, rate)*highPassFilter(rate).response(f, rate))
	}
	freqs := []float64{20, 40, 100, 500, 1000, 2000, 3500, 6000, 10000}
	tests := []struct {
		rate, tol float64 // tolerance in dB for frequencies below rate/4
	}{
		// The bilinear transform warps the shelf more as its 1.7 kHz
		// corner gets closer to Nyquist: low rates only approximate
		// the 48 kHz curve (documented in doc.go).
		{8000, 0.25},
		{16000, 0.06},
		{22050, 0.03},
		{32000, 0.01},
		{44100, 0.01},
		{69313, 0.01},
		{96000, 0.01},
		{192000, 0.01},
		{768000, 0.01},
	}
	for _, tt := range tests {
		for _, f := range freqs {
			if f >= tt.rate/4 {
				continue
			}
			got, want := resp(f, tt.rate), resp(f, 48000)
			if math.Abs(got-want) > tt.tol {
				t.Errorf("rate %g: response at %g Hz = %.4f dB, 48 kHz reference %.4f dB (tolerance %g)", tt.rate, f, got, want, tt.tol)
			}
		}
	}
	// The calibration point: +0.691 dB at 1 kHz makes a 0 dBFS 1 kHz sine
	// in one channel read −3.01 LUFS.
	if g := resp(997, 48000); math.Abs(g-0.691) > 0.02 {
		t.Errorf("K-weighting gain at 997 Hz = %.4f dB, want ≈ 0.691", g)
	}
}
