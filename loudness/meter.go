package loudness

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// SurroundWeight is the BS.1770 channel weight of the left and right
// surround channels (≈ +1.5 dB).
const SurroundWeight = 1.41

// Limits accepted by NewMeter.
const (
	MinSampleRate = 8000
	MaxSampleRate = 768000
	MaxChannels   = 64
)

const (
	subBlocksMomentary = 4  // 400 ms
	subBlocksShortTerm = 30 // 3 s
	chunkFrames        = 1024
	denormalFloor      = 1e-200
)

// Result is a snapshot of the measurement.
//
// Loudness values are in LUFS (LU for Range), peaks in dB relative to full
// scale (1.0). When nothing has been measured yet the values are not NaN:
// Integrated, MaxMomentary and MaxShortTerm are math.Inf(-1) (and
// HasLoudness is false), Range is 0, and the peaks of digital silence are
// math.Inf(-1).
type Result struct {
	// Integrated is the gated programme loudness (BS.1770-4), LUFS.
	Integrated float64
	// HasLoudness reports whether at least one 400 ms block passed the
	// absolute gate, i.e. whether Integrated is finite.
	HasLoudness bool
	// Range is the loudness range LRA (EBU Tech 3342), LU.
	Range float64
	// TruePeak is the maximum 4×-oversampled absolute value over all
	// channels, dBTP.
	TruePeak float64
	// SamplePeak is the maximum absolute sample value over all channels,
	// dBFS.
	SamplePeak float64
	// MaxMomentary and MaxShortTerm are the largest 400 ms and 3 s loudness
	// values seen (evaluated every 100 ms), LUFS.
	MaxMomentary float64
	MaxShortTerm float64
	// Frames is the number of complete frames written; Duration is the same
	// as time.
	Frames   int64
	Duration time.Duration
}

// Meter measures loudness, loudness range and peaks of one programme.
//
// A Meter is not safe for concurrent use. Its memory is allocated by the
// constructor and is constant (about 330 KB plus 8 KB per channel); Write
// never allocates.
type Meter struct {
	rate    int
	nch     int
	weights []float64

	shelf, hp biquad
	// state holds per channel the direct-form I history of the cascade:
	// the last two inputs (0, 1), shelf outputs (2, 3) and high-pass
	// outputs (4, 5), newest first.
	state [][6]float64
	// acc is the per-channel sum of squared K-weighted samples of the
	// current 100 ms sub-block.
	acc []float64

	subIndex int64 // index of the current sub-block
	subPos   int   // frames already in it
	subLen   int   // its length in frames

	// Ring of the last 30 completed sub-blocks: channel-weighted energy
	// sums and frame counts; ringFill counts completed sub-blocks (capped).
	ringE    [subBlocksShortTerm]float64
	ringN    [subBlocksShortTerm]int
	ringHead int
	ringFill int

	momentary, shortTerm       float64 // latest window energies, −1 if none
	maxMomentaryE, maxShortE   float64 // largest window energies, −1 if none
	blocks, shortTermHistogram *histogram

	samplePeak []float64 // per channel, linear
	truePeak   []float64 // per channel, linear (includes samplePeak)
	tpBuf      [][]float64
	histMax    []float64 // per channel, max|x| of tpBuf[c][:tpHist]
	blockMax   [chunkFrames / tpBlock]float64

	carry  []float32
	carryN int
	frames int64
}

// DefaultWeights returns the BS.1770 channel weights used by NewMeter for
// a channel count: 1.0 for every channel, except 6 channels, which are taken
// as 5.1 in the order L, R, C, LFE, Ls, Rs with weights 1, 1, 1, 0, 1.41,
// 1.41 (the LFE channel is excluded from loudness but not from peaks).
func DefaultWeights(channels int) []float64 {
	if channels <= 0 {
		return nil
	}
	w := make([]float64, channels)
	for i := range w {
		w[i] = 1
	}
	if channels == 6 {
		w[3] = 0
		w[4] = SurroundWeight
		w[5] = SurroundWeight
	}
	return w
}

// NewMeter returns a meter for interleaved float32 audio with the given
// sample rate (Hz) and channel count, using DefaultWeights.
func NewMeter(sampleRate, channels int) (*Meter, error) {
	if channels < 1 || channels > MaxChannels {
		return nil, fmt.Errorf("loudness: channel count %d outside 1..%d", channels, MaxChannels)
	}
	return NewMeterWeights(sampleRate, DefaultWeights(channels))
}

