package player

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/roomcast/roomcast/audio/dsp"
	"github.com/roomcast/roomcast/internal/testenv"
	"github.com/roomcast/roomcast/playback"
)

// TestBadFiles plays [good, truncated, garbage, good]: the truncated
// track plays what decodes (joined gaplessly, bit-exact), the garbage one
// is reported as TrackStarted+TrackFailed with a decode error when the
// join reaches it, and the last track plays after the receiver-style
// Load; Ended at the end; no panic.
func TestBadFiles(t *testing.T) {
	t.Parallel()
	const rate = 44100
	dir := t.TempDir()
	src := newFileSource()
	sig := chord(6*rate, rate, 0.4)
	good1, trunc, good2 := filepath.Join(dir, "g1.ogg"), filepath.Join(dir, "tr.ogg"), filepath.Join(dir, "g2.ogg")
	encodeOgg(t, good1, sig[:rate], rate, 2, "4")
	encodeOgg(t, trunc, sig, rate, 2, "4")
	encodeOgg(t, good2, sig[2*rate:2*2*rate], rate, 2, "4")
	b, err := os.ReadFile(trunc)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(trunc, b[:len(b)*40/100], 0o644); err != nil {
		t.Fatal(err)
	}
	garbage := make([]byte, 20000)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range garbage {
		garbage[i] = byte(rng.Uint32())
	}
	copy(garbage, "OggS") // looks like Ogg at first glance
	if err := os.WriteFile(filepath.Join(dir, "junk.ogg"), garbage, 0o644); err != nil {
		t.Fatal(err)
	}
	list := []playback.Track{src.add("g1", good1), src.add("tr", trunc), src.add("junk", filepath.Join(dir, "junk.ogg")), src.add("g2", good2)}
	d1, _, _, _ := decodeFile(t, good1)
	dt, _, _, terr := decodeFile(t, trunc)
	if terr == nil || len(dt) == 0 {
		t.Fatalf("the truncated fixture decodes %d samples with error %v: want some samples and an error", len(dt), terr)
	}
	d2, _, _, _ := decodeFile(t, good2)

	p, out := newWAVPlayer(t, src, Options{Normalize: dsp.GainPolicy{Mode: dsp.ModeOff}})
	evs := playList(t, p, list, true, 20*time.Second)
	var got []string
	for _, e := range evs {
		got = append(got, e.String())
		if e.Kind == playback.TrackFailed && !strings.Contains(e.Err.Error(), "decode") {
			t.Errorf("failure of %s does not say what failed: %v", e.URI, e.Err)
		}
	}
	want := "started:tr started:junk failed:junk ended:g2"
	if strings.Join(got, " ") != want {
		t.Fatalf("events %v, want %s", got, want)
	}
	_ = p.Close()
	rec, _, _ := readWAV(t, out)
	lat := 2 * 99
	joined := append(append([]float32(nil), d1...), dt...)
	if i := bitsEqual(rec[lat:lat+len(joined)], joined); i >= 0 {
		t.Fatalf("good+truncated not bit-exact at frame %d", i/2)
	}
	// The last track follows after a gap (Load): find its first frames.
	tail := rec[lat+len(joined):]
	found := -1
	for i := 0; i+len(d2) <= len(tail); i += 2 {
		if tail[i] == d2[0] && tail[i+1] == d2[1] && bitsEqual(tail[i:i+len(d2)], d2) < 0 {
			found = i
			break
		}
	}
	if found < 0 {
		t.Fatal("the last good track is not in the output")
	}
	t.Logf("events %v; truncated track played %d of %d frames (%v); last track after a %d ms gap",
		got, len(dt)/2, 6*rate, terr, found/2*1000/rate)
}

