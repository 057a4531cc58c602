package output

import (
	"fmt"
	"time"
)

// Defaults used by Options.withDefaults when a field is zero.
const (
	DefaultSampleRate = 44100
	DefaultChannels   = 2
	DefaultPeriodMS   = 20
	DefaultPeriods    = 4
	DefaultRingMS     = 500
	DefaultStall      = 2 * time.Second
	DefaultRetryMin   = 250 * time.Millisecond
	DefaultRetryMax   = 5 * time.Second
)

// Options configures an output. The zero value is usable: every zero field
// takes the default named next to it. Frame counts are per channel (one
// frame = Channels samples).
type Options struct {
	// SampleRate is the rate, in Hz, at which the caller writes frames and
	// the device is opened (miniaudio resamples if the hardware cannot do
	// it). Default 44100. Range 8000–384000.
	SampleRate int

	// Channels is the number of interleaved channels the caller writes.
	// Default 2. Range 1–8.
	Channels int

	// PeriodFrames is the size of one device period: the number of frames
	// the device asks for per callback (and the WAV sink writes per tick).
	// If zero, PeriodMS is used.
	//
	// Smaller periods lower latency and make Pause, Flush and the position
	// react faster, but wake the audio thread more often; below ~10 ms a
	// busy Raspberry Pi (or PipeWire) misses deadlines and you hear clicks.
	// Larger periods cost latency, never glitches.
	PeriodFrames int

	// PeriodMS sets the period in milliseconds when PeriodFrames is zero.
	// Default 20 (882 frames at 44.1 kHz).
	PeriodMS int

	// Periods is how many periods the device buffer holds. Default 4,
	// minimum 2: with one period the hardware plays the only period while
	// the callback refills it, and Pi ALSA drivers underrun. The device
	// buffer (PeriodFrames × Periods) is the output latency: audio written
	// now is heard that much later, and Pause waits for it to play out. More
	// periods absorb longer scheduling hiccups of the audio thread.
	Periods int

	// RingFrames is the capacity of the ring buffer between the producer
	// (the pipeline) and the device. Default 500 ms worth of frames; it is
	// raised to at least 2 device buffers. The ring absorbs stalls of the
	// producer (GC, decoding, a slow disk): a larger ring survives longer
	// stalls but costs memory, and Flush throws more decoded audio away on
	// seek. It adds no latency to Start, but audio written before a volume
	// change already sits in it, so volume applied upstream reacts up to
	// RingFrames late (apply volume after the ring if that matters).
	RingFrames int

	// StallTimeout is the device watchdog: while started, if the device
	// asks for no data for this long it is treated as lost, closed and
	// reopened. Default 2 s. Shorter detects a lost device sooner; too short
	// misreads a slow start (a PulseAudio null sink asks for little data in
	// its first second) as a loss. Must exceed the device buffer.
	StallTimeout time.Duration

	// RetryMin and RetryMax bound the exponential backoff between attempts
	// to reopen a lost device. Defaults 250 ms and 5 s.
	RetryMin, RetryMax time.Duration

	// StreamName names the stream in PulseAudio (pavucontrol). Default
	// "roomcast".
	StreamName string
}

// withDefaults fills zero fields and validates the result.
func (o Options) withDefaults() (Options, error) {
	if o.SampleRate == 0 {
		o.SampleRate = DefaultSampleRate
	}
	if o.SampleRate < 8000 || o.SampleRate > 384000 {
		return o, fmt.Errorf("output: sample rate %d Hz out of range 8000–384000", o.SampleRate)
	}
	if o.Channels == 0 {
		o.Channels = DefaultChannels
	}
	if o.Channels < 1 || o.Channels > 8 {
		return o, fmt.Errorf("output: %d channels out of range 1–8", o.Channels)
	}
	if o.PeriodFrames == 0 {
		if o.PeriodMS == 0 {
			o.PeriodMS = DefaultPeriodMS
		}
		if o.PeriodMS < 1 || o.PeriodMS > 1000 {
			return o, fmt.Errorf("output: period %d ms out of range 1–1000", o.PeriodMS)
		}
		o.PeriodFrames = o.SampleRate * o.PeriodMS / 1000
	}
	if o.PeriodFrames < 16 || o.PeriodFrames > o.SampleRate {
		return o, fmt.Errorf("output: period of %d frames out of range 16–%d", o.PeriodFrames, o.SampleRate)
	}
	o.PeriodMS = o.PeriodFrames * 1000 / o.SampleRate
	if o.Periods == 0 {
		o.Periods = DefaultPeriods
	}
	if o.Periods < 2 || o.Periods > 32 {
		return o, fmt.Errorf("output: %d periods out of range 2–32 (a device buffer needs at least 2 periods)", o.Periods)
	}
	if o.RingFrames == 0 {
		o.RingFrames = o.SampleRate * DefaultRingMS / 1000
	}
	if o.RingFrames < 0 || o.RingFrames > 60*o.SampleRate {
		return o, fmt.Errorf("output: ring of %d frames out of range (at most 60 s)", o.RingFrames)
	}
	if min := 2 * o.PeriodFrames * o.Periods; o.RingFrames < min {
		o.RingFrames = min
	}
	if o.StallTimeout == 0 {
		o.StallTimeout = DefaultStall
	}
	if buf := o.frames(int64(o.PeriodFrames * o.Periods)); o.StallTimeout <= buf {
		return o, fmt.Errorf("output: stall timeout %v must exceed the device buffer (%v)", o.StallTimeout, buf)
	}
	if o.RetryMin <= 0 {
		o.RetryMin = DefaultRetryMin
	}
	if o.RetryMax <= 0 {
		o.RetryMax = DefaultRetryMax
	}
	if o.RetryMax < o.RetryMin {
		o.RetryMax = o.RetryMin
	}
	if o.StreamName == "" {
		o.StreamName = "roomcast"
	}
	return o, nil
}

// frames converts a frame count at o.SampleRate to a duration.
func (o Options) frames(n int64) time.Duration {
	return time.Duration(n * int64(time.Second) / int64(o.SampleRate))
}
