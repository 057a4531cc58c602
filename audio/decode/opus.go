package decode

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

const (
	// opusRate is Opus' decoding rate; granule positions count 48 kHz
	// samples whatever the input rate was.
	opusRate = 48000
	// opusMaxPacket is the longest packet duration (120 ms).
	opusMaxPacket = 5760
	// opusPreroll is decoded before a seek target so the decoder
	// converges (RFC 7845, 4.6: at least 80 ms).
	opusPreroll = 3840
)

// opusHead is the identification header (RFC 7845, 5.1).
type opusHead struct {
	channels int
	preskip  int64
	gain     float32 // linear output gain
	streams  int
	coupled  int
	mapping  []byte
}

func parseOpusHead(p []byte) (opusHead, error) {
	var h opusHead
	if len(p) < 19 || string(p[:8]) != "OpusHead" {
		return h, fmt.Errorf("%w: no OpusHead", ErrCorrupt)
	}
	if p[8]>>4 != 0 {
		return h, fmt.Errorf("%w: Opus header version %d", ErrUnsupported, p[8])
	}
	le := binary.LittleEndian
	h.channels = int(p[9])
	h.preskip = int64(le.Uint16(p[10:]))
	gainQ8 := int16(le.Uint16(p[16:]))
	h.gain = float32(math.Pow(10, float64(gainQ8)/(20*256)))
	if h.channels == 0 {
		return h, fmt.Errorf("%w: Opus stream with 0 channels", ErrCorrupt)
	}
	switch family := p[18]; family {
	case 0:
		if h.channels > 2 {
			return h, fmt.Errorf("%w: mapping family 0 with %d channels", ErrCorrupt, h.channels)
		}
		h.streams, h.coupled = 1, h.channels-1
		h.mapping = []byte{0, 1}[:h.channels]
	case 1:
		if h.channels > 8 || len(p) < 21+h.channels {
			return h, fmt.Errorf("%w: Opus mapping family 1 header", ErrCorrupt)
		}
		h.streams, h.coupled = int(p[19]), int(p[20])
		h.mapping = append([]byte(nil), p[21:21+h.channels]...)
		if h.streams == 0 || h.coupled > h.streams || h.streams+h.coupled > 255 {
			return h, fmt.Errorf("%w: Opus with %d streams, %d coupled", ErrCorrupt, h.streams, h.coupled)
		}
		for _, m := range h.mapping {
			if m != 255 && int(m) >= h.streams+h.coupled {
				return h, fmt.Errorf("%w: Opus channel mapping %d", ErrCorrupt, m)
			}
		}
	default:
		return h, fmt.Errorf("%w: Opus channel mapping family %d", ErrUnsupported, family)
	}
	return h, nil
}

// opusPacketSamples is a packet's duration in 48 kHz samples from its
// TOC byte (RFC 6716, 3.1), 0 if the packet is invalid.
func opusPacketSamples(p []byte) int64 {
	if len(p) == 0 {
		return 0
	}
	c := p[0] >> 3
	var frame int64
	switch {
	case c < 12: // SILK: 10, 20, 40, 60 ms
		frame = [4]int64{480, 960, 1920, 2880}[c&3]
	case c < 16: // hybrid: 10, 20 ms
		frame = [2]int64{480, 960}[c&1]
	default: // CELT: 2.5, 5, 10, 20 ms
		frame = [4]int64{120, 240, 480, 960}[c&3]
	}
	var n int64
	switch p[0] & 3 {
	case 0:
		n = 1
	case 1, 2:
		n = 2
	case 3:
		if len(p) < 2 {
			return 0
		}
		n = int64(p[1] & 0x3f)
	}
	if n*frame > opusMaxPacket {
		return 0
	}
	return n * frame
}

// opusStream decodes an Ogg Opus stream (RFC 7845) through the system
// libopus: pre-skip dropped at the start, the end cut at the final
// granule position, the header's output gain applied, 48 kHz out. The
// Ogg layer is this package's own (CRC-checked pages, bounded packets).
// SeekFrame lands on exactly the requested frame; it restarts the decoder
// at least 80 ms before the target (RFC 7845, 4.6), so the samples after
// a seek converge to, but are not bit-identical with, a straight decode.
type opusStream struct {
	oggFile
	br   *bufio.Reader
	pr   *pageReader
	pg   page
	asm  assembler
	head opusHead
	tags map[string][]string
	dec  *opusDecoder
	pcm  []float32

	serial      uint32
	base        int64
	dataOff     int64
	firstGran   int64 // granule of the first audio page (-1: none)
	firstGranAt int64
	lastGran    int64 // -1: unknown
	offset      int64 // granule of frame 0
	endLimit    int64 // samples at granules >= endLimit are dropped

	pkts      packetList
	pktIdx    int
	inputDone bool
	endErr    error

	gran   int64 // granule of the next decoded sample
	skipTo int64
	pos    int64
	out    []float32
	err    error
	closed bool
}

