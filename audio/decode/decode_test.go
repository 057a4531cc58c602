package decode

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jfreymuth/oggvorbis"
	"github.com/jfreymuth/vorbis"

	"github.com/roomcast/roomcast/internal/testenv"
)

var allFixtures = []string{"stereo.ogg", "mono_short.ogg", "mono22k.ogg", "hot.ogg"}

// lastGranule returns the granule position of the last page, parsed
// independently of Stream.
func lastGranule(t *testing.T, data []byte) int64 {
	pages := splitPages(t, data)
	return pages[len(pages)-1].granule
}

func TestLengthEqualsFinalGranule(t *testing.T) {
	for _, name := range allFixtures {
		t.Run(name, func(t *testing.T) {
			data := fixture(t, name)
			s, pcm := openDecode(t, data, 4096)
			want := lastGranule(t, data) // these files start at granule 0
			if got := int64(len(pcm) / s.Channels()); got != want {
				t.Errorf("decoded %d frames, final granule is %d", got, want)
			}
			if s.Len() != want {
				t.Errorf("Len() = %d, want %d", s.Len(), want)
			}
			if s.Position() != want {
				t.Errorf("Position() after decode = %d, want %d", s.Position(), want)
			}
		})
	}
}

// TestMatchesCommittedLibvorbisDecode compares against oggdec output that
// testdata/gen.sh stored, so it needs no tools.
func TestMatchesCommittedLibvorbisDecode(t *testing.T) {
	for _, name := range []string{"mono_short", "mono22k"} {
		t.Run(name, func(t *testing.T) {
			_, pcm := openDecode(t, fixture(t, name+".ogg"), 333)
			diffs, maxDiff := compareS16(t, pcm, s16le(fixture(t, name+".s16")))
			if maxDiff > 1 {
				t.Errorf("max difference %d LSB (16-bit) from libvorbis", maxDiff)
			}
			t.Logf("%d of %d samples differ by 1 LSB", diffs, len(pcm))
		})
	}
}

func TestSeekCasesHaveContinuedPackets(t *testing.T) {
	// oggenc ends every page on a packet boundary; the re-paginated
	// variants used by the seek tests must exercise continued packets.
	for _, name := range []string{"stereo-1seg", "stereo-3seg", "stereo-trim"} {
		pages := splitPages(t, seekCases(t)[name])
		cont := 0
		for _, p := range pages {
			if p.flags&flagContinued != 0 {
				cont++
			}
		}
		if cont < 10 {
			t.Errorf("%s: %d pages, %d continued; want >= 10 continued", name, len(pages), cont)
		}
	}
}

func TestPaginationInvariance(t *testing.T) {
	data := fixture(t, "stereo.ogg")
	_, want := openDecode(t, data, 4096)
	headers, audio, serial := packetsOf(t, data)
	for _, segs := range []int{1, 2, 7, 255} {
		t.Run(fmt.Sprint(segs), func(t *testing.T) {
			re := mux(serial, headers, audio, segs, 0)
			s, got := openDecode(t, re, 1000)
			if !slices.Equal(got, want) {
				t.Fatalf("decode differs after re-paginating with %d segments per page (%d vs %d samples)", segs, len(got), len(want))
			}
			if s.Len() != int64(len(want)/2) {
				t.Errorf("Len() = %d, want %d", s.Len(), len(want)/2)
			}
		})
	}
}

// TestGranuleTrimming shifts every granule position of a file: a negative
// shift makes the first page claim fewer samples than its packets decode
// to (beginning-of-stream trim), a positive one starts the stream at a
// nonzero granule (no trim, offset).
func TestGranuleTrimming(t *testing.T) {
	data := fixture(t, "stereo.ogg")
	_, orig := openDecode(t, data, 4096)
	headers, audio, serial := packetsOf(t, data)
	// Re-paginate with 20 segments per page so the first audio page
	// holds several packets and is not the last page.
	firstGran := splitPages(t, mux(serial, headers, audio, 20, 0))[2].granule
	for _, shift := range []int64{-1, -777, -firstGran, 1, 4321} {
		t.Run(fmt.Sprint(shift), func(t *testing.T) {
			re := mux(serial, headers, audio, 20, shift)
			s, got := openDecode(t, re, 1000)
			want := orig
			if shift < 0 {
				want = orig[-shift*2:]
			}
			if !slices.Equal(got, want) {
				t.Fatalf("got %d samples, want %d (or content differs)", len(got), len(want))
			}
			if s.Len() != int64(len(want)/2) {
				t.Errorf("Len() = %d, want %d", s.Len(), len(want)/2)
			}
		})
	}
	// A single audio page that is also the last one: the end is cut,
	// not the beginning (Vorbis I A.2), so the decode keeps its start.
	re := mux(serial, headers, audio, 255, -1000)
	if n := len(splitPages(t, re)); n != 3 {
		t.Fatalf("expected one audio page, got %d pages", n)
	}
	_, got := openDecode(t, re, 1000)
	if want := orig[:len(orig)-2000]; !slices.Equal(got, want) {
		t.Fatalf("single-page stream: got %d samples, want the first %d", len(got), len(want))
	}
}

