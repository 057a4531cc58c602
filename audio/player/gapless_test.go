package player

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/roomcast/roomcast/audio/dsp"
	"github.com/roomcast/roomcast/playback"
)

// TestGaplessSampleExact plays one continuous signal split into three
// Ogg Vorbis tracks at odd offsets into a wav: output and checks that the
// file holds the limiter's leading silence, then each track's decoded
// samples bit for bit and contiguously: nothing inserted, dropped or
// altered at the joins.
func TestGaplessSampleExact(t *testing.T) {
	t.Parallel()
	const rate = 44100
	dir := t.TempDir()
	sig := chord(3*rate+1234, rate, 0.5)
	cuts := []int{0, 44101, 96013, len(sig) / 2} // frames
	src := newFileSource()
	var list []playback.Track
	var want []float32
	for i := range 3 {
		path := filepath.Join(dir, "t"+string(rune('1'+i))+".ogg")
		encodeOgg(t, path, sig[2*cuts[i]:2*cuts[i+1]], rate, 2, "5")
		dec, r, ch, err := decodeFile(t, path)
		if err != nil || r != rate || ch != 2 {
			t.Fatalf("decode %s: rate %d ch %d err %v", path, r, ch, err)
		}
		want = append(want, dec...)
		list = append(list, src.add("t"+string(rune('1'+i)), path))
	}
	p, out := newWAVPlayer(t, src, Options{Normalize: dsp.GainPolicy{Mode: dsp.ModeOff}})
	p.SetVolume(100)
	evs := playList(t, p, list, true, 20*time.Second)
	var got []string
	for _, e := range evs {
		got = append(got, e.String())
	}
	wantEv := []string{"started:t2", "started:t3", "ended:t3"}
	if len(got) != len(wantEv) {
		t.Fatalf("events %v, want %v", got, wantEv)
	}
	for i := range got {
		if got[i] != wantEv[i] {
			t.Fatalf("events %v, want %v", got, wantEv)
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	rec, r, ch := readWAV(t, out)
	if r != rate || ch != 2 {
		t.Fatalf("wav %d Hz × %d", r, ch)
	}
	lat := 99 // dsp.Limiter latency at 44.1 kHz (2 ms look-ahead + 11)
	if len(rec) < 2*lat+len(want) {
		t.Fatalf("wav holds %d frames, want ≥ %d", len(rec)/2, lat+len(want)/2)
	}
	for i, v := range rec[:2*lat] {
		if v != 0 {
			t.Fatalf("sample %d of the limiter's leading silence is %g", i, v)
		}
	}
	if i := bitsEqual(rec[2*lat:2*lat+len(want)], want); i >= 0 {
		f := i / 2
		t.Fatalf("output differs from the decoded tracks at frame %d (joins at %d and %d): got %g want %g",
			f, cuts[1], cuts[2], rec[2*lat+i], want[i])
	}
	for i, v := range rec[2*lat+len(want):] {
		if v != 0 {
			t.Fatalf("sample %d after the end is %g, want silence", i, v)
		}
	}
	t.Logf("%d frames bit-exact after %d frames of limiter delay; events %v", len(want)/2, lat, got)
	_ = playback.Ended
}
