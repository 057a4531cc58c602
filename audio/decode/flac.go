package decode

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/mewkiz/flac/frame"
)

// FLAC limits. Metadata blocks are read by this package (bounded), audio
// frames by github.com/mewkiz/flac/frame.
const (
	// maxFLACMeta bounds the metadata kept from one file (comments and
	// pictures); blocks past it are skipped.
	maxFLACMeta = 32 << 20
	// maxFLACChannels and maxFLACBits are what the format allows.
	maxFLACChannels = 8
	maxFLACBits     = 32
)

// flacSeekScan is the window of bisection steps when a file has no
// SEEKTABLE. A variable only so tests can shrink it.
var flacSeekScan int64 = 64 << 10

// FLAC metadata block types (RFC 9639, 8.1).
const (
	flacStreamInfo    = 0
	flacSeekTable     = 3
	flacVorbisComment = 4
	flacPicture       = 6
)

// flacInfo is the STREAMINFO block.
type flacInfo struct {
	minBlock, maxBlock int
	rate, channels     int
	bits               int
	total              int64 // samples per channel; 0: unknown
}

type flacSeekPoint struct {
	sample int64
	offset int64 // from the first frame
}

// flacStream decodes a native FLAC stream bit-exactly: each integer
// sample s of b bits becomes s / 2^(b-1), which float32 represents
// exactly up to 24 bits (so a 16- or 24-bit file converted back gives
// its samples unchanged). Seeking uses the SEEKTABLE when there is one,
// else bisection over frame headers (their CRC-8 verified), then decodes
// forward from the frame before the target. Frame CRC-16s are verified.
type flacStream struct {
	rs     io.ReadSeeker // nil: forward only
	br     *bufio.Reader
	cr     countingReader // reads br, counts the input offset
	info   flacInfo
	tags   map[string][]string
	seek   []flacSeekPoint
	data   int64 // input offset of the first frame
	endOff int64 // input size (seekable)
	scale  float32

	next int64     // sample number of the next frame's first sample
	skip int64     // samples of the next decoded frames to drop (seek)
	out  []float32 // decoded samples not yet returned
	buf  []float32
	pos  int64
	err  error
	done bool // the stream's end was reached (err is io.EOF or an error)

	closed bool
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r   io.Reader
	off int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.off += int64(n)
	return n, err
}

// openFLAC reads the metadata of the FLAC stream at r's position (after
// skip bytes of an ID3v2 tag). rs is r when it can seek, else nil.
func openFLAC(r io.Reader, rs io.ReadSeeker, skip int64) (d Decoder, err error) {
	defer recovered(&err, "flac")
	s := &flacStream{rs: rs, endOff: -1}
	var base int64
	if rs != nil {
		if base, err = rs.Seek(0, io.SeekCurrent); err != nil {
			return nil, err
		}
		if s.endOff, err = rs.Seek(0, io.SeekEnd); err != nil {
			return nil, err
		}
		if _, err = rs.Seek(base, io.SeekStart); err != nil {
			return nil, err
		}
	}
	s.br = bufio.NewReaderSize(r, readBufferSize)
	s.cr = countingReader{r: s.br, off: base}
	if skip > 0 {
		if _, err := io.CopyN(io.Discard, &s.cr, skip); err != nil {
			return nil, truncatedf(s.cr.off, "input ends inside the ID3v2 tag")
		}
	}
	if err := s.readMetadata(); err != nil {
		return nil, err
	}
	s.data = s.cr.off
	s.scale = 1 / float32(int64(1)<<(s.info.bits-1))
	return s, nil
}