func TestValuesAboveFullScalePreserved(t *testing.T) {
	data := fixture(t, "hot.ogg")
	_, pcm := openDecode(t, data, 4096)
	peak := float32(0)
	for _, v := range pcm {
		peak = max(peak, float32(math.Abs(float64(v))))
	}
	// The source is a sine with peak 1.4125 (+3 dBFS).
	if peak < 1.3 || peak > 1.6 {
		t.Fatalf("peak %.4f, want about 1.41", peak)
	}
	// oggvorbis v1.0.5 clamps to [-1, 1]: the reason this package exists.
	r, err := oggvorbis.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]float32, 4096)
	refPeak := float32(0)
	for {
		n, err := r.Read(buf)
		for _, v := range buf[:n] {
			refPeak = max(refPeak, float32(math.Abs(float64(v))))
		}
		if err != nil {
			break
		}
	}
	t.Logf("peak %.4f (oggvorbis.Reader: %.4f)", peak, refPeak)
}

func TestReadChunkInvariance(t *testing.T) {
	for _, name := range allFixtures {
		data := fixture(t, name)
		_, want := openDecode(t, data, 8192)
		for _, chunk := range []int{1, 2, 3, 127, 1000, 4096, 100000} {
			_, got := openDecode(t, data, chunk)
			if !slices.Equal(got, want) {
				t.Errorf("%s: chunk %d frames: result differs", name, chunk)
			}
		}
	}
	// Odd-sized buffers are truncated to whole frames.
	s, err := OpenVorbis(bytes.NewReader(fixture(t, "stereo.ogg")))
	if err != nil {
		t.Fatal(err)
	}
	if n, err := s.Read(make([]float32, 5)); n != 4 || err != nil {
		t.Errorf("Read(5 values) on stereo = %d, %v; want 4, nil", n, err)
	}
	if n, err := s.Read(make([]float32, 1)); n != 0 || err != io.ErrShortBuffer {
		t.Errorf("Read(1 value) on stereo = %d, %v; want 0, io.ErrShortBuffer", n, err)
	}
}

// seekCases returns fixture variants for the seek tests: the fixtures
// plus re-paginated and granule-shifted versions of stereo.ogg.
func seekCases(t testing.TB) map[string][]byte {
	cases := map[string][]byte{}
	for _, name := range allFixtures {
		cases[name] = fixture(t, name)
	}
	data := fixture(t, "stereo.ogg")
	headers, audio, serial := packetsOf(t, data)
	cases["stereo-1seg"] = mux(serial, headers, audio, 1, 0)
	cases["stereo-3seg"] = mux(serial, headers, audio, 3, 0)
	cases["stereo-trim"] = mux(serial, headers, audio, 5, -1500)
	cases["stereo-offset"] = mux(serial, headers, audio, 40, 99999)
	return cases
}

func TestSeekSampleExact(t *testing.T) {
	for _, step := range []int64{scanStep, 300} {
		defer func(old int64) { scanStep = old }(scanStep)
		scanStep = step
		for name, data := range seekCases(t) {
			t.Run(fmt.Sprintf("%s/step%d", name, step), func(t *testing.T) {
				s, want := openDecode(t, data, 4096)
				ch := s.Channels()
				n := s.Len()
				rng := rand.New(rand.NewPCG(uint64(n), uint64(step)))
				targets := []int64{0, 1, n - 1, n, n / 2, 0}
				for range 40 {
					targets = append(targets, rng.Int64N(n+1))
				}
				buf := make([]float32, 3000*ch)
				for _, f := range targets {
					if err := s.SeekFrame(f); err != nil {
						t.Fatalf("SeekFrame(%d): %v", f, err)
					}
					if s.Position() != f {
						t.Fatalf("Position() after SeekFrame(%d) = %d", f, s.Position())
					}
					frames := min(int64(rng.IntN(3000)+1), n-f)
					got := buf[:0]
					for int64(len(got)/ch) < frames {
						k, err := s.Read(buf[len(got) : frames*int64(ch)])
						if err != nil {
							t.Fatalf("Read after SeekFrame(%d): %v", f, err)
						}
						got = buf[:len(got)+k]
					}
					if !slices.Equal(got, want[f*int64(ch):(f+frames)*int64(ch)]) {
						t.Fatalf("SeekFrame(%d): %d frames differ from straight decode", f, frames)
					}
					if f+frames == n {
						if k, err := s.Read(buf); k != 0 || err != io.EOF {
							t.Fatalf("Read at end after SeekFrame(%d) = %d, %v; want 0, EOF", f, k, err)
						}
					}
				}
				// Decoding the rest after a seek reaches exactly the end.
				mid := n / 3
				if err := s.SeekFrame(mid); err != nil {
					t.Fatal(err)
				}
				rest, err := decodeAll(s, 777)
				if err != nil || !slices.Equal(rest, want[mid*int64(ch):]) {
					t.Fatalf("decode after SeekFrame(%d): err %v, %d samples, want %d", mid, err, len(rest), len(want)-int(mid)*ch)
				}
				if err := s.SeekFrame(n + 1); !errors.Is(err, ErrOutOfRange) {
					t.Errorf("SeekFrame(Len+1) = %v, want ErrOutOfRange", err)
				}
				if err := s.SeekFrame(-1); !errors.Is(err, ErrOutOfRange) {
					t.Errorf("SeekFrame(-1) = %v, want ErrOutOfRange", err)
				}
			})
		}
	}
}

