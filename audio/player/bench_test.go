package player

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/roomcast/roomcast/audio/decode"
	"github.com/roomcast/roomcast/audio/dsp"
	"github.com/roomcast/roomcast/audio/output"
	"github.com/roomcast/roomcast/playback"
)

// discardOutput is an output.Output that takes every frame at once and
// counts it as played: the pipeline runs as fast as the CPU allows (the
// wav: sink is paced in real time and null is a real-time clock, so
// neither can measure CPU per second of audio).
type discardOutput struct {
	f       output.Format
	written atomic.Int64
	space   chan struct{}
}

func newDiscard(f output.Format) *discardOutput {
	return &discardOutput{f: f, space: make(chan struct{})}
}

func (d *discardOutput) Write(p []float32) (int, error) { return d.TryWrite(p) }
func (d *discardOutput) TryWrite(p []float32) (int, error) {
	d.written.Add(int64(len(p) / d.f.Channels))
	return len(p), nil
}
func (d *discardOutput) Writable() <-chan struct{}   { return d.space }
func (d *discardOutput) Flush()                      {}
func (d *discardOutput) Start() error                { return nil }
func (d *discardOutput) Pause() error                { return nil }
func (d *discardOutput) Close() error                { return nil }
func (d *discardOutput) Written() int64              { return d.written.Load() }
func (d *discardOutput) PlayedIndex() int64          { return d.written.Load() }
func (d *discardOutput) Played() int64               { return d.written.Load() }
func (d *discardOutput) Underruns() output.Underruns { return output.Underruns{} }
func (d *discardOutput) Stats() output.Stats         { return output.Stats{Written: d.written.Load()} }
func (d *discardOutput) Errors() <-chan error        { return nil }
func (d *discardOutput) Format() output.Format       { return d.f }
func (d *discardOutput) Latency() time.Duration      { return 0 }

// benchFile returns a 5-minute 44.1 kHz stereo q5 Ogg Vorbis file
// (music-like: chord sweep plus saturated noise), cached in the system
// temp dir because encoding it takes several seconds.
func benchFile(b *testing.B) string {
	path := filepath.Join(os.TempDir(), "roomcast-player-bench-5min-q5.ogg")
	if _, err := os.Stat(path); err == nil {
		return path
	}
	const rate = 44100
	x := chord(300*rate, rate, 0.3)
	n := saturatedNoise(300*rate, 3, 0.5)
	for i := range x {
		x[i] += 0.2 * n[i]
	}
	tmp := path + ".tmp.ogg"
	encodeOgg(b, tmp, x, rate, 2, "5")
	if err := os.Rename(tmp, path); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkDecode is the reference: decoding the 5-minute file alone
// (package decode over jfreymuth/vorbis), 1024-frame reads.
func BenchmarkDecode(b *testing.B) {
	path := benchFile(b)
	buf := make([]float32, chunkFrames*2)
	b.ReportAllocs()
	var frames int64
	for b.Loop() {
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		st, err := decode.Open(f)
		if err != nil {
			b.Fatal(err)
		}
		for {
			n, err := st.Read(buf)
			frames += int64(n / 2)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		_ = st.Close()
		_ = f.Close()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/(float64(frames)/44100), "ns/audio-s")
}

// BenchmarkPipeline plays the 5-minute file through the whole Player
// (opener, decode, gain, limiter, volume, block writes, events) into
// discardOutput at the native rate, with track normalization (−6 dB, so
// the gain stage multiplies) and 80 % volume (so volume multiplies too).
// Compare ns/audio-s with BenchmarkDecode: the difference is what the
// pipeline adds.
func BenchmarkPipeline(b *testing.B) {
	path := benchFile(b)
	src := newFileSource()
	tr := src.add("bench", path)
	lufs, tp := -8.0, -1.0
	tr.Track.LUFS, tr.Track.TruePeakDB = &lufs, &tp
	p, err := New(Options{Source: src, Normalize: dsp.GainPolicy{Mode: dsp.ModeTrack},
		OpenOutput: func(f output.Format) (output.Output, error) { return newDiscard(f), nil }})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	p.SetVolume(80)
	b.ReportAllocs()
	runs := 0
	for b.Loop() {
		if err := p.Load(tr, false, 0, true); err != nil {
			b.Fatal(err)
		}
		p.SetNext(nil, false)
		for ev := range p.Events() {
			if ev.Kind == playback.Ended {
				break
			}
			if ev.Kind == playback.TrackFailed {
				b.Fatal(ev.Err)
			}
		}
		runs++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/(float64(runs)*300), "ns/audio-s")
}
