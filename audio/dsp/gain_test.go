package dsp

import (
	"math"
	"strconv"
	"testing"
	"time"
)

func TestChooseGain(t *testing.T) {
	trk := Measurement{LUFS: -10, TruePeakDB: 0.5, HasLoudness: true, HasPeak: true}
	alb := Measurement{LUFS: -12, TruePeakDB: 0.8, HasLoudness: true, HasPeak: true}
	quiet := Measurement{LUFS: -20, TruePeakDB: -9, HasLoudness: true, HasPeak: true}
	quietHot := Measurement{LUFS: -20, TruePeakDB: -2, HasLoudness: true, HasPeak: true} // cap: −1 − (−2) = +1
	noPeak := Measurement{LUFS: -20, HasLoudness: true}
	rgT := ReplayGain{GainDB: -3.5, Peak: 0.5, HasGain: true, HasPeak: true} // −14.5 LUFS, −6.02 dB peak
	rgA := ReplayGain{GainDB: -6, HasGain: true}                             // −12 LUFS
	def := DefaultGainPolicy()
	cases := []struct {
		name    string
		policy  GainPolicy
		album   bool
		info    LoudnessInfo
		want    float64
		src     GainSource
		capped  bool
		hasPeak bool
	}{
		{"auto single → track", def, false, LoudnessInfo{Track: trk, Album: alb}, -4, SourceTrack, false, true},
		{"auto album → album", def, true, LoudnessInfo{Track: trk, Album: alb}, -2, SourceAlbum, false, true},
		{"track mode in album", GainPolicy{ModeTrack, -14, -1}, true, LoudnessInfo{Track: trk, Album: alb}, -4, SourceTrack, false, true},
		{"album mode single", GainPolicy{ModeAlbum, -14, -1}, false, LoudnessInfo{Track: trk, Album: alb}, -2, SourceAlbum, false, true},
		{"off", GainPolicy{ModeOff, -14, -1}, true, LoudnessInfo{Track: trk, Album: alb}, 0, SourceNone, false, false},
		{"nothing known", def, false, LoudnessInfo{}, 0, SourceNone, false, false},
		{"album mode falls back to track", GainPolicy{ModeAlbum, -14, -1}, true, LoudnessInfo{Track: trk}, -4, SourceTrack, false, true},
		{"track mode falls back to album", GainPolicy{ModeTrack, -14, -1}, false, LoudnessInfo{Album: alb}, -2, SourceAlbum, false, true},
		{"positive gain uncapped", def, false, LoudnessInfo{Track: quiet}, 6, SourceTrack, false, true},
		{"positive gain capped at −1 dBTP", def, false, LoudnessInfo{Track: quietHot}, 1, SourceTrack, true, true},
		{"cap turns boost into cut when peak is above ceiling", def, false, LoudnessInfo{Track: Measurement{LUFS: -16, TruePeakDB: 0.3, HasLoudness: true, HasPeak: true}}, -1.3, SourceTrack, true, true},
		{"unknown peak: no cap", def, false, LoudnessInfo{Track: noPeak}, 6, SourceTrack, false, false},
		{"target −18", GainPolicy{ModeAuto, -18, -1}, false, LoudnessInfo{Track: quiet}, 2, SourceTrack, false, true},
		{"ReplayGain track fallback", def, false, LoudnessInfo{RGTrack: rgT}, 0.5, SourceReplayGainTrack, false, true},
		{"ReplayGain album fallback", def, true, LoudnessInfo{RGTrack: rgT, RGAlbum: rgA}, -2, SourceReplayGainAlbum, false, false},
		{"measured beats ReplayGain", def, false, LoudnessInfo{Track: trk, RGTrack: rgT}, -4, SourceTrack, false, true},
		{"measured album beats RG album", def, true, LoudnessInfo{Album: alb, RGAlbum: rgA, RGTrack: rgT}, -2, SourceAlbum, false, true},
		{"RG album beats measured track in album context", def, true, LoudnessInfo{Track: trk, RGAlbum: rgA}, -2, SourceReplayGainAlbum, false, false},
		{"NaN loudness is unknown", def, false, LoudnessInfo{Track: Measurement{LUFS: math.NaN(), HasLoudness: true}, RGTrack: rgT}, 0.5, SourceReplayGainTrack, false, true},
		{"clamped high", def, false, LoudnessInfo{Track: Measurement{LUFS: -70, HasLoudness: true}}, MaxGainDB, SourceTrack, false, false},
		{"clamped low", def, false, LoudnessInfo{Track: Measurement{LUFS: 40, HasLoudness: true}}, MinGainDB, SourceTrack, false, false},
		{"rounded to exactly 0", def, false, LoudnessInfo{Track: Measurement{LUFS: -14.004, HasLoudness: true}}, 0, SourceTrack, false, false},
		{"NaN target → default", GainPolicy{ModeAuto, math.NaN(), math.NaN()}, false, LoudnessInfo{Track: quietHot}, 1, SourceTrack, true, true},
	}
	for _, c := range cases {
		d := ChooseGain(c.policy, c.album, c.info)
		if d.GainDB != c.want || d.Source != c.src || d.Capped != c.capped || d.HasPeak != c.hasPeak || math.Signbit(d.GainDB) && d.GainDB == 0 {
			t.Errorf("%s: got %+v, want gain %v source %v capped %v hasPeak %v", c.name, d, c.want, c.src, c.capped, c.hasPeak)
		}
		if d.HasPeak && d.Capped && math.Abs(d.PeakDB-(-1)) > 0.006 {
			t.Errorf("%s: capped gain leaves peak at %v dBTP", c.name, d.PeakDB)
		}
	}
}

