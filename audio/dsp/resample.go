package dsp

import (
	"fmt"
	"math"
	"math/bits"
)

// Quality selects the resampler's filter.
type Quality int

const (
	// QualityPi is cheap enough for a Raspberry Pi Zero 2: 90 dB stopband,
	// passband to 80 % of the lower Nyquist frequency (17.6 kHz at
	// 44.1 kHz), about 60 taps per output frame for 44.1 ↔ 48 kHz.
	QualityPi Quality = iota
	// QualityHigh: 120 dB stopband, passband to 91 % of the lower Nyquist
	// frequency (20 kHz at 44.1 kHz), about 176 taps for 44.1 ↔ 48 kHz.
	QualityHigh
)

func (q Quality) String() string {
	switch q {
	case QualityPi:
		return "pi"
	case QualityHigh:
		return "high"
	}
	return fmt.Sprintf("Quality(%d)", int(q))
}

type qualitySpec struct {
	attenDB  float64 // stopband attenuation of the Kaiser design
	passFrac float64 // passband edge / lower Nyquist frequency
	phases   int     // phase rows when the ratio needs interpolated phases
}

var qualitySpecs = [...]qualitySpec{
	QualityPi:   {attenDB: 90, passFrac: 0.80, phases: 256},
	QualityHigh: {attenDB: 120, passFrac: 0.91, phases: 512},
}

// maxExactPhases: ratios whose reduced output rate is at most this use one
// exact filter row per phase (44.1 ↔ 48 kHz: 160 / 147 rows); others use
// spec.phases rows with linear interpolation between neighbouring rows.
const maxExactPhases = 1024

// maxRatio bounds in/out and out/in.
const maxRatio = 32

// histChunk is how many input frames the history buffer takes per refill.
const histChunk = 1024

// Resampler converts interleaved float32 audio from one sample rate to
// another with a polyphase Kaiser-windowed sinc filter (see the package
// documentation). It streams: state carries across calls, and the output
// does not depend on how input and output are cut into blocks.
//
// Output frame k is the band-limited value of the input at time
// k·inRate/outRate input frames: there is no group delay to correct, but
// the resampler must have seen LookAhead() input frames beyond that time
// before it can produce frame k (InputFramesFor computes how many more
// input frames a pull of n output frames needs). After the last input,
// Drain emits the remaining ⌈frames·outRate/inRate⌉ output frames.
//
// With equal rates it is an exact copy with no look-ahead.
//
// A Resampler is not safe for concurrent use. Process never allocates.
type Resampler struct {
	inRate, outRate, ch int
	q                   Quality
	pass                bool

	num, den          int64 // the input advances num/den frames per output frame
	stepInt, stepFrac int64
	taps, half        int // filter length N (input frames) and N/2
	exact             bool
	rows              int       // filter rows (den when exact, phases+1 otherwise)
	coef              []float32 // rows × taps
	diff              []float32 // interpolated mode: row p+1 − row p

	hist     []float32 // interleaved input frames; hist[0] is frame hbase
	hbase    int64
	hlen     int
	pos      int64 // floor(input time) of the next output frame
	frac     int64 // its fraction, in units of 1/den
	consumed int64 // input frames taken by Process since Reset
	produced int64 // output frames since Reset
	draining bool
}