// NewMeterWeights returns a meter for len(weights) interleaved channels
// with explicit BS.1770 channel weights (e.g. 1, 1, 1, 1.41, 1.41 for 5.0).
// Weights must be finite and non-negative; a zero weight excludes the
// channel from loudness but not from the peak measurements.
func NewMeterWeights(sampleRate int, weights []float64) (*Meter, error) {
	if sampleRate < MinSampleRate || sampleRate > MaxSampleRate {
		return nil, fmt.Errorf("loudness: sample rate %d outside %d..%d", sampleRate, MinSampleRate, MaxSampleRate)
	}
	n := len(weights)
	if n < 1 || n > MaxChannels {
		return nil, fmt.Errorf("loudness: channel count %d outside 1..%d", n, MaxChannels)
	}
	for _, w := range weights {
		if !(w >= 0) || math.IsInf(w, 1) {
			return nil, errors.New("loudness: channel weights must be finite and non-negative")
		}
	}
	m := &Meter{
		rate:               sampleRate,
		nch:                n,
		weights:            append([]float64(nil), weights...),
		shelf:              shelfFilter(float64(sampleRate)),
		hp:                 highPassFilter(float64(sampleRate)),
		state:              make([][6]float64, n),
		acc:                make([]float64, n),
		blocks:             new(histogram),
		shortTermHistogram: new(histogram),
		samplePeak:         make([]float64, n),
		truePeak:           make([]float64, n),
		tpBuf:              make([][]float64, n),
		histMax:            make([]float64, n),
		carry:              make([]float32, n),
	}
	for c := range m.tpBuf {
		m.tpBuf[c] = make([]float64, tpHist+chunkFrames)
	}
	m.Reset()
	return m, nil
}

// Reset clears all measurements so the meter can be reused for another
// programme with the same format, without allocating.
func (m *Meter) Reset() {
	clear(m.state)
	clear(m.acc)
	m.subIndex = 0
	m.subPos = 0
	m.subLen = m.subBlockLen(0)
	m.ringE = [subBlocksShortTerm]float64{}
	m.ringN = [subBlocksShortTerm]int{}
	m.ringHead = 0
	m.ringFill = 0
	m.momentary, m.shortTerm = -1, -1
	m.maxMomentaryE, m.maxShortE = -1, -1
	*m.blocks = histogram{}
	*m.shortTermHistogram = histogram{}
	clear(m.samplePeak)
	clear(m.truePeak)
	for _, b := range m.tpBuf {
		clear(b)
	}
	clear(m.histMax)
	clear(m.carry)
	m.carryN = 0
	m.frames = 0
}

// SampleRate returns the sample rate in Hz.
func (m *Meter) SampleRate() int { return m.rate }

// Channels returns the number of interleaved channels.
func (m *Meter) Channels() int { return m.nch }

// subBlockLen is the length of 100 ms sub-block k: sub-block k covers
// frames [⌊k·rate/10⌋, ⌊(k+1)·rate/10⌋), so rates that are not a multiple of
// 10 Hz get sub-blocks that differ by one frame and never drift.
func (m *Meter) subBlockLen(k int64) int {
	r := int64(m.rate)
	return int((k+1)*r/10 - k*r/10)
}

// Write adds interleaved samples (frame after frame, m.Channels() values
// per frame, full scale ±1.0). Any length is accepted: a trailing partial
// frame is kept until the next Write completes it, so the result does not
// depend on how the stream is split. NaN and ±Inf samples are treated as 0.
func (m *Meter) Write(samples []float32) {
	if m.carryN > 0 {
		need := m.nch - m.carryN
		if len(samples) < need {
			copy(m.carry[m.carryN:], samples)
			m.carryN += len(samples)
			return
		}
		copy(m.carry[m.carryN:], samples[:need])
		m.process(m.carry, 1)
		m.carryN = 0
		samples = samples[need:]
	}
	nf := len(samples) / m.nch
	if nf > 0 {
		m.process(samples[:nf*m.nch], nf)
	}
	rest := samples[nf*m.nch:]
	m.carryN = copy(m.carry, rest)
}

// process consumes nf complete interleaved frames.
func (m *Meter) process(in []float32, nf int) {
	for nf > 0 {
		n := min(nf, chunkFrames, m.subLen-m.subPos)
		m.processChunk(in[:n*m.nch], n)
		in = in[n*m.nch:]
		nf -= n
		m.frames += int64(n)
		m.subPos += n
		if m.subPos == m.subLen {
			m.finishSubBlock()
		}
	}
}

