package dsp

import (
	"fmt"
	"math"
	"time"
)

// LimiterConfig configures a Limiter. Zero fields take the defaults.
type LimiterConfig struct {
	// CeilingDB is the highest output level, dBFS (default −1). It must be
	// negative and above −20; 0 means the default.
	CeilingDB float64
	// LookAhead is the look-ahead and attack time (default 2 ms, at most
	// 20 ms). The limiter delays its output by LookAhead plus 11 frames.
	LookAhead time.Duration
	// Release is the time constant of the exponential release (default
	// 100 ms, at most 2 s).
	Release time.Duration
}

// Limiter defaults.
const (
	DefaultLimiterCeilingDB = -1.0
	DefaultLookAhead        = 2 * time.Millisecond
	DefaultRelease          = 100 * time.Millisecond
)

// releaseSnap: when the released gain is within this of 1 it jumps to
// exactly 1 (a −100 dB step of the signal, inaudible), so the limiter
// returns to bit-exact passthrough in finite time.
const releaseSnap = 1e-5

// flatSpan: the gain is held at (at most) a frame's requirement from
// flatSpan frames before to flatSpan frames after it, so that the output's
// interpolated values around a peak see a flat gain. With hold window H =
// w + 2·flatSpan, box filter length w and detector delay tpDelay, the
// delay D = w + tpDelay − 1 + flatSpan puts every frame within flatSpan of
// a peak under the hold in all w box taps.
const flatSpan = tpTaps / 2

// tpDelay is the detector's delay: the peak of frame m is known once
// frame m+tpDelay has arrived (the interpolator reads four frames ahead).
const tpDelay = tpTaps / 2

// limiterBlock is the number of frames processed per internal chunk
// (bounds the scratch memory).
const limiterBlock = 1024

// Limiter is a look-ahead peak limiter working in place on interleaved
// samples. See the package documentation for the design.
//
// Its output is its input delayed by Latency() frames, multiplied by a
// smooth gain ≤ 1. While no sample comes near the ceiling the gain is
// exactly 1 and the output is the delayed input, bit for bit. Process
// always returns as many samples as it is given: the first Latency()
// frames after NewLimiter or Reset are silence, and Flush emits the last
// Latency() frames at the end of the stream.
//
// A Limiter is not safe for concurrent use. Process never allocates.
type Limiter struct {
	ch       int
	w        int // look-ahead window (frames)
	hold     int // hold window = w + 2·flatSpan frames
	delay    int // latency = w + tpDelay − 1 + flatSpan frames
	thr      float32
	gate     float32 // sample level below which no interpolated value can exceed thr
	relCoef  float64 // per-frame release factor of (1 − env)
	n        int64   // frames seen since Reset
	pendingF int     // frames still to emit by Flush

	// Delay line: delay frames, oldest first, plus a same-size spare.
	dl, spare []float32

	// Detector state. det holds tpTaps−1 frames of cleaned history
	// followed by the current chunk; a[j] are the bits of the sample peaks
	// of frames n−1−j, b those of the interpolated peak between frames n−5
	// and n−4; loud > 0 while a frame of the history exceeds gate (see
	// detect).
	det  []float32
	a    [4]uint32
	b    uint32
	loud int
	tp   [3][tpTaps]float32

	// Minimum of the required gains over the window: a monotonic deque
	// (ring) of frames whose requirement is below 1, increasing values.
	dqIdx  []int64
	dqVal  []float32
	dqHead int
	dqLen  int

	env float64 // released hold gain

	// Box filter over the last w env values.
	box       []float64
	boxPos    int
	boxSum    float64
	boxNonOne int
	invW      float64 // 1/w

	gains []float32 // scratch: gain per output frame of the current chunk
	peaks []float32 // scratch: detector output per frame
}

