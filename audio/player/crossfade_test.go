package player

import (
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/roomcast/roomcast/audio/dsp"
	"github.com/roomcast/roomcast/playback"
)

// tone returns an interleaved stereo sine of freq Hz at amplitude amp.
func tone(frames, rate int, freq, amp float64) []float32 {
	x := make([]float32, 2*frames)
	for i := range frames {
		v := float32(amp * math.Sin(2*math.Pi*freq*float64(i)/float64(rate)))
		x[2*i], x[2*i+1] = v, v
	}
	return x
}

// toneAmp measures the amplitude of freq Hz in the left channel of the
// interleaved stereo x over frames [from, from+n) (Goertzel with a Hann
// window, normalized so that a full-scale sine reads 1).
func toneAmp(x []float32, from, n, rate int, freq float64) float64 {
	w := 2 * math.Pi * freq / float64(rate)
	var re, im, wsum float64
	for i := range n {
		h := 0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/float64(n-1))
		v := h * float64(x[2*(from+i)])
		re += v * math.Cos(w*float64(i))
		im -= v * math.Sin(w*float64(i))
		wsum += h
	}
	return 2 * math.Hypot(re, im) / wsum
}

// TestCrossfade plays a 440 Hz and an 880 Hz tone (4 s each) with
// crossfades of several lengths into a wav: output and checks the output
// against the equal-power mix of the decoded tracks: length 8 s − d (after
// the limiter's delay), both tones at −3 dB in the middle of the overlap,
// no sample beyond cos·|out| + sin·|in|, TrackStarted when the overlap
// begins. Switched off by SetCrossfade, the output is the plain
// concatenation (as in TestGaplessSampleExact, which runs with the default 0).
func TestCrossfade(t *testing.T) {
	t.Parallel()
	const rate, secs = 44100, 4
	const n = secs * rate
	dir := t.TempDir()
	src := newFileSource()
	var list []playback.Track
	var dec [2][]float32
	for i, f := range []float64{440, 880} {
		id := "t" + string(rune('1'+i))
		path := filepath.Join(dir, id+".ogg")
		encodeOgg(t, path, tone(n, rate, f, 0.5), rate, 2, "5")
		d, r, ch, err := decodeFile(t, path)
		if err != nil || r != rate || ch != 2 || len(d) != 2*n {
			t.Fatalf("decode %s: rate %d ch %d frames %d err %v", path, r, ch, len(d)/2, err)
		}
		dec[i] = d
		list = append(list, src.add(id, path))
	}
	a, b := dec[0], dec[1]

	cases := []struct {
		name  string
		opt   time.Duration // Options.Crossfade
		set   time.Duration // SetCrossfade after New (if not 0)
		wantL int           // overlap in frames
	}{
		{name: "1s", opt: time.Second, wantL: rate},
		{name: "SetCrossfade 1s", set: time.Second, wantL: rate},
		{name: "SetCrossfade off", opt: time.Second, set: -1, wantL: 0},
		{name: "3s clamped to half a track", opt: 3 * time.Second, wantL: n / 2},
	}
	for _, tc := range cases {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			t.Parallel()
			l := tc.wantL
			// Expected: a up to the overlap, the equal-power mix, the rest of b.
			want := append([]float32(nil), a[:2*(n-l)]...)
			mix := make([]float32, 2*l)
			dsp.Crossfade(mix, a[2*(n-l):], b[:2*l], 2, 0, int64(l))
			want = append(append(want, mix...), b[2*l:]...)

			p, out := newWAVPlayer(t, src, Options{Normalize: dsp.GainPolicy{Mode: dsp.ModeOff}, Crossfade: tc.opt})
			if tc.set != 0 {
				p.SetCrossfade(tc.set)
			}
			t0 := time.Now()
			evs := playList(t, p, list, false, 30*time.Second)
			var got []string
			for _, e := range evs {
				got = append(got, e.String())
			}
			if g := strings.Join(got, " "); g != "started:t2 ended:t2" {
				t.Fatalf("events %s, want started:t2 ended:t2", g)
			}
			// TrackStarted is due when the overlap begins to be heard.
			startedAt := evs[0].at.Sub(t0).Seconds()
			joinAt := float64(n-l) / rate
			if startedAt < joinAt || startedAt > joinAt+0.6 {
				t.Errorf("TrackStarted after %.3f s, want the join at %.3f s (+ ring and open latency)", startedAt, joinAt)
			}
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
			rec, r, ch := readWAV(t, out)
			if r != rate || ch != 2 {
				t.Fatalf("wav %d Hz × %d", r, ch)
			}
			const lat = 99 // limiter latency at 44.1 kHz
			last := len(rec)/2 - 1
			for last >= 0 && rec[2*last] == 0 && rec[2*last+1] == 0 {
				last--
			}
			if got := last + 1 - lat; got > len(want)/2 || got < len(want)/2-2 {
				t.Fatalf("output holds %d frames after the limiter delay, want %d (8 s − %d)", got, len(want)/2, l)
			}
			for i, v := range rec[:2*lat] {
				if v != 0 {
					t.Fatalf("sample %d of the limiter's leading silence is %g", i, v)
				}
			}
			body := rec[2*lat:]
			if i := bitsEqual(body[:len(want)], want); i >= 0 {
				t.Fatalf("output differs from the expected mix at frame %d (overlap %d..%d): got %g want %g",
					i/2, n-l, n, body[i], want[i])
			}
			for i := 2*(n-l) + 2; i < 2*n; i++ {
				// Equal power: no sample beyond what the gains allow.
				f := i/2 - (n - l)
				gi, go_ := math.Sincos(float64(f) / float64(l) * math.Pi / 2)
				lim := go_*math.Abs(float64(a[i])) + gi*math.Abs(float64(b[i-2*(n-l)])) + 1e-6
				if math.Abs(float64(body[i])) > lim {
					t.Fatalf("overlap frame %d: |%g| > %g", f, body[i], lim)
				}
			}
			t.Logf("overlap %d frames (%.2f s); output %d frames = %.3f s; TrackStarted after %.3f s (join at %.3f s)",
				l, float64(l)/rate, last+1-lat, float64(last+1-lat)/rate, startedAt, joinAt)
			if l == 0 {
				return
			}
			// Middle of the overlap: both tones at cos(π/4) = sin(π/4) ≈ −3 dB.
			const win = 4096
			mid := n - l/2 - win/2
			for _, c := range []struct {
				f   float64
				ref []float32
				at  int
			}{{440, a, mid}, {880, b, mid - (n - l)}} {
				ref := toneAmp(c.ref, c.at, win, rate, c.f)
				gotA := toneAmp(body, mid, win, rate, c.f)
				db := 20 * math.Log10(gotA/ref)
				t.Logf("%g Hz in the middle of the overlap: %.3f dB (amplitude %.4f of %.4f)", c.f, db, gotA, ref)
				if math.Abs(db-(-3.0103)) > 0.1 {
					t.Errorf("%g Hz at %.3f dB in the middle of the overlap, want −3.01 dB", c.f, db)
				}
			}
		})
	}
}

