package loudness

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/roomcast/roomcast/internal/testenv"
)

// writeWAV writes interleaved float32 samples as an IEEE-float WAV file.
// Files with more than two channels use WAVE_FORMAT_EXTENSIBLE with the
// given channel mask so that ffmpeg knows the layout (0x3F = 5.1: L R C
// LFE Ls Rs).
func writeWAV(path string, rate, channels int, mask uint32, samples []float32) error {
	var b bytes.Buffer
	le := binary.LittleEndian
	dataLen := uint32(4 * len(samples))
	fmtLen := uint32(16)
	if channels > 2 {
		fmtLen = 40
	}
	b.WriteString("RIFF")
	binary.Write(&b, le, uint32(4+8+fmtLen+8+dataLen))
	b.WriteString("WAVEfmt ")
	binary.Write(&b, le, fmtLen)
	if channels > 2 {
		binary.Write(&b, le, uint16(0xFFFE)) // WAVE_FORMAT_EXTENSIBLE
	} else {
		binary.Write(&b, le, uint16(3)) // WAVE_FORMAT_IEEE_FLOAT
	}
	binary.Write(&b, le, uint16(channels))
	binary.Write(&b, le, uint32(rate))
	binary.Write(&b, le, uint32(rate*channels*4))
	binary.Write(&b, le, uint16(channels*4))
	binary.Write(&b, le, uint16(32))
	if channels > 2 {
		binary.Write(&b, le, uint16(22)) // cbSize
		binary.Write(&b, le, uint16(32)) // valid bits
		binary.Write(&b, le, mask)
		// KSDATAFORMAT_SUBTYPE_IEEE_FLOAT
		binary.Write(&b, le, uint32(3))
		b.Write([]byte{0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71})
	}
	b.WriteString("data")
	binary.Write(&b, le, dataLen)
	binary.Write(&b, le, samples)
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// readWAV reads back a file written by writeWAV (used by the
// performance comparison, so both sides start from the same file).
func readWAV(path string) (rate, channels int, samples []float32, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, nil, err
	}
	le := binary.LittleEndian
	if len(data) < 44 || string(data[0:4]) != "RIFF" || string(data[8:12]) != "WAVE" {
		return 0, 0, nil, fmt.Errorf("%s: not a WAV file", path)
	}
	for off := 12; off+8 <= len(data); {
		id, n := string(data[off:off+4]), int(le.Uint32(data[off+4:]))
		body := data[off+8 : min(len(data), off+8+n)]
		switch id {
		case "fmt ":
			channels = int(le.Uint16(body[2:]))
			rate = int(le.Uint32(body[4:]))
		case "data":
			samples = make([]float32, len(body)/4)
			for i := range samples {
				samples[i] = math.Float32frombits(le.Uint32(body[4*i:]))
			}
			return rate, channels, samples, nil
		}
		off += 8 + n + n&1
	}
	return 0, 0, nil, fmt.Errorf("%s: no data chunk", path)
}

type ffmpegSummary struct {
	I, LRA, Peak float64
}

var (
	reI    = regexp.MustCompile(`(?m)^\s*I:\s+(-?[0-9.]+|-inf|nan) LUFS`)
	reLRA  = regexp.MustCompile(`(?m)^\s*LRA:\s+(-?[0-9.]+|-inf|nan) LU`)
	rePeak = regexp.MustCompile(`(?m)^\s*Peak:\s+(-?[0-9.]+|-inf|nan) dBFS`)
)

// runFFmpegEBUR128 runs `ffmpeg -nostats -i path -af ebur128=peak=true -f
// null -` and parses the Summary block of its log.
func runFFmpegEBUR128(t testing.TB, bin, path string) ffmpegSummary {
	t.Helper()
	out, err := exec.Command(bin, "-hide_banner", "-nostats", "-i", path, "-af", "ebur128=peak=true", "-f", "null", "-").CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	i := bytes.LastIndex(out, []byte("Summary:"))
	if i < 0 {
		t.Fatalf("ffmpeg output has no Summary:\n%s", out)
	}
	sum := string(out[i:])
	parse := func(re *regexp.Regexp, name string) float64 {
		m := re.FindStringSubmatch(sum)
		if m == nil {
			t.Fatalf("ffmpeg summary has no %s:\n%s", name, sum)
		}
		v, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			t.Fatalf("ffmpeg %s %q: %v", name, m[1], err)
		}
		return v
	}
	return ffmpegSummary{I: parse(reI, "I"), LRA: parse(reLRA, "LRA"), Peak: parse(rePeak, "Peak")}
}