// NewResampler returns a Resampler. Rates must lie in [MinRate, MaxRate]
// with a ratio of at most 32 either way.
func NewResampler(inRate, outRate, channels int, q Quality) (*Resampler, error) {
	if err := checkFormat(inRate, channels); err != nil {
		return nil, err
	}
	if err := checkFormat(outRate, channels); err != nil {
		return nil, err
	}
	if inRate > outRate*maxRatio || outRate > inRate*maxRatio {
		return nil, fmt.Errorf("%w: resampling ratio %d/%d beyond %d", ErrFormat, inRate, outRate, maxRatio)
	}
	if q != QualityPi && q != QualityHigh {
		return nil, fmt.Errorf("%w: %v", ErrFormat, q)
	}
	r := &Resampler{inRate: inRate, outRate: outRate, ch: channels, q: q}
	if inRate == outRate {
		r.pass = true
		return r, nil
	}
	g := gcd(int64(inRate), int64(outRate))
	r.num, r.den = int64(inRate)/g, int64(outRate)/g
	r.stepInt, r.stepFrac = r.num/r.den, r.num%r.den
	r.design(qualitySpecs[q])
	r.hist = make([]float32, (r.taps+histChunk)*channels)
	r.Reset()
	return r, nil
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// FilterTaps returns the filter length in input frames (0 when passing
// through).
func (r *Resampler) FilterTaps() int { return r.taps }

// LookAhead returns how many input frames beyond the current time the
// resampler needs before producing an output frame (taps/2; 0 when passing
// through). It is not a delay of the output: output frame k corresponds
// exactly to input time k·inRate/outRate.
func (r *Resampler) LookAhead() int { return r.half }

// Passthrough reports whether the rates are equal (Process copies).
func (r *Resampler) Passthrough() bool { return r.pass }

// design computes the polyphase table.
func (r *Resampler) design(s qualitySpec) {
	nyq := float64(min(r.inRate, r.outRate)) / 2
	fp := s.passFrac * nyq
	in := float64(r.inRate)
	delta := (nyq - fp) / in // transition width, cycles per input frame
	fc := (fp + nyq) / 2 / in
	n := int(math.Ceil((s.attenDB-7.95)/(14.36*delta))) + 1
	n += n & 1
	r.taps, r.half = n, n/2
	beta := 0.1102 * (s.attenDB - 8.7)

	r.exact = r.den <= maxExactPhases
	if r.exact {
		r.rows = int(r.den)
	} else {
		r.rows = s.phases + 1
	}
	r.coef = make([]float32, r.rows*n)
	row := make([]float64, n)
	i0b := besselI0(beta)
	for p := 0; p < r.rows; p++ {
		var f float64
		if r.exact {
			f = float64(p) / float64(r.den)
		} else {
			f = float64(p) / float64(s.phases)
		}
		sum := 0.0
		for i := range row {
			u := f - float64(i-r.half+1) // time of the output relative to tap i
			x := u / float64(r.half)
			v := 0.0
			if x > -1 && x < 1 {
				v = 2 * fc * sinc(2*fc*u) * besselI0(beta*math.Sqrt(1-x*x)) / i0b
			}
			row[i] = v
			sum += v
		}
		for i, v := range row {
			r.coef[p*n+i] = float32(v / sum) // each phase has DC gain 1
		}
	}
	if !r.exact {
		r.diff = make([]float32, (r.rows-1)*n)
		for i := range r.diff {
			r.diff[i] = r.coef[i+n] - r.coef[i]
		}
	}
}

func sinc(x float64) float64 {
	if x == 0 {
		return 1
	}
	return math.Sin(math.Pi*x) / (math.Pi * x)
}

// besselI0 is the modified Bessel function of the first kind, order 0.
func besselI0(x float64) float64 {
	sum, term := 1.0, 1.0
	q := x * x / 4
	for k := 1; k < 500; k++ {
		term *= q / float64(k*k)
		sum += term
		if term < sum*1e-17 {
			break
		}
	}
	return sum
}

// Reset clears the stream state (for a seek or a new stream): the input
// before the next frame counts as silence.
func (r *Resampler) Reset() {
	if r.pass {
		return
	}
	clear(r.hist)
	r.hbase = -int64(r.half - 1)
	r.hlen = r.half - 1
	r.pos, r.frac = 0, 0
	r.consumed, r.produced = 0, 0
	r.draining = false
}

// InputFramesFor returns how many more input frames Process must be given
// before it can produce outFrames more output frames.
func (r *Resampler) InputFramesFor(outFrames int) int {
	if outFrames <= 0 {
		return 0
	}
	if r.pass {
		return outFrames
	}
	last := r.pos + (r.frac+int64(outFrames-1)*r.num)/r.den
	need := last + int64(r.half) + 1 - (r.hbase + int64(r.hlen))
	return int(max(0, need))
}

// Process resamples the complete frames of in into out. It returns the
// number of samples (not frames) it consumed from in and produced into out.
// It stops when out is full or in is used up, and takes no more input than
// it has room to keep, so the caller passes in[consumed:] again next time;
// given InputFramesFor(n) frames it produces n frames. Input samples that
// are NaN become 0 and magnitudes above 2^20 (±Inf) are clamped (equal
// rates copy bits unchanged).
func (r *Resampler) Process(in, out []float32) (consumed, produced int) {
	ch := r.ch
	if r.pass {
		n := min(len(in), len(out)) / ch * ch
		copy(out[:n], in[:n])
		return n, n
	}
	inF, outF := len(in)/ch, len(out)/ch
	ci, po := 0, 0
	for {
		po += r.produce(out[po*ch : outF*ch])
		if po == outF || ci == inF || r.draining {
			break
		}
		ci += r.refill(in[ci*ch:inF*ch], false)
	}
	r.consumed += int64(ci)
	return ci * ch, po * ch
}

// Drain writes the output frames still owed for the input given so far
// (as if silence followed it) and returns the number of samples written; 0
// once the ⌈inputFrames·outRate/inRate⌉ output frames are all out. Call it
// repeatedly at the end of the stream, then Reset before new input.
func (r *Resampler) Drain(out []float32) int {
	if r.pass {
		return 0
	}
	ch := r.ch
	// want = ceil(consumed·den / num), in 128-bit arithmetic.
	hi, lo := bits.Mul64(uint64(r.consumed), uint64(r.den))
	lo, carry := bits.Add64(lo, uint64(r.num-1), 0)
	hi += carry
	if hi >= uint64(r.num) {
		return 0 // cannot happen for realistic stream lengths
	}
	q, _ := bits.Div64(hi, lo, uint64(r.num))
	left := int64(q) - r.produced
	outF := int(min(int64(len(out)/ch), max(0, left)))
	r.draining = true
	po := 0
	for po < outF {
		po += r.produce(out[po*ch : outF*ch])
		if po < outF {
			r.refill(nil, true)
		}
	}
	return po * ch
}

// produce computes output frames while the history holds the frames they
// need; it returns the number of frames written.
func (r *Resampler) produce(out []float32) int {
	ch := r.ch
	n := r.taps
	end := r.hbase + int64(r.hlen)
	done := 0
	for done*ch < len(out) && r.pos+int64(r.half) < end {
		first := int(r.pos - int64(r.half) + 1 - r.hbase)
		h := r.hist[first*ch : (first+n)*ch]
		o := out[done*ch : done*ch+ch]
		if r.exact {
			c := r.coef[int(r.frac)*n : int(r.frac)*n+n]
			if ch == 2 {
				o[0], o[1] = dot2(c, h)
			} else {
				dotN(c, h, o)
			}
		} else {
			phi := float64(r.frac) * float64(r.rows-1) / float64(r.den)
			p := int(phi)
			a := float32(phi - float64(p))
			c := r.coef[p*n : p*n+n]
			d := r.diff[p*n : p*n+n]
			if ch == 2 {
				o[0], o[1] = dot2i(c, d, a, h)
			} else {
				dotNi(c, d, a, h, o)
			}
		}
		done++
		r.produced++
		r.pos += r.stepInt
		if r.frac += r.stepFrac; r.frac >= r.den {
			r.frac -= r.den
			r.pos++
		}
	}
	return done
}

// refill drops history no longer needed and appends input frames (or
// silence when zeros is set); it returns the input frames consumed.
func (r *Resampler) refill(in []float32, zeros bool) int {
	ch := r.ch
	first := r.pos - int64(r.half) + 1
	if drop := int(min(first-r.hbase, int64(r.hlen))); drop > 0 {
		copy(r.hist, r.hist[drop*ch:r.hlen*ch])
		r.hbase += int64(drop)
		r.hlen -= drop
	}
	taken := 0
	if r.hlen == 0 && r.hbase < first {
		// Frames before first are not needed at all (large downsampling
		// steps): skip them.
		skip := int(first - r.hbase)
		if !zeros {
			skip = min(skip, len(in)/ch)
			in = in[skip*ch:]
			taken = skip
		}
		r.hbase += int64(skip)
	}
	room := len(r.hist)/ch - r.hlen
	if zeros {
		clear(r.hist[r.hlen*ch:])
		r.hlen += room
		return 0
	}
	k := min(room, len(in)/ch)
	dst := r.hist[r.hlen*ch : (r.hlen+k)*ch]
	for i, v := range in[:k*ch] {
		dst[i] = clean(v)
	}
	r.hlen += k
	return taken + k
}

// dot2 returns the filter sums of stereo history h with coefficients c.
func dot2(c, h []float32) (float32, float32) {
	var l0, r0, l1, r1 float32
	i := 0
	for ; i+1 < len(c); i += 2 {
		c0, c1 := c[i], c[i+1]
		x := h[2*i : 2*i+4 : 2*i+4]
		l0 += c0 * x[0]
		r0 += c0 * x[1]
		l1 += c1 * x[2]
		r1 += c1 * x[3]
	}
	if i < len(c) {
		l0 += c[i] * h[2*i]
		r0 += c[i] * h[2*i+1]
	}
	return l0 + l1, r0 + r1
}

// dot2i is dot2 with coefficients c + a·d.
func dot2i(c, d []float32, a float32, h []float32) (float32, float32) {
	var l0, r0, l1, r1 float32
	d = d[:len(c)]
	i := 0
	for ; i+1 < len(c); i += 2 {
		c0, c1 := c[i]+a*d[i], c[i+1]+a*d[i+1]
		x := h[2*i : 2*i+4 : 2*i+4]
		l0 += c0 * x[0]
		r0 += c0 * x[1]
		l1 += c1 * x[2]
		r1 += c1 * x[3]
	}
	if i < len(c) {
		c0 := c[i] + a*d[i]
		l0 += c0 * h[2*i]
		r0 += c0 * h[2*i+1]
	}
	return l0 + l1, r0 + r1
}

// dotN computes one output frame of any channel count.
func dotN(c, h, o []float32) {
	ch := len(o)
	for k := range o {
		var s float32
		for i, cv := range c {
			s += cv * h[i*ch+k]
		}
		o[k] = s
	}
}

// dotNi is dotN with coefficients c + a·d.
func dotNi(c, d []float32, a float32, h, o []float32) {
	ch := len(o)
	clear(o)
	for i, cv := range c {
		cv += a * d[i]
		for k := range o {
			o[k] += cv * h[i*ch+k]
		}
	}
}