func openOpus(r io.Reader, rs io.ReadSeeker) (d Decoder, err error) {
	defer recovered(&err, "opus")
	s := &opusStream{oggFile: oggFile{rs: rs, endOff: -1}, lastGran: -1, firstGran: -1, endLimit: math.MaxInt64}
	if rs != nil {
		if s.base, err = rs.Seek(0, io.SeekCurrent); err != nil {
			return nil, err
		}
		if s.endOff, err = rs.Seek(0, io.SeekEnd); err != nil {
			return nil, err
		}
		if _, err = rs.Seek(s.base, io.SeekStart); err != nil {
			return nil, err
		}
	}
	br, ok := r.(*bufio.Reader)
	if !ok || rs != nil {
		br = bufio.NewReaderSize(r, readBufferSize)
	}
	s.br = br
	s.pr = newPageReader(br, s.base)
	if err := s.readHeaders(); err != nil {
		return nil, err
	}
	s.pcm = make([]float32, opusMaxPacket*s.head.channels)
	if rs != nil {
		if err := s.findLastGranule(); err != nil {
			return nil, err
		}
		if s.lastGran != -1 {
			s.endLimit = s.lastGran
		}
		if err := s.reposition(s.dataOff); err != nil {
			return nil, err
		}
	}
	if err := s.startFromBeginning(); err != nil {
		s.dec.close()
		return nil, err
	}
	return s, nil
}

// readHeaders reads OpusHead (first BOS page) and OpusTags.
func (s *opusStream) readHeaders() error {
	if err := s.pr.next(&s.pg); err != nil {
		if err == io.EOF {
			return truncatedf(s.pr.off, "input ends inside the Opus headers")
		}
		return err
	}
	p := &s.pg
	if !p.bos() || len(p.segs) != 1 || p.segs[0] == 255 {
		return corruptf(p.off, "OpusHead must be alone on the first page")
	}
	h, err := parseOpusHead(p.body)
	if err != nil {
		return err
	}
	s.head, s.serial = h, p.serial
	s.asm = assembler{header: true}
	if err := s.asm.add(p, &s.pkts); err != nil {
		return err
	}
	s.pkts.reset()
	for s.pkts.len() == 0 {
		if err := s.pr.next(&s.pg); err != nil {
			if err == io.EOF {
				return truncatedf(s.pr.off, "input ends inside the Opus headers")
			}
			return err
		}
		p := &s.pg
		if p.serial != s.serial {
			continue // another multiplexed stream
		}
		if p.bos() {
			return corruptf(p.off, "repeated beginning-of-stream page")
		}
		if err := s.asm.add(p, &s.pkts); err != nil {
			return err
		}
	}
	if s.pkts.len() > 1 || s.asm.inPacket {
		return corruptf(s.pg.off, "Opus audio does not begin on a fresh page")
	}
	tp := s.pkts.packet(0)
	s.tags = map[string][]string{}
	if len(tp) >= 8 && string(tp[:8]) == "OpusTags" {
		if _, tags, err := parseCommentBody(tp[8:]); err == nil {
			s.tags = tags
		}
	}
	s.dataOff = s.pr.off
	s.pkts.reset()
	if cap(s.pkts.arena) > maxBatchBytes {
		s.pkts = packetList{}
	}
	return nil
}

// findLastGranule reads the granule of the stream's last page, scanning
// backwards from the end, and detects chained streams.
func (s *opusStream) findLastGranule() error {
	for hi := s.endOff; hi > s.dataOff; hi -= scanStep {
		lo := max(hi-scanStep, s.dataOff)
		var chain error
		eos := false
		err := s.scanPages(lo, hi, func(p *page) bool {
			if p.bos() && chain == nil {
				chain = fmt.Errorf("%w: new logical stream at byte %d", ErrChained, p.off)
			}
			if p.serial == s.serial && p.granule != -1 {
				s.lastGran, eos = p.granule, p.eos()
			}
			return true
		})
		if err != nil {
			return err
		}
		if chain != nil {
			return chain
		}
		if s.lastGran != -1 {
			if !eos {
				// The end is missing: the length is unknown (NewReader
				// plays what decodes).
				return truncatedf(s.endOff, "Opus stream has no end-of-stream page")
			}
			return nil
		}
	}
	return nil
}

