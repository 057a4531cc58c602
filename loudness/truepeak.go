package loudness

import "math"

// True-peak interpolator (BS.1770-4 Annex 2).
//
// The signal is oversampled 4× with a linear-phase windowed-sinc low-pass of
// 4·tpTaps+1 = 97 taps (Kaiser window, β = tpKaiserBeta, cut-off at the input
// Nyquist frequency). Because the cut-off is exactly fs/2, every 4th tap is a
// zero of the sinc, so polyphase branch 0 is the input sample itself (delayed
// by tpDelay samples) and only branches 1–3 (24 taps each, 72 coefficients)
// have to be computed. The fractional-delay branches are flat within
// ±0.01 dB up to 0.42·fs. The filter is symmetric, which makes branch 2
// symmetric and branch 3 the time-reverse of branch 1; interpolatePeak uses
// that to evaluate the three branches with 36 multiplications per input
// sample.
const (
	tpFactor     = 4
	tpTaps       = 24              // taps per polyphase branch
	tpHist       = tpTaps - 1      // input history a branch needs
	tpDelay      = tpTaps / 2      // group delay in input samples
	tpKaiserBeta = 6.0             // Kaiser window shape
	tpBlock      = 64              // granularity of the skip test
	tpBoundSlack = 1 + 1.0/(1<<30) // guards the skip bound against rounding
)

// tpCoefs holds the folded polyphase coefficients.
//
// For a window w[0..23] of input samples (w[23] newest), branch 1 and branch
// 3 outputs a1, a3 satisfy a3+a1 = Σ e[j]·(w[j]+w[23-j]) and
// a3−a1 = Σ o[j]·(w[j]−w[23-j]) for j < 12, and branch 2 output is
// a2 = Σ m[j]·(w[j]+w[23-j]). e and o are pre-scaled by ½ so that
// max(|a1|, |a3|) = |Σ e·s| + |Σ o·d|.
type tpCoefs struct {
	e, o, m [tpTaps / 2]float64
	// l1 is the largest L1 norm of branches 1–3: no interpolated value can
	// exceed l1·max|w|.
	l1 float64
}

// besselI0 is the zeroth-order modified Bessel function of the first kind.
func besselI0(x float64) float64 {
	sum, term := 1.0, 1.0
	for k := 1; k < 64; k++ {
		term *= x / 2 / float64(k)
		sum += term * term
		if term*term < sum*1e-18 {
			break
		}
	}
	return sum
}

// tpPrototype returns the 97-tap prototype low-pass h[0..96] with unity gain
// per branch (h[48] = 1).
func tpPrototype() []float64 {
	n := tpFactor*tpTaps + 1
	center := float64(n-1) / 2
	h := make([]float64, n)
	for i := range h {
		x := (float64(i) - center) / tpFactor
		s := 1.0
		if x != 0 {
			s = math.Sin(math.Pi*x) / (math.Pi * x)
		}
		r := (float64(i) - center) / center
		w := besselI0(tpKaiserBeta*math.Sqrt(math.Max(0, 1-r*r))) / besselI0(tpKaiserBeta)
		h[i] = s * w
	}
	return h
}

// branch returns polyphase branch p (taps h[p], h[p+4], ...).
func tpBranch(h []float64, p int) [tpTaps]float64 {
	var c [tpTaps]float64
	for k := range c {
		c[k] = h[p+tpFactor*k]
	}
	return c
}

func newTPCoefs() tpCoefs {
	h := tpPrototype()
	c1 := tpBranch(h, 1)
	c2 := tpBranch(h, 2)
	var t tpCoefs
	for j := 0; j < tpTaps/2; j++ {
		t.e[j] = 0.5 * (c1[j] + c1[tpTaps-1-j])
		t.o[j] = 0.5 * (c1[j] - c1[tpTaps-1-j])
		t.m[j] = c2[j]
	}
	for p := 1; p < tpFactor; p++ {
		c := tpBranch(h, p)
		s := 0.0
		for _, v := range c {
			s += math.Abs(v)
		}
		t.l1 = math.Max(t.l1, s)
	}
	return t
}

