package decode

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

// fixture returns the bytes of testdata/name.
func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// run runs a command and fails the test with its output on error.
func run(t testing.TB, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

// decodeAll decodes a whole stream with Read calls of chunk frames and
// returns the samples and the error that ended decoding (nil for io.EOF).
func decodeAll(s *Stream, chunk int) ([]float32, error) {
	buf := make([]float32, chunk*s.Channels())
	var all []float32
	for {
		n, err := s.Read(buf)
		all = append(all, buf[:n]...)
		if err == io.EOF {
			return all, nil
		}
		if err != nil {
			return all, err
		}
		if n == 0 {
			return all, errors.New("Read returned 0, nil")
		}
	}
}

// openDecode opens data and decodes it completely.
func openDecode(t testing.TB, data []byte, chunk int) (*Stream, []float32) {
	t.Helper()
	s, err := OpenVorbis(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	pcm, err := decodeAll(s, chunk)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return s, pcm
}

// toS16 converts like libvorbisfile's ov_read: round to nearest, clamp.
func toS16(f float32) int16 {
	v := math.RoundToEven(float64(f) * 32768)
	return int16(max(-32768, min(32767, v)))
}

// compareS16 compares decoded floats against a 16-bit reference and
// returns the number of samples that differ and the largest difference.
func compareS16(t testing.TB, got []float32, ref []int16) (diffs, maxDiff int) {
	t.Helper()
	if len(got) != len(ref) {
		t.Fatalf("length: got %d samples, reference has %d", len(got), len(ref))
	}
	for i := range got {
		d := int(toS16(got[i])) - int(ref[i])
		if d < 0 {
			d = -d
		}
		if d != 0 {
			diffs++
		}
		maxDiff = max(maxDiff, d)
	}
	return diffs, maxDiff
}

func s16le(b []byte) []int16 {
	out := make([]int16, len(b)/2)
	for i := range out {
		out[i] = int16(binary.LittleEndian.Uint16(b[2*i:]))
	}
	return out
}

// rawPage is a parsed page that tests can modify and re-serialise.
type rawPage struct {
	flags   byte
	granule int64
	serial  uint32
	seq     uint32
	segs    []byte
	body    []byte
}

// splitPages parses every page of a well-formed Ogg file.
func splitPages(t testing.TB, data []byte) []rawPage {
	t.Helper()
	var pages []rawPage
	for off := 0; off < len(data); {
		var p page
		if err := parsePage(data[off:], int64(off), &p); err != nil {
			t.Fatalf("splitPages at %d: %v", off, err)
		}
		pages = append(pages, rawPage{p.flags, p.granule, p.serial, p.seq,
			bytes.Clone(p.segs), bytes.Clone(p.body)})
		off += p.size
	}
	return pages
}

// bytes serialises the page with a correct CRC.
func (p rawPage) bytes() []byte {
	b := make([]byte, pageHeaderSize, pageHeaderSize+len(p.segs)+len(p.body))
	copy(b, capturePattern[:])
	b[5] = p.flags
	binary.LittleEndian.PutUint64(b[6:], uint64(p.granule))
	binary.LittleEndian.PutUint32(b[14:], p.serial)
	binary.LittleEndian.PutUint32(b[18:], p.seq)
	b[26] = byte(len(p.segs))
	b = append(b, p.segs...)
	b = append(b, p.body...)
	binary.LittleEndian.PutUint32(b[22:], pageCRC(b))
	return b
}

func joinPages(pages []rawPage) []byte {
	var out []byte
	for _, p := range pages {
		out = append(out, p.bytes()...)
	}
	return out
}

// oggPacket is a packet with the granule position after it (-1 if the
// packet is not the last one finishing on its page in the source).
type oggPacket struct {
	data    []byte
	granule int64
}

// packetsOf extracts the packets of a single-stream Ogg Vorbis file and
// assigns every audio packet its exact granule position, computed
// backwards from the page granules with the packets' block sizes.
func packetsOf(t testing.TB, data []byte) (headers [3][]byte, audio []oggPacket, serial uint32) {
	t.Helper()
	var asm assembler
	var list packetList
	var all []oggPacket
	for _, rp := range splitPages(t, data) {
		serial = rp.serial
		b := rp.bytes()
		var p page
		if err := parsePage(b, 0, &p); err != nil {
			t.Fatal(err)
		}
		list.reset()
		if err := asm.add(&p, &list); err != nil {
			t.Fatal(err)
		}
		for i := range list.len() {
			g := int64(-1)
			if i == list.len()-1 {
				g = p.granule
			}
			all = append(all, oggPacket{bytes.Clone(list.packet(i)), g})
		}
	}
	if len(all) < 3 {
		t.Fatal("fewer than 3 packets")
	}
	id, err := parseIdent(all[0].data)
	if err != nil {
		t.Fatal(err)
	}
	setup, err := parseSetup(all[2].data, id.channels)
	if err != nil {
		t.Fatal(err)
	}
	headers = [3][]byte{all[0].data, all[1].data, all[2].data}
	audio = all[3:]
	bs := func(p []byte) int64 {
		mode := int(p[0]>>1) & (1<<ilog(len(setup.modeLong)-1) - 1)
		if setup.modeLong[mode] {
			return int64(id.blocksize[1])
		}
		return int64(id.blocksize[0])
	}
	// Packets up to the last one on the first audio page: backwards from
	// that page's granule (which may imply a beginning-of-stream trim).
	// Later packets: forwards, except that the last packet on a page
	// takes the page's granule (the EOS page's one may cut the end).
	first := slices.IndexFunc(audio, func(p oggPacket) bool { return p.granule != -1 })
	for i := first; i > 0; i-- {
		audio[i-1].granule = audio[i].granule - (bs(audio[i-1].data)/4 + bs(audio[i].data)/4)
	}
	for i := first + 1; i < len(audio); i++ {
		if audio[i].granule == -1 {
			audio[i].granule = audio[i-1].granule + bs(audio[i-1].data)/4 + bs(audio[i].data)/4
		}
	}
	return headers, audio, serial
}

// mux writes a Vorbis logical stream with pages of at most maxSegs
// lacing values: the identification header alone on the BOS page, comment
// and setup headers flushed on their own page(s), then the audio packets
// packed greedily (continued across pages as needed). Every page gets the
// granule (plus granShift) of the last packet that finishes on it, -1 if
// none; the last page is flagged EOS.
func mux(serial uint32, headers [3][]byte, audio []oggPacket, maxSegs int, granShift int64) []byte {
	var out []byte
	seq := uint32(0)
	var cur rawPage
	curGran := int64(-1)
	flush := func(eos bool) {
		cur.serial, cur.seq, cur.granule = serial, seq, curGran
		if eos {
			cur.flags |= flagEOS
		}
		if seq == 0 {
			cur.flags |= flagBOS
		}
		out = append(out, cur.bytes()...)
		seq++
		cur = rawPage{}
		curGran = -1
	}
	add := func(p []byte, gran int64) {
		cont := false
		for {
			if len(cur.segs) >= maxSegs {
				flush(false)
				if cont {
					cur.flags = flagContinued
				}
			}
			n := min(len(p), 255)
			cur.segs = append(cur.segs, byte(n))
			cur.body = append(cur.body, p[:n]...)
			p = p[n:]
			if n < 255 {
				if gran != -1 {
					curGran = gran + granShift
				}
				return
			}
			cont = true
		}
	}
	add(headers[0], -1)
	curGran = 0
	flush(false)
	add(headers[1], -1)
	add(headers[2], -1)
	curGran = 0
	flush(false)
	for _, p := range audio {
		add(p.data, p.granule)
	}
	flush(true)
	return out
}