func TestTags(t *testing.T) {
	s, err := OpenVorbis(bytes.NewReader(fixture(t, "stereo.ogg")))
	if err != nil {
		t.Fatal(err)
	}
	tags := s.Tags()
	want := map[string][]string{
		"TITLE":                  {"Fixture Title"},
		"ARTIST":                 {"Artist One", "Artist Two"},
		"ALBUM":                  {"Album"},
		"REPLAYGAIN_TRACK_GAIN":  {"-3.10 dB"},
		"MIXEDCASE":              {"Value=with=equals"},
		"METADATA_BLOCK_PICTURE": {"AAAAAwAAAAlpbWFnZS9wbmc="},
	}
	for k, v := range want {
		slices.Sort(tags[k])
		if !slices.Equal(tags[k], v) {
			t.Errorf("tag %s = %q, want %q", k, tags[k], v)
		}
	}
	if s.Vendor() == "" {
		t.Error("empty vendor string")
	}
	tags["TITLE"][0] = "changed"
	if s.Tags()["TITLE"][0] != "Fixture Title" {
		t.Error("Tags() does not return a copy")
	}
}

func TestLargeCommentHeader(t *testing.T) {
	// Embedded cover art can make the comment header several MiB, more
	// than the audio packet cap.
	data := fixture(t, "stereo.ogg")
	_, want := openDecode(t, data, 4096)
	headers, audio, serial := packetsOf(t, data)
	le := binary.LittleEndian
	picture := "METADATA_BLOCK_PICTURE=" + strings.Repeat("A", 3<<20)
	c := []byte("\x03vorbis")
	c = le.AppendUint32(c, 2)
	c = append(c, "me"...)
	c = le.AppendUint32(c, 1)
	c = le.AppendUint32(c, uint32(len(picture)))
	c = append(c, picture...)
	c = append(c, 1)
	headers[1] = c
	s, got := openDecode(t, mux(serial, headers, audio, 255, 0), 4096)
	if !slices.Equal(got, want) {
		t.Fatal("decode differs")
	}
	if v := s.Tags()["METADATA_BLOCK_PICTURE"]; len(v) != 1 || len(v[0]) != 3<<20 {
		t.Fatal("picture tag lost")
	}
	// Beyond maxHeaderSize: rejected.
	headers[1] = append(c[:len(c)-1], make([]byte, maxHeaderSize)...)
	if _, err := OpenVorbis(bytes.NewReader(mux(serial, headers, audio, 255, 0))); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open with a %d-byte comment header: %v, want ErrCorrupt", len(headers[1]), err)
	}
}

// onlyReader hides the Seek method of its reader.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func TestNewReaderForwardOnly(t *testing.T) {
	data := fixture(t, "stereo.ogg")
	_, want := openDecode(t, data, 4096)
	s, err := NewVorbisReader(onlyReader{bytes.NewReader(data)})
	if err != nil {
		t.Fatal(err)
	}
	if s.Len() != -1 {
		t.Errorf("Len() before end = %d, want -1", s.Len())
	}
	if err := s.SeekFrame(0); err != ErrNotSeekable {
		t.Errorf("SeekFrame = %v, want ErrNotSeekable", err)
	}
	got, err := decodeAll(s, 1234)
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("err %v, %d samples, want %d identical", err, len(got), len(want))
	}
	if s.Len() != int64(len(want)/2) {
		t.Errorf("Len() after end = %d, want %d", s.Len(), len(want)/2)
	}
}

func TestChained(t *testing.T) {
	data := fixture(t, "chained.ogg")
	if _, err := OpenVorbis(bytes.NewReader(data)); !errors.Is(err, ErrChained) {
		t.Errorf("OpenVorbis(chained) = %v, want ErrChained", err)
	}
	s, err := NewVorbisReader(onlyReader{bytes.NewReader(data)})
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeAll(s, 100)
	if !errors.Is(err, ErrChained) {
		t.Errorf("NewVorbisReader(chained): decode error %v, want ErrChained", err)
	}
	_, first := openDecode(t, fixture(t, "mono_short.ogg"), 100)
	if !slices.Equal(got, first) {
		t.Errorf("first link: %d samples, want %d identical", len(got), len(first))
	}
}

func TestCloseAndErrors(t *testing.T) {
	s, err := OpenVorbis(bytes.NewReader(fixture(t, "mono_short.ogg")))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Read(make([]float32, 10)); err != ErrClosed {
		t.Errorf("Read after Close = %v", err)
	}
	if err := s.SeekFrame(0); err != ErrClosed {
		t.Errorf("SeekFrame after Close = %v", err)
	}
	if err := s.Close(); err != ErrClosed {
		t.Errorf("second Close = %v", err)
	}
}

// bitWriter writes Vorbis LSB-first bit packing.
type bitWriter struct {
	buf []byte
	n   uint
}

func (w *bitWriter) write(v uint32, bits uint) {
	for i := uint(0); i < bits; i++ {
		if w.n%8 == 0 {
			w.buf = append(w.buf, 0)
		}
		if v>>i&1 != 0 {
			w.buf[w.n/8] |= 1 << (w.n % 8)
		}
		w.n++
	}
}

