package decode

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	mp3 "github.com/hajimehoshi/go-mp3"
)

// mp3DecoderDelay is the delay of the MPEG audio layer III synthesis
// filterbank in samples (528 + 1), which gapless players remove on top
// of the encoder delay the LAME tag states (as mpg123 and ffmpeg do).
const mp3DecoderDelay = 529

const (
	// mp3SyncSearch bounds the search for the first frame after the ID3v2
	// tag (some files have junk or padding there).
	mp3SyncSearch = 64 << 10
	// mp3Reservoir is the largest bit reservoir (main_data_begin is 9
	// bits): a frame's data can start this many bytes before it.
	mp3Reservoir = 511
)

// mpegHeader is a parsed MPEG audio frame header.
type mpegHeader struct {
	version  int // 1, 2 or 25 (MPEG 2.5)
	layer    int // 1..3
	bitrate  int // kbit/s
	rate     int
	channels int
	crc      bool
	length   int // frame length in bytes (layer III)
	spf      int // samples per frame (layer III)
}

var (
	mp3Bitrates = [2][15]int{
		{0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320}, // MPEG 1
		{0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160},     // MPEG 2, 2.5
	}
	mp3Rates = map[int][3]int{1: {44100, 48000, 32000}, 2: {22050, 24000, 16000}, 25: {11025, 12000, 8000}}
)

// validMPEGHeader reports whether h looks like an MPEG audio frame
// header (any layer): sync, no reserved values.
func validMPEGHeader(h uint32) bool {
	return h>>21 == 0x7ff && h>>19&3 != 1 && h>>17&3 != 0 && h>>12&15 != 15 && h>>10&3 != 3 && h&3 != 2
}

// parseMPEGHeader parses a frame header; ok is false for anything but a
// valid header. Frame length and samples per frame are set for layer III
// only (free-format frames, bitrate index 0, have length 0).
func parseMPEGHeader(h uint32) (m mpegHeader, ok bool) {
	if !validMPEGHeader(h) {
		return m, false
	}
	switch h >> 19 & 3 {
	case 0:
		m.version = 25
	case 2:
		m.version = 2
	case 3:
		m.version = 1
	}
	m.layer = 4 - int(h>>17&3)
	m.crc = h>>16&1 == 0
	m.rate = mp3Rates[m.version][h>>10&3]
	m.channels = 2
	if h>>6&3 == 3 {
		m.channels = 1
	}
	if m.layer != 3 {
		return m, true
	}
	t := 0
	if m.version != 1 {
		t = 1
	}
	m.bitrate = mp3Bitrates[t][h>>12&15]
	pad := int(h >> 9 & 1)
	if m.version == 1 {
		m.spf = 1152
		m.length = 144000*m.bitrate/m.rate + pad
	} else {
		m.spf = 576
		m.length = 72000*m.bitrate/m.rate + pad
	}
	return m, true
}

// sideInfoLen is the length of a layer III frame's side information.
func (m mpegHeader) sideInfoLen() int {
	switch {
	case m.version == 1 && m.channels == 1:
		return 17
	case m.version == 1:
		return 32
	case m.channels == 1:
		return 9
	}
	return 17
}

// sameStream reports whether o can follow m in one stream.
func (m mpegHeader) sameStream(o mpegHeader) bool {
	return o.version == m.version && o.layer == m.layer && o.rate == m.rate && o.length > 0
}

