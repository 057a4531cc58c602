package player

import (
	"fmt"

	"github.com/roomcast/roomcast/audio/dsp"
)

// chain is the device-side dsp: the current track's gain, the limiter
// and the volume, at the device format, applied in that order to every
// block (a crossfade mixes the outgoing track in between gain and
// limiter).
//
// Invariants: every frame entering the limiter leaves it lat frames later
// (lat = lim.Latency()), and the limiter and volume run on uninterrupted
// across gapless joins; only Load, seek and a reopen reset them. volSet
// and curve are what vol was last given, so follow applies a change once.
// Owned by the pipeline goroutine.
type chain struct {
	gain   *dsp.Gain
	lim    *dsp.Limiter
	lat    int64 // lim.Latency()
	vol    *dsp.Volume
	volSet int32            // volume last passed to vol
	curve  *dsp.VolumeCurve // curve last passed to vol
}

// newChain builds the stages for rate × ch at volume v with curve c.
func newChain(rate, ch int, v int32, c *dsp.VolumeCurve) (chain, error) {
	gain, err := dsp.NewGain(rate, ch)
	if err != nil {
		return chain{}, fmt.Errorf("gain: %w", err)
	}
	lim, err := dsp.NewLimiter(rate, ch, dsp.LimiterConfig{})
	if err != nil {
		return chain{}, fmt.Errorf("limiter: %w", err)
	}
	cn := chain{gain: gain, lim: lim, lat: int64(lim.Latency())}
	if err := cn.newVolume(rate, ch, v, c); err != nil {
		return chain{}, err
	}
	return cn, nil
}

// newVolume replaces the volume stage: fader open, at volume v, no ramp
// (a new track starts bit-exact at 100 %).
func (c *chain) newVolume(rate, ch int, v int32, curve *dsp.VolumeCurve) error {
	vol, err := dsp.NewVolumeCurve(rate, ch, float64(v), *curve)
	if err != nil {
		return fmt.Errorf("volume: %w", err)
	}
	c.vol, c.volSet, c.curve = vol, v, curve
	return nil
}

// follow passes a changed volume or curve (SetVolume, SetVolumeCurve) to
// the volume stage, which ramps to it.
func (c *chain) follow(v int32, curve *dsp.VolumeCurve) {
	if v != c.volSet {
		c.vol.SetVolume(float64(v))
		c.volSet = v
	}
	if curve != c.curve {
		c.vol.SetCurve(*curve)
		c.curve = curve
	}
}

// flushTail writes the limiter's delayed frames into tail, through the
// volume, and returns the number of samples.
func (c *chain) flushTail(tail []float32) int {
	n := c.lim.Flush(tail)
	c.vol.Process(tail[:n])
	return n
}