// reposition makes the sequential reader continue at input offset off.
func (s *opusStream) reposition(off int64) error {
	if _, err := s.rs.Seek(off, io.SeekStart); err != nil {
		return err
	}
	s.br.Reset(s.rs)
	s.pr.reset(s.br, off)
	return nil
}

// newDecoder replaces the libopus decoder with a fresh one.
func (s *opusStream) newDecoder() error {
	s.dec.close()
	s.dec = nil
	d, err := newOpusDecoder(s.head.channels, s.head.streams, s.head.coupled, s.head.mapping)
	if err != nil {
		return err
	}
	s.dec = d
	return nil
}

// startFromBeginning decodes from the first audio page: its granule minus
// the durations of its packets is the stream's first granule (0 for
// files from the start); frame 0 is pre-skip samples after it.
func (s *opusStream) startFromBeginning() error {
	if err := s.newDecoder(); err != nil {
		return err
	}
	s.asm = assembler{}
	s.inputDone, s.endErr = false, nil
	s.out, s.err = nil, nil
	if err := s.loadBatch(); err != nil {
		if s.pkts.len() == 0 && !errors.Is(err, ErrTruncated) && err != io.EOF {
			return err
		}
		s.err = err
	}
	var sum int64
	for i := range s.pkts.len() {
		sum += opusPacketSamples(s.pkts.packet(i))
	}
	start := int64(0)
	if p := &s.pg; p.serial == s.serial && p.granule != -1 && s.err == nil {
		start = max(p.granule-sum, 0) // negative: only valid on the last page (end trimmed)
		s.firstGran, s.firstGranAt = p.granule, p.off
	}
	s.offset = start + s.head.preskip
	s.gran, s.skipTo, s.pos = start, s.offset, 0
	return nil
}

// loadBatch collects the packets completed on the pages up to the next
// one with a granule position (or the end).
func (s *opusStream) loadBatch() error {
	s.pkts.reset()
	s.pktIdx = 0
	if s.inputDone {
		return s.endErr
	}
	for {
		err := s.pr.next(&s.pg)
		if err != nil {
			if err == io.EOF {
				err = truncatedf(s.pr.off, "input ends without an end-of-stream page")
			}
			return s.finish(err)
		}
		p := &s.pg
		if p.serial != s.serial {
			if p.bos() {
				return s.finish(fmt.Errorf("%w: new logical stream at byte %d", ErrChained, p.off))
			}
			continue
		}
		if p.bos() {
			return s.finish(fmt.Errorf("%w: stream restarts at byte %d", ErrChained, p.off))
		}
		if err := s.asm.add(p, &s.pkts); err != nil {
			return s.finish(err)
		}
		if len(s.pkts.arena) > maxBatchBytes {
			return s.finish(corruptf(p.off, "more than %d bytes of packets without a granule position", maxBatchBytes))
		}
		if p.eos() {
			s.inputDone, s.endErr = true, io.EOF
			if p.granule != -1 {
				s.endLimit = min(s.endLimit, p.granule)
			}
			return nil
		}
		if p.granule != -1 && s.pkts.len() > 0 {
			return nil
		}
	}
}

func (s *opusStream) finish(err error) error {
	s.inputDone, s.endErr = true, err
	if s.pkts.len() > 0 {
		return nil
	}
	return err
}

func (s *opusStream) Codec() string   { return "opus" }
func (s *opusStream) SampleRate() int { return opusRate }
func (s *opusStream) Channels() int   { return s.head.channels }
func (s *opusStream) BitDepth() int   { return 0 }
func (s *opusStream) Position() int64 { return s.pos }

func (s *opusStream) Len() int64 {
	last := s.lastGran
	if s.endLimit != math.MaxInt64 && (last < 0 || s.endLimit < last) {
		last = s.endLimit
	}
	if last < 0 {
		return -1
	}
	return max(last-s.offset, 0)
}

func (s *opusStream) Tags() map[string][]string { return cloneTags(s.tags) }