// readMetadata reads the signature and the metadata blocks.
func (s *flacStream) readMetadata() error {
	var sig [4]byte
	if _, err := io.ReadFull(&s.cr, sig[:]); err != nil || string(sig[:]) != "fLaC" {
		return fmt.Errorf("%w: no fLaC signature", ErrUnknownFormat)
	}
	s.tags = map[string][]string{}
	kept := 0
	for i := 0; ; i++ {
		var h [4]byte
		if _, err := io.ReadFull(&s.cr, h[:]); err != nil {
			return truncatedf(s.cr.off, "input ends inside the FLAC metadata")
		}
		last, typ := h[0]&0x80 != 0, h[0]&0x7f
		n := int(h[1])<<16 | int(h[2])<<8 | int(h[3])
		if i == 0 && typ != flacStreamInfo {
			return corruptf(s.cr.off-4, "FLAC metadata does not start with STREAMINFO")
		}
		if typ == 127 {
			return corruptf(s.cr.off-4, "invalid FLAC metadata block type")
		}
		want := typ == flacStreamInfo || typ == flacSeekTable || typ == flacVorbisComment || typ == flacPicture
		if want && typ != flacStreamInfo && kept+n > maxFLACMeta {
			want = false // beyond what we keep: skipped
		}
		if !want {
			if _, err := io.CopyN(io.Discard, &s.cr, int64(n)); err != nil {
				return truncatedf(s.cr.off, "input ends inside a FLAC metadata block")
			}
		} else {
			b := make([]byte, n)
			if _, err := io.ReadFull(&s.cr, b); err != nil {
				return truncatedf(s.cr.off, "input ends inside a FLAC metadata block")
			}
			kept += n
			if err := s.metadataBlock(typ, b, i); err != nil {
				return err
			}
		}
		if last {
			return nil
		}
	}
}

func (s *flacStream) metadataBlock(typ byte, b []byte, i int) error {
	switch typ {
	case flacStreamInfo:
		if i != 0 {
			return corruptf(s.cr.off, "second STREAMINFO block")
		}
		return s.parseStreamInfo(b)
	case flacSeekTable:
		s.parseSeekTable(b)
	case flacVorbisComment:
		_, tags, err := parseCommentBody(b)
		if err != nil {
			return nil // bad tags do not stop playback
		}
		for k, v := range tags {
			s.tags[k] = append(s.tags[k], v...)
		}
	case flacPicture:
		s.tags["METADATA_BLOCK_PICTURE"] = append(s.tags["METADATA_BLOCK_PICTURE"], base64.StdEncoding.EncodeToString(b))
	}
	return nil
}

func (s *flacStream) parseStreamInfo(b []byte) error {
	if len(b) < 34 {
		return corruptf(s.cr.off, "STREAMINFO of %d bytes", len(b))
	}
	be := binary.BigEndian
	v := be.Uint64(b[10:18])
	in := flacInfo{
		minBlock: int(be.Uint16(b[0:2])),
		maxBlock: int(be.Uint16(b[2:4])),
		rate:     int(v >> 44),
		channels: int(v>>41&7) + 1,
		bits:     int(v>>36&31) + 1,
		total:    int64(v & (1<<36 - 1)),
	}
	switch {
	case in.rate == 0 || in.rate > 1<<20:
		return corruptf(s.cr.off, "FLAC sample rate %d", in.rate)
	case in.bits < 4:
		return corruptf(s.cr.off, "FLAC with %d bits per sample", in.bits)
	case in.maxBlock < 16 || in.minBlock > in.maxBlock:
		return corruptf(s.cr.off, "FLAC block sizes %d..%d", in.minBlock, in.maxBlock)
	}
	s.info = in
	return nil
}

func (s *flacStream) parseSeekTable(b []byte) {
	be := binary.BigEndian
	for ; len(b) >= 18; b = b[18:] {
		smp := be.Uint64(b)
		if smp == 1<<64-1 {
			continue // placeholder
		}
		off := be.Uint64(b[8:])
		if smp >= 1<<40 || off >= 1<<50 {
			continue
		}
		p := flacSeekPoint{sample: int64(smp), offset: int64(off)}
		if n := len(s.seek); n > 0 && (p.sample <= s.seek[n-1].sample || p.offset < s.seek[n-1].offset) {
			continue // must be ascending
		}
		s.seek = append(s.seek, p)
	}
}

func (s *flacStream) Codec() string   { return "flac" }
func (s *flacStream) SampleRate() int { return s.info.rate }
func (s *flacStream) Channels() int   { return s.info.channels }
func (s *flacStream) BitDepth() int   { return s.info.bits }
func (s *flacStream) Position() int64 { return s.pos }

func (s *flacStream) Len() int64 {
	if s.info.total == 0 {
		return -1
	}
	return s.info.total
}

func (s *flacStream) Tags() map[string][]string { return cloneTags(s.tags) }

func (s *flacStream) Close() error {
	if s.closed {
		return ErrClosed
	}
	s.closed, s.err = true, ErrClosed
	s.out, s.buf, s.tags = nil, nil, nil
	return nil
}