// addMode rewrites a setup header so it declares one more mode (a copy of
// the last), which makes the mode number field of every audio packet one
// bit wider if the count becomes 3, so packets decode mode 3: out of range.
func addMode(t testing.TB, setup []byte, modes int) []byte {
	// The framing bit is the last set bit of the packet.
	last := len(setup) - 1
	framing := uint(last*8) + uint(ilog(int(setup[last]))) - 1
	modesStart := framing - 41*uint(modes) - 6
	r := &bitReader{data: setup}
	w := &bitWriter{}
	for range modesStart {
		w.write(r.read(1), 1)
	}
	r.read(6)
	w.write(uint32(modes), 6) // count-1: one more mode
	var lastMode [41]uint32
	for range modes {
		for i := range lastMode {
			lastMode[i] = r.read(1)
			w.write(lastMode[i], 1)
		}
	}
	for _, b := range lastMode {
		w.write(b, 1)
	}
	w.write(1, 1) // framing
	if _, err := parseSetup(w.buf, 2); err != nil {
		t.Fatalf("rewritten setup header invalid: %v", err)
	}
	return w.buf
}

// widenMode re-packs an audio packet of a 2-mode stream (1-bit mode
// field) for the same stream with a third mode (2-bit mode field), setting
// the mode number to mode.
func widenMode(p []byte, mode uint32) []byte {
	r := &bitReader{data: p}
	w := &bitWriter{}
	w.write(r.read(1), 1) // packet type
	old := r.read(1)
	if mode > 3 {
		mode = old
	}
	w.write(mode, 2)
	for range len(p)*8 - 2 {
		w.write(r.read(1), 1)
	}
	return w.buf
}

// modeCase returns stereo.ogg rewritten to declare 3 modes, with every
// audio packet re-packed accordingly (decoding to the same audio); if bad,
// one packet in the middle of the stream uses the undefined mode 3.
func modeCase(t testing.TB, bad bool) []byte {
	headers, audio, serial := modePackets(t, bad)
	return mux(serial, headers, audio, 20, 0)
}

func modePackets(t testing.TB, bad bool) ([3][]byte, []oggPacket, uint32) {
	headers, audio, serial := packetsOf(t, fixture(t, "stereo.ogg"))
	headers[2] = addMode(t, headers[2], 2)
	audio = slices.Clone(audio)
	for i := range audio {
		mode := uint32(4) // keep
		if bad && i == len(audio)/2 {
			mode = 3
		}
		audio[i].data = widenMode(audio[i].data, mode)
	}
	return headers, audio, serial
}

func TestThreeModeRewriteDecodesIdentically(t *testing.T) {
	_, want := openDecode(t, fixture(t, "stereo.ogg"), 4096)
	_, got := openDecode(t, modeCase(t, false), 4096)
	if !slices.Equal(got, want) {
		t.Fatal("3-mode rewrite changes the audio: the out-of-range mode test would prove nothing")
	}
}

type corruptCase struct {
	name    string
	data    []byte
	openErr error // expected from Open, or nil if Open must succeed
	readErr error // expected from Read if Open succeeds
}

