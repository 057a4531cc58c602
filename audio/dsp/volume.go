package dsp

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Volume curve: see VolumeGain.
const (
	// VolumeRangeDB is the attenuation at the bottom of the logarithmic
	// part of the curve, reached at VolumeKnee %: 0.6 dB per step from
	// VolumeKnee to 100.
	VolumeRangeDB = 54.0
	// VolumeKnee is the percentage below which the curve is linear in
	// amplitude down to silence at 0.
	VolumeKnee = 10.0
)

// DefaultVolumeRamp is the duration of the ramp to a new volume.
const DefaultVolumeRamp = 30 * time.Millisecond

// VolumeGain maps a volume percentage to an amplitude factor.
//
// From VolumeKnee (10 %) to 100 % the curve is logarithmic: every step of
// 1 % changes the level by the same 0.6 dB (54 dB over 90 steps, so 50 % is
// −30 dB and 10 % is −54 dB), which is what the ear perceives as even
// steps. Below 10 % the factor falls linearly to exactly 0 at 0 %, so there
// is no jump from silence to an audible level at the bottom (1 % is
// −74 dB), as a pure dB curve would have. NaN counts as 0; values are
// clamped to [0, 100]; 100 gives exactly 1.
func VolumeGain(percent float64) float64 { return logGain(percent, VolumeRangeDB) }

// logGain is VolumeGain over a range of rangeDB instead of VolumeRangeDB.
func logGain(percent, rangeDB float64) float64 {
	switch {
	case !(percent > 0): // also NaN
		return 0
	case percent >= 100:
		return 1
	}
	knee := math.Pow(10, -rangeDB/20)
	if percent < VolumeKnee {
		return knee * percent / VolumeKnee
	}
	return math.Pow(10, -rangeDB*(100-percent)/(100-VolumeKnee)/20)
}

// VolumeDB returns VolumeGain(percent) in dB (−Inf at 0).
func VolumeDB(percent float64) float64 { return 20 * math.Log10(VolumeGain(percent)) }

// VolumeCurve maps a volume percentage to an amplitude factor. The zero
// value is the default curve (VolumeGain). Values are comparable.
//
//   - "log" (default) or "log:DB": logarithmic from VolumeKnee to 100 %
//     over a range of DB (20–100, default 54: 0.6 dB per step), linear in
//     amplitude below the knee down to silence at 0 (see VolumeGain).
//   - "linear": amplitude proportional to the percentage (50 % is −6 dB);
//     for hardware that applies its own curve after ours.
//   - "fixed": always unity gain; the percentage is still kept and
//     reported (an amplifier with its own volume knob, or bit-perfect
//     output). Pause, seek and crossfade fades still apply.
type VolumeCurve struct {
	kind    string  // "" (log), "linear" or "fixed"
	rangeDB float64 // log only; 0 means VolumeRangeDB
}

// Volume curve range bounds for "log:DB".
const (
	MinVolumeRangeDB = 20
	MaxVolumeRangeDB = 100
)

// ParseVolumeCurve parses "log", "log:DB", "linear" or "fixed" (case
// insensitive; "" is "log").
func ParseVolumeCurve(s string) (VolumeCurve, error) {
	kind, arg, hasArg := strings.Cut(strings.ToLower(strings.TrimSpace(s)), ":")
	switch kind {
	case "", "log":
		if !hasArg {
			return VolumeCurve{}, nil
		}
		db, err := strconv.ParseFloat(arg, 64)
		if err != nil || !(db >= MinVolumeRangeDB && db <= MaxVolumeRangeDB) {
			return VolumeCurve{}, fmt.Errorf("volume curve %q: the range after log: must be %d to %d dB", s, MinVolumeRangeDB, MaxVolumeRangeDB)
		}
		if db == VolumeRangeDB {
			return VolumeCurve{}, nil
		}
		return VolumeCurve{rangeDB: db}, nil
	case "linear", "fixed":
		if hasArg {
			return VolumeCurve{}, fmt.Errorf("volume curve %q: %s takes no argument", s, kind)
		}
		return VolumeCurve{kind: kind}, nil
	}
	return VolumeCurve{}, errors.New("volume curve " + strconv.Quote(s) + ": want log, log:DB, linear or fixed")
}

// String is the spec ParseVolumeCurve reads back.
func (c VolumeCurve) String() string {
	switch {
	case c.kind != "":
		return c.kind
	case c.rangeDB != 0:
		return "log:" + strconv.FormatFloat(c.rangeDB, 'g', -1, 64)
	}
	return "log"
}

// Gain maps percent (clamped to [0, 100], NaN is 0) to an amplitude
// factor: 0 at 0 % (except "fixed"), exactly 1 at 100 %.
func (c VolumeCurve) Gain(percent float64) float64 {
	switch c.kind {
	case "fixed":
		return 1
	case "linear":
		return clampPercent(percent) / 100
	}
	if c.rangeDB == 0 {
		return VolumeGain(percent)
	}
	return logGain(percent, c.rangeDB)
}

