package player

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/roomcast/roomcast/audio/dsp"
	"github.com/roomcast/roomcast/internal/testenv"
	"github.com/roomcast/roomcast/loudness"
	"github.com/roomcast/roomcast/playback"
)

// measure returns the BS.1770 meter of x (package loudness).
func measure(t testing.TB, x []float32, rate int) *loudness.Meter {
	t.Helper()
	m, err := loudness.NewMeter(rate, 2)
	if err != nil {
		t.Fatal(err)
	}
	m.Write(x)
	return m
}

// scaleTo scales x so that its integrated loudness is lufs.
func scaleTo(t testing.TB, x []float32, rate int, lufs float64) {
	r := measure(t, x, rate).Result()
	g := float32(math.Pow(10, (lufs-r.Integrated)/20))
	for i := range x {
		x[i] *= g
	}
}

// saturatedNoise is band-limited noise through tanh (a low crest factor,
// like a compressed master); drive sets how square it gets.
func saturatedNoise(frames int, seed uint64, drive float64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 7))
	x := make([]float32, 2*frames)
	var l1, l2, r1, r2 float64
	for i := range frames {
		l1 = 0.85*l1 + 0.15*rng.NormFloat64()
		l2 = 0.5*l2 + 0.5*l1
		r1 = 0.85*r1 + 0.15*rng.NormFloat64()
		r2 = 0.5*r2 + 0.5*r1
		x[2*i] = float32(math.Tanh(drive * l2 * 3))
		x[2*i+1] = float32(math.Tanh(drive * r2 * 3))
	}
	return x
}

var (
	reI    = regexp.MustCompile(`I:\s+(-?[0-9.]+|-inf) LUFS`)
	rePeak = regexp.MustCompile(`Peak:\s+(-?[0-9.]+|-inf) dBFS`)
)