// processChunk runs n frames (all inside one sub-block) through the
// per-channel K-weighting, energy accumulation and peak detectors.
func (m *Meter) processChunk(in []float32, n int) {
	for c := 0; c < m.nch; c++ {
		buf := m.tpBuf[c]
		nb := (n + tpBlock - 1) / tpBlock
		if m.weights[c] == 0 {
			loadChannel(in, c, m.nch, buf[tpHist:tpHist+n], m.blockMax[:nb])
		} else {
			m.acc[c] = kWeightChannel(in, c, m.nch, buf[tpHist:tpHist+n], m.blockMax[:nb],
				&m.shelf, &m.hp, &m.state[c], m.acc[c])
		}
		peak := m.samplePeak[c]
		for _, v := range m.blockMax[:nb] {
			if v > peak {
				peak = v
			}
		}
		m.samplePeak[c] = peak
		m.truePeak[c] = tpShared.scanPeak(buf[:tpHist+n], m.blockMax[:nb], m.histMax[c], max(peak, m.truePeak[c]))
		copy(buf[:tpHist], buf[n:n+tpHist])
		hm := 0.0
		for _, v := range buf[:tpHist] {
			if a := math.Abs(v); a > hm {
				hm = a
			}
		}
		m.histMax[c] = hm
	}
}

// sanitize maps NaN and ±Inf to 0 (v−v is 0 exactly for finite v).
func sanitize(v float64) float64 {
	if v-v != 0 {
		return 0
	}
	return v
}

// loadChannel copies channel c of the interleaved input into dst as float64
// and stores max|x| of every tpBlock samples in blockMax.
func loadChannel(in []float32, c, stride int, dst, blockMax []float64) {
	j := c
	for b := range blockMax {
		blk := dst[b*tpBlock : min(len(dst), (b+1)*tpBlock)]
		mx := 0.0
		for i := range blk {
			v := sanitize(float64(in[j]))
			j += stride
			blk[i] = v
			if a := math.Abs(v); a > mx {
				mx = a
			}
		}
		blockMax[b] = mx
	}
}

// kWeightChannel is loadChannel plus the K-weighting cascade (direct form
// I, float64 state) and the sum of squared K-weighted samples, which it
// returns added to acc. The sum is accumulated sample by sample in stream
// order, so it does not depend on how the stream is chunked.
func kWeightChannel(in []float32, c, stride int, dst, blockMax []float64, sh, hp *biquad, st *[6]float64, acc float64) float64 {
	sb0, sb1, sb2, sa1, sa2 := sh.b0, sh.b1, sh.b2, sh.a1, sh.a2
	hg, ha1, ha2 := hp.b0, hp.a1, hp.a2 // high-pass numerator is hg·(1, −2, 1)
	x1, x2, y1, y2, z1, z2 := st[0], st[1], st[2], st[3], st[4], st[5]
	j := c
	for b := range blockMax {
		blk := dst[b*tpBlock : min(len(dst), (b+1)*tpBlock)]
		mx := 0.0
		for i := range blk {
			v := sanitize(float64(in[j]))
			j += stride
			blk[i] = v
			if a := math.Abs(v); a > mx {
				mx = a
			}
			// Feed-forward terms first, feedback last: the loop-carried
			// dependency is one multiply and one add per section.
			y := (sb0*v + sb1*x1 + sb2*x2 - sa2*y2) - sa1*y1
			z := (hg*((y+y2)-2*y1) - ha2*z2) - ha1*z1
			x2, x1 = x1, v
			y2, y1 = y1, y
			z2, z1 = z1, z
			acc += z * z
		}
		blockMax[b] = mx
	}
	st[0], st[1], st[2], st[3], st[4], st[5] = x1, x2, y1, y2, z1, z2
	return acc
}

// finishSubBlock closes the current 100 ms sub-block, updates the momentary
// and short-term windows and the gating histograms.
func (m *Meter) finishSubBlock() {
	e := 0.0
	for c, w := range m.weights {
		e += w * m.acc[c]
		m.acc[c] = 0
		// Flush near-denormal filter state at a fixed stream position
		// (keeps results independent of chunking, avoids slow subnormals).
		st := &m.state[c]
		for k := range st {
			if math.Abs(st[k]) < denormalFloor {
				st[k] = 0
			}
		}
	}
	m.ringE[m.ringHead] = e
	m.ringN[m.ringHead] = m.subLen
	m.ringHead = (m.ringHead + 1) % subBlocksShortTerm
	if m.ringFill < subBlocksShortTerm {
		m.ringFill++
	}
	if m.ringFill >= subBlocksMomentary {
		m.momentary = m.windowEnergy(subBlocksMomentary)
		m.blocks.add(m.momentary)
		m.maxMomentaryE = max(m.maxMomentaryE, m.momentary)
	}
	if m.ringFill >= subBlocksShortTerm {
		m.shortTerm = m.windowEnergy(subBlocksShortTerm)
		m.shortTermHistogram.add(m.shortTerm)
		m.maxShortE = max(m.maxShortE, m.shortTerm)
	}
	m.subIndex++
	m.subPos = 0
	m.subLen = m.subBlockLen(m.subIndex)
}