// tpShared are the coefficients used by every Meter (read-only after init).
var tpShared = newTPCoefs()

// interpolatePeak returns the largest magnitude of the branch 1–3 outputs
// for every window buf[i:i+tpTaps], i = 0..len(buf)-tpTaps, starting from
// peak. The sums are unrolled and split into independent partial sums so
// the floating-point adds do not form one long dependency chain.
func (t *tpCoefs) interpolatePeak(buf []float64, peak float64) float64 {
	e, o, m := &t.e, &t.o, &t.m
	for i := 0; i+tpTaps <= len(buf); i++ {
		w := (*[tpTaps]float64)(buf[i : i+tpTaps])
		s0, d0 := w[0]+w[23], w[0]-w[23]
		s1, d1 := w[1]+w[22], w[1]-w[22]
		s2, d2 := w[2]+w[21], w[2]-w[21]
		s3, d3 := w[3]+w[20], w[3]-w[20]
		s4, d4 := w[4]+w[19], w[4]-w[19]
		s5, d5 := w[5]+w[18], w[5]-w[18]
		s6, d6 := w[6]+w[17], w[6]-w[17]
		s7, d7 := w[7]+w[16], w[7]-w[16]
		s8, d8 := w[8]+w[15], w[8]-w[15]
		s9, d9 := w[9]+w[14], w[9]-w[14]
		s10, d10 := w[10]+w[13], w[10]-w[13]
		s11, d11 := w[11]+w[12], w[11]-w[12]
		p := ((e[0]*s0 + e[1]*s1) + (e[2]*s2 + e[3]*s3)) +
			((e[4]*s4 + e[5]*s5) + (e[6]*s6 + e[7]*s7)) +
			((e[8]*s8 + e[9]*s9) + (e[10]*s10 + e[11]*s11))
		q := ((o[0]*d0 + o[1]*d1) + (o[2]*d2 + o[3]*d3)) +
			((o[4]*d4 + o[5]*d5) + (o[6]*d6 + o[7]*d7)) +
			((o[8]*d8 + o[9]*d9) + (o[10]*d10 + o[11]*d11))
		r := ((m[0]*s0 + m[1]*s1) + (m[2]*s2 + m[3]*s3)) +
			((m[4]*s4 + m[5]*s5) + (m[6]*s6 + m[7]*s7)) +
			((m[8]*s8 + m[9]*s9) + (m[10]*s10 + m[11]*s11))
		if v := math.Abs(p) + math.Abs(q); v > peak {
			peak = v
		}
		if v := math.Abs(r); v > peak {
			peak = v
		}
	}
	return peak
}

// scanPeak updates peak with the interpolated values of the n newest samples
// in buf (len(buf) = tpHist+n; buf[:tpHist] is history). blockMax[b] is
// max|x| of samples [b·tpBlock, (b+1)·tpBlock) of the n new ones and
// histMax that of the history. The windows of block b only read samples of
// blocks b−1 and b (tpBlock ≥ tpHist), so when that maximum times l1 is not
// above peak the block cannot raise the peak and is skipped. This is exact,
// because the result is a maximum.
func (t *tpCoefs) scanPeak(buf []float64, blockMax []float64, histMax, peak float64) float64 {
	n := len(buf) - tpHist
	bound := t.l1 * tpBoundSlack
	prev := histMax
	for b, start := 0, 0; start < n; b, start = b+1, start+tpBlock {
		end := min(start+tpBlock, n)
		mx := blockMax[b]
		if prev > mx {
			mx, prev = prev, blockMax[b]
		} else {
			prev = mx
		}
		if mx*bound <= peak {
			continue
		}
		peak = t.interpolatePeak(buf[start:end+tpHist], peak)
	}
	return peak
}