// Volume is the software volume and pause/resume fader, in place on
// interleaved samples.
//
// The volume target may be set from any goroutine (SetVolume); the
// pipeline goroutine picks it up at its next Process call and ramps
// linearly in amplitude, per frame, over DefaultVolumeRamp (30 ms). A new
// curve (SetCurve) ramps the same way. The
// fader (FadeOut, FadeIn) multiplies on top of the volume. At 100 % with
// the fader open and no ramp in progress Process leaves the samples
// untouched (bit-exact passthrough); once a fade-out has completed it
// writes exact zeros.
//
// Apart from SetVolume and Volume, a Volume is not safe for concurrent use.
// Process never allocates.
type Volume struct {
	ch, rate   int
	rampFrames int
	target     atomic.Uint64 // float64 bits of the requested percentage
	applied    float64       // percentage the volume ramp moves to
	curve      VolumeCurve
	vol, fade  ramp
}

// NewVolume returns a Volume at percent % with the fader open.
func NewVolume(sampleRate, channels int, percent float64) (*Volume, error) {
	if err := checkFormat(sampleRate, channels); err != nil {
		return nil, err
	}
	v := &Volume{ch: channels, rate: sampleRate, rampFrames: framesOf(DefaultVolumeRamp, sampleRate, 1)}
	p := clampPercent(percent)
	v.target.Store(math.Float64bits(p))
	v.applied = p
	v.vol.jump(float32(VolumeGain(p)))
	v.fade.jump(1)
	return v, nil
}

// NewVolumeCurve is NewVolume on curve c (no ramp: the gain starts at
// c.Gain(percent)).
func NewVolumeCurve(sampleRate, channels int, percent float64, c VolumeCurve) (*Volume, error) {
	v, err := NewVolume(sampleRate, channels, percent)
	if err != nil {
		return nil, err
	}
	v.curve = c
	v.vol.jump(float32(c.Gain(v.applied)))
	return v, nil
}

func clampPercent(p float64) float64 {
	if !(p > 0) {
		return 0
	}
	return math.Min(p, 100)
}

// SetVolume sets the target volume in percent (clamped to [0, 100], NaN
// is 0). Safe for concurrent use.
func (v *Volume) SetVolume(percent float64) {
	v.target.Store(math.Float64bits(clampPercent(percent)))
}

// Volume returns the target volume in percent. Safe for concurrent use.
func (v *Volume) Volume() float64 { return math.Float64frombits(v.target.Load()) }

// FadeOut starts a fade to silence over d (at least one frame) and
// returns the number of frames after which the output is silent; Faded
// reports true from then on. Pausing: keep calling Process for that many
// frames, then stop pulling. A fade-out that is already complete returns 0.
func (v *Volume) FadeOut(d time.Duration) int {
	if v.fade.to == 0 && !v.fade.active() {
		return 0
	}
	v.fade.set(0, framesOf(d, v.rate, 1))
	return v.fade.remaining()
}

// FadeIn starts a fade from the current fader level (0 after a completed
// fade-out, so the first frame is exactly 0) to full over d.
func (v *Volume) FadeIn(d time.Duration) {
	v.fade.set(1, framesOf(d, v.rate, 1))
}

// Mute closes the fader at once (e.g. before the first block after a
// seek, followed by FadeIn).
func (v *Volume) Mute() { v.fade.jump(0) }

// Faded reports whether the fader is closed: every frame processed from
// now on is exactly 0.
func (v *Volume) Faded() bool { return v.fade.to == 0 && !v.fade.active() }

// Ramping reports whether a volume or fade ramp is in progress.
func (v *Volume) Ramping() bool { return v.vol.active() || v.fade.active() }

// SetCurve changes the volume curve; the next Process ramps to the gain
// of the current volume on the new curve. Not safe for concurrent use
// (call it from the goroutine that calls Process).
func (v *Volume) SetCurve(c VolumeCurve) {
	if c != v.curve {
		v.curve = c
		v.vol.set(float32(c.Gain(v.applied)), v.rampFrames)
	}
}

// Curve is the curve in use.
func (v *Volume) Curve() VolumeCurve { return v.curve }

// Process applies volume and fader to the complete frames of buf in place.
func (v *Volume) Process(buf []float32) {
	if p := math.Float64frombits(v.target.Load()); p != v.applied {
		v.applied = p
		v.vol.set(float32(v.curve.Gain(p)), v.rampFrames)
	}
	if v.Faded() {
		clear(buf[:len(buf)/v.ch*v.ch])
		return
	}
	v.vol.apply(buf, v.ch)
	v.fade.apply(buf, v.ch)
}
