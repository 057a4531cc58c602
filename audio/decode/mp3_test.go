package decode

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/roomcast/roomcast/internal/testenv"
)

var mp3Fixtures = []struct {
	name    string
	rate    int
	ch      int
	frames  int64 // -1: as the reference decoder says
	gapless bool
}{
	{"stereo.mp3", 44100, 2, 52937, true},
	{"mono22k.mp3", 22050, 1, 28665, true}, // 1.3 s
	{"notag.mp3", 44100, 1, -1, false},
}

// ffmpegDecode decodes a file with ffmpeg to float32 at its own rate and
// channel count (ffmpeg trims the LAME tag's delay and padding).
func ffmpegDecode(t testing.TB, path string) []float32 {
	ff := testenv.Tool(t, "ffmpeg", "ffmpeg")
	return rawFloats(toolOutput(t, ff, "-loglevel", "error", "-i", path, "-f", "f32le", "-"))
}

// alignment returns the lag (in frames, got relative to ref) in
// [-maxLag, maxLag] that best matches the first channel (least squared
// difference), and the
// largest absolute difference at that lag over the overlap.
func alignment(got, ref []float32, ch, maxLag int) (lag int, maxDiff float64) {
	best := math.Inf(1)
	n := min(len(got), len(ref)) / ch
	for l := -maxLag; l <= maxLag; l++ {
		var e float64 // squared error at lag l
		for i := maxLag; i < n-maxLag; i++ {
			d := float64(got[(i+l)*ch]) - float64(ref[i*ch])
			e += d * d
		}
		if e < best {
			best, lag = e, l
		}
	}
	for i := maxLag; i < n-maxLag; i++ {
		for c := range ch {
			maxDiff = max(maxDiff, math.Abs(float64(got[(i+lag)*ch+c]-ref[i*ch+c])))
		}
	}
	return lag, maxDiff
}

// TestMP3Gapless: with the LAME tag the decode has exactly the encoded
// length and is aligned with ffmpeg's (which trims delay and padding the
// same way) to the sample; the difference is the two decoders' rounding
// (go-mp3 truncates to 16 bits).
func TestMP3Gapless(t *testing.T) {
	for _, fx := range mp3Fixtures {
		t.Run(fx.name, func(t *testing.T) {
			data := fixture(t, fx.name)
			ref := ffmpegDecode(t, writeTemp(t, fx.name, data))
			d, pcm := openAll(t, data, 1000)
			if d.Codec() != "mp3" || d.SampleRate() != fx.rate || d.Channels() != fx.ch || d.BitDepth() != 0 {
				t.Fatalf("codec %s, %d Hz, %d ch, %d bits", d.Codec(), d.SampleRate(), d.Channels(), d.BitDepth())
			}
			frames := int64(len(pcm) / fx.ch)
			if d.Len() != frames {
				t.Fatalf("Len() = %d, decoded %d frames", d.Len(), frames)
			}
			if !fx.gapless {
				// Untagged: played whole, with the encoder's padding.
				if frames%1152 != 0 || frames < int64(len(ref)/fx.ch) {
					t.Errorf("untagged: %d frames, ffmpeg %d", frames, len(ref)/fx.ch)
				}
				return
			}
			if frames != fx.frames || len(ref) != len(pcm) {
				t.Fatalf("%d frames, want %d (ffmpeg: %d)", frames, fx.frames, len(ref)/fx.ch)
			}
			lag, diff := alignment(pcm, ref, fx.ch, 1200)
			t.Logf("lag %d, max |ours - ffmpeg| %.2g", lag, diff)
			if lag != 0 || diff > 2e-3 {
				t.Errorf("against ffmpeg: lag %d frames, max difference %.3g", lag, diff)
			}
		})
	}
}

func TestMP3Seek(t *testing.T) {
	for _, fx := range mp3Fixtures {
		t.Run(fx.name, func(t *testing.T) {
			d, all := openAll(t, fixture(t, fx.name), 1000)
			ch, n := d.Channels(), d.Len()
			for _, f := range []int64{0, 1, 575, 576, 1151, 1152, 1153, n / 3, n / 2, n - 1153, n - 1, n} {
				if f < 0 || f > n {
					continue
				}
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
				for i := range got {
					if got[i] != want[i] {
						t.Fatalf("after SeekFrame(%d): sample %d = %v, straight decode %v", f, i, got[i], want[i])
					}
				}
			}
		})
	}
}

