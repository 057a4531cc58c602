package loudness

import "math"

// biquad holds the normalised coefficients of one second-order IIR section,
// H(z) = (b0 + b1 z^-1 + b2 z^-2) / (1 + a1 z^-1 + a2 z^-2).
type biquad struct {
	b0, b1, b2, a1, a2 float64
}

// Analog prototype parameters of the BS.1770 K-weighting filter. They are the
// well-known parameterisation of the two 48 kHz sections published in
// ITU-R BS.1770-4 Table 1 and Table 2, expressed as analog (s-plane)
// quantities so that the filter can be rebuilt at any sample rate.
const (
	shelfF0     = 1681.974450955533  // Hz, high-shelf corner ("pre-filter")
	shelfGainDB = 3.999843853973347  // dB, high-frequency gain of the shelf
	shelfQ      = 0.7071752369554196 // quality factor of the shelf
	shelfVbExp  = 0.4996667741545416 // Vb = Vh^shelfVbExp (mid-band numerator term)
	hpF0        = 38.13547087602444  // Hz, RLB high-pass corner
	hpQ         = 0.5003270373238773 // quality factor of the RLB high-pass
	refRate     = 48000.0            // rate at which BS.1770 tabulates the filter
)

// shelfFilter returns the K-weighting pre-filter (high shelf) for the given
// sample rate, obtained from the analog prototype with the bilinear transform
// pre-warped at shelfF0.
func shelfFilter(rate float64) biquad {
	k := math.Tan(math.Pi * shelfF0 / rate)
	vh := math.Pow(10, shelfGainDB/20)
	vb := math.Pow(vh, shelfVbExp)
	a0 := 1 + k/shelfQ + k*k
	return biquad{
		b0: (vh + vb*k/shelfQ + k*k) / a0,
		b1: 2 * (k*k - vh) / a0,
		b2: (vh - vb*k/shelfQ + k*k) / a0,
		a1: 2 * (k*k - 1) / a0,
		a2: (1 - k/shelfQ + k*k) / a0,
	}
}

// hpDenominator is a0 = 1 + K/Q + K^2 of the pre-warped RLB high-pass.
func hpDenominator(rate float64) float64 {
	k := math.Tan(math.Pi * hpF0 / rate)
	return 1 + k/hpQ + k*k
}

// highPassFilter returns the RLB high-pass for the given sample rate.
//
// BS.1770 tabulates this section at 48 kHz with the un-normalised numerator
// (1, -2, 1), which gives it a pass-band gain of a0(48 kHz) ≈ 1.004995
// (+0.043 dB); the −0.691 dB constant of the loudness formula absorbs that
// gain. To keep the same calibration at every rate the numerator is scaled by
// a0(48 kHz)/a0(rate), so the pass-band gain is a0(48 kHz) everywhere and the
// coefficients are exactly (1, -2, 1) at 48 kHz.
func highPassFilter(rate float64) biquad {
	k := math.Tan(math.Pi * hpF0 / rate)
	a0 := 1 + k/hpQ + k*k
	g := hpDenominator(refRate) / a0
	return biquad{
		b0: g,
		b1: -2 * g,
		b2: g,
		a1: 2 * (k*k - 1) / a0,
		a2: (1 - k/hpQ + k*k) / a0,
	}
}

// response returns the magnitude response of the biquad at frequency f (Hz)
// for sample rate rate. It is used by tests and documentation only.
func (q biquad) response(f, rate float64) float64 {
	w := 2 * math.Pi * f / rate
	c1, s1 := math.Cos(w), math.Sin(w)
	c2, s2 := math.Cos(2*w), math.Sin(2*w)
	nr := q.b0 + q.b1*c1 + q.b2*c2
	ni := -q.b1*s1 - q.b2*s2
	dr := 1 + q.a1*c1 + q.a2*c2
	di := -q.a1*s1 - q.a2*s2
	return math.Hypot(nr, ni) / math.Hypot(dr, di)
}