// NewLimiter returns a Limiter for the given format.
func NewLimiter(sampleRate, channels int, cfg LimiterConfig) (*Limiter, error) {
	if err := checkFormat(sampleRate, channels); err != nil {
		return nil, err
	}
	if cfg.CeilingDB == 0 {
		cfg.CeilingDB = DefaultLimiterCeilingDB
	}
	if cfg.LookAhead == 0 {
		cfg.LookAhead = DefaultLookAhead
	}
	if cfg.Release == 0 {
		cfg.Release = DefaultRelease
	}
	if !(cfg.CeilingDB < 0 && cfg.CeilingDB > -20) {
		return nil, fmt.Errorf("%w: limiter ceiling %v dB outside (−20, 0)", ErrFormat, cfg.CeilingDB)
	}
	if cfg.LookAhead < 0 || cfg.LookAhead > 20*time.Millisecond {
		return nil, fmt.Errorf("%w: limiter look-ahead %v outside [0, 20ms]", ErrFormat, cfg.LookAhead)
	}
	if cfg.Release < 0 || cfg.Release > 2*time.Second {
		return nil, fmt.Errorf("%w: limiter release %v outside [0, 2s]", ErrFormat, cfg.Release)
	}
	w := framesOf(cfg.LookAhead, sampleRate, 1)
	thr := float32(math.Pow(10, cfg.CeilingDB/20))
	tp, l1 := tpDesign()
	l := &Limiter{
		ch:      channels,
		w:       w,
		hold:    w + 2*flatSpan,
		delay:   w + tpDelay - 1 + flatSpan,
		thr:     thr,
		gate:    float32(float64(thr) / l1 * (1 - 1e-6)),
		tp:      tp,
		det:     make([]float32, (tpTaps-1+limiterBlock)*channels),
		relCoef: math.Exp(-1 / math.Max(1, cfg.Release.Seconds()*float64(sampleRate))),
		dl:      make([]float32, (w+tpDelay-1+flatSpan)*channels),
		spare:   make([]float32, (w+tpDelay-1+flatSpan)*channels),
		dqIdx:   make([]int64, w+2*flatSpan+1),
		dqVal:   make([]float32, w+2*flatSpan+1),
		box:     make([]float64, w),
		invW:    1 / float64(w),
		gains:   make([]float32, limiterBlock),
		peaks:   make([]float32, limiterBlock),
	}
	l.Reset()
	return l, nil
}

// Latency returns the delay of the output in frames (look-ahead + 1).
func (l *Limiter) Latency() int { return l.delay }

// Reset clears all state (for a seek or a new stream): the delay line
// holds silence and the gain is 1.
func (l *Limiter) Reset() {
	clear(l.dl)
	clear(l.det)
	l.a, l.b = [4]uint32{}, 0
	l.loud = 0
	l.dqHead, l.dqLen = 0, 0
	l.env = 1
	for i := range l.box {
		l.box[i] = 1
	}
	l.boxSum = float64(l.w)
	l.boxPos = 0
	l.boxNonOne = 0
	l.n = 0
	l.pendingF = l.delay
}

// Reducing reports whether the limiter's gain is below 1 now or a
// reduction is already scheduled.
func (l *Limiter) Reducing() bool { return !l.idle() }

func (l *Limiter) idle() bool {
	t := math.Float32bits(l.thr)
	return l.dqLen == 0 && l.env == 1 && l.boxNonOne == 0 && max(l.a[0], l.a[1], l.a[2], l.a[3], l.b) <= t
}

// Process limits the complete frames of buf in place (output delayed by
// Latency() frames).
func (l *Limiter) Process(buf []float32) {
	ch := l.ch
	frames := len(buf) / ch
	l.pendingF = l.delay
	for off := 0; off < frames; {
		n := min(frames-off, limiterBlock)
		l.chunk(buf[off*ch : (off+n)*ch])
		off += n
	}
}

// Flush writes the frames still held in the delay line (followed by
// silence through the limiter) to the start of out and returns the number
// of samples written: Latency() frames in total over successive calls
// after the last Process, fewer if out is short.
func (l *Limiter) Flush(out []float32) int {
	n := min(len(out)/l.ch, l.pendingF)
	if n == 0 {
		return 0
	}
	b := out[:n*l.ch]
	clear(b)
	keep := l.pendingF - n
	l.Process(b)
	l.pendingF = keep
	return len(b)
}

// chunk processes at most limiterBlock frames.
func (l *Limiter) chunk(buf []float32) {
	ch := l.ch
	frames := len(buf) / ch
	if l.loud == 0 && l.idle() && allBelow(buf, l.gate) {
		// Nothing in or before this block can reach the ceiling: the
		// output is the delayed input. Keep the detector history.
		l.keepHistory(buf)
		l.n += int64(frames)
		l.delayLine(buf)
		return
	}
	pk := l.peaks[:frames]
	l.detect(buf, pk)
	g := l.gains[:frames]
	allOne := true
	for i, p := range pk {
		// p is the peak of frame n−4 (its samples and the interpolated
		// values around it).
		if p > l.thr {
			l.push(l.n-4, l.thr/p)
		}
		l.n++
		if l.dqLen == 0 && l.env == 1 && l.boxNonOne == 0 {
			g[i] = 1 // idle: nothing to do until a requirement arrives
			continue
		}
		g[i] = l.envelope()
		allOne = false
	}
	l.delayLine(buf)
	if allOne {
		return
	}
	for i, gi := range g {
		if gi == 1 {
			continue
		}
		f := buf[i*ch : i*ch+ch]
		for c := range f {
			f[c] *= gi
		}
	}
}