// mp3Stream decodes MPEG-1/2 audio layer III through
// github.com/hajimehoshi/go-mp3 (which produces 16-bit samples, so
// values are clipped at full scale), gaplessly: with a LAME/Xing info
// tag, the encoder delay plus the decoder delay (529) are dropped at the
// start and the stated padding at the end, so Len() frames come out.
// Files without the tag play whole, with the encoder's padding, and their
// length is learnt by reading every frame header on Open.
//
// Seeking is sample-exact: the frame holding the target is found through
// an index of frame offsets (built from the headers as far as needed),
// go-mp3 restarts enough frames earlier to refill the bit reservoir and
// the filterbank, and the samples before the target are dropped; what
// follows is identical to a straight decode.
type mp3Stream struct {
	rs       io.ReadSeeker // nil: forward only
	fwd      io.Reader     // forward-only input
	first    mpegHeader
	tags     map[string][]string
	audio    int64 // offset of the first audio frame (after the info frame)
	audioEnd int64 // end of the audio (ID3v1/APE tags excluded), -1 unknown
	frames   int64 // audio frames, -1 unknown
	trim     int64 // samples dropped at the start
	length   int64 // Len(), -1 unknown
	gapless  bool  // an info tag with delay and padding was found
	delay    int64 // encoder delay and padding of the LAME tag
	padding  int64

	index     []int64 // offsets of audio frames 0..len-1 known so far
	indexDone bool    // index holds every frame

	dec     *mp3.Decoder
	cur     *mp3Cursor
	raw     []byte
	decoded int64 // samples decoded since dec started at frame decFrom
	decFrom int64
	skip    int64 // samples still to drop
	out     []float32
	buf     []float32
	pos     int64
	err     error
	closed  bool
}

// mp3Cursor is the input go-mp3 reads: from an offset of the shared
// ReadSeeker up to audioEnd (or the forward-only reader). It is not an
// io.Seeker, so go-mp3 does not scan the file itself.
type mp3Cursor struct {
	rs  io.ReadSeeker
	r   io.Reader
	off int64
	end int64
}

func (c *mp3Cursor) Read(p []byte) (int, error) {
	if c.rs == nil {
		return c.r.Read(p)
	}
	if c.end >= 0 {
		if c.off >= c.end {
			return 0, io.EOF
		}
		p = p[:min(int64(len(p)), c.end-c.off)]
	}
	if _, err := c.rs.Seek(c.off, io.SeekStart); err != nil {
		return 0, err
	}
	n, err := c.rs.Read(p)
	c.off += int64(n)
	return n, err
}

// openMP3 opens the MP3 stream at r's position; rs is r when seekable.
func openMP3(r io.Reader, rs io.ReadSeeker) (d Decoder, err error) {
	defer recovered(&err, "mp3")
	s := &mp3Stream{rs: rs, fwd: r, tags: map[string][]string{}, frames: -1, length: -1, audioEnd: -1}
	var start int64
	var head []byte
	if rs != nil {
		if start, err = s.readTags(); err != nil {
			return nil, err
		}
		head = make([]byte, mp3SyncSearch)
		n, err := readAt(rs, start, head)
		if err != nil {
			return nil, err
		}
		head = head[:n]
	} else {
		br, ok := r.(*bufio.Reader)
		if !ok {
			br = bufio.NewReaderSize(r, readBufferSize)
		}
		s.fwd = br
		head, _ = br.Peek(min(readBufferSize, mp3SyncSearch))
	}
	i, h, err := findFirstFrame(head)
	if err != nil {
		return nil, err
	}
	s.first = h
	s.audio = start + int64(i)
	s.parseInfoFrame(head[i:])
	if rs == nil {
		if s.audio > start { // skip junk and the info frame
			if _, err := s.fwd.(*bufio.Reader).Discard(int(s.audio - start)); err != nil {
				return nil, truncatedf(s.audio, "input ends in the first frame")
			}
		}
	} else if s.frames < 0 {
		// No info tag: count the frames (reads every frame header).
		if err := s.indexTo(-1); err != nil {
			return nil, err
		}
		s.frames = int64(len(s.index))
	}
	if s.frames >= 0 {
		s.length = max(s.frames*int64(h.spf)-s.delay-s.padding, 0)
	}
	s.startAt(0, s.trim)
	return s, nil
}

