package player

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/roomcast/roomcast/audio/dsp"
	"github.com/roomcast/roomcast/internal/testenv"
	"github.com/roomcast/roomcast/playback"
)

// encodeAs writes x (interleaved stereo) as a 16-bit (24 for bits 24)
// WAV and encodes it into path with the reference encoder for its
// extension: flac, ffmpeg's libmp3lame (which writes the LAME tag) or
// opusenc.
func encodeAs(t testing.TB, path string, x []float32, rate, bits int) {
	t.Helper()
	wav := path + ".wav"
	writeWAVFloat(t, wav, x, rate, 2)
	var cmd *exec.Cmd
	switch filepath.Ext(path) {
	case ".flac":
		fl := testenv.Tool(t, "flac", "flac")
		// flac reads integer WAVs: convert the float WAV with ffmpeg.
		pcm := path + ".int.wav"
		run(t, testenv.Tool(t, "ffmpeg", "ffmpeg"), "-loglevel", "error", "-y", "-i", wav, "-c:a", fmt.Sprintf("pcm_s%dle", bits), pcm)
		cmd = exec.Command(fl, "-s", "-f", "-o", path, pcm)
	case ".mp3":
		cmd = exec.Command(testenv.Tool(t, "ffmpeg", "ffmpeg"), "-loglevel", "error", "-y", "-i", wav, "-c:a", "libmp3lame", "-b:a", "192k", path)
	case ".opus":
		cmd = exec.Command(testenv.Tool(t, "opusenc", "opus-tools"), "--quiet", "--bitrate", "128", wav, path)
	default:
		t.Fatalf("no encoder for %s", path)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %v\n%s", cmd.Args, err, out)
	}
}