func corruptCases(t testing.TB) []corruptCase {
	stereo := fixture(t, "stereo.ogg")
	pages := splitPages(t, stereo)
	headers, audio, serial := packetsOf(t, stereo)
	mod := func(f func(ps []rawPage) []rawPage) []byte {
		ps := slices.Clone(pages)
		for i := range ps {
			ps[i].segs = bytes.Clone(ps[i].segs)
			ps[i].body = bytes.Clone(ps[i].body)
		}
		return joinPages(f(ps))
	}
	pageOff := func(i int) int { return len(joinPages(pages[:i])) }
	renumber := func(ps []rawPage) []rawPage {
		for i := range ps {
			ps[i].seq = uint32(i)
		}
		return ps
	}
	badCRC := bytes.Clone(stereo)
	badCRC[pageOff(4)+40] ^= 0x10
	badFirstCRC := bytes.Clone(stereo)
	badFirstCRC[30] ^= 1
	garbage := make([]byte, 5000)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range garbage {
		garbage[i] = byte(rng.Uint32())
	}
	return []corruptCase{
		{"empty", nil, ErrNotVorbis, nil},
		{"garbage", garbage, ErrNotVorbis, nil},
		{"capture pattern then garbage", append([]byte("OggS\x07"), garbage...), ErrCorrupt, nil},
		{"truncated in first page", stereo[:20], ErrTruncated, nil},
		{"truncated in headers", stereo[:pageOff(2)-100], ErrTruncated, nil},
		{"headers only", stereo[:pageOff(2)], nil, ErrTruncated},
		{"truncated mid audio page", stereo[:pageOff(4)+1000], nil, ErrTruncated},
		{"truncated at page boundary", stereo[:pageOff(5)], nil, ErrTruncated},
		{"truncated in last page header", stereo[:len(stereo)-len(pages[len(pages)-1].bytes())+10], nil, ErrTruncated},
		{"bad CRC first page", badFirstCRC, ErrCorrupt, nil},
		{"bad CRC audio page", badCRC, nil, ErrCorrupt},
		{"page version 1", func() []byte {
			b := bytes.Clone(stereo)
			off := pageOff(3)
			b[off+4] = 1
			binary.LittleEndian.PutUint32(b[off+22:], pageCRC(b[off:pageOff(4)]))
			return b
		}(), nil, ErrCorrupt},
		{"zero-segment BOS page", mod(func(ps []rawPage) []rawPage {
			ps[0].segs, ps[0].body = nil, nil
			return ps
		}), ErrNotVorbis, nil},
		{"zero-segment page continuing nothing", mod(func(ps []rawPage) []rawPage {
			z := rawPage{flags: flagContinued, granule: -1, serial: ps[0].serial}
			ps = slices.Insert(ps, 3, z)
			return renumber(ps)
		}), nil, ErrCorrupt},
		{"page sequence gap", mod(func(ps []rawPage) []rawPage {
			return slices.Delete(ps, 3, 4)
		}), nil, ErrCorrupt},
		{"not continued", func() []byte {
			ps := splitPages(t, mux(serial, headers, audio, 7, 0))
			for i := 10; i < len(ps); i++ {
				if ps[i].flags&flagContinued != 0 {
					ps[i].flags &^= flagContinued
					break
				}
			}
			return joinPages(ps)
		}(), nil, ErrCorrupt},
		{"zero channels", mod(func(ps []rawPage) []rawPage {
			ps[0].body[11] = 0
			return ps
		}), ErrCorrupt, nil},
		{"vorbis version 1", mod(func(ps []rawPage) []rawPage {
			ps[0].body[7] = 1
			return ps
		}), ErrCorrupt, nil},
		{"blocksize too large", mod(func(ps []rawPage) []rawPage {
			ps[0].body[28] = 0xf8
			return ps
		}), ErrCorrupt, nil},
		{"bad codebook sync", func() []byte {
			h := headers
			h[2] = bytes.Clone(h[2])
			h[2][8] ^= 0xff
			return mux(serial, h, audio, 255, 0)
		}(), ErrCorrupt, nil},
		{"setup header cut short", func() []byte {
			h := headers
			h[2] = h[2][:len(h[2])/2]
			return mux(serial, h, audio, 255, 0)
		}(), ErrCorrupt, nil},
		{"comment header not a comment", func() []byte {
			h := headers
			h[1] = []byte("\x03vorbi")
			return mux(serial, h, audio, 255, 0)
		}(), ErrCorrupt, nil},
		{"out-of-range mode", modeCase(t, true), nil, ErrCorrupt},
		{"chained", fixture(t, "chained.ogg"), ErrChained, nil},
	}
}

