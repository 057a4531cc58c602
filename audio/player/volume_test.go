package player

import (
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/roomcast/roomcast/audio/dsp"
	"github.com/roomcast/roomcast/playback"
)

// TestVolumeCurveWhilePlaying plays a steady tone at volume 50 on the
// default curve (−30 dB), switches to the linear curve (−6.02 dB) and then
// to fixed (0 dB) while it plays (roomcastd's SIGHUP reload), and checks
// the gain actually applied in the wav: output, window by window against
// the decoded track: the three levels appear in that order and playback
// runs through to the end (nothing restarted, nothing dropped).
func TestVolumeCurveWhilePlaying(t *testing.T) {
	t.Parallel()
	const rate = 44100
	tone := make([]float32, 2*3*rate)
	for i := range len(tone) / 2 {
		v := float32(0.4 * math.Sin(2*math.Pi*440*float64(i)/rate))
		tone[2*i], tone[2*i+1] = v, v
	}
	path := filepath.Join(t.TempDir(), "tone.ogg")
	encodeOgg(t, path, tone, rate, 2, "6")
	dec, _, _, err := decodeFile(t, path)
	if err != nil {
		t.Fatal(err)
	}
	src := newFileSource()
	tr := src.add("tone", path)
	p, out := newWAVPlayer(t, src, Options{Normalize: dsp.GainPolicy{Mode: dsp.ModeOff}})
	p.SetVolume(50)
	linear, _ := dsp.ParseVolumeCurve("linear")
	fixed, _ := dsp.ParseVolumeCurve("fixed")
	// Switch at 0.9 s and 1.8 s of the track as heard (the output's
	// position), not of the wall clock: a loaded machine cannot shift them.
	go func() {
		for _, step := range []struct {
			atMS  int64
			curve dsp.VolumeCurve
		}{{900, linear}, {1800, fixed}} {
			for {
				if _, pos := p.Position(); pos >= step.atMS {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			p.SetVolumeCurve(step.curve)
		}
	}()
	evs := playList(t, p, []playback.Track{tr}, false, 20*time.Second)
	if len(evs) != 1 || evs[0].String() != "ended:tone" {
		t.Fatalf("events %v, want only the end", evs)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	rec, _, _ := readWAV(t, out)
	const lat = 99 // limiter delay at 44.1 kHz, as in TestGaplessSampleExact
	if len(rec) < 2*lat+len(dec) {
		t.Fatalf("wav holds %d frames, want ≥ %d", len(rec)/2, lat+len(dec)/2)
	}
	rec = rec[2*lat : 2*lat+len(dec)]
	// Gain per 50 ms window, in dB.
	const win = rate / 20
	var levels []float64
	for off := 0; off+2*win <= len(dec); off += 2 * win {
		var e, r float64
		for i := off; i < off+2*win; i++ {
			e += float64(dec[i]) * float64(dec[i])
			r += float64(rec[i]) * float64(rec[i])
		}
		levels = append(levels, 10*math.Log10(r/e))
	}
	want := []float64{-30, 20 * math.Log10(0.5), 0}
	stage := 0
	var runs [3]int
	for _, l := range levels {
		at := -1
		for k := range want {
			if math.Abs(l-want[k]) < 0.05 {
				at = k
			}
		}
		switch {
		case at < 0: // a 30 ms ramp between two levels
		case at < stage:
			t.Fatalf("level went back to %.2f dB after reaching %.2f dB: %.2f", want[at], want[stage], levels)
		default:
			stage = at
			runs[at]++
		}
	}
	for k, n := range runs {
		if n < 5 {
			t.Fatalf("%.2f dB held for %d windows (want ≥ 5 of 50 ms); levels %.2f", want[k], n, levels)
		}
	}
	if len(levels) < 55 || runs[0]+runs[1]+runs[2] < len(levels)-4 {
		t.Fatalf("windows %d, of which %v at the three levels; levels %.2f", len(levels), runs, levels)
	}
	t.Logf("windows at −30 / −6.02 / 0 dB: %v of %d", runs, len(levels))
}