// readTags reads the ID3v2 tag at the start and the ID3v1 and APEv2 tags
// at the end, sets audioEnd, and returns where the audio may begin.
func (s *mp3Stream) readTags() (int64, error) {
	base, err := s.rs.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0, err
	}
	end, err := s.rs.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, err
	}
	var hdr [10]byte
	n, err := readAt(s.rs, base, hdr[:])
	if err != nil {
		return 0, err
	}
	start := base
	if size := id3v2Size(hdr[:n]); size > 0 {
		start = base + size
		if size <= maxID3Size && start <= end {
			tag := make([]byte, size)
			if _, err := readAt(s.rs, base, tag); err != nil {
				return 0, err
			}
			parseID3v2(tag, s.tags)
		}
	}
	s.audioEnd = end
	if end-start >= 128 {
		var v1 [128]byte
		if _, err := readAt(s.rs, end-128, v1[:]); err != nil {
			return 0, err
		}
		if string(v1[:3]) == "TAG" {
			parseID3v1(v1[:], s.tags)
			s.audioEnd = end - 128
		}
	}
	if s.audioEnd-start >= 32 {
		var ape [32]byte
		if _, err := readAt(s.rs, s.audioEnd-32, ape[:]); err != nil {
			return 0, err
		}
		if string(ape[:8]) == "APETAGEX" {
			size := int64(binary.LittleEndian.Uint32(ape[12:]))
			if binary.LittleEndian.Uint32(ape[20:])&(1<<31) != 0 {
				size += 32
			}
			if size <= s.audioEnd-start {
				s.audioEnd -= size
			}
		}
	}
	return start, nil
}

// readAt reads len(b) bytes at off (fewer at the end of the input).
func readAt(rs io.ReadSeeker, off int64, b []byte) (int, error) {
	if _, err := rs.Seek(off, io.SeekStart); err != nil {
		return 0, err
	}
	n, err := io.ReadFull(rs, b)
	if err == io.ErrUnexpectedEOF || err == io.EOF {
		err = nil
	}
	return n, err
}

// findFirstFrame returns the offset in b of the first layer III frame
// header that is followed by another frame of the same stream (or by the
// end of b), and the header.
func findFirstFrame(b []byte) (int, mpegHeader, error) {
	for i := 0; i+4 <= len(b); i++ {
		if b[i] != 0xff {
			continue
		}
		h, ok := parseMPEGHeader(binary.BigEndian.Uint32(b[i:]))
		if !ok {
			continue
		}
		if h.layer != 3 {
			return 0, h, fmt.Errorf("%w: MPEG layer %d (only layer III, MP3, is decoded)", ErrUnsupported, h.layer)
		}
		if h.version == 25 {
			return 0, h, fmt.Errorf("%w: MPEG 2.5 audio", ErrUnsupported)
		}
		if h.bitrate == 0 {
			return 0, h, fmt.Errorf("%w: free-format MP3", ErrUnsupported)
		}
		j := i + h.length
		if j+4 > len(b) {
			if j <= len(b)+4 && i > 0 || len(b) < mp3SyncSearch {
				return i, h, nil // the only frame, or the input's end
			}
			continue
		}
		if n, ok := parseMPEGHeader(binary.BigEndian.Uint32(b[j:])); ok && h.sameStream(n) {
			return i, h, nil
		}
	}
	return 0, mpegHeader{}, fmt.Errorf("%w: no MPEG audio frame found", ErrUnknownFormat)
}