// detect cleans buf in place and writes to pk[i] the peak of frame n−4 (n
// the frame at i): the largest of its sample magnitudes and of the 4×
// interpolated values in the intervals to its neighbours, over all
// channels. An interval is interpolated only while one of the eight
// frames its filter reads exceeds l.gate (the loud countdown); otherwise
// no interpolated value can exceed the threshold and it counts as 0.
func (l *Limiter) detect(buf []float32, pk []float32) {
	ch := l.ch
	h := tpTaps - 1 // history frames at the start of det
	det := l.det[:(h+len(pk))*ch]
	src := det[h*ch:]
	for j, v := range buf[:len(src)] {
		if absBits(v) > maxSampleBits {
			v = clean(v)
			buf[j] = v
		}
		src[j] = v
	}
	gate := math.Float32bits(l.gate)
	a1, a2, a3, a4, b := l.a[0], l.a[1], l.a[2], l.a[3], l.b
	loud := l.loud
	for i := range pk {
		var a uint32
		for _, x := range src[i*ch : i*ch+ch] {
			a = max(a, absBits(x))
		}
		if a > gate {
			loud = tpTaps // this frame is in the next tpTaps windows
		}
		var bn uint32
		if loud > 0 {
			loud--
			bn = l.interpolatePeak(det[i*ch : (i+tpTaps)*ch])
		}
		pk[i] = math.Float32frombits(max(a4, b, bn))
		a4, a3, a2, a1 = a3, a2, a1, a
		b = bn
	}
	copy(det, det[len(pk)*ch:]) // keep the last h frames as history
	l.a = [4]uint32{a1, a2, a3, a4}
	l.b, l.loud = b, loud
}

// interpolatePeak returns the bits of the largest magnitude of the three
// 4× interpolated values between frames 3 and 4 of the tpTaps frames in w.
func (l *Limiter) interpolatePeak(w []float32) uint32 {
	ch := l.ch
	var m uint32
	for c := 0; c < ch; c++ {
		var x [tpTaps]float32
		for k := range x {
			x[k] = w[k*ch+c]
		}
		for p := range l.tp {
			t := &l.tp[p]
			var s0, s1 float32
			for k := 0; k < tpTaps; k += 2 {
				s0 += t[k] * x[k]
				s1 += t[k+1] * x[k+1]
			}
			m = max(m, absBits(s0+s1))
		}
	}
	return m
}

// tpTaps is the length of each phase of the 4× peak interpolator.
const tpTaps = 12

// tpKaiserBeta shapes its Kaiser window: the fractional-delay phases are
// flat within about ±0.1 dB up to 0.35·fs (15 kHz at 44.1 kHz) and −0.23 dB
// at 0.4·fs.
const tpKaiserBeta = 4

// tpMargin scales the interpolated values (+0.5 dB): it covers what the
// short interpolator misses against the 24-tap BS.1770 meter on HF-rich
// material and the small error from the gain changing within the filter
// span while limiting. Sample values themselves are limited to exactly
// the ceiling.
const tpMargin = 1.0593

// tpDesign returns the three fractional phases (¼, ½, ¾) of the 4×
// interpolator, each normalized to a gain of tpMargin at DC, and the
// largest sum of absolute coefficients of a phase.
func tpDesign() (tp [3][tpTaps]float32, l1 float64) {
	half := float64(tpTaps / 2)
	for p := range tp {
		phi := float64(p+1) / 4
		var c [tpTaps]float64
		sum := 0.0
		for k := range c {
			t := phi + half - 1 - float64(k) // time of the point relative to tap k
			r := t / half
			c[k] = sinc(t) * besselI0(tpKaiserBeta*math.Sqrt(math.Max(0, 1-r*r))) / besselI0(tpKaiserBeta)
			sum += c[k]
		}
		a := 0.0
		for k := range c {
			v := c[k] / sum * tpMargin
			tp[p][k] = float32(v)
			a += math.Abs(v)
		}
		l1 = math.Max(l1, a)
	}
	return tp, l1
}