func TestMP3Tags(t *testing.T) {
	d, err := Open(bytes.NewReader(fixture(t, "stereo.mp3")))
	if err != nil {
		t.Fatal(err)
	}
	tags := d.Tags()
	for k, want := range map[string]string{"TITLE": "Mp3 Title", "ARTIST": "Artist One", "ALBUM": "Album",
		"TRACKNUMBER": "3/12", "REPLAYGAIN_TRACK_GAIN": "-3.10 dB"} {
		if got := tags[k]; len(got) != 1 || got[0] != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	pics := tags["METADATA_BLOCK_PICTURE"]
	if len(pics) != 1 {
		t.Fatalf("METADATA_BLOCK_PICTURE: %d values, want 1", len(pics))
	}
	b, err := base64Decode(pics[0])
	if err != nil || len(b) < 17 || b[3] != 3 || string(b[8:17]) != "image/png" {
		t.Errorf("picture block %x... (%v)", b[:min(len(b), 20)], err)
	}
}

// TestID3 covers the tag versions and encodings the fixtures do not.
func TestID3(t *testing.T) {
	frame := func(ver byte, id string, body []byte) []byte {
		var h []byte
		switch ver {
		case 2:
			h = append([]byte(id), byte(len(body)>>16), byte(len(body)>>8), byte(len(body)))
		case 3:
			h = append([]byte(id), byte(len(body)>>24), byte(len(body)>>16), byte(len(body)>>8), byte(len(body)), 0, 0)
		case 4:
			n := len(body)
			h = append([]byte(id), byte(n>>21&0x7f), byte(n>>14&0x7f), byte(n>>7&0x7f), byte(n&0x7f), 0, 0)
		}
		return append(h, body...)
	}
	tag := func(ver byte, frames ...[]byte) []byte {
		body := bytes.Join(frames, nil)
		n := len(body)
		return append([]byte{'I', 'D', '3', ver, 0, 0, byte(n >> 21 & 0x7f), byte(n >> 14 & 0x7f), byte(n >> 7 & 0x7f), byte(n & 0x7f)}, body...)
	}
	utf16le := []byte{1, 0xff, 0xfe, 'H', 0, 'i', 0, 0, 0}
	cases := []struct {
		name string
		tag  []byte
		key  string
		want []string
	}{
		{"v2.2 latin1", tag(2, frame(2, "TT2", []byte("\x00Caf\xe9"))), "TITLE", []string{"Café"}},
		{"v2.3 utf16", tag(3, frame(3, "TPE1", utf16le)), "ARTIST", []string{"Hi"}},
		{"v2.4 utf8 multi", tag(4, frame(4, "TPE1", []byte("\x03A\x00B"))), "ARTIST", []string{"A", "B"}},
		{"v2.4 utf16be", tag(4, frame(4, "TALB", []byte{2, 0, 'X'})), "ALBUM", []string{"X"}},
		{"txxx", tag(3, frame(3, "TXXX", []byte("\x00replaygain_album_gain\x00-1.5 dB"))), "REPLAYGAIN_ALBUM_GAIN", []string{"-1.5 dB"}},
		{"oversized frame ignored", tag(3, append(frame(3, "TIT2", []byte("\x00A")), 'T', 'I', 'T', '2', 0x7f, 0, 0, 0, 0, 0)), "TITLE", []string{"A"}},
	}
	for _, c := range cases {
		tags := map[string][]string{}
		parseID3v2(c.tag, tags)
		if fmt.Sprint(tags[c.key]) != fmt.Sprint(c.want) {
			t.Errorf("%s: %s = %q, want %q", c.name, c.key, tags[c.key], c.want)
		}
	}
	v1 := make([]byte, 128)
	copy(v1, "TAG")
	copy(v1[3:], "V1 Title")
	copy(v1[33:], "V1 Artist")
	v1[126] = 7
	tags := map[string][]string{"ARTIST": {"From v2"}}
	parseID3v1(v1, tags)
	if tags["TITLE"][0] != "V1 Title" || tags["ARTIST"][0] != "From v2" || tags["TRACKNUMBER"][0] != "7" {
		t.Errorf("ID3v1 fallback: %q", tags)
	}
}

func TestMP3Damaged(t *testing.T) {
	data := fixture(t, "stereo.mp3")
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
			if len(c) < len(data)-128 && !errors.Is(err, ErrTruncated) { // not just the ID3v1 tag cut
				t.Fatalf("cut at %d of %d bytes: %v, want ErrTruncated", len(c), len(data), err)
			}
		})
	}
}

func FuzzMP3(f *testing.F) {
	for _, fx := range mp3Fixtures {
		data := fixture(f, fx.name)
		f.Add(data)
		for _, c := range truncations(data) {
			f.Add(c)
		}
	}
	f.Fuzz(fuzzDecoder)
}