// TestCrossfadeNotIntoLastD loads, or seeks, the first track into its
// last d with a crossfade of d: no overlap, the next track follows with
// the plain gapless join (it is in the output bit-exact and whole).
func TestCrossfadeNotIntoLastD(t *testing.T) {
	t.Parallel()
	const rate, secs = 44100, 4
	const n = secs * rate
	dir := t.TempDir()
	src := newFileSource()
	var list []playback.Track
	var b []float32
	for i, f := range []float64{440, 880} {
		id := "t" + string(rune('1'+i))
		path := filepath.Join(dir, id+".ogg")
		encodeOgg(t, path, tone(n, rate, f, 0.5), rate, 2, "5")
		if i == 1 {
			var err error
			if b, _, _, err = decodeFile(t, path); err != nil {
				t.Fatal(err)
			}
		}
		list = append(list, src.add(id, path))
	}
	for _, tc := range []struct {
		name           string
		loadMS, seekMS int64
	}{
		{name: "load", loadMS: 3500},
		{name: "seek", seekMS: 3500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, out := newWAVPlayer(t, src, Options{Normalize: dsp.GainPolicy{Mode: dsp.ModeOff}, Crossfade: time.Second})
			if err := p.Load(list[0], false, tc.loadMS, true); err != nil {
				t.Fatal(err)
			}
			p.SetNext(&list[1], false)
			if tc.seekMS > 0 {
				time.Sleep(300 * time.Millisecond)
				if err := p.SeekTo(tc.seekMS); err != nil {
					t.Fatal(err)
				}
			}
			var got []string
			deadline := time.After(20 * time.Second)
			for len(got) == 0 || !strings.HasPrefix(got[len(got)-1], "ended") {
				select {
				case ev := <-p.Events():
					got = append(got, event{Event: ev}.String())
					if len(got) == 1 {
						p.SetNext(nil, false)
					}
				case <-deadline:
					t.Fatalf("timed out; events %v", got)
				}
			}
			if g := strings.Join(got, " "); g != "started:t2 ended:t2" {
				t.Fatalf("events %s, want started:t2 ended:t2", g)
			}
			_ = p.Close()
			rec, _, _ := readWAV(t, out)
			for i := 0; i+len(b) <= len(rec); i += 2 {
				if rec[i] == b[0] && rec[i+1] == b[1] && bitsEqual(rec[i:i+len(b)], b) < 0 {
					t.Logf("next track found whole and unmixed at output frame %d", i/2)
					return
				}
			}
			t.Fatal("the next track is not in the output unmixed: crossfaded after a " + tc.name + " into the last d?")
		})
	}
}