func run(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

// referenceDecode decodes a file with the reference decoder of its format
// (flac -d, ffmpeg for MP3, opusdec) to interleaved float32.
func referenceDecode(t testing.TB, path string) []float32 {
	t.Helper()
	var args []string
	switch filepath.Ext(path) {
	case ".flac", ".mp3":
		args = []string{testenv.Tool(t, "ffmpeg", "ffmpeg"), "-loglevel", "error", "-i", path, "-f", "f32le", "-"}
	case ".opus":
		args = []string{testenv.Tool(t, "opusdec", "opus-tools"), "--quiet", "--float", "--rate", "48000", path, "-"}
	}
	out, err := exec.Command(args[0], args[1:]...).Output()
	if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	x := make([]float32, len(out)/4)
	for i := range x {
		x[i] = math.Float32frombits(uint32(out[4*i]) | uint32(out[4*i+1])<<8 | uint32(out[4*i+2])<<16 | uint32(out[4*i+3])<<24)
	}
	return x
}

// limiterLatency is dsp.Limiter's delay at rate.
func limiterLatency(t testing.TB, rate int) int {
	l, err := dsp.NewLimiter(rate, 2, dsp.LimiterConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return l.Latency()
}

// joinResidual is the largest |x - ref| within ±w frames of each join.
func joinResidual(x, ref []float32, joins []int, w int) float64 {
	var m float64
	for _, j := range joins {
		for f := max(j-w, 0); f < min(j+w, len(ref)/2, len(x)/2); f++ {
			for c := range 2 {
				m = max(m, math.Abs(float64(x[2*f+c]-ref[2*f+c])))
			}
		}
	}
	return m
}

// TestFormatsGapless: for each format, a 12 s continuous sine encoded as
// three tracks cut at odd sample offsets plays through wav: as one
// unbroken signal of exactly the total length. FLAC is bit-exact; for MP3
// and Opus the error around each join (against the original sine) is no
// worse than that of the reference decoder's output of the same files,
// concatenated.
func TestFormatsGapless(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		ext  string
		rate int
	}{{".flac", 44100}, {".mp3", 44100}, {".opus", 48000}} {
		// Formats one after the other: each player is paced in real time
		// by its wav: sink, and many at once on two cores (under -race)
		// starve it into underruns (silence in the output).
		t.Run(c.ext[1:], func(t *testing.T) {
			rate := c.rate
			total := 12 * rate
			sig := make([]float32, 2*total)
			for i := range total {
				v := float32(0.5 * math.Sin(2*math.Pi*441.3*float64(i)/float64(rate)))
				sig[2*i], sig[2*i+1] = v, v*0.8
			}
			cuts := []int{0, 4*rate + 4411, 8*rate + 1237, total}
			dir := t.TempDir()
			src := newFileSource()
			var list []playback.Track
			var ref []float32
			for i := range 3 {
				path := filepath.Join(dir, fmt.Sprintf("t%d%s", i+1, c.ext))
				encodeAs(t, path, sig[2*cuts[i]:2*cuts[i+1]], rate, 16)
				r := referenceDecode(t, path)
				if len(r) != 2*(cuts[i+1]-cuts[i]) {
					t.Fatalf("reference decoder: %d frames of track %d, encoded %d", len(r)/2, i+1, cuts[i+1]-cuts[i])
				}
				ref = append(ref, r...)
				list = append(list, src.add(fmt.Sprintf("t%d", i+1), path))
			}
			p, out := newWAVPlayer(t, src, Options{Normalize: dsp.GainPolicy{Mode: dsp.ModeOff}})
			p.SetVolume(100)
			playList(t, p, list, true, 40*time.Second)
			st, _ := p.OutputStats()
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
			// An underrun while playing puts silence into the wav: file
			// (the sink is paced in real time); say so if one happened.
			if u := st.Underruns; u.Events > 0 {
				t.Logf("the output had %d underruns (%d frames of silence): the machine could not keep up", u.Events, u.Frames)
			}
			rec, r, ch := readWAV(t, out)
			if r != rate || ch != 2 {
				t.Fatalf("wav %d Hz × %d", r, ch)
			}
			lat := limiterLatency(t, rate)
			if len(rec) < 2*(lat+total) {
				t.Fatalf("wav holds %d frames, want ≥ %d", len(rec)/2, lat+total)
			}
			got := rec[2*lat : 2*(lat+total)]
			for i, v := range rec[2*(lat+total):] {
				if v != 0 {
					t.Fatalf("sample %d after the end is %g: not exactly %d frames", i, v, total)
				}
			}
			// The last frames of the signal are not silent, so the length
			// is exact: nothing missing at the end either.
			var tail float64
			for _, v := range got[len(got)-200:] {
				tail = max(tail, math.Abs(float64(v)))
			}
			if tail < 0.1 {
				t.Fatalf("the output's last frames are silent (%.3g): frames missing", tail)
			}
			joins := cuts[1:3]
			if c.ext == ".flac" {
				// The reference decode of the three files, concatenated, is
				// the 16-bit signal the encoder stored.
				if i := bitsEqual(got, ref); i >= 0 {
					t.Fatalf("output differs from the tracks' samples at frame %d (joins at %v)", i/2, joins)
				}
				t.Logf("flac: %d frames bit-exact, joins at %v", total, joins)
				return
			}
			ours, theirs := joinResidual(got, sig, joins, 2048), joinResidual(ref, sig, joins, 2048)
			t.Logf("%s: largest error within ±2048 frames of the joins: ours %.4f, reference decoder concatenated %.4f",
				c.ext[1:], ours, theirs)
			if ours > theirs*1.05+1e-4 {
				t.Errorf("joins: error %.4f, the reference decoder's %.4f", ours, theirs)
			}
		})
	}
}

// TestFormatsLoudness: per format, tracks at about -30, -20 and -8 LUFS
// come out at -14 ± 0.5 LUFS in track mode (ffmpeg's ebur128 on the
// output, track by track).
func TestFormatsLoudness(t *testing.T) {
	t.Parallel()
	testenv.Tool(t, "ffmpeg", "ffmpeg")
	for _, c := range []struct {
		ext  string
		rate int
	}{{".flac", 44100}, {".mp3", 44100}, {".opus", 48000}} {
		// Formats one after the other: each player is paced in real time
		// by its wav: sink, and many at once on two cores (under -race)
		// starve it into underruns (silence in the output).
		t.Run(c.ext[1:], func(t *testing.T) {
			rate, secs := c.rate, 3
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
			var dec [][]float32
			for _, g := range gen {
				scaleTo(t, g.x, rate, g.lufs)
				path := filepath.Join(dir, g.name+c.ext)
				encodeAs(t, path, g.x, rate, 16)
				d, r, _, err := decodeFile(t, path)
				if err != nil || r != rate {
					t.Fatalf("decode %s: %d Hz, %v", path, r, err)
				}
				res := measure(t, d, rate).Result()
				dec = append(dec, d)
				tr := src.add(g.name, path)
				tr.Track.LUFS, tr.Track.TruePeakDB = &res.Integrated, &res.TruePeak
				list = append(list, tr)
			}
			p, out := newWAVPlayer(t, src, Options{Normalize: dsp.GainPolicy{Mode: dsp.ModeTrack}})
			playList(t, p, list, false, 30*time.Second)
			_ = p.Close()
			rec, _, _ := readWAV(t, out)
			off := 2 * limiterLatency(t, rate)
			var parts []string
			for i, d := range dec {
				path := filepath.Join(t.TempDir(), fmt.Sprintf("part%d.wav", i))
				writeWAVFloat(t, path, rec[off:off+len(d)], rate, 2)
				off += len(d)
				l, _ := ffmpegEBU(t, path)
				parts = append(parts, fmt.Sprintf("%.2f", l))
				if math.Abs(l+14) > 0.5 {
					t.Errorf("%s: %.2f LUFS, want −14 ±0.5", gen[i].name, l)
				}
			}
			t.Logf("%s: ffmpeg on the output: %s LUFS", c.ext[1:], strings.Join(parts, " / "))
		})
	}
}

// TestHiRes: a 24-bit/96 kHz FLAC played to wav: opens the output at 96
// kHz and comes out bit-identical to flac -d of it; a 44.1 kHz track after
// it is resampled to the running 96 kHz and joins without a gap.
func TestHiRes(t *testing.T) {
	t.Parallel()
	fl := testenv.Tool(t, "flac", "flac")
	const rate, frames = 96000, 96000*2 + 777
	dir := t.TempDir()
	x := chord(frames, rate, 0.7)
	for i, v := range x { // 24-bit values
		x[i] = float32(math.Round(float64(v)*(1<<23))) / (1 << 23)
	}
	hi := filepath.Join(dir, "hi.flac")
	encodeAs(t, hi, x, rate, 24)
	raw, err := exec.Command(fl, "-d", "-s", "-c", "--force-raw-format", "--endian=little", "--sign=signed", hi).Output()
	if err != nil {
		t.Fatal(err)
	}
	ref := make([]float32, len(raw)/3)
	for i := range ref {
		v := int32(uint32(raw[3*i])<<8|uint32(raw[3*i+1])<<16|uint32(raw[3*i+2])<<24) >> 8
		ref[i] = float32(v) / (1 << 23)
	}
	if len(ref) != 2*frames {
		t.Fatalf("flac -d: %d frames, want %d", len(ref)/2, frames)
	}
	lo := filepath.Join(dir, "lo.flac")
	y := make([]float32, 2*44100)
	for i := range 44100 {
		v := float32(0.5 * math.Sin(2*math.Pi*1000*float64(i)/44100))
		y[2*i], y[2*i+1] = v, v
	}
	encodeAs(t, lo, y, 44100, 16)
	src := newFileSource()
	list := []playback.Track{src.add("hi", hi), src.add("lo", lo)}
	p, out := newWAVPlayer(t, src, Options{Normalize: dsp.GainPolicy{Mode: dsp.ModeOff}})
	p.SetVolume(100)
	playList(t, p, list, true, 30*time.Second)
	_ = p.Close()
	rec, r, _ := readWAV(t, out)
	if r != rate {
		t.Fatalf("output at %d Hz, want the source's %d", r, rate)
	}
	lat := limiterLatency(t, rate)
	if i := bitsEqual(rec[2*lat:2*(lat+frames)], ref); i >= 0 {
		t.Fatalf("output differs from flac -d at frame %d: %v vs %v", i/2, rec[2*lat+i], ref[i])
	}
	// The join: the 1 kHz sine (peak 0.5) must begin at once. In every
	// 1 ms window after the first track (one period), the peak is near 0.5.
	next := rec[2*(lat+frames):]
	gap := 0
	for w := 0; w+96 <= len(next)/2 && w < 96*900; w += 96 {
		var pk float64
		for f := w; f < w+96; f++ {
			pk = max(pk, math.Abs(float64(next[2*f])))
		}
		if pk < 0.4 {
			gap += 96
		}
	}
	t.Logf("96 kHz track bit-identical to flac -d (%d frames); 44.1 kHz track resampled to 96 kHz: %d frames below 80%% in its first 0.9 s", frames, gap)
	if gap > 0 {
		t.Errorf("the 44.1 kHz track after the 96 kHz one has %d quiet frames: a gap at the join", gap)
	}
	_ = os.Remove(out)
}

// TestFormatsBadFiles: per format, a good track, the same format cut at
// 40 % and a garbage file that starts like the format: the cut one plays
// what decodes and the list goes on gaplessly, the garbage one fails with
// a decode error, and the last good track plays.
func TestFormatsBadFiles(t *testing.T) {
	t.Parallel()
	magic := map[string]string{".flac": "fLaC\x00\x00\x00\x22", ".mp3": "ID3\x04\x00\x00\x00\x00\x00\x00\xff\xfb\x90\x00", ".opus": "OggS\x00\x02"}
	for _, ext := range []string{".flac", ".mp3", ".opus"} {
		t.Run(ext[1:], func(t *testing.T) { // sequential: see TestFormatsGapless
			rate := 44100
			if ext == ".opus" {
				rate = 48000
			}
			dir := t.TempDir()
			src := newFileSource()
			sig := chord(6*rate, rate, 0.4)
			good1, cut, good2 := filepath.Join(dir, "g1"+ext), filepath.Join(dir, "cut"+ext), filepath.Join(dir, "g2"+ext)
			encodeAs(t, good1, sig[:2*rate], rate, 16)
			encodeAs(t, cut, sig, rate, 16)
			encodeAs(t, good2, sig[2*rate:4*rate], rate, 16)
			b, err := os.ReadFile(cut)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(cut, b[:len(b)*40/100], 0o644); err != nil {
				t.Fatal(err)
			}
			junk := make([]byte, 20000)
			for i := range junk {
				junk[i] = byte(i*7919 + i>>5)
			}
			copy(junk, magic[ext])
			if err := os.WriteFile(filepath.Join(dir, "junk"+ext), junk, 0o644); err != nil {
				t.Fatal(err)
			}
			dc, _, _, cerr := decodeFile(t, cut)
			if cerr == nil || len(dc) == 0 {
				t.Fatalf("the cut file decodes %d samples with error %v: want some samples and an error", len(dc), cerr)
			}
			list := []playback.Track{src.add("g1", good1), src.add("cut", cut), src.add("junk", filepath.Join(dir, "junk"+ext)), src.add("g2", good2)}
			p, out := newWAVPlayer(t, src, Options{Normalize: dsp.GainPolicy{Mode: dsp.ModeOff}})
			p.SetVolume(100)
			evs := playList(t, p, list, true, 30*time.Second)
			var got []string
			for _, e := range evs {
				got = append(got, e.String())
				if e.Kind == playback.TrackFailed && !strings.Contains(e.Err.Error(), "decode") {
					t.Errorf("failure of %s does not say what failed: %v", e.URI, e.Err)
				}
			}
			if want := "started:cut started:junk failed:junk ended:g2"; strings.Join(got, " ") != want {
				t.Fatalf("events %v, want %s", got, want)
			}
			_ = p.Close()
			d1, _, _, _ := decodeFile(t, good1)
			rec, _, _ := readWAV(t, out)
			lat := 2 * limiterLatency(t, rate)
			joined := append(append([]float32(nil), d1...), dc...)
			if i := bitsEqual(rec[lat:lat+len(joined)], joined); i >= 0 {
				t.Fatalf("good+cut not bit-exact at frame %d", i/2)
			}
			t.Logf("events %v; cut track played %d of %d frames (%v)", got, len(dc)/2, 6*rate, cerr)
		})
	}
}