func TestParseReplayGain(t *testing.T) {
	good := map[string]float64{
		"+1.23 dB": 1.23, "-7.5dB": -7.5, " -3.10 DB ": -3.1, "2,5 dB": 2.5, "0 dB": 0, "-0.00 dB": 0,
		"+12": 12, "-.5 dB": -0.5, "3. dB": 3, "64 dB": 64,
	}
	for s, want := range good {
		got, err := ParseReplayGain(s)
		if err != nil || got != want || got == 0 && math.Signbit(got) {
			t.Errorf("ParseReplayGain(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "dB", "+", "1.2.3 dB", "1e3", "0x10", "inf", "NaN", "+-1", "65 dB", "1 d B", "1 dBx", "1_0", "１ dB", "--1"} {
		if v, err := ParseReplayGain(s); err == nil {
			t.Errorf("ParseReplayGain(%q) = %v, want an error", s, v)
		}
	}
	for s, want := range map[string]float64{"0.988553": 0.988553, "1,0213": 1.0213, " 1 ": 1} {
		if got, err := ParseReplayGainPeak(s); err != nil || got != want {
			t.Errorf("ParseReplayGainPeak(%q) = %v, %v", s, got, err)
		}
	}
	for _, s := range []string{"-0.5", "abc", "100", ""} {
		if _, err := ParseReplayGainPeak(s); err == nil {
			t.Errorf("ParseReplayGainPeak(%q) accepted", s)
		}
	}
}

func TestReplayGainFromTags(t *testing.T) {
	tr, al := ReplayGainFromTags(map[string][]string{
		"REPLAYGAIN_TRACK_GAIN": {"garbage", "-6.48 dB"},
		"REPLAYGAIN_TRACK_PEAK": {"0.977"},
		"replaygain_album_gain": {"+1.00 dB"},
	})
	if !tr.HasGain || tr.GainDB != -6.48 || !tr.HasPeak || tr.Peak != 0.977 || !al.HasGain || al.GainDB != 1 || al.HasPeak {
		t.Errorf("got %+v %+v", tr, al)
	}
	// R128 gains (Q7.8 dB to -23 LUFS) stand in when ReplayGain is absent.
	tr, al = ReplayGainFromTags(map[string][]string{"R128_TRACK_GAIN": {"-512"}, "R128_ALBUM_GAIN": {"x"}})
	if !tr.HasGain || tr.GainDB != 3 || al.HasGain {
		t.Errorf("R128: got %+v %+v", tr, al)
	}
	tr, _ = ReplayGainFromTags(map[string][]string{"R128_TRACK_GAIN": {"-512"}, "REPLAYGAIN_TRACK_GAIN": {"-1 dB"}})
	if tr.GainDB != -1 {
		t.Errorf("ReplayGain must win over R128: %+v", tr)
	}
}

func TestParseMode(t *testing.T) {
	for _, m := range []Mode{ModeAuto, ModeTrack, ModeAlbum, ModeOff} {
		if got, err := ParseMode(" " + m.String() + " "); err != nil || got != m {
			t.Errorf("ParseMode(%v) = %v, %v", m, got, err)
		}
	}
	if _, err := ParseMode("loud"); err == nil {
		t.Error("ParseMode(loud) accepted")
	}
}

func TestGainUnityAndSameGainBitExact(t *testing.T) {
	x := musicLike(44100, 2, 0.2, 1.3, 81)
	x[5] = float32(math.NaN()) // unity passes everything through unchanged
	g, _ := NewGain(44100, 2)
	y := append([]float32(nil), x...)
	g.Process(y)
	g.Set(0)
	g.Process(y[:0])
	if i := bitsEqual(x, y); i >= 0 {
		t.Fatalf("0 dB changed sample %d", i)
	}
	// Album gain: the same gain at a gapless boundary changes nothing.
	g.Jump(-4.2)
	a := append([]float32(nil), x[:2000]...)
	b := append([]float32(nil), x[2000:]...)
	g.Process(a)
	g.Set(-4.2)
	if g.Ramping() {
		t.Fatal("Set with the same gain started a ramp")
	}
	g.Process(b)
	whole := append([]float32(nil), x...)
	g2, _ := NewGain(44100, 2)
	g2.Jump(-4.2)
	g2.Process(whole)
	if i := bitsEqual(whole, append(a, b...)); i >= 0 {
		t.Fatalf("split at the boundary differs at %d", i)
	}
}

func TestGainRamp(t *testing.T) {
	const rate = 48000
	g, _ := NewGain(rate, 2)
	g.Jump(-6)
	g.Set(3)
	n := int(DefaultGainRamp.Seconds() * rate)
	x := make([]float32, 2*(n+100))
	for i := range x {
		x[i] = 0.25
	}
	for off := 0; off < len(x); off += 14 { // odd block size
		g.Process(x[off:min(len(x), off+14)])
	}
	lo, hi := float32(0.25*math.Pow(10, -6.0/20)), float32(0.25*math.Pow(10, 3.0/20))
	if x[0] != lo || x[len(x)-1] != hi || x[2*n] != hi || x[2*n-2] == hi {
		t.Fatalf("ramp from %v to %v: first %v, last %v, at n−1 %v, at n %v", lo, hi, x[0], x[len(x)-1], x[2*n-2], x[2*n])
	}
	maxStep := float64(hi-lo) / float64(n) * 1.001
	for i := 2; i < len(x); i += 2 {
		if x[i] < x[i-2] || float64(x[i]-x[i-2]) > maxStep || x[i] != x[i+1] {
			t.Fatalf("frame %d: %v after %v (max step %v)", i/2, x[i], x[i-2], maxStep)
		}
	}
	g.Set(math.NaN())
	if g.DB() != 0 {
		t.Errorf("NaN gain: %v dB", g.DB())
	}
	g.Jump(100)
	if g.DB() != MaxGainDB {
		t.Errorf("100 dB clamped to %v", g.DB())
	}
	bad := []float32{float32(math.NaN()), float32(math.Inf(1)), 1}
	g.Jump(-3)
	g.Process(bad)
	if bad[0] != 0 || math.IsInf(float64(bad[1]), 0) {
		t.Errorf("non-finite input through a −3 dB gain: %v", bad)
	}
	if a := testing.AllocsPerRun(20, func() { g.Set(-1); g.Process(x); g.Set(-2) }); a != 0 {
		t.Errorf("%v allocs", a)
	}
	_ = time.Millisecond
	_ = strconv.Itoa
}
