package loudness

import "math"

// Gating works on histograms of block loudness instead of on a list of every
// block: memory is constant however long the input, histograms of several
// tracks add up for album values, and adding a block never allocates.
//
// A bin covers histStep LU and stores the number of blocks and the exact sum
// of their mean-square energies, so gated means are exact except for the
// blocks in the bin that contains a relative threshold (they are all counted
// on the side of the threshold where their mean lies). Percentiles are
// resolved to the energy-mean loudness of the bin, i.e. to better than
// histStep.
const (
	absGate    = -70.0 // LUFS, absolute gate (BS.1770-4, Tech 3342)
	relGateI   = -10.0 // LU, relative gate for integrated loudness
	relGateLRA = -20.0 // LU, relative gate for loudness range
	lowPct     = 0.10  // LRA lower percentile
	highPct    = 0.95  // LRA upper percentile
	histMin    = absGate
	histStep   = 0.01 // LU per bin
	histBins   = 10000
	// loudnessOffset is the −0.691 dB of BS.1770 eq. (2).
	loudnessOffset = -0.691
)

// absGateEnergy is the mean-square energy whose loudness is absGate.
var absGateEnergy = math.Pow(10, (absGate-loudnessOffset)/10)

// energyToLUFS converts a channel-weighted mean-square energy to LUFS.
// A zero energy gives −Inf.
func energyToLUFS(e float64) float64 {
	if e <= 0 {
		return math.Inf(-1)
	}
	return loudnessOffset + 10*math.Log10(e)
}

// histogram of block loudness values above the absolute gate.
// The zero value is an empty histogram.
type histogram struct {
	count  [histBins]int64
	energy [histBins]float64
}

// add records one block of mean-square energy e. Blocks at or below the
// absolute gate are ignored; blocks above the top bin land in the top bin
// (their energy is still exact).
func (h *histogram) add(e float64) {
	if !(e > absGateEnergy) {
		return
	}
	i := int(math.Floor((energyToLUFS(e) - histMin) / histStep))
	if i < 0 {
		i = 0
	}
	if i >= histBins {
		i = histBins - 1
	}
	h.count[i]++
	h.energy[i] += e
}

// merge adds the contents of o to h.
func (h *histogram) merge(o *histogram) {
	for i := range h.count {
		h.count[i] += o.count[i]
		h.energy[i] += o.energy[i]
	}
}

// gate returns the index of the first bin above the relative threshold
// rel LU below the mean energy of all blocks, or ok=false when empty.
func (h *histogram) gate(rel float64) (first int, ok bool) {
	var n int64
	var sum float64
	for i, c := range h.count {
		n += c
		sum += h.energy[i]
	}
	if n == 0 {
		return 0, false
	}
	thr := energyToLUFS(sum/float64(n)) + rel
	t := int(math.Floor((thr - histMin) / histStep))
	if t < 0 {
		return 0, true
	}
	if t >= histBins {
		t = histBins - 1
	}
	// Blocks in the threshold bin count as above it when their mean is.
	if h.count[t] > 0 && energyToLUFS(h.energy[t]/float64(h.count[t])) <= thr {
		t++
	}
	return t, true
}

// integrated returns the gated loudness (BS.1770-4 §2.6) in LUFS, or
// ok=false when no block passes the absolute gate.
func (h *histogram) integrated() (lufs float64, ok bool) {
	first, ok := h.gate(relGateI)
	if !ok {
		return math.Inf(-1), false
	}
	var n int64
	var sum float64
	for i := first; i < histBins; i++ {
		n += h.count[i]
		sum += h.energy[i]
	}
	if n == 0 { // cannot happen: the loudest block is above the mean
		return math.Inf(-1), false
	}
	return energyToLUFS(sum / float64(n)), true
}

// loudnessRange returns LRA (EBU Tech 3342) in LU from a histogram of
// short-term loudness values; 0 when there are no gated values.
func (h *histogram) loudnessRange() float64 {
	first, ok := h.gate(relGateLRA)
	if !ok {
		return 0
	}
	var n int64
	for i := first; i < histBins; i++ {
		n += h.count[i]
	}
	if n == 0 {
		return 0
	}
	lo := h.rank(first, int64(math.Round(float64(n-1)*lowPct)))
	hi := h.rank(first, int64(math.Round(float64(n-1)*highPct)))
	return hi - lo
}

// rank returns the loudness of the value with 0-based rank r among the bins
// from first on, as the energy-mean loudness of its bin.
func (h *histogram) rank(first int, r int64) float64 {
	var seen int64
	for i := first; i < histBins; i++ {
		c := h.count[i]
		if c == 0 {
			continue
		}
		seen += c
		if seen > r {
			return energyToLUFS(h.energy[i] / float64(c))
		}
	}
	return math.Inf(-1) // unreachable for r < total count
}