// parseInfoFrame looks for a Xing/Info (with a LAME extension) or VBRI
// header in the first frame f. If there is one, the frame carries no
// audio: the audio starts after it.
func (s *mp3Stream) parseInfoFrame(f []byte) {
	h := s.first
	if len(f) < h.length {
		return
	}
	f = f[:h.length]
	x := 4 + h.sideInfoLen()
	if h.crc {
		x += 2
	}
	be := binary.BigEndian
	switch {
	case len(f) >= x+8 && (string(f[x:x+4]) == "Xing" || string(f[x:x+4]) == "Info"):
		flags := be.Uint32(f[x+4:])
		p := x + 8
		if flags&1 != 0 && len(f) >= p+4 {
			s.frames = int64(be.Uint32(f[p:]))
			p += 4
		}
		if flags&2 != 0 {
			p += 4
		}
		if flags&4 != 0 {
			p += 100
		}
		if flags&8 != 0 {
			p += 4
		}
		// LAME extension: 9 bytes of encoder name, then at +21 the
		// 12-bit encoder delay and 12-bit padding.
		if len(f) >= p+24 && (string(f[p:p+4]) == "LAME" || string(f[p:p+4]) == "Lavf" || string(f[p:p+4]) == "Lavc") {
			d := int64(f[p+21])<<4 | int64(f[p+22])>>4
			pad := int64(f[p+22]&0x0f)<<8 | int64(f[p+23])
			s.delay, s.padding, s.gapless = d, pad, true
			s.trim = d + mp3DecoderDelay
		}
	case len(f) >= 36+18 && string(f[36:40]) == "VBRI":
		s.frames = int64(be.Uint32(f[36+14:]))
	default:
		return
	}
	s.audio += int64(h.length)
}

// indexTo extends the frame index up to frame k (k < 0: all frames).
func (s *mp3Stream) indexTo(k int64) error {
	if s.rs == nil {
		return ErrNotSeekable
	}
	var hb [4]byte
	for !s.indexDone && (k < 0 || int64(len(s.index)) <= k) {
		off := s.audio
		if n := len(s.index); n > 0 {
			off = s.index[n-1]
			if _, err := readAt(s.rs, off, hb[:]); err != nil {
				return err
			}
			h, _ := parseMPEGHeader(be32(hb[:]))
			off += int64(h.length)
		}
		if s.audioEnd >= 0 && off+4 > s.audioEnd {
			s.indexDone = true
			break
		}
		n, err := readAt(s.rs, off, hb[:])
		if err != nil {
			return err
		}
		h, ok := parseMPEGHeader(be32(hb[:n]))
		if n < 4 || !ok || !s.first.sameStream(h) {
			s.indexDone = true
			break
		}
		s.index = append(s.index, off)
	}
	return nil
}

func be32(b []byte) uint32 {
	if len(b) < 4 {
		return 0
	}
	return binary.BigEndian.Uint32(b)
}

// startAt (re)starts go-mp3 at audio frame k and drops the next skip
// samples. The decoder is created lazily by fill.
func (s *mp3Stream) startAt(k, skip int64) {
	s.dec, s.raw, s.out = nil, s.raw[:0], nil
	s.decFrom, s.decoded, s.skip = k, 0, skip
	off := s.audio
	if k > 0 {
		off = s.index[k]
	}
	s.cur = &mp3Cursor{rs: s.rs, r: s.fwd, off: off, end: s.audioEnd}
}

func (s *mp3Stream) Codec() string   { return "mp3" }
func (s *mp3Stream) SampleRate() int { return s.first.rate }
func (s *mp3Stream) Channels() int   { return s.first.channels }
func (s *mp3Stream) BitDepth() int   { return 0 }
func (s *mp3Stream) Len() int64      { return s.length }
func (s *mp3Stream) Position() int64 { return s.pos }

func (s *mp3Stream) Tags() map[string][]string { return cloneTags(s.tags) }

func (s *mp3Stream) Close() error {
	if s.closed {
		return ErrClosed
	}
	s.closed, s.err = true, ErrClosed
	s.dec, s.cur, s.out, s.buf, s.raw, s.index = nil, nil, nil, nil, nil, nil
	return nil
}

func (s *mp3Stream) Read(dst []float32) (int, error) {
	if s.closed {
		return 0, ErrClosed
	}
	ch := s.first.channels
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
			s.pos += int64(c / ch)
			continue
		}
		if s.err != nil {
			break
		}
		s.err = s.fill()
	}
	if n > 0 {
		return n, nil
	}
	return 0, s.err
}