// burstsMono: noise bursts of varying level separated by digital silence
// (exercises both gates).
func burstsMono(rate int, seconds float64) []float32 {
	sig := musicLike(rate, 1, seconds, 99)
	for i := range sig {
		sec := i / rate
		switch {
		case sec%5 == 4:
			sig[i] = 0
		case sec%7 == 3:
			sig[i] *= 0.05
		}
	}
	return sig
}

// TestAgainstFFmpeg compares with ffmpeg's ebur128 filter on generated
// signals. ffmpeg prints one decimal, so agreement is checked to 0.1 LU
// (integrated), 0.2 LU (LRA) and 0.2 dB (true peak).
func TestAgainstFFmpeg(t *testing.T) {
	bin := testenv.Tool(t, "ffmpeg", "ffmpeg")
	dir := t.TempDir()
	cases := []struct {
		name     string
		rate     int
		channels int
		mask     uint32
		signal   func() []float32
	}{
		{"music-48k-stereo", 48000, 2, 0, func() []float32 { return musicLike(48000, 2, 40, 1) }},
		{"music-44k1-stereo", 44100, 2, 0, func() []float32 { return musicLike(44100, 2, 40, 2) }},
		{"tech3341-5-44k1", 44100, 2, 0, func() []float32 {
			return sineSequence(44100, 2, []segment{{-26, 20}, {-20, 20.1}, {-26, 20}})
		}},
		{"bursts-32k-mono", 32000, 1, 0, func() []float32 { return burstsMono(32000, 40) }},
		{"music-48k-5.1", 48000, 6, 0x3F, func() []float32 { return musicLike(48000, 6, 30, 4) }},
		{"music-96k-stereo", 96000, 2, 0, func() []float32 { return musicLike(96000, 2, 20, 5) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sig := c.signal()
			path := filepath.Join(dir, c.name+".wav")
			if err := writeWAV(path, c.rate, c.channels, c.mask, sig); err != nil {
				t.Fatal(err)
			}
			ff := runFFmpegEBUR128(t, bin, path)
			r := measure(t, c.rate, c.channels, sig)
			t.Logf("FFMPEG %-18s ours I=%.3f LRA=%.3f TP=%.3f | ffmpeg I=%.1f LRA=%.1f Peak=%.1f",
				c.name, r.Integrated, r.Range, r.TruePeak, ff.I, ff.LRA, ff.Peak)
			if math.Abs(r.Integrated-ff.I) > 0.1 {
				t.Errorf("integrated: ours %.3f LUFS, ffmpeg %.1f", r.Integrated, ff.I)
			}
			if math.Abs(r.Range-ff.LRA) > 0.2 {
				t.Errorf("LRA: ours %.3f LU, ffmpeg %.1f", r.Range, ff.LRA)
			}
			if math.Abs(r.TruePeak-ff.Peak) > 0.2 {
				t.Errorf("true peak: ours %.3f dBTP, ffmpeg %.1f", r.TruePeak, ff.Peak)
			}
		})
	}
}

// TestWAVRoundTrip keeps the test helpers honest.
func TestWAVRoundTrip(t *testing.T) {
	sig := musicLike(44100, 2, 0.5, 8)
	path := filepath.Join(t.TempDir(), "x.wav")
	if err := writeWAV(path, 44100, 2, 0, sig); err != nil {
		t.Fatal(err)
	}
	rate, ch, got, err := readWAV(path)
	if err != nil || rate != 44100 || ch != 2 || len(got) != len(sig) {
		t.Fatalf("readWAV: rate %d ch %d len %d err %v", rate, ch, len(got), err)
	}
	for i := range got {
		if got[i] != sig[i] {
			t.Fatalf("sample %d: %v != %v", i, got[i], sig[i])
		}
	}
}
