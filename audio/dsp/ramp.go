package dsp

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// maxSample is the largest magnitude a stage lets through on its processing
// paths (2^20, about +120 dBFS). Larger values, including ±Inf, are clamped
// to ±maxSample and NaN becomes 0, so that no later multiplication or filter
// sum can overflow to Inf or produce NaN.
const maxSample = 1 << 20

// clean returns x with NaN replaced by 0 and magnitudes above maxSample
// (including ±Inf) clamped to ±maxSample.
func clean(x float32) float32 {
	if x >= -maxSample && x <= maxSample {
		return x
	}
	if x > 0 {
		return maxSample
	}
	if x < 0 {
		return -maxSample
	}
	return 0 // NaN
}

// ErrFormat is returned by constructors for an unusable sample rate, channel
// count or setting.
var ErrFormat = errors.New("dsp: unsupported format")

// Limits on the formats the stages accept.
const (
	MinRate     = 1000
	MaxRate     = 1_000_000
	MaxChannels = 32
)

func checkFormat(rate, channels int) error {
	if rate < MinRate || rate > MaxRate {
		return fmt.Errorf("%w: sample rate %d outside [%d, %d]", ErrFormat, rate, MinRate, MaxRate)
	}
	if channels < 1 || channels > MaxChannels {
		return fmt.Errorf("%w: %d channels outside [1, %d]", ErrFormat, channels, MaxChannels)
	}
	return nil
}

// framesOf converts a duration to a whole number of frames at rate (at
// least min).
func framesOf(d time.Duration, rate, min int) int {
	n := int(math.Round(d.Seconds() * float64(rate)))
	if n < min {
		n = min
	}
	return n
}

// dbToLinear converts decibels to an amplitude factor; 0 dB is exactly 1.
func dbToLinear(db float64) float32 {
	if db == 0 {
		return 1
	}
	return float32(math.Pow(10, db/20))
}

// ramp is a gain factor that is either steady or moving linearly (in
// amplitude) from one value to another over a fixed number of frames. The
// factor of frame pos of a ramp is from + (to-from)·pos/n, so a ramp's first
// frame gets exactly from and the frame after its last gets exactly to.
type ramp struct {
	from, to float32
	n, pos   int // ramp length in frames and frames done; pos >= n: steady at to
}

// value returns the factor of the next frame.
func (r *ramp) value() float32 {
	if r.pos >= r.n {
		return r.to
	}
	return r.from + (r.to-r.from)/float32(r.n)*float32(r.pos)
}

// active reports whether a ramp is in progress.
func (r *ramp) active() bool { return r.pos < r.n }

// set makes the factor move from its current value to target over frames
// frames (at once when frames <= 0 or the value is already target).
func (r *ramp) set(target float32, frames int) {
	cur := r.value()
	if frames <= 0 || cur == target {
		r.jump(target)
		return
	}
	r.from, r.to, r.n, r.pos = cur, target, frames, 0
}

// jump sets the factor to target with no ramp.
func (r *ramp) jump(target float32) {
	r.from, r.to, r.n, r.pos = target, target, 0, 0
}

// remaining returns the frames left in the current ramp.
func (r *ramp) remaining() int {
	if r.pos >= r.n {
		return 0
	}
	return r.n - r.pos
}

// apply multiplies the complete frames of buf by the factor, advancing the
// ramp. A steady factor of exactly 1 leaves buf untouched (bit-exact), a
// steady 0 writes zeros; every other path replaces non-finite samples (see
// clean).
func (r *ramp) apply(buf []float32, ch int) {
	frames := len(buf) / ch
	i := 0
	if r.pos < r.n {
		d := (r.to - r.from) / float32(r.n) // same expression as value
		for ; i < frames && r.pos < r.n; i++ {
			g := r.from + d*float32(r.pos)
			f := buf[i*ch : i*ch+ch]
			for c := range f {
				f[c] = clean(f[c]) * g
			}
			r.pos++
		}
	}
	if i == frames {
		return
	}
	rest := buf[i*ch : frames*ch]
	switch g := r.to; g {
	case 1:
		// Unity: exact passthrough.
	case 0:
		clear(rest)
	default:
		for j, v := range rest {
			rest[j] = clean(v) * g
		}
	}
}