// fill decodes the next stretch into s.out.
func (s *mp3Stream) fill() (err error) {
	defer recovered(&err, "mp3")
	if s.length >= 0 && s.pos >= s.length {
		return io.EOF
	}
	if s.dec == nil {
		dec, err := mp3.NewDecoder(s.cur)
		if err != nil {
			return s.decodeErr(err)
		}
		s.dec = dec
	}
	const chunk = 1152 * 4
	if cap(s.raw) < chunk {
		s.raw = make([]byte, chunk)
	}
	raw := s.raw[:chunk]
	n, err := io.ReadFull(s.dec, raw)
	n -= n % 4
	if n == 0 {
		if err == nil || err == io.EOF || err == io.ErrUnexpectedEOF {
			return s.atEnd()
		}
		return s.decodeErr(err)
	}
	smp := int64(n / 4)
	s.decoded += smp
	ch := s.first.channels
	if cap(s.buf) < int(smp)*ch {
		s.buf = make([]float32, int(smp)*ch)
	}
	buf := s.buf[:int(smp)*ch]
	for i := range int(smp) {
		l := int16(binary.LittleEndian.Uint16(raw[4*i:]))
		buf[i*ch] = float32(l) / 32768
		if ch == 2 {
			buf[i*ch+1] = float32(int16(binary.LittleEndian.Uint16(raw[4*i+2:]))) / 32768
		}
	}
	lo := min(s.skip, smp)
	s.skip -= lo
	hi := smp
	if s.length >= 0 {
		hi = min(hi, lo+s.length-s.pos)
	}
	s.out = buf[lo*int64(ch) : hi*int64(ch)]
	return nil
}

// atEnd handles the end of go-mp3's output: a known length still short
// by less than a frame is the decoder's missing flush and is padded with
// silence; a larger shortfall is a truncated file.
func (s *mp3Stream) atEnd() error {
	if s.length < 0 {
		s.length = s.pos
		return io.EOF
	}
	short := s.length - s.pos
	if short <= 0 {
		return io.EOF
	}
	if s.frames >= 0 && s.decFrom+s.decoded/int64(s.first.spf) >= s.frames {
		s.out = make([]float32, short*int64(s.first.channels))
		return nil
	}
	return truncatedf(s.cur.off, "MP3 stream ends at frame %d of %d", s.pos, s.length)
}

func (s *mp3Stream) decodeErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return s.atEnd()
	}
	return fmt.Errorf("%w: mp3: %v", ErrCorrupt, err)
}

// SeekFrame positions the stream at frame (0 <= frame <= Len()).
func (s *mp3Stream) SeekFrame(frame int64) (err error) {
	defer recovered(&err, "mp3")
	if s.closed {
		return ErrClosed
	}
	if s.rs == nil {
		return ErrNotSeekable
	}
	if frame < 0 || frame > s.length {
		return fmt.Errorf("%w: frame %d, stream has %d", ErrOutOfRange, frame, max(s.length, 0))
	}
	s.err = nil
	abs := frame + s.trim
	spf := int64(s.first.spf)
	k := abs / spf
	if err := s.indexTo(k); err != nil {
		s.err = err
		return err
	}
	if k >= int64(len(s.index)) {
		if frame == s.length {
			s.out, s.pos, s.err = nil, frame, io.EOF
			return nil
		}
		s.err = truncatedf(s.audioEnd, "MP3 frame %d is missing", k)
		return s.err
	}
	// Restart far enough back for the bit reservoir (main data may begin
	// up to 511 bytes before a frame) plus two frames for the overlap and
	// the synthesis filterbank.
	k0 := k
	for back := int64(0); k0 > 0 && back <= mp3Reservoir; k0-- {
		back += s.index[k0] - s.index[k0-1]
	}
	k0 = max(k0-2, 0)
	s.startAt(k0, abs-k0*spf)
	s.pos = frame
	return nil
}