func (s *flacStream) Read(dst []float32) (int, error) {
	if s.closed {
		return 0, ErrClosed
	}
	ch := s.info.channels
	if len(dst) < ch {
		return 0, io.ErrShortBuffer
	}
	dst = dst[:len(dst)/ch*ch]
	n := 0
	for n < len(dst) {
		if len(s.out) > 0 {
			c := copy(dst[n:], s.out)
			s.out = s.out[c:]
			n += c
			continue
		}
		if s.err != nil {
			break
		}
		s.err = s.decodeFrame()
	}
	s.pos += int64(n / ch)
	if n > 0 {
		return n, nil
	}
	return 0, s.err
}

// decodeFrame decodes the next frame into s.out, dropping s.skip samples
// and anything past the STREAMINFO length.
func (s *flacStream) decodeFrame() (err error) {
	defer recovered(&err, "flac")
	if s.info.total > 0 && s.next >= s.info.total {
		return io.EOF
	}
	at := s.cr.off
	f, err := frame.New(&s.cr)
	if err != nil {
		if err == io.EOF {
			if s.info.total > 0 {
				return truncatedf(at, "FLAC stream ends at sample %d of %d", s.next, s.info.total)
			}
			return io.EOF
		}
		return s.frameErr(at, err)
	}
	if err := s.checkHeader(f, at); err != nil {
		return err
	}
	if err := f.Parse(); err != nil {
		return s.frameErr(at, err)
	}
	bs := int(f.BlockSize)
	ch := s.info.channels
	if cap(s.buf) < bs*ch {
		s.buf = make([]float32, bs*ch)
	}
	buf := s.buf[:bs*ch]
	for c, sub := range f.Subframes {
		if len(sub.Samples) < bs {
			return corruptf(at, "FLAC subframe of %d samples in a block of %d", len(sub.Samples), bs)
		}
		for i, v := range sub.Samples[:bs] {
			buf[i*ch+c] = float32(v) * s.scale
		}
	}
	first := s.next
	s.next += int64(bs)
	lo, hi := int64(0), int64(bs)
	if s.skip > 0 {
		lo = min(s.skip, hi)
		s.skip -= lo
	}
	if s.info.total > 0 && first+hi > s.info.total {
		hi = max(s.info.total-first, lo)
	}
	s.out = buf[lo*int64(ch) : hi*int64(ch)]
	return nil
}

// checkHeader fills in header fields taken from STREAMINFO and refuses a
// frame that does not match it.
func (s *flacStream) checkHeader(f *frame.Frame, at int64) error {
	if f.BitsPerSample == 0 {
		f.BitsPerSample = uint8(s.info.bits)
	}
	if f.SampleRate == 0 {
		f.SampleRate = uint32(s.info.rate)
	}
	switch {
	case f.Channels.Count() != s.info.channels:
		return corruptf(at, "FLAC frame has %d channels, stream %d", f.Channels.Count(), s.info.channels)
	case int(f.BitsPerSample) != s.info.bits:
		return corruptf(at, "FLAC frame has %d bits per sample, stream %d", f.BitsPerSample, s.info.bits)
	case int(f.SampleRate) != s.info.rate:
		return corruptf(at, "FLAC frame at %d Hz, stream %d Hz", f.SampleRate, s.info.rate)
	case int(f.BlockSize) > s.info.maxBlock || f.BlockSize == 0:
		return corruptf(at, "FLAC frame of %d samples, stream allows %d", f.BlockSize, s.info.maxBlock)
	}
	return nil
}

func (s *flacStream) frameErr(at int64, err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return truncatedf(at, "input ends inside a FLAC frame")
	}
	return corruptf(at, "FLAC frame: %v", err)
}

// SeekFrame positions the stream at frame (0 <= frame <= Len()).
func (s *flacStream) SeekFrame(target int64) (err error) {
	defer recovered(&err, "flac")
	if s.closed {
		return ErrClosed
	}
	if s.rs == nil {
		return ErrNotSeekable
	}
	n := s.Len()
	if target < 0 || (n >= 0 && target > n) || (n < 0 && target > 0) {
		return fmt.Errorf("%w: frame %d, stream has %d", ErrOutOfRange, target, max(n, 0))
	}
	s.out, s.err = nil, nil
	if n >= 0 && target == n {
		s.next, s.skip, s.pos, s.err = n, 0, n, io.EOF
		return nil
	}
	off, smp := s.data, int64(0)
	if p, ok := s.seekPoint(target); ok {
		off, smp = p.offset+s.data, p.sample
	} else if o, sm, ok, err := s.bisect(target); err != nil {
		return err
	} else if ok {
		off, smp = o, sm
	}
	if err := s.startAt(off, smp, target); err != nil {
		// A bad seek point or a false frame sync: decode from the start.
		if err := s.startAt(s.data, 0, target); err != nil {
			s.err = err
			return err
		}
	}
	s.pos = target
	return nil
}

