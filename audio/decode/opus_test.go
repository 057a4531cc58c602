package decode

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/roomcast/roomcast/internal/testenv"
)

var opusFixtures = []struct {
	name   string
	ch     int
	frames int64
}{
	{"stereo.opus", 2, 57619}, // 52937 frames at 44.1 kHz, resampled
	{"mono.opus", 1, 43200},   // 0.9 s
}

// opusdecFloat decodes with the reference decoder (opus-tools' opusdec)
// to float32 at 48 kHz.
func opusdecFloat(t testing.TB, path string) []float32 {
	bin := testenv.Tool(t, "opusdec", "opus-tools")
	return rawFloats(toolOutput(t, bin, "--quiet", "--float", "--rate", "48000", path, "-"))
}

// TestOpusReference: pre-skip and end trimming give opusdec's length, and
// the samples are libopus' (the same library decodes both): identical.
func TestOpusReference(t *testing.T) {
	for _, fx := range opusFixtures {
		t.Run(fx.name, func(t *testing.T) {
			data := fixture(t, fx.name)
			ref := opusdecFloat(t, writeTemp(t, fx.name, data))
			d, pcm := openAll(t, data, 1000)
			if d.Codec() != "opus" || d.SampleRate() != 48000 || d.Channels() != fx.ch || d.Len() != fx.frames {
				t.Fatalf("codec %s, %d Hz, %d ch, Len %d; want opus, 48000, %d, %d", d.Codec(), d.SampleRate(), d.Channels(), d.Len(), fx.ch, fx.frames)
			}
			if len(pcm) != len(ref) || int64(len(pcm)/fx.ch) != fx.frames {
				t.Fatalf("%d frames, opusdec %d, want %d", len(pcm)/fx.ch, len(ref)/fx.ch, fx.frames)
			}
			for i := range pcm {
				if pcm[i] != ref[i] {
					t.Fatalf("sample %d = %v, opusdec %v", i, pcm[i], ref[i])
				}
			}
		})
	}
}

// TestOpusOutputGain: the header's output gain is applied (+6 dB here,
// written into a copy of the fixture).
func TestOpusOutputGain(t *testing.T) {
	data := bytes.Clone(fixture(t, "mono.opus"))
	// First page: 27-byte header, 1 lacing value, then OpusHead; the gain
	// is at byte 16 of OpusHead.
	binary.LittleEndian.PutUint16(data[28+16:], uint16(6*256))
	binary.LittleEndian.PutUint32(data[22:], 0)
	binary.LittleEndian.PutUint32(data[22:], pageCRC(data[:28+int(data[27])]))
	_, plain := openAll(t, fixture(t, "mono.opus"), 1000)
	_, loud := openAll(t, data, 1000)
	g := float32(math.Pow(10, 6.0/20))
	for i := range plain {
		if math.Abs(float64(loud[i]-plain[i]*g)) > 1e-6 {
			t.Fatalf("sample %d: %v with +6 dB, %v without", i, loud[i], plain[i])
		}
	}
}

// TestOpusSeek: SeekFrame lands exactly (positions, lengths), and after
// the 80 ms pre-roll the samples match a straight decode closely (the
// decoder restarted, so not bit for bit).
func TestOpusSeek(t *testing.T) {
	old := scanStep
	scanStep = 1024 // bisection on small files
	defer func() { scanStep = old }()
	for _, fx := range opusFixtures {
		t.Run(fx.name, func(t *testing.T) {
			d, all := openAll(t, fixture(t, fx.name), 1000)
			ch, n := d.Channels(), d.Len()
			for _, f := range []int64{0, 1, 3839, 3840, 10000, n / 2, n - 961, n - 1, n} {
				if err := d.SeekFrame(f); err != nil {
					t.Fatalf("SeekFrame(%d): %v", f, err)
				}
				got, err := readAll(d, 333)
				if err != nil {
					t.Fatalf("after SeekFrame(%d): %v", f, err)
				}
				want := all[f*int64(ch):]
				if len(got) != len(want) {
					t.Fatalf("after SeekFrame(%d): %d samples, want %d", f, len(got), len(want))
				}
				var maxDiff float64
				for i := range got {
					maxDiff = max(maxDiff, math.Abs(float64(got[i]-want[i])))
				}
				if maxDiff > 0.02 {
					t.Errorf("after SeekFrame(%d): max difference %.3g from a straight decode", f, maxDiff)
				}
			}
		})
	}
}

func TestOpusTags(t *testing.T) {
	d, err := Open(bytes.NewReader(fixture(t, "stereo.opus")))
	if err != nil {
		t.Fatal(err)
	}
	tags := d.Tags()
	for k, want := range map[string]string{"TITLE": "Opus Title", "ARTIST": "Artist One", "R128_TRACK_GAIN": "-512"} {
		if got := tags[k]; len(got) != 1 || got[0] != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if len(tags["METADATA_BLOCK_PICTURE"]) != 1 {
		t.Errorf("METADATA_BLOCK_PICTURE: %q", tags["METADATA_BLOCK_PICTURE"])
	}
}

func TestOpusDamaged(t *testing.T) {
	data := fixture(t, "stereo.opus")
	for i, c := range truncations(data) {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			d, err := Open(bytes.NewReader(c))
			if err != nil {
				if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnknownFormat) && !errors.Is(err, ErrNotVorbis) {
					t.Fatalf("Open: %v", err)
				}
				return
			}
			if _, err = readAll(d, 4096); err != nil && !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("decode: %v", err)
			}
		})
	}
}

func FuzzOpus(f *testing.F) {
	for _, fx := range opusFixtures {
		data := fixture(f, fx.name)
		f.Add(data)
		for _, c := range truncations(data) {
			f.Add(c)
		}
	}
	f.Fuzz(fuzzDecoder)
}