// ffmpegEBU measures a WAV with ffmpeg's ebur128 filter: integrated
// loudness and true peak (an independent meter).
func ffmpegEBU(t testing.TB, path string) (lufs, tp float64) {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-nostats", "-hide_banner", "-i", path, "-af", "ebur128=peak=true", "-f", "null", "-").CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	i, p := reI.FindAllSubmatch(out, -1), rePeak.FindAllSubmatch(out, -1)
	if len(i) == 0 || len(p) == 0 {
		t.Fatalf("ffmpeg output not understood:\n%s", out)
	}
	parse := func(b []byte) float64 {
		if string(b) == "-inf" {
			return math.Inf(-1)
		}
		v, err := strconv.ParseFloat(string(b), 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	return parse(i[len(i)-1][1]), parse(p[len(p)-1][1])
}

// TestLoudness plays three tracks at about −30, −20 and −8 LUFS (the last
// one peaking at about 0 dBTP) in modes track, auto (album context, album
// values) and off into wav:, and checks with ffmpeg's ebur128 meter:
// track mode brings each track to −14 ±0.5 LUFS; auto/album brings the
// album to −14 ±0.5 with the tracks' relative levels kept; off keeps the
// levels; in every mode no sample exceeds −1 dBFS and the true peak is at
// most −1 dBTP + 0.5 dB (the limiter's detector is a 12-tap
// interpolator: dsp documents up to +0.6 dB on full-band noise and
// −1.1 dBTP on music; ffmpeg's meter interpolates differently again).
func TestLoudness(t *testing.T) {
	t.Parallel()
	testenv.Tool(t, "ffmpeg", "ffmpeg")
	const rate, secs = 44100, 3
	dir := t.TempDir()
	src := newFileSource()
	gen := []struct {
		name string
		x    []float32
		lufs float64
	}{
		{"quiet", chord(secs*rate, rate, 0.1), -30},
		{"mid", saturatedNoise(secs*rate, 1, 1), -20},
		{"loud", saturatedNoise(secs*rate, 2, 0.27), -8},
	}
	var list []playback.Track
	var meters []*loudness.Meter
	var dec [][]float32
	for _, g := range gen {
		scaleTo(t, g.x, rate, g.lufs)
		if g.name == "loud" {
			var pk float32
			for _, v := range g.x {
				pk = max(pk, float32(math.Abs(float64(v))))
			}
			t.Logf("loud source: sample peak %.2f dBFS", 20*math.Log10(float64(pk)))
		}
		path := filepath.Join(dir, g.name+".ogg")
		encodeOgg(t, path, g.x, rate, 2, "5")
		d, _, _, err := decodeFile(t, path)
		if err != nil {
			t.Fatal(err)
		}
		m := measure(t, d, rate)
		meters = append(meters, m)
		dec = append(dec, d)
		tr := src.add(g.name, path)
		r := m.Result()
		tr.Track.LUFS, tr.Track.TruePeakDB = &r.Integrated, &r.TruePeak
		list = append(list, tr)
		t.Logf("%s: %.2f LUFS, true peak %.2f dBTP (decoded, package loudness)", g.name, r.Integrated, r.TruePeak)
	}
	alb := loudness.Album(meters...)
	for i := range list {
		list[i].Album.LUFS, list[i].Album.TruePeakDB = &alb.Integrated, &alb.TruePeak
	}
	t.Logf("album: %.2f LUFS, true peak %.2f dBTP", alb.Integrated, alb.TruePeak)
	ceiling := math.Pow(10, -1.0/20)

	for _, mode := range []dsp.Mode{dsp.ModeTrack, dsp.ModeAuto, dsp.ModeOff} {
		t.Run(mode.String(), func(t *testing.T) {
			t.Parallel()
			p, out := newWAVPlayer(t, src, Options{Normalize: dsp.GainPolicy{Mode: mode}})
			playList(t, p, list, mode == dsp.ModeAuto, 30*time.Second)
			_ = p.Close()
			rec, _, _ := readWAV(t, out)
			var pk float64
			for _, v := range rec {
				pk = max(pk, math.Abs(float64(v)))
			}
			if pk > ceiling+1e-6 {
				t.Errorf("sample peak %.3f dBFS above the −1 dBFS ceiling", 20*math.Log10(pk))
			}
			off := 2 * 99
			var parts []float64
			for i, d := range dec {
				path := filepath.Join(t.TempDir(), fmt.Sprintf("part%d.wav", i))
				writeWAVFloat(t, path, rec[off:off+len(d)], rate, 2)
				off += len(d)
				l, _ := ffmpegEBU(t, path)
				parts = append(parts, l)
			}
			all, tp := ffmpegEBU(t, out)
			t.Logf("ffmpeg: tracks %.1f / %.1f / %.1f LUFS, whole %.1f LUFS, true peak %.1f dBTP; sample peak %.2f dBFS",
				parts[0], parts[1], parts[2], all, tp, 20*math.Log10(pk))
			if tp > -1+0.5 {
				t.Errorf("true peak %.2f dBTP, want ≤ −0.5", tp)
			}
			for i, l := range parts {
				in := meters[i].Result().Integrated
				switch mode {
				case dsp.ModeTrack:
					if math.Abs(l+14) > 0.5 {
						t.Errorf("%s: %.2f LUFS, want −14 ±0.5", gen[i].name, l)
					}
				case dsp.ModeAuto:
					if want := in + (-14 - alb.Integrated); math.Abs(l-want) > 0.5 && i < 2 {
						t.Errorf("%s: %.2f LUFS, want %.2f (album gain)", gen[i].name, l, want)
					}
				case dsp.ModeOff:
					if d := l - in; d > 0.3 || d < -0.3 && i < 2 || d < -1.5 {
						t.Errorf("%s: %.2f LUFS, source %.2f", gen[i].name, l, in)
					}
				}
			}
			if mode == dsp.ModeAuto && math.Abs(all+14) > 0.5 {
				t.Errorf("album %.2f LUFS, want −14 ±0.5", all)
			}
		})
	}
}
