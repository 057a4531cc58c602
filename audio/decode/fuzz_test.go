package decode

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// addSeeds adds the fixtures, variants and corrupt files to a fuzz corpus.
func addSeeds(f *testing.F) {
	for _, name := range append(slices.Clone(allFixtures), "chained.ogg") {
		f.Add(fixture(f, name))
	}
	for _, data := range seekCases(f) {
		f.Add(data)
	}
	for _, c := range corruptCases(f) {
		f.Add(c.data)
	}
}

// FuzzOggPages exercises the page reader and packet assembler on arbitrary
// input (no panic, bounded packets), and checks on a round trip that
// packets survive any pagination: the input is cut into packets that are
// written with our test muxer and must be read back unchanged.
func FuzzOggPages(f *testing.F) {
	addSeeds(f)
	f.Add([]byte("OggS\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		// Arbitrary input.
		pr := newPageReader(bytes.NewReader(data), 0)
		var asm assembler
		var list packetList
		var p page
		var serial uint32
		for n := 0; ; n++ {
			err := pr.next(&p)
			if err != nil {
				if err != io.EOF && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTruncated) {
					t.Fatalf("unexpected error type: %v", err)
				}
				break
			}
			if n == 0 {
				serial = p.serial
			}
			if p.serial != serial {
				continue
			}
			list.reset()
			if err := asm.add(&p, &list); err != nil {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("unexpected error type: %v", err)
				}
				break
			}
			for i := range list.len() {
				if len(list.packet(i)) > maxPacketSize {
					t.Fatalf("packet of %d bytes", len(list.packet(i)))
				}
			}
		}

		// Round trip: first byte picks the page size, then each of the
		// next (up to 511) bytes gives a packet length (0..765 bytes).
		if len(data) < 2 {
			return
		}
		maxSegs := int(data[0])%255 + 1
		var packets [][]byte
		rest := data[1:min(len(data), 512)]
		for i := 0; i < len(rest); i++ {
			n := int(rest[i]) * 3
			packets = append(packets, bytes.Repeat([]byte{byte(i)}, n))
		}
		var out []byte
		var cur rawPage
		seq := uint32(0)
		flush := func() {
			cur.serial, cur.seq = 7, seq
			seq++
			out = append(out, cur.bytes()...)
			cur = rawPage{granule: -1}
		}
		cur.granule = -1
		for i, pk := range packets {
			cont := false
			for {
				if len(cur.segs) >= maxSegs {
					flush()
					if cont {
						cur.flags = flagContinued
					}
				}
				n := min(len(pk), 255)
				cur.segs = append(cur.segs, byte(n))
				cur.body = append(cur.body, pk[:n]...)
				pk = pk[n:]
				if n < 255 {
					cur.granule = int64(i)
					break
				}
				cont = true
			}
		}
		flush()

		pr = newPageReader(bytes.NewReader(out), 0)
		asm = assembler{}
		var got [][]byte
		for {
			err := pr.next(&p)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("round trip: %v", err)
			}
			list.reset()
			if err := asm.add(&p, &list); err != nil {
				t.Fatalf("round trip: %v", err)
			}
			if list.len() > 0 && p.granule != int64(len(got)+list.len()-1) {
				t.Fatalf("page granule %d, want %d", p.granule, len(got)+list.len()-1)
			}
			if list.len() == 0 && p.granule != -1 {
				t.Fatalf("page without finished packet has granule %d", p.granule)
			}
			for i := range list.len() {
				got = append(got, bytes.Clone(list.packet(i)))
			}
		}
		if !slices.EqualFunc(got, packets, bytes.Equal) {
			t.Fatalf("round trip: got %d packets, want %d (or contents differ)", len(got), len(packets))
		}
	})
}

// fuzzSampleBudget bounds the decoding work per fuzz input: tiny crafted
// packets can each expand to thousands of frames.
const fuzzSampleBudget = 1 << 17

// FuzzDecode runs the whole Open + Read + SeekFrame path (and NewReader)
// on arbitrary input: it must never panic or hang, errors must wrap the
// package's sentinels, and the frame accounting must be consistent.
func FuzzDecode(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		hang := time.AfterFunc(20*time.Second, func() {
			os.WriteFile(filepath.Join(os.TempDir(), "decode-fuzz-hang.bin"), data, 0o644)
			panic("FuzzDecode: input takes more than 20 s")
		})
		defer hang.Stop()
		checkErr := func(err error) {
			if err == nil || err == io.EOF {
				return
			}
			for _, want := range []error{ErrNotVorbis, ErrCorrupt, ErrTruncated, ErrChained} {
				if errors.Is(err, want) {
					return
				}
			}
			t.Fatalf("error wraps no sentinel: %v", err)
		}
		s, err := OpenVorbis(bytes.NewReader(data))
		checkErr(err)
		if err != nil {
			return
		}
		if s.Channels() < 1 || s.SampleRate() < 1 {
			t.Fatalf("channels %d, rate %d", s.Channels(), s.SampleRate())
		}
		buf := make([]float32, 1000*s.Channels())
		total := 0
		for total < fuzzSampleBudget {
			n, err := s.Read(buf)
			total += n
			if n%s.Channels() != 0 {
				t.Fatalf("Read returned %d samples for %d channels", n, s.Channels())
			}
			if err != nil {
				checkErr(err)
				break
			}
		}
		frames := int64(total / s.Channels())
		if s.Position() != frames {
			t.Fatalf("Position() = %d after %d frames", s.Position(), frames)
		}
		if total < fuzzSampleBudget && s.Len() >= 0 && frames > s.Len() {
			t.Fatalf("decoded %d frames, Len() = %d", frames, s.Len())
		}
		if n := s.Len(); n > 0 {
			for _, f := range []int64{n / 2, n - 1, 0, n} {
				err := s.SeekFrame(f)
				checkErr(err)
				if err != nil {
					continue
				}
				if s.Position() != f {
					t.Fatalf("Position() = %d after SeekFrame(%d)", s.Position(), f)
				}
				_, err = s.Read(buf)
				checkErr(err)
			}
		}

		r, err := NewVorbisReader(bytes.NewReader(data))
		checkErr(err)
		if err != nil {
			return
		}
		total = 0
		for total < fuzzSampleBudget {
			n, err := r.Read(buf[:len(buf)/r.Channels()*r.Channels()])
			total += n
			if err != nil {
				checkErr(err)
				break
			}
		}
	})
}
