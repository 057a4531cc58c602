package dsp

import "math"

// Crossfade mixes the end of one track into the start of the next with
// equal-power gains: frame i of the fade, at position p = (pos+i)/length in
// [0, 1), gets out·cos(p·π/2) + in·sin(p·π/2), so the summed power of two
// uncorrelated signals stays constant. dst, out and in hold interleaved
// frames of channels samples; the complete frames common to all three are
// processed (dst may be the same slice as out or in). Frames at or beyond
// length take in unchanged. It returns the number of samples written.
//
// The pipeline keeps pos (frames of the fade already mixed) and calls
// Crossfade per block during the overlap. It costs one Sincos per frame
// (about 15 ns), acceptable for the few seconds a crossfade lasts. It is
// optional and off by default: gapless albums must not be crossfaded.
func Crossfade(dst, out, in []float32, channels int, pos, length int64) int {
	if channels < 1 {
		return 0
	}
	frames := min(len(dst), len(out), len(in)) / channels
	for i := 0; i < frames; i++ {
		p := pos + int64(i)
		s := i * channels
		if p >= length || length <= 0 {
			copy(dst[s:s+channels], in[s:s+channels])
			continue
		}
		gi, go_ := 0.0, 1.0
		if p > 0 {
			gi, go_ = math.Sincos(float64(p) / float64(length) * math.Pi / 2)
		}
		for c := s; c < s+channels; c++ {
			dst[c] = float32(go_*float64(clean(out[c])) + gi*float64(clean(in[c])))
		}
	}
	return frames * channels
}