// TestPosition checks that Position follows the frames the wav: sink has
// written (within one period + the limiter delay), advances in real time,
// lands at 30 s after SeekTo(30000), and stands still while paused.
func TestPosition(t *testing.T) {
	t.Parallel()
	const rate = 44100
	testenv.Tool(t, "sox", "sox")
	dir := t.TempDir()
	path := filepath.Join(dir, "long.ogg")
	encodeOgg(t, path, chord(40*rate, rate, 0.3), rate, 2, "0")
	src := newFileSource()
	tr := src.add("long", path)
	tr.DurationMS = 40000
	p, out := newWAVPlayer(t, src, Options{})
	if err := p.Load(tr, false, 0, true); err != nil {
		t.Fatal(err)
	}
	p.SetNext(nil, false)
	// fileMS is what the wav: sink wrote minus the silence it inserted on
	// underruns (a loaded CI machine): the audio frames heard.
	fileMS := func() float64 {
		st, err := os.Stat(out)
		if err != nil {
			t.Fatal(err)
		}
		u := p.tl.Load().out.Underruns()
		return float64((st.Size()-58)/8-u.Frames) * 1000 / rate
	}
	time.Sleep(700 * time.Millisecond)
	const slack = 20 + 2.3 + 15 // one period, limiter delay, sampling jitter (ms)
	t0 := time.Now()
	u, p0 := p.Position()
	f0 := fileMS()
	if u != tr.URI {
		t.Fatalf("position URI %q", u)
	}
	if d := float64(p0) - (f0 - 2.3); d > slack || d < -slack {
		t.Errorf("position %d ms, file holds %.1f ms: off by %.1f ms", p0, f0, d)
	}
	time.Sleep(time.Second)
	_, p1 := p.Position()
	f1 := fileMS()
	el := time.Since(t0).Milliseconds()
	if d := float64(p1-p0) - (f1 - f0); d > 40 || d < -40 {
		t.Errorf("position advanced %d ms while %.0f ms of audio were played", p1-p0, f1-f0)
	}
	if u := p.tl.Load().out.Underruns(); u.Frames == 0 {
		if d := (p1 - p0) - el; d > 40 || d < -40 {
			t.Errorf("position advanced %d ms in %d ms of wall time", p1-p0, el)
		}
	} else {
		t.Logf("underruns (busy machine): %+v", u)
	}
	if err := p.SeekTo(30000); err != nil {
		t.Fatal(err)
	}
	time.Sleep(400 * time.Millisecond)
	_, ps := p.Position()
	if ps < 30000 || ps > 30000+400 {
		t.Errorf("400 ms after SeekTo(30000) position is %d ms", ps)
	}
	if err := p.Pause(); err != nil {
		t.Fatal(err)
	}
	// Settle returns once the pause has been heard to its end: from then
	// on neither the position nor the file moves.
	ts := time.Now()
	if !p.Settle(2 * time.Second) {
		t.Fatal("Settle after Pause did not return within 2 s")
	}
	settled := time.Since(ts)
	_, q0 := p.Position()
	fs := fileMS()
	time.Sleep(500 * time.Millisecond)
	_, q1 := p.Position()
	if q1 != q0 {
		t.Errorf("paused position moved from %d to %d ms after Settle", q0, q1)
	}
	if f := fileMS(); f != fs {
		t.Errorf("the output wrote %.1f ms more after Settle", f-fs)
	}
	if ts := time.Now(); !p.Settle(time.Second) || time.Since(ts) > 100*time.Millisecond {
		t.Errorf("Settle while paused took %v", time.Since(ts))
	}
	if err := p.Resume(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if _, r := p.Position(); r < q1+300 || r > q1+600 {
		t.Errorf("500 ms after resume position is %d ms (paused at %d)", r, q1)
	}
	t.Logf("position %d ms vs file %.1f ms; +%d ms in %d ms; after seek %d ms; paused at %d ms, settled %v after Pause",
		p0, f0, p1-p0, el, ps, q0, settled.Round(time.Millisecond))
}

// TestPrefetch checks that the next track is opened Prefetch before the
// join is heard (not at once), and that the join still happens gaplessly.
func TestPrefetch(t *testing.T) {
	t.Parallel()
	const rate = 44100
	dir := t.TempDir()
	src := newFileSource()
	src.delay = 50 * time.Millisecond // a network-like fetch
	sig := chord(4*rate, rate, 0.3)
	a, b := filepath.Join(dir, "a.ogg"), filepath.Join(dir, "b.ogg")
	encodeOgg(t, a, sig[:2*3*rate], rate, 2, "2")
	encodeOgg(t, b, sig[2*3*rate:], rate, 2, "2")
	list := []playback.Track{src.add("a", a), src.add("b", b)}
	const prefetch = time.Second
	p, _ := newWAVPlayer(t, src, Options{Prefetch: prefetch})
	start := time.Now()
	evs := playList(t, p, list, true, 15*time.Second)
	if len(evs) != 2 || evs[0].String() != "started:b" || evs[1].String() != "ended:b" {
		t.Fatalf("events %v", evs)
	}
	opens := src.openedAt("b")
	if len(opens) != 1 {
		t.Fatalf("b opened %d times", len(opens))
	}
	before := evs[0].at.Sub(opens[0])
	after := opens[0].Sub(start)
	if before < prefetch {
		t.Errorf("b opened %v before its join was heard, want ≥ %v", before, prefetch)
	}
	if after < 3*time.Second-prefetch-500*time.Millisecond {
		t.Errorf("b opened %v after the start: too early for a %v prefetch of a 3 s track", after, prefetch)
	}
	t.Logf("b opened %v after start, %v before its join was heard", after.Round(time.Millisecond), before.Round(time.Millisecond))
}