// startAt repositions decoding at input offset off, whose frame starts at
// sample smp, and decodes up to the frame holding target.
func (s *flacStream) startAt(off, smp, target int64) error {
	if _, err := s.rs.Seek(off, io.SeekStart); err != nil {
		return err
	}
	s.br.Reset(s.rs)
	s.cr.off = off
	s.next, s.skip, s.out = smp, 0, nil
	for {
		at := s.cr.off
		f, err := frame.New(&s.cr)
		if err != nil {
			return s.frameErr(at, err)
		}
		if err := s.checkHeader(f, at); err != nil {
			return err
		}
		start := s.frameSample(f)
		if start != s.next {
			return corruptf(at, "FLAC frame at sample %d, expected %d", start, s.next)
		}
		if target < start+int64(f.BlockSize) {
			// Decode this frame again through the normal path.
			if _, err := s.rs.Seek(at, io.SeekStart); err != nil {
				return err
			}
			s.br.Reset(s.rs)
			s.cr.off = at
			s.skip = target - start
			return nil
		}
		if err := f.Parse(); err != nil {
			return s.frameErr(at, err)
		}
		s.next += int64(f.BlockSize)
	}
}

// frameSample is the number of a frame's first sample.
func (s *flacStream) frameSample(f *frame.Frame) int64 {
	if f.HasFixedBlockSize {
		return int64(f.Num) * int64(s.info.maxBlock)
	}
	return int64(f.Num)
}

// seekPoint returns the last SEEKTABLE point at or before target.
func (s *flacStream) seekPoint(target int64) (flacSeekPoint, bool) {
	var best flacSeekPoint
	ok := false
	for _, p := range s.seek {
		if p.sample > target || (s.endOff >= 0 && p.offset+s.data >= s.endOff) {
			break
		}
		best, ok = p, true
	}
	return best, ok
}

// bisect finds a frame at or before target by bisection over the input:
// it returns the offset and first sample of the latest frame found whose
// first sample is <= target.
func (s *flacStream) bisect(target int64) (off, smp int64, ok bool, err error) {
	lo, hi := s.data, s.endOff
	off, smp = s.data, 0
	buf := make([]byte, flacSeekScan+4096)
	for hi-lo > flacSeekScan {
		mid := lo + (hi-lo)/2
		fo, fs, found, err := s.findFrame(mid, hi, buf)
		if err != nil {
			return 0, 0, false, err
		}
		if !found || fs > target {
			hi = mid
			continue
		}
		lo, off, smp, ok = fo, fo, fs, true
	}
	return off, smp, ok, nil
}

// findFrame returns the first valid frame header at or after from (and
// before limit): its offset and first sample.
func (s *flacStream) findFrame(from, limit int64, buf []byte) (off, smp int64, ok bool, err error) {
	if _, err := s.rs.Seek(from, io.SeekStart); err != nil {
		return 0, 0, false, err
	}
	n, err := io.ReadFull(s.rs, buf[:min(int64(len(buf)), limit-from)])
	if err != nil && err != io.ErrUnexpectedEOF {
		return 0, 0, false, err
	}
	b := buf[:n]
	for i := 0; i+16 <= len(b); i++ {
		if b[i] != 0xff || b[i+1]&0xfe != 0xf8 {
			continue
		}
		f, err := frame.New(bytes.NewReader(b[i:]))
		if err != nil || s.checkHeader(f, 0) != nil {
			continue
		}
		return from + int64(i), s.frameSample(f), true, nil
	}
	return 0, 0, false, nil
}

// cloneTags deep-copies a tag map.
func cloneTags(t map[string][]string) map[string][]string {
	m := make(map[string][]string, len(t))
	for k, v := range t {
		m[k] = append([]string(nil), v...)
	}
	return m
}