// windowEnergy is the channel-weighted mean square of the last k sub-blocks.
func (m *Meter) windowEnergy(k int) float64 {
	sum, n := 0.0, 0
	for i := 1; i <= k; i++ {
		j := (m.ringHead - i + subBlocksShortTerm) % subBlocksShortTerm
		sum += m.ringE[j]
		n += m.ringN[j]
	}
	return sum / float64(n)
}

// Momentary returns the loudness of the latest complete 400 ms window
// (updated every 100 ms), LUFS, or math.Inf(-1) before the first one.
func (m *Meter) Momentary() float64 { return windowLUFS(m.momentary) }

// ShortTerm returns the loudness of the latest complete 3 s window
// (updated every 100 ms), LUFS, or math.Inf(-1) before the first one.
func (m *Meter) ShortTerm() float64 { return windowLUFS(m.shortTerm) }

func windowLUFS(e float64) float64 {
	if e < 0 {
		return math.Inf(-1)
	}
	return energyToLUFS(e)
}

func linearToDB(v float64) float64 {
	if v <= 0 {
		return math.Inf(-1)
	}
	return 20 * math.Log10(v)
}

// peaks returns the linear sample peak and true peak over all channels,
// including the interpolated values after the last sample (the filter tail,
// as if the programme were followed by silence). It does not modify m.
func (m *Meter) peaks() (sample, truePk float64) {
	var tail [2 * tpHist]float64
	for c := 0; c < m.nch; c++ {
		sample = max(sample, m.samplePeak[c])
		tp := max(m.truePeak[c], m.samplePeak[c])
		copy(tail[:tpHist], m.tpBuf[c][:tpHist])
		tp = tpShared.interpolatePeak(tail[:], tp)
		truePk = max(truePk, tp)
	}
	return sample, truePk
}

// Result returns the measurement so far. It does not change the meter, so
// writing may continue afterwards. Samples of an unfinished 100 ms
// sub-block count for the peaks and Duration but not yet for loudness.
func (m *Meter) Result() Result {
	var r Result
	r.Integrated, r.HasLoudness = m.blocks.integrated()
	r.Range = m.shortTermHistogram.loudnessRange()
	sp, tp := m.peaks()
	r.SamplePeak = linearToDB(sp)
	r.TruePeak = linearToDB(tp)
	r.MaxMomentary = windowLUFS(m.maxMomentaryE)
	r.MaxShortTerm = windowLUFS(m.maxShortE)
	r.Frames = m.frames
	r.Duration = time.Duration(float64(m.frames) / float64(m.rate) * float64(time.Second))
	return r
}

// Album returns the combined measurement of several programmes (e.g. the
// tracks of an album) as R128 album gain defines it: integrated loudness
// gated over the 400 ms blocks of all meters together, loudness range over
// all their short-term values, the maximum peaks and momentary/short-term
// maxima, and the summed duration. Meters may differ in sample rate and
// channel count; nil meters are skipped. The meters are not modified.
func Album(meters ...*Meter) Result {
	blocks, st := new(histogram), new(histogram)
	var r Result
	sp, tp := 0.0, 0.0
	maxM, maxS := -1.0, -1.0
	for _, m := range meters {
		if m == nil {
			continue
		}
		blocks.merge(m.blocks)
		st.merge(m.shortTermHistogram)
		s, t := m.peaks()
		sp, tp = max(sp, s), max(tp, t)
		maxM, maxS = max(maxM, m.maxMomentaryE), max(maxS, m.maxShortE)
		r.Frames += m.frames
		r.Duration += time.Duration(float64(m.frames) / float64(m.rate) * float64(time.Second))
	}
	r.Integrated, r.HasLoudness = blocks.integrated()
	r.Range = st.loudnessRange()
	r.SamplePeak = linearToDB(sp)
	r.TruePeak = linearToDB(tp)
	r.MaxMomentary = windowLUFS(maxM)
	r.MaxShortTerm = windowLUFS(maxS)
	return r
}
