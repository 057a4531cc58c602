package player

import (
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/roomcast/roomcast/audio/dsp"
	"github.com/roomcast/roomcast/audio/output"
	"github.com/roomcast/roomcast/internal/testenv"
	"github.com/roomcast/roomcast/playback"
)

// captureOutput is a discardOutput that keeps what it was given. It
// takes every frame at once, so it never underruns and a sample-exact
// check holds on a loaded machine, but its played index advances in real
// time from Start (capped at what was written), so the receiver-style
// driver has a track's length to answer TrackStarted with SetNext, as
// with a device.
type captureOutput struct {
	*discardOutput
	mu sync.Mutex
	x  []float32
	t0 time.Time // first Start
}

func (c *captureOutput) Write(p []float32) (int, error) { return c.TryWrite(p) }
func (c *captureOutput) TryWrite(p []float32) (int, error) {
	c.mu.Lock()
	c.x = append(c.x, p...)
	c.mu.Unlock()
	return c.discardOutput.TryWrite(p)
}

func (c *captureOutput) Start() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.t0.IsZero() {
		c.t0 = time.Now()
	}
	return nil
}

func (c *captureOutput) PlayedIndex() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.t0.IsZero() {
		return 0
	}
	return min(c.Written(), int64(time.Since(c.t0).Seconds()*float64(c.f.SampleRate)))
}

func (c *captureOutput) samples() []float32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]float32(nil), c.x...)
}

// TestResampledJoinSampleExact plays a 44.1 kHz track, then two 48 kHz
// tracks joined gaplessly. The output stays at 44.1 kHz (opened for the
// first track) and the 48 kHz pair goes through one resampler run, so the
// output must be: the limiter's delay, the first track bit for bit, then
// exactly what one resampler makes of the second and third tracks
// concatenated (drained at the end), then silence.
func TestResampledJoinSampleExact(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src := newFileSource()
	var list []playback.Track
	var dec [3][]float32
	sig48 := chord(2*48000, 48000, 0.3)
	parts := []struct {
		x    []float32
		rate int
	}{{chord(44100*7/10, 44100, 0.3), 44100}, {sig48[:2*48000*7/10+2*123], 48000}, {sig48[2*48000*7/10+2*123:], 48000}}
	for i, pt := range parts {
		id := string(rune('a' + i))
		path := filepath.Join(dir, id+".ogg")
		encodeOgg(t, path, pt.x, pt.rate, 2, "4")
		d, r, ch, err := decodeFile(t, path)
		if err != nil || r != pt.rate || ch != 2 {
			t.Fatalf("decode %s: rate %d ch %d err %v", path, r, ch, err)
		}
		dec[i] = d
		list = append(list, src.add(id, path))
	}
	// One resampler run over b ++ c, in odd block sizes.
	rs, err := dsp.NewResampler(48000, 44100, 2, dsp.QualityPi)
	if err != nil {
		t.Fatal(err)
	}
	in := append(append([]float32(nil), dec[1]...), dec[2]...)
	want := append([]float32(nil), dec[0]...)
	buf := make([]float32, 2*777)
	for len(in) > 0 {
		c, k := rs.Process(in[:min(len(in), 2*1001)], buf)
		in = in[c:]
		want = append(want, buf[:k]...)
	}
	for k := rs.Drain(buf); k > 0; k = rs.Drain(buf) {
		want = append(want, buf[:k]...)
	}

	var capt *captureOutput
	opened := 0
	p, err := New(Options{Source: src, Logger: testenv.Logger(t), Normalize: dsp.GainPolicy{Mode: dsp.ModeOff},
		OpenOutput: func(f output.Format) (output.Output, error) {
			opened++ // the pipeline goroutine only (and New)
			capt = &captureOutput{discardOutput: newDiscard(f)}
			return capt, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	evs := playList(t, p, list, true, 20*time.Second)
	var got []string
	for _, e := range evs {
		got = append(got, e.String())
	}
	if len(got) != 3 || got[0] != "started:b" || got[1] != "started:c" || got[2] != "ended:c" {
		t.Fatalf("events %v, want started:b started:c ended:c", got)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if opened != 1 || capt.f.SampleRate != 44100 {
		t.Fatalf("output opened %d times, at %d Hz: want once, at 44100 Hz", opened, capt.f.SampleRate)
	}
	rec := capt.samples()
	const lat = 99 // dsp.Limiter latency at 44.1 kHz
	if len(rec) < 2*lat+len(want) {
		t.Fatalf("output holds %d frames, want ≥ %d", len(rec)/2, lat+len(want)/2)
	}
	for i, v := range rec[:2*lat] {
		if v != 0 {
			t.Fatalf("sample %d of the limiter's leading silence is %g", i, v)
		}
	}
	if i := bitsEqual(rec[2*lat:2*lat+len(want)], want); i >= 0 {
		t.Fatalf("output differs at frame %d (a has %d frames, b %d at 48 kHz): got %g want %g",
			i/2, len(dec[0])/2, len(dec[1])/2, rec[2*lat+i], want[i])
	}
	for i, v := range rec[2*lat+len(want):] {
		if v != 0 {
			t.Fatalf("sample %d after the end is %g, want silence", i, v)
		}
	}
	t.Logf("%d frames bit-exact (a %d at 44.1 kHz, b+c %d at 48 kHz resampled to %d); events %v",
		len(want)/2, len(dec[0])/2, (len(dec[1])+len(dec[2]))/2, (len(want)-len(dec[0]))/2, got)
}
