package decode

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/roomcast/roomcast/internal/testenv"
)

var flacFixtures = []struct {
	name           string
	rate, ch, bits int
	frames         int64
}{
	{"stereo16.flac", 44100, 2, 16, 52937},
	{"hires24.flac", 96000, 2, 24, 28807},
	{"mono8k.flac", 8000, 1, 8, 4001},
}

// TestFLACBitExact decodes each fixture and compares it with the
// reference decoder (flac -d): every sample must be the integer sample
// divided by 2^(bits-1), exactly.
func TestFLACBitExact(t *testing.T) {
	flacBin := testenv.Tool(t, "flac", "flac")
	for _, fx := range flacFixtures {
		t.Run(fx.name, func(t *testing.T) {
			data := fixture(t, fx.name)
			raw := toolOutput(t, flacBin, "-d", "-s", "-c", "--force-raw-format", "--endian=little", "--sign=signed", writeTemp(t, fx.name, data))
			ref := rawInts(raw, (fx.bits+7)/8)
			for _, chunk := range []int{1, 1000, 4096, 10000} {
				d, pcm := openAll(t, data, chunk)
				if d.Codec() != "flac" || d.SampleRate() != fx.rate || d.Channels() != fx.ch || d.BitDepth() != fx.bits || d.Len() != fx.frames {
					t.Fatalf("codec %s, %d Hz, %d ch, %d bits, %d frames; want flac, %d, %d, %d, %d",
						d.Codec(), d.SampleRate(), d.Channels(), d.BitDepth(), d.Len(), fx.rate, fx.ch, fx.bits, fx.frames)
				}
				if len(pcm) != len(ref) {
					t.Fatalf("chunk %d: %d samples, flac -d gives %d", chunk, len(pcm), len(ref))
				}
				scale := float64(int64(1) << (fx.bits - 1))
				for i, v := range pcm {
					if float64(v)*scale != float64(ref[i]) {
						t.Fatalf("chunk %d: sample %d = %v (×2^%d = %v), flac -d: %d", chunk, i, v, fx.bits-1, float64(v)*scale, ref[i])
					}
				}
			}
		})
	}
}

// TestFLACSeek checks that SeekFrame lands exactly: the frames after a
// seek equal those of a straight decode, through the SEEKTABLE
// (stereo16) and by bisection (hires24 has none).
func TestFLACSeek(t *testing.T) {
	old := flacSeekScan
	flacSeekScan = 4096 // small windows: many bisection steps on a small file
	defer func() { flacSeekScan = old }()
	for _, name := range []string{"stereo16.flac", "hires24.flac", "mono8k.flac"} {
		t.Run(name, func(t *testing.T) {
			data := fixture(t, name)
			d, all := openAll(t, data, 4096)
			ch := d.Channels()
			n := d.Len()
			for _, f := range []int64{0, 1, 4095, 4096, 4097, n / 3, n / 2, n - 4097, n - 1, n, 17} {
				if f < 0 || f > n {
					continue
				}
				if err := d.SeekFrame(f); err != nil {
					t.Fatalf("SeekFrame(%d): %v", f, err)
				}
				if d.Position() != f {
					t.Fatalf("Position() = %d after SeekFrame(%d)", d.Position(), f)
				}
				got, err := readAll(d, 777)
				if err != nil {
					t.Fatalf("after SeekFrame(%d): %v", f, err)
				}
				want := all[f*int64(ch):]
				if len(got) != len(want) {
					t.Fatalf("after SeekFrame(%d): %d samples, want %d", f, len(got), len(want))
				}
				for i := range got {
					if got[i] != want[i] {
						t.Fatalf("after SeekFrame(%d): sample %d differs", f, i)
					}
				}
			}
			if err := d.SeekFrame(n + 1); !errors.Is(err, ErrOutOfRange) {
				t.Errorf("SeekFrame(Len+1) = %v, want ErrOutOfRange", err)
			}
		})
	}
}

func TestFLACTags(t *testing.T) {
	d, err := Open(bytes.NewReader(fixture(t, "stereo16.flac")))
	if err != nil {
		t.Fatal(err)
	}
	tags := d.Tags()
	for k, want := range map[string]string{"TITLE": "Flac Title", "ARTIST": "Artist One", "ALBUM": "Album", "REPLAYGAIN_TRACK_GAIN": "-3.10 dB"} {
		if got := tags[k]; len(got) != 1 || got[0] != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	pics := tags["METADATA_BLOCK_PICTURE"]
	if len(pics) != 1 {
		t.Fatalf("METADATA_BLOCK_PICTURE: %d values, want 1", len(pics))
	}
	// The value is the base64 PICTURE block: type 3, "image/png".
	b, err := base64Decode(pics[0])
	if err != nil || len(b) < 17 || b[3] != 3 || string(b[8:17]) != "image/png" {
		t.Errorf("picture block %x... (%v)", b[:min(len(b), 20)], err)
	}
}

// TestFLACDamaged: truncated and garbled files open with a sentinel error
// or decode what they can and end with one; nothing panics.
func TestFLACDamaged(t *testing.T) {
	data := fixture(t, "stereo16.flac")
	for i, c := range truncations(data) {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			d, err := Open(bytes.NewReader(c))
			if err != nil {
				if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnknownFormat) {
					t.Fatalf("Open: %v", err)
				}
				return
			}
			_, err = readAll(d, 4096)
			if len(c) == len(data) {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("garbled file: %v, want ErrCorrupt", err)
				}
				return
			}
			if !errors.Is(err, ErrTruncated) {
				t.Fatalf("cut at %d of %d bytes: %v, want ErrTruncated", len(c), len(data), err)
			}
		})
	}
	if _, err := Open(bytes.NewReader([]byte("\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00"))); !errors.Is(err, ErrUnknownFormat) {
		t.Errorf("m4a: %v, want ErrUnknownFormat", err)
	}
	// Forward only: same samples, no seeking.
	r, err := NewReader(io.MultiReader(bytes.NewReader(data)))
	if err != nil {
		t.Fatal(err)
	}
	_, all := openAll(t, data, 4096)
	got, err := readAll(r, 1000)
	if err != nil || len(got) != len(all) {
		t.Fatalf("NewReader: %d samples (%v), want %d", len(got), err, len(all))
	}
	if err := r.SeekFrame(0); !errors.Is(err, ErrNotSeekable) {
		t.Errorf("SeekFrame on NewReader: %v", err)
	}
}

func FuzzFLAC(f *testing.F) {
	for _, fx := range flacFixtures {
		data := fixture(f, fx.name)
		f.Add(data[:min(len(data), 20000)])
		for _, c := range truncations(data[:min(len(data), 20000)]) {
			f.Add(c)
		}
	}
	f.Fuzz(fuzzDecoder)
}