// maxSampleBits is math.Float32bits(maxSample).
const maxSampleBits = 0x49800000

// absBits returns the bits of |x|; for non-negative floats the order of
// the bits as unsigned integers is the numeric order (NaN above +Inf), so
// max over them is branch-free.
func absBits(x float32) uint32 { return math.Float32bits(x) &^ (1 << 31) }

// push adds the requirement r (< 1) of frame idx to the monotonic deque.
func (l *Limiter) push(idx int64, r float32) {
	size := len(l.dqVal)
	for l.dqLen > 0 {
		back := l.dqHead + l.dqLen - 1
		if back >= size {
			back -= size
		}
		if l.dqVal[back] < r {
			break
		}
		l.dqLen--
	}
	pos := l.dqHead + l.dqLen
	if pos >= size {
		pos -= size
	}
	l.dqIdx[pos], l.dqVal[pos] = idx, r
	l.dqLen++
}

// envelope advances the gain computer by one frame (called with l.n
// already advanced past the frame whose detection just finished, so that
// requirements are known up to frame l.n−1−tpDelay) and returns the gain
// for the output frame l.n−1−delay.
func (l *Limiter) envelope() float32 {
	// Hold: minimum requirement over frames [k−hold+1, k].
	k := l.n - 1 - tpDelay
	for l.dqLen > 0 && l.dqIdx[l.dqHead] <= k-int64(l.hold) {
		if l.dqHead++; l.dqHead == len(l.dqVal) {
			l.dqHead = 0
		}
		l.dqLen--
	}
	hold := 1.0
	if l.dqLen > 0 {
		hold = float64(l.dqVal[l.dqHead])
	}
	// Release: 1 − env decays exponentially; never above the hold.
	if l.env < 1 {
		l.env = 1 - (1-l.env)*l.relCoef
		if 1-l.env < releaseSnap {
			l.env = 1
		}
	}
	if hold < l.env {
		l.env = hold
	}
	// Box filter (moving average over w frames).
	slot := l.boxPos
	if l.boxPos++; l.boxPos == l.w {
		l.boxPos = 0
	}
	old := l.box[slot]
	if old != 1 {
		l.boxNonOne--
	}
	if l.env != 1 {
		l.boxNonOne++
	}
	l.box[slot] = l.env
	if l.boxNonOne == 0 {
		l.boxSum = float64(l.w) // exact, and drops accumulated rounding
		return 1
	}
	l.boxSum += l.env - old
	return float32(l.boxSum * l.invW)
}

// delayLine replaces the frames of buf by the frames delay earlier in the
// stream.
func (l *Limiter) delayLine(buf []float32) {
	ch := l.ch
	n := len(buf) / ch * ch
	d := l.delay * ch
	if n >= d {
		copy(l.spare, buf[n-d:n])
		copy(buf[d:n], buf[:n-d])
		copy(buf[:d], l.dl)
		l.dl, l.spare = l.spare, l.dl
		return
	}
	copy(l.spare[:n], buf[:n])
	copy(buf[:n], l.dl[:n])
	copy(l.dl, l.dl[n:])
	copy(l.dl[d-n:], l.spare[:n])
}

// keepHistory records the last frames of buf as detector history after a
// fast-path block.
func (l *Limiter) keepHistory(buf []float32) {
	h := (tpTaps - 1) * l.ch
	n := len(buf) / l.ch * l.ch
	if n >= h {
		copy(l.det[:h], buf[n-h:n])
	} else {
		copy(l.det, l.det[n:h])
		copy(l.det[h-n:h], buf[:n])
	}
	l.a, l.b, l.loud = [4]uint32{}, 0, 0 // all at most gate, which is what matters
}

func abs32(x float32) float32 { return math.Float32frombits(math.Float32bits(x) &^ (1 << 31)) }

// allBelow reports whether every sample of buf has magnitude ≤ lim (false
// for NaN). It is branch-free: the maximum of the magnitudes' bits.
func allBelow(buf []float32, lim float32) bool {
	var m0, m1 uint32
	i := 0
	for ; i+1 < len(buf); i += 2 {
		m0 = max(m0, absBits(buf[i]))
		m1 = max(m1, absBits(buf[i+1]))
	}
	if i < len(buf) {
		m0 = max(m0, absBits(buf[i]))
	}
	return max(m0, m1) <= math.Float32bits(lim)
}