func TestCorruptInput(t *testing.T) {
	for _, c := range corruptCases(t) {
		t.Run(c.name, func(t *testing.T) {
			s, err := OpenVorbis(bytes.NewReader(c.data))
			if c.openErr != nil {
				if !errors.Is(err, c.openErr) {
					t.Fatalf("Open error = %v, want %v", err, c.openErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			pcm, err := decodeAll(s, 1000)
			if c.readErr == nil {
				if err != nil {
					t.Fatalf("decode: %v", err)
				}
				return
			}
			if !errors.Is(err, c.readErr) {
				t.Fatalf("decode error = %v, want %v", err, c.readErr)
			}
			// The error is sticky.
			if _, err2 := s.Read(make([]float32, 100)); err2 != err {
				t.Errorf("second Read error = %v, want %v", err2, err)
			}
			t.Logf("%d frames, then %v", len(pcm)/s.Channels(), err)
		})
	}
}

// TestTruncatedReturnsPrefix checks that a file cut anywhere in the audio
// decodes to a prefix of the full decode, as long as the granules say,
// followed by ErrTruncated.
func TestTruncatedReturnsPrefix(t *testing.T) {
	data := fixture(t, "stereo.ogg")
	_, full := openDecode(t, data, 4096)
	pages := splitPages(t, data)
	start := len(joinPages(pages[:3]))
	for cut := start + 1; cut < len(data); cut += 997 {
		s, err := OpenVorbis(bytes.NewReader(data[:cut]))
		if err != nil {
			t.Fatalf("cut %d: Open: %v", cut, err)
		}
		got, err := decodeAll(s, 1000)
		if !errors.Is(err, ErrTruncated) || !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("cut %d: error %v, want ErrTruncated", cut, err)
		}
		if !slices.Equal(got, full[:len(got)]) {
			t.Fatalf("cut %d: output is not a prefix of the full decode", cut)
		}
		if int64(len(got)/2) != s.Len() {
			t.Fatalf("cut %d: decoded %d frames, Len() = %d", cut, len(got)/2, s.Len())
		}
	}
}

// TestZeroSegmentPages: RFC 3533 allows pages without segments. One in
// the middle of the stream, or an empty EOS page, must not change the
// decode (oggvorbis v1.0.5 panics on them).
func TestZeroSegmentPages(t *testing.T) {
	data := fixture(t, "stereo.ogg")
	_, want := openDecode(t, data, 4096)
	pages := splitPages(t, data)
	for _, tc := range []struct {
		name string
		at   int
		page rawPage
	}{
		{"middle", 4, rawPage{granule: -1}},
		{"empty EOS", len(pages), rawPage{flags: flagEOS, granule: pages[len(pages)-1].granule}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps := slices.Clone(pages)
			tc.page.serial = ps[0].serial
			if tc.at == len(ps) {
				ps[len(ps)-1].flags &^= flagEOS
			}
			// Insert at a packet boundary, keeping continuation flags right.
			if tc.at < len(ps) && ps[tc.at].flags&flagContinued != 0 {
				tc.page.flags |= flagContinued
			}
			ps = slices.Insert(ps, tc.at, tc.page)
			for i := range ps {
				ps[i].seq = uint32(i)
			}
			s, got := openDecode(t, joinPages(ps), 1000)
			if !slices.Equal(got, want) {
				t.Fatalf("decode differs: %d vs %d samples", len(got), len(want))
			}
			if s.Len() != int64(len(want)/2) {
				t.Errorf("Len() = %d, want %d", s.Len(), len(want)/2)
			}
			for _, f := range []int64{0, s.Len() / 2, s.Len() - 10} {
				if err := s.SeekFrame(f); err != nil {
					t.Fatal(err)
				}
				buf := make([]float32, 20)
				if n, err := s.Read(buf); err != nil || !slices.Equal(buf[:n], want[2*f:2*f+int64(n)]) {
					t.Fatalf("after SeekFrame(%d): %v", f, err)
				}
			}
		})
	}
	// The same input makes oggvorbis v1.0.5 panic.
	ps := slices.Insert(slices.Clone(pages), 4, rawPage{granule: -1, serial: pages[0].serial})
	for i := range ps {
		ps[i].seq = uint32(i)
	}
	panicked := func() (p bool) {
		defer func() { p = recover() != nil }()
		r, err := oggvorbis.NewReader(bytes.NewReader(joinPages(ps)))
		if err != nil {
			return false
		}
		io.Copy(io.Discard, floatReader{r})
		return false
	}()
	t.Logf("oggvorbis v1.0.5 panics on a zero-segment page: %v", panicked)
}

type floatReader struct{ r *oggvorbis.Reader }

func (f floatReader) Read(p []byte) (int, error) {
	buf := make([]float32, max(len(p)/4, 1))
	n, err := f.r.Read(buf)
	return min(n*4, len(p)), err
}

// TestOutOfRangeModePanicsInLibrary proves the out-of-range-mode case is
// real: jfreymuth/vorbis, driven directly, panics on it.
func TestOutOfRangeModePanicsInLibrary(t *testing.T) {
	headers, audio, _ := modePackets(t, true)
	var d vorbis.Decoder
	for _, h := range [][]byte{headers[0], headers[1], headers[2]} {
		if err := d.ReadHeader(h); err != nil {
			t.Fatal(err)
		}
	}
	panicked := false
	func() {
		defer func() { panicked = recover() != nil }()
		for _, p := range audio {
			d.Decode(p.data)
		}
	}()
	if !panicked {
		t.Fatal("expected jfreymuth/vorbis to panic on an out-of-range mode")
	}
	// Our decoder returns the audio before the bad packet, then an error.
	s, err := OpenVorbis(bytes.NewReader(modeCase(t, true)))
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeAll(s, 1000)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("error %v, want ErrCorrupt", err)
	}
	_, want := openDecode(t, fixture(t, "stereo.ogg"), 4096)
	if len(got) == 0 || !slices.Equal(got, want[:len(got)]) {
		t.Fatalf("output before the bad packet (%d samples) is not a prefix of the clean decode", len(got))
	}
}

// minimalSetup builds a small valid setup header; opts tweak single fields
// to make it invalid.
type setupOpts struct {
	entries   uint32
	dims      uint32
	ordered   bool
	sparseAll bool    // sparse codebook with no used entry
	lengths   []uint8 // codeword lengths (unordered)
	modeMap   uint32
	xDup      bool
}

func minimalSetup(o setupOpts) []byte {
	w := &bitWriter{}
	for _, c := range []byte("\x05vorbis") {
		w.write(uint32(c), 8)
	}
	w.write(0, 8) // 1 codebook
	w.write(0x564342, 24)
	w.write(o.dims, 16)
	w.write(o.entries, 24)
	switch {
	case o.ordered:
		w.write(1, 1)
		w.write(0, 5) // length 1
		w.write(o.entries, ilog(int(o.entries)))
		w.write(0, 32) // stop: lengths exhausted (decoder must reject)
	case o.sparseAll:
		w.write(0, 1)
		w.write(1, 1)
		for range o.entries {
			w.write(0, 1)
		}
	default:
		w.write(0, 1)
		w.write(0, 1)
		for _, l := range o.lengths {
			w.write(uint32(l-1), 5)
		}
	}
	w.write(0, 4) // no lookup
	w.write(0, 6) // 1 time transform
	w.write(0, 16)
	w.write(0, 6) // 1 floor
	w.write(1, 16)
	if o.xDup {
		w.write(1, 5) // 1 partition
		w.write(0, 4) // class 0
		w.write(1, 3) // class dims 2
		w.write(0, 2) // no subclasses
		w.write(0, 8) // subclass book: none
	} else {
		w.write(0, 5) // no partitions
	}
	w.write(0, 2) // multiplier
	w.write(4, 4) // range bits
	if o.xDup {
		w.write(5, 4)
		w.write(5, 4)
	}
	w.write(0, 6) // 1 residue
	w.write(0, 16)
	w.write(0, 24)
	w.write(0, 24)
	w.write(31, 24)
	w.write(0, 6) // 1 classification
	w.write(0, 8) // classbook 0
	w.write(0, 3)
	w.write(0, 1)
	w.write(0, 6) // 1 mapping
	w.write(0, 16)
	w.write(0, 1)
	w.write(0, 1)
	w.write(0, 2)
	w.write(0, 8)
	w.write(0, 8)
	w.write(0, 8)
	w.write(0, 6) // 1 mode
	w.write(0, 1)
	w.write(0, 16)
	w.write(0, 16)
	w.write(o.modeMap, 8)
	w.write(1, 1) // framing
	return w.buf
}