func (s *opusStream) Close() error {
	if s.closed {
		return ErrClosed
	}
	s.closed, s.err = true, ErrClosed
	s.dec.close()
	s.dec, s.out, s.pcm, s.scan = nil, nil, nil, nil
	s.pkts = packetList{}
	s.asm = assembler{}
	return nil
}

func (s *opusStream) Read(dst []float32) (int, error) {
	if s.closed {
		return 0, ErrClosed
	}
	ch := s.head.channels
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
		s.err = s.fill()
	}
	s.pos += int64(n / ch)
	if n > 0 {
		return n, nil
	}
	return 0, s.err
}

// fill decodes packets until s.out holds samples or an error occurs.
func (s *opusStream) fill() error {
	ch := int64(s.head.channels)
	for {
		if s.gran >= s.endLimit {
			return io.EOF
		}
		if s.pktIdx >= s.pkts.len() {
			if err := s.loadBatch(); err != nil {
				return err
			}
			continue
		}
		p := s.pkts.packet(s.pktIdx)
		s.pktIdx++
		if len(p) == 0 {
			continue
		}
		n, err := s.dec.decode(p, s.pcm, opusMaxPacket)
		if err != nil {
			return err
		}
		g0 := s.gran
		s.gran += int64(n)
		lo, hi := max(g0, s.skipTo), min(s.gran, s.endLimit)
		if hi > lo {
			out := s.pcm[(lo-g0)*ch : (hi-g0)*ch]
			if s.head.gain != 1 {
				for i := range out {
					out[i] *= s.head.gain
				}
			}
			s.out = out
			return nil
		}
	}
}

// SeekFrame positions the stream at frame (0 <= frame <= Len()).
func (s *opusStream) SeekFrame(frame int64) (err error) {
	defer recovered(&err, "opus")
	if s.closed {
		return ErrClosed
	}
	if s.rs == nil {
		return ErrNotSeekable
	}
	n := max(s.Len(), 0)
	if frame < 0 || frame > n {
		return fmt.Errorf("%w: frame %d, stream has %d", ErrOutOfRange, frame, n)
	}
	if err := s.seekGranule(s.offset + frame); err != nil {
		s.err = err
		return err
	}
	s.pos = frame
	return nil
}

func (s *opusStream) seekGranule(target int64) error {
	s.out, s.err = nil, nil
	if target >= s.offset+s.Len() {
		s.pkts.reset()
		s.pktIdx = 0
		s.inputDone, s.endErr = true, io.EOF
		s.gran = target
		return nil
	}
	search := target - opusPreroll
	for {
		if s.firstGran < 0 || search < s.firstGran {
			return s.restartAt(target)
		}
		off, g, err := s.bisectGranule(s.serial, s.firstGranAt, s.firstGran, search)
		if err != nil {
			return err
		}
		if off < 0 {
			return s.restartAt(target)
		}
		start, ok, err := s.pageStart(off, g)
		if err != nil {
			return err
		}
		if !ok {
			search = g - 1
			continue
		}
		if err := s.reposition(off); err != nil {
			return err
		}
		if err := s.newDecoder(); err != nil {
			return err
		}
		s.asm.restart()
		s.pkts.reset()
		s.pktIdx = 0
		s.inputDone, s.endErr = false, nil
		s.gran, s.skipTo = start, target
		return nil
	}
}

func (s *opusStream) restartAt(target int64) error {
	if err := s.reposition(s.dataOff); err != nil {
		return err
	}
	if err := s.startFromBeginning(); err != nil {
		return err
	}
	s.skipTo = max(target, s.offset)
	return nil
}

// pageStart returns the granule of the first sample of the first packet
// that starts on the page at off (granule g): g minus the durations of
// the packets that start and end on it. ok is false if there is none.
func (s *opusStream) pageStart(off, g int64) (start int64, ok bool, err error) {
	b, err := s.readScan(off)
	if err != nil {
		return 0, false, err
	}
	var p page
	if err := parsePage(b, off, &p); err != nil {
		return 0, false, err
	}
	pos, startPos := 0, 0
	skip := p.continued()
	var sum int64
	for _, lace := range p.segs {
		pos += int(lace)
		if lace == 255 {
			continue
		}
		pkt := p.body[startPos:pos]
		startPos = pos
		if skip {
			skip = false
			continue
		}
		sum += opusPacketSamples(pkt)
		ok = true
	}
	return g - sum, ok, nil
}