func TestSetupValidation(t *testing.T) {
	valid := setupOpts{entries: 2, dims: 1, lengths: []uint8{1, 1}}
	if _, err := parseSetup(minimalSetup(valid), 1); err != nil {
		t.Fatalf("valid setup rejected: %v", err)
	}
	for _, tc := range []struct {
		name string
		o    setupOpts
	}{
		{"zero entries", setupOpts{entries: 0, dims: 1}},
		{"zero dimensions", setupOpts{entries: 2, dims: 0, lengths: []uint8{1, 1}}},
		{"huge ordered codebook", setupOpts{entries: 1<<24 - 1, dims: 1, ordered: true}},
		{"no used entries", setupOpts{entries: 4, dims: 1, sparseAll: true}},
		{"single entry", setupOpts{entries: 1, dims: 1, lengths: []uint8{1}}},
		{"underspecified tree", setupOpts{entries: 2, dims: 1, lengths: []uint8{1, 2}}},
		{"overspecified tree", setupOpts{entries: 3, dims: 1, lengths: []uint8{1, 1, 1}}},
		{"mode maps to missing mapping", setupOpts{entries: 2, dims: 1, lengths: []uint8{1, 1}, modeMap: 1}},
		{"duplicate floor1 X", setupOpts{entries: 2, dims: 1, lengths: []uint8{1, 1}, xDup: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseSetup(minimalSetup(tc.o), 1)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("parseSetup = %v, want ErrCorrupt", err)
			}
		})
	}
	// Cut at every length: always an error, never a panic.
	full := minimalSetup(valid)
	for n := range len(full) {
		if _, err := parseSetup(full[:n], 1); err == nil {
			t.Fatalf("setup cut to %d bytes accepted", n)
		}
	}
}

func TestCommentParsing(t *testing.T) {
	le := func(n int) string { return string([]byte{byte(n), byte(n >> 8), byte(n >> 16), byte(n >> 24)}) }
	hdr := "\x03vorbis" + le(3) + "abc" + le(3) + le(7) + "Title=x" + le(4) + "nokv" + le(7) + "title=y" + "\x01"
	vendor, tags, err := parseComments([]byte(hdr))
	if err != nil || vendor != "abc" || !slices.Equal(tags["TITLE"], []string{"x", "y"}) || len(tags) != 1 {
		t.Fatalf("got %q %v %v", vendor, tags, err)
	}
	for _, bad := range []string{
		"\x03vorbis" + le(100) + "abc",
		"\x03vorbis" + le(0) + le(1<<30),
		"\x03vorbis" + le(0) + le(1) + le(5) + "ab",
		"\x03vorbis",
	} {
		if _, _, err := parseComments([]byte(bad)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("parseComments(%q) = %v, want ErrCorrupt", bad, err)
		}
	}
}

func TestLookup1Values(t *testing.T) {
	for _, tc := range []struct{ entries, dims, want int }{
		{81, 4, 3}, {80, 4, 2}, {1, 1, 1}, {625, 4, 5}, {624, 4, 4}, {1 << 24, 1, 1 << 24}, {100, 200, 1},
	} {
		if got := lookup1Values(tc.entries, tc.dims); got != tc.want {
			t.Errorf("lookup1Values(%d, %d) = %d, want %d", tc.entries, tc.dims, got, tc.want)
		}
	}
}

// TestReadAllocations checks that, once buffers have grown, a full decode
// through Stream allocates exactly what the vorbis library allocates when
// it is fed the same packets directly: the Ogg layer, trimming and copying
// allocate nothing.
func TestReadAllocations(t *testing.T) {
	data := fixture(t, "stereo.ogg")
	s, err := OpenVorbis(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]float32, 2048)
	drain := func() {
		for {
			if _, err := s.Read(buf); err != nil {
				return
			}
		}
	}
	drain() // grow buffers
	ours := testing.AllocsPerRun(5, func() {
		if err := s.SeekFrame(0); err != nil {
			t.Fatal(err)
		}
		drain()
	})
	seekOnly := testing.AllocsPerRun(5, func() {
		if err := s.SeekFrame(0); err != nil {
			t.Fatal(err)
		}
	})

	headers, audio, _ := packetsOf(t, data)
	var d vorbis.Decoder
	for _, h := range []int{0, 2} {
		if err := d.ReadHeader(headers[h]); err != nil {
			t.Fatal(err)
		}
	}
	out := make([]float32, d.BufferSize())
	lib := testing.AllocsPerRun(5, func() {
		d.Clear()
		for _, p := range audio {
			if _, err := d.DecodeInto(p.data, out); err != nil {
				t.Fatal(err)
			}
		}
	})
	t.Logf("full decode: Stream %.0f allocs (of which SeekFrame(0) %.0f), library alone %.0f, %d packets", ours, seekOnly, lib, len(audio))
	if ours-seekOnly != lib {
		t.Errorf("Stream decode allocates %.0f, the vorbis library alone %.0f: the difference comes from this package", ours-seekOnly, lib)
	}
}

// TestPageReaderNoAllocs: reading pages and assembling packets allocates
// nothing once the packet buffers have grown.
func TestPageReaderNoAllocs(t *testing.T) {
	data := fixture(t, "stereo.ogg")
	r := bytes.NewReader(data)
	pr := newPageReader(r, 0)
	var asm assembler
	var list packetList
	var p page
	loop := func() {
		r.Seek(0, io.SeekStart)
		pr.reset(r, 0)
		asm = assembler{partial: asm.partial[:0]}
		for pr.next(&p) == nil {
			list.reset()
			if err := asm.add(&p, &list); err != nil {
				t.Fatal(err)
			}
		}
	}
	loop()
	if a := testing.AllocsPerRun(10, loop); a != 0 {
		t.Errorf("%.1f allocations per pass over the pages", a)
	}
}

// TestAgainstOggdec encodes odd-length signals with oggenc and compares the
// decode with libvorbis' oggdec (16-bit output: within 1 LSB, same length),
// including re-paginated and granule-shifted variants.
func TestAgainstOggdec(t *testing.T) {
	sox := testenv.Tool(t, "sox", "sox libsox-fmt-all")
	oggenc := testenv.Tool(t, "oggenc", "vorbis-tools")
	oggdec := testenv.Tool(t, "oggdec", "vorbis-tools")
	dir := t.TempDir()
	type src struct {
		name        string
		rate, chans int
		frames      int
		quality     string
		synth       []string
	}
	srcs := []src{
		{"stereo44", 44100, 2, 44100*3 + 17, "5", []string{"sine", "220", "sine", "331", "sine", "587", "pinknoise", "channels", "4", "remix", "1,2v0.5,4", "2,3,4v0.7", "norm", "-1"}},
		{"mono48", 48000, 1, 48000*2 + 1, "-1", []string{"sine", "1000", "brownnoise", "channels", "2", "remix", "1-2", "norm", "-2"}},
		{"stereo32-hot", 32000, 2, 32000 + 999, "9", []string{"square", "100", "square", "151", "norm", "0"}},
	}
	compare := func(t *testing.T, oggPath string) {
		wavPath := oggPath + ".raw"
		run(t, oggdec, "-Q", "-R", "-b", "16", "-e", "0", "-s", "1", "-o", wavPath, oggPath)
		raw, err := os.ReadFile(wavPath)
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(oggPath)
		if err != nil {
			t.Fatal(err)
		}
		s, pcm := openDecode(t, data, 4096)
		diffs, maxDiff := compareS16(t, pcm, s16le(raw))
		if maxDiff > 1 {
			t.Errorf("max difference %d LSB from oggdec", maxDiff)
		}
		if s.Len() != int64(len(pcm)/s.Channels()) {
			t.Errorf("Len() = %d, decoded %d frames", s.Len(), len(pcm)/s.Channels())
		}
		t.Logf("%s: %d frames, %d/%d samples differ by 1 LSB", filepath.Base(oggPath), len(pcm)/s.Channels(), diffs, len(pcm))
		// Seeking lands on the same samples as libvorbis' straight decode.
		ch := int64(s.Channels())
		ref := s16le(raw)
		rng := rand.New(rand.NewPCG(uint64(len(raw)), 9))
		buf := make([]float32, 500*ch)
		for range 20 {
			f := rng.Int64N(s.Len() - 500)
			if err := s.SeekFrame(f); err != nil {
				t.Fatal(err)
			}
			n, err := s.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			if _, maxDiff := compareS16(t, buf[:n], ref[f*ch:f*ch+int64(n)]); maxDiff > 1 {
				t.Fatalf("after SeekFrame(%d): max difference %d LSB from oggdec", f, maxDiff)
			}
		}
	}
	for _, c := range srcs {
		t.Run(c.name, func(t *testing.T) {
			wav := filepath.Join(dir, c.name+".wav")
			ogg := filepath.Join(dir, c.name+".ogg")
			args := append([]string{"-r", fmt.Sprint(c.rate), "-n", "-b", "16", "-c", fmt.Sprint(c.chans), wav,
				"synth", fmt.Sprintf("%ds", c.frames)}, c.synth...)
			run(t, sox, args...)
			run(t, oggenc, "-Q", "-q", c.quality, "-o", ogg, wav)
			data, err := os.ReadFile(ogg)
			if err != nil {
				t.Fatal(err)
			}
			if g := lastGranule(t, data); g != int64(c.frames) {
				t.Fatalf("oggenc wrote final granule %d for %d frames", g, c.frames)
			}
			compare(t, ogg)
			headers, audio, serial := packetsOf(t, data)
			for _, v := range []struct {
				name  string
				segs  int
				shift int64
			}{{"trim", 2, -100}, {"offset", 255, 5000}, {"tiny-pages", 2, 0}} {
				p := filepath.Join(dir, c.name+"-"+v.name+".ogg")
				if err := os.WriteFile(p, mux(serial, headers, audio, v.segs, v.shift), 0o644); err != nil {
					t.Fatal(err)
				}
				compare(t, p)
			}
		})
	}
}
