package decode

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"

	"github.com/jfreymuth/vorbis"
)

const (
	// readBufferSize is the size of the buffered reader between the input
	// and the page reader.
	readBufferSize = 64 << 10
	// maxBatchBytes bounds the packet data collected while looking for
	// the next page that carries a granule position.
	maxBatchBytes = 4 << 20
)

// scanStep is the granularity of backward/forward page searches used by
// Open (to find the last page) and SeekFrame (bisection). It is a variable
// only so tests can shrink it to exercise the bisection on small files.
var scanStep int64 = 64 << 10

// ErrOutOfRange is returned by SeekFrame for a frame outside [0, Len()].
var ErrOutOfRange = errors.New("decode: seek position out of range")

// Stream decodes one Ogg Vorbis logical stream into interleaved float32
// frames, sample-exactly: the first frame returned is frame 0 of the
// track after the encoder's priming samples (if the stream signals any)
// were discarded, and the last one is the frame before the end-of-stream
// granule position, so a track decodes to exactly Len() frames.
//
// Beginning-of-stream trimming follows the Vorbis I specification (A.2)
// to the letter: all leading samples the first granule position excludes
// are dropped. libvorbisfile (oggdec) can only drop them from the last
// packet of the first page, so for a first page with several packets and
// a trim larger than that packet its output differs from this package's;
// files from oggenc start at granule 0 and are not affected.
//
// Samples are not clamped: values beyond [-1, 1] that the encoded signal
// carries are returned as is.
//
// A Stream is not safe for concurrent use: callers must serialise all
// method calls (Read, SeekFrame, Position, ...). Distinct Streams are
// independent.
type Stream struct {
	oggFile // rs is nil for NewVorbisReader streams
	br      *bufio.Reader
	pr      *pageReader
	pg      page
	asm     assembler
	dec     vorbis.Decoder
	pcm     []float32 // decoder output buffer, BufferSize() samples

	serial   uint32
	ident    identHeader
	modeLong []bool
	modeBits uint
	vendor   string
	tags     map[string][]string

	base    int64 // input offset of the first page
	dataOff int64 // input offset of the first audio page

	// Granule bookkeeping. Granule positions count samples per channel
	// from the start of the logical stream; frame f of the track has
	// granule offset+f.
	offset      int64 // granule of frame 0
	startGran   int64 // granule of the first sample the first packets decode to
	firstGran   int64 // granule of the first page that has one (-1: none)
	firstGranAt int64 // input offset of that page
	lastGran    int64 // granule of the last page (seekable), -1 if unknown
	endLimit    int64 // samples at granules >= endLimit are dropped

	// Current batch: the packets completed on the pages up to and
	// including the next page carrying a granule position.
	pkts      packetList
	pktIdx    int
	inputDone bool  // no more pages will be read
	endErr    error // error to report once the batch is exhausted

	gran   int64     // granule of the next sample the decoder produces
	skipTo int64     // samples at granules < skipTo are dropped
	pos    int64     // frame index of the next frame Read returns
	out    []float32 // decoded samples not yet returned (whole frames)
	err    error     // sticky error (io.EOF at the end)
	closed bool
}

// OpenVorbis prepares a seekable Ogg Vorbis stream starting at r's current
// position. It reads and validates the three Vorbis headers, then locates
// the last page to learn the stream length. Open does not take ownership
// of r: Close does not close it, and r must not be used by anyone else
// while the Stream is in use.
//
// Open returns an error wrapping ErrNotVorbis, ErrCorrupt, ErrTruncated or
// ErrChained (or an I/O error from r).
func OpenVorbis(r io.ReadSeeker) (*Stream, error) {
	base, err := r.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, err
	}
	end, err := r.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, err
	}
	if _, err := r.Seek(base, io.SeekStart); err != nil {
		return nil, err
	}
	s := &Stream{oggFile: oggFile{rs: r, endOff: end}, base: base}
	if err := s.init(r); err != nil {
		return nil, err
	}
	return s, nil
}

// NewVorbisReader prepares a forward-only stream from r. Len returns -1 until
// the end-of-stream page has been read, and SeekFrame returns ErrNotSeekable.
// A chained stream is reported as ErrChained by Read after the first
// logical stream has been decoded completely. Without seeking, the end is
// cut when the EOS page is read: if a muxer put the EOS flag on an empty
// page after the last audio page, the final packet's padding is returned
// uncut (libvorbis behaves the same); Open does not have this limitation.
func NewVorbisReader(r io.Reader) (*Stream, error) {
	s := &Stream{oggFile: oggFile{endOff: -1}}
	if err := s.init(r); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Stream) init(r io.Reader) error {
	s.br = bufio.NewReaderSize(r, readBufferSize)
	s.pr = newPageReader(s.br, s.base)
	s.lastGran = -1
	s.firstGran = -1
	s.endLimit = math.MaxInt64
	if err := s.readHeaders(); err != nil {
		return err
	}
	s.pcm = make([]float32, s.dec.BufferSize())
	if s.rs != nil {
		if err := s.findLastPage(); err != nil {
			return err
		}
		if s.lastGran != -1 {
			// Cut the end at the final granule even if the EOS flag
			// is on a later (e.g. empty) page or missing.
			s.endLimit = s.lastGran
		}
		if err := s.reposition(s.dataOff); err != nil {
			return err
		}
	}
	return s.startFromBeginning()
}

// readHeaders selects the first Vorbis logical stream among the
// beginning-of-stream pages and parses its three header packets.
func (s *Stream) readHeaders() error {
	// Beginning-of-stream pages: one per multiplexed logical stream, each
	// holding exactly one packet, the stream's identification header.
	found := false
	for {
		err := s.pr.next(&s.pg)
		if err != nil {
			if !found && s.pr.off == s.base {
				// The very first page is unreadable. If it does not
				// even start with the capture pattern this is not Ogg.
				if bytes.HasPrefix(s.pr.buf, capturePattern[:]) {
					return s.headerErr(err)
				}
				return fmt.Errorf("%w: %v", ErrNotVorbis, err)
			}
			if !found && err == io.EOF {
				return fmt.Errorf("%w: no Vorbis identification header", ErrNotVorbis)
			}
			return s.headerErr(err)
		}
		p := &s.pg
		if !p.bos() {
			break
		}
		if found {
			continue // another multiplexed stream: ignored
		}
		// A Vorbis BOS page holds exactly one packet, the 30-byte
		// identification header; BOS pages of other codecs are skipped.
		if len(p.segs) != 1 || p.segs[0] == 255 || !isHeaderPacket(p.body, 1) {
			continue
		}
		id, err := parseIdent(p.body)
		if err != nil {
			return err
		}
		if err := safeHeader(&s.dec, p.body); err != nil {
			return err
		}
		s.ident = id
		s.serial = p.serial
		s.asm = assembler{header: true}
		if err := s.asm.add(p, &s.pkts); err != nil {
			return err
		}
		s.pkts.reset()
		found = true
	}
	if !found {
		return fmt.Errorf("%w: no Vorbis identification header in the beginning-of-stream pages", ErrNotVorbis)
	}

	// Comment and setup headers follow on the stream's next pages. The
	// first non-BOS page is already in s.pg.
	for {
		p := &s.pg
		if p.serial == s.serial {
			if p.bos() {
				return corruptf(p.off, "repeated beginning-of-stream page")
			}
			if err := s.asm.add(p, &s.pkts); err != nil {
				return err
			}
			if s.pkts.len() >= 2 {
				break
			}
			if p.eos() {
				return corruptf(p.off, "stream ends inside the headers")
			}
		}
		if err := s.pr.next(&s.pg); err != nil {
			return s.headerErr(err)
		}
	}
	if s.pkts.len() > 2 || s.asm.inPacket {
		return corruptf(s.pg.off, "audio data does not begin on a fresh page")
	}
	vendor, tags, err := parseComments(s.pkts.packet(0))
	if err != nil {
		return err
	}
	setup, err := parseSetup(s.pkts.packet(1), s.ident.channels)
	if err != nil {
		return err
	}
	if err := safeHeader(&s.dec, s.pkts.packet(1)); err != nil {
		return err
	}
	if s.pg.eos() {
		return corruptf(s.pg.off, "stream has no audio pages")
	}
	s.vendor, s.tags = vendor, tags
	s.modeLong = setup.modeLong
	s.modeBits = ilog(len(setup.modeLong) - 1)
	s.dataOff = s.pr.off
	s.pkts.reset()
	if cap(s.pkts.arena) > maxBatchBytes {
		s.pkts = packetList{} // grown by a large header: let it go
	}
	return nil
}

func (s *Stream) headerErr(err error) error {
	if err == io.EOF {
		return truncatedf(s.pr.off, "input ends inside the Vorbis headers")
	}
	return err
}

// safeHeader feeds a header packet to the decoder, turning a panic into
// ErrCorrupt.
func safeHeader(d *vorbis.Decoder, p []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: vorbis header: decoder panic: %v", ErrCorrupt, r)
		}
	}()
	if err := d.ReadHeader(p); err != nil {
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return nil
}

// safeDecode decodes one audio packet into buf, turning a panic into
// ErrCorrupt.
func safeDecode(d *vorbis.Decoder, p []byte, buf []float32) (out []float32, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("%w: vorbis decoder panic: %v", ErrCorrupt, r)
		}
	}()
	out, err = d.DecodeInto(p, buf)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return out, nil
}

// Codec returns "vorbis".
func (s *Stream) Codec() string { return "vorbis" }

// BitDepth returns 0: Vorbis is lossy.
func (s *Stream) BitDepth() int { return 0 }

// SampleRate returns the sample rate in Hz.
func (s *Stream) SampleRate() int { return s.ident.sampleRate }

// Channels returns the number of interleaved channels.
func (s *Stream) Channels() int { return s.ident.channels }

// Len returns the number of frames of the track (after trimming), or -1 if
// it is not known: for NewReader streams before the end-of-stream page was
// read, and for files without any page carrying a granule position.
func (s *Stream) Len() int64 {
	last := s.lastGran
	if s.endLimit != math.MaxInt64 && (last < 0 || s.endLimit < last) {
		last = s.endLimit
	}
	if last < 0 {
		return -1
	}
	return max(last-s.offset, 0)
}

// Position returns the index of the frame the next Read returns.
func (s *Stream) Position() int64 { return s.pos }

// Vendor returns the encoder's vendor string from the comment header.
func (s *Stream) Vendor() string { return s.vendor }

// Tags returns a copy of the Vorbis comments. Keys are upper-cased field
// names (field names are case-insensitive), values are in stream order and
// kept raw (e.g. METADATA_BLOCK_PICTURE stays base64 text).
func (s *Stream) Tags() map[string][]string {
	m := maps.Clone(s.tags)
	for k, v := range m {
		m[k] = slices.Clone(v)
	}
	return m
}

// Close releases the Stream's buffers. It does not close the underlying
// reader. Further calls return ErrClosed.
func (s *Stream) Close() error {
	if s.closed {
		return ErrClosed
	}
	s.closed = true
	s.err = ErrClosed
	s.out, s.pcm, s.scan = nil, nil, nil
	s.pkts = packetList{}
	s.asm = assembler{}
	return nil
}

// Read decodes into dst as interleaved float32 samples (frame-major,
// Channels() values per frame) and returns the number of values written,
// always a multiple of Channels(). It fills dst as far as it can; it
// returns n > 0 with a nil error, or 0 with an error: io.EOF at the end
// of the track, ErrTruncated if the input ended early (after every
// decodable frame was returned), or another error wrapping ErrCorrupt,
// ErrChained or from the input. Errors are sticky until a successful SeekFrame.
// dst shorter than one frame yields io.ErrShortBuffer.
//
// In steady state Read performs no allocation of its own; the vorbis
// decoder it drives does allocate a few small slices per packet.
func (s *Stream) Read(dst []float32) (int, error) {
	if s.closed {
		return 0, ErrClosed
	}
	ch := s.ident.channels
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
func (s *Stream) fill() error {
	ch := int64(s.ident.channels)
	for {
		if s.pktIdx >= s.pkts.len() {
			if err := s.loadBatch(); err != nil {
				return err
			}
			continue
		}
		p := s.pkts.packet(s.pktIdx)
		s.pktIdx++
		if _, audio, err := s.packetBlock(p); err != nil {
			return err
		} else if !audio {
			continue // empty or non-audio packet: skipped, as libvorbis does
		}
		out, err := safeDecode(&s.dec, p, s.pcm)
		if err != nil {
			return err
		}
		g0 := s.gran
		s.gran += int64(len(out)) / ch
		lo, hi := max(g0, s.skipTo), min(s.gran, s.endLimit)
		if hi > lo {
			s.out = out[(lo-g0)*ch : (hi-g0)*ch]
			return nil
		}
	}
}

// packetBlock returns whether packet p uses the long blocksize and whether
// it is an audio packet at all. An out-of-range mode number is an error.
func (s *Stream) packetBlock(p []byte) (long, audio bool, err error) {
	if len(p) == 0 || p[0]&1 != 0 {
		return false, false, nil
	}
	mode := int(p[0]>>1) & (1<<s.modeBits - 1)
	if mode >= len(s.modeLong) {
		return false, false, fmt.Errorf("%w: audio packet uses mode %d, stream defines %d", ErrCorrupt, mode, len(s.modeLong))
	}
	return s.modeLong[mode], true, nil
}

// blocksize returns the size in samples of a block.
func (s *Stream) blocksize(long bool) int64 {
	if long {
		return int64(s.ident.blocksize[1])
	}
	return int64(s.ident.blocksize[0])
}

// loadBatch reads pages until one that finishes a packet and carries a
// granule position (or the end of the stream) and collects the packets
// completed on them. It returns the pending end error once no page is
// left.
func (s *Stream) loadBatch() error {
	s.pkts.reset()
	s.pktIdx = 0
	if s.inputDone {
		return s.endErr
	}
	for {
		err := s.pr.next(&s.pg)
		if err != nil {
			s.inputDone = true
			if err == io.EOF {
				err = truncatedf(s.pr.off, "input ends without an end-of-stream page")
			}
			s.endErr = err
			if s.pkts.len() > 0 {
				return nil
			}
			return err
		}
		p := &s.pg
		if p.serial != s.serial {
			if p.bos() {
				return s.finish(fmt.Errorf("%w: new logical stream at byte %d", ErrChained, p.off))
			}
			continue // page of another multiplexed logical stream
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
			s.inputDone = true
			s.endErr = io.EOF
			if p.granule != -1 {
				s.endLimit = min(s.endLimit, p.granule)
			}
			if s.rs == nil {
				s.endErr = s.checkChained()
			}
			return nil
		}
		if p.granule != -1 && s.pkts.len() > 0 {
			return nil
		}
	}
}

// finish ends the input with err after the packets already collected.
func (s *Stream) finish(err error) error {
	s.inputDone = true
	s.endErr = err
	if s.pkts.len() > 0 {
		return nil
	}
	return err
}

// checkChained peeks at what follows the end-of-stream page of a
// forward-only stream: io.EOF if nothing, ErrChained if a new logical
// stream begins. Anything else after the end of the stream is ignored.
func (s *Stream) checkChained() error {
	var p page
	err := s.pr.next(&p)
	if err == nil && p.bos() {
		return fmt.Errorf("%w: new logical stream at byte %d", ErrChained, p.off)
	}
	return io.EOF
}

// startFromBeginning positions the decoder at the first audio page (the
// input must already be there) and applies the beginning-of-stream rule
// of Vorbis I (A.2): the first page with a granule position tells the
// granule of the last sample its packets decode to; if the packets
// decode to more samples than that, the excess is dropped from the start
// (unless that page is also the last one, in which case the end is
// trimmed instead); if they decode to fewer, the stream starts at a
// positive granule offset.
func (s *Stream) startFromBeginning() error {
	partial := s.asm.partial[:0]
	if cap(partial) > maxPacketSize {
		partial = nil // grown by a large header: let it go
	}
	s.asm = assembler{partial: partial}
	s.dec.Clear()
	s.inputDone, s.endErr = false, nil
	s.out, s.err = nil, nil
	if err := s.loadBatch(); err != nil {
		if s.pkts.len() == 0 && !errors.Is(err, ErrTruncated) && err != io.EOF {
			return err
		}
		s.err = err
	}
	p := &s.pg
	var acc int64
	prev := -1 // blocksize of the previous audio packet
	for i := range s.pkts.len() {
		long, audio, err := s.packetBlock(s.pkts.packet(i))
		if err != nil {
			return err
		}
		if !audio {
			continue
		}
		bs := int(s.blocksize(long))
		if prev >= 0 {
			acc += int64(prev/4 + bs/4)
		}
		prev = bs
	}
	s.startGran = 0
	if p.serial == s.serial && p.granule != -1 && s.err == nil {
		start := p.granule - acc
		if start < 0 && p.eos() {
			start = 0 // single audio page: the end is cut, not the beginning
		}
		s.startGran = start
		s.firstGran = p.granule
		s.firstGranAt = p.off
	}
	s.offset = max(s.startGran, 0)
	s.gran = s.startGran
	s.skipTo = s.offset
	s.pos = 0
	return nil
}

// reposition makes the sequential reader continue at input offset off.
func (s *Stream) reposition(off int64) error {
	if _, err := s.rs.Seek(off, io.SeekStart); err != nil {
		return err
	}
	s.br.Reset(s.rs)
	s.pr.reset(s.br, off)
	return nil
}

// oggFile is the random access to a seekable Ogg file that Vorbis and
// Opus streams share: page searches over windows of the input.
type oggFile struct {
	rs     io.ReadSeeker // nil: forward only
	scan   []byte        // search buffer (seekable streams only)
	endOff int64         // input size (seekable streams)
}

// readScan fills s.scan with the input from off (up to scanStep +
// maxPageSize bytes) and returns it.
func (s *oggFile) readScan(off int64) ([]byte, error) {
	if s.scan == nil {
		s.scan = make([]byte, scanStep+maxPageSize)
	}
	n := min(int64(len(s.scan)), s.endOff-off)
	if n <= 0 {
		return nil, nil
	}
	if _, err := s.rs.Seek(off, io.SeekStart); err != nil {
		return nil, err
	}
	b := s.scan[:n]
	if _, err := io.ReadFull(s.rs, b); err != nil {
		return nil, err
	}
	return b, nil
}

// scanPages calls fn for every valid page (CRC verified) that starts in
// [from, limit), in input order, until fn returns false. Candidate pages
// are found by their capture pattern, so garbage between pages is
// skipped.
func (s *oggFile) scanPages(from, limit int64, fn func(p *page) bool) error {
	var p page
	next := from // end of the last valid page seen
	for off := from; off < limit; off += scanStep {
		b, err := s.readScan(off)
		if err != nil {
			return err
		}
		starts := min(scanStep, limit-off) // page starts examined in this window
		for i := int(max(next-off, 0)); int64(i) < starts && i < len(b); {
			j := bytes.Index(b[i:], capturePattern[:])
			if j < 0 || int64(i+j) >= starts {
				break
			}
			i += j
			if parsePage(b[i:], off+int64(i), &p) != nil {
				i++
				continue
			}
			if !fn(&p) {
				return nil
			}
			i += p.size
			next = off + int64(i)
		}
	}
	return nil
}

// findLastPage locates the last page of the file to learn the final
// granule position, and detects chained streams.
func (s *Stream) findLastPage() error {
	var chainErr error
	for hi := s.endOff; hi > s.dataOff; hi -= scanStep {
		lo := max(hi-scanStep, s.dataOff)
		var lastAny *page
		var lastAnyCopy page
		err := s.scanPages(lo, hi, func(p *page) bool {
			lastAnyCopy = *p
			lastAny = &lastAnyCopy
			if p.bos() && chainErr == nil {
				chainErr = fmt.Errorf("%w: new logical stream at byte %d", ErrChained, p.off)
			}
			if p.serial == s.serial && p.granule != -1 {
				s.lastGran = p.granule
			}
			return true
		})
		if err != nil {
			return err
		}
		if chainErr != nil {
			return chainErr
		}
		if lastAny != nil && hi == s.endOff && lastAny.serial != s.serial {
			return fmt.Errorf("%w: file ends with a page of another logical stream (serial %08x)", ErrChained, lastAny.serial)
		}
		if s.lastGran != -1 {
			return nil
		}
	}
	return nil
}

// SeekFrame positions the stream so that the next Read returns frame frame
// (0 <= frame <= Len()). It is sample-exact: the frames returned after a
// SeekFrame are identical to those a straight decode from the start returns at
// the same position. It bisects over the pages by granule position,
// restarts decoding on a page boundary before the target (decoding one
// extra packet to rebuild the overlap) and discards frames up to the
// target. A successful SeekFrame clears a sticky error.
func (s *Stream) SeekFrame(frame int64) error {
	if s.closed {
		return ErrClosed
	}
	if s.rs == nil {
		return ErrNotSeekable
	}
	n := s.Len()
	if n < 0 {
		n = 0
	}
	if frame < 0 || frame > n {
		return fmt.Errorf("%w: frame %d, stream has %d", ErrOutOfRange, frame, n)
	}
	if err := s.seekGranule(frame + s.offset); err != nil {
		s.err = err
		return err
	}
	s.pos = frame
	return nil
}

func (s *Stream) seekGranule(target int64) error {
	s.out = nil
	s.err = nil
	if end := s.offset + s.Len(); s.Len() >= 0 && target >= end {
		// At the end: nothing more to decode.
		s.pkts.reset()
		s.pktIdx = 0
		s.inputDone, s.endErr = true, io.EOF
		return nil
	}
	search := target
	for {
		if s.firstGran < 0 || search < s.firstGran {
			return s.restartAt(target)
		}
		off, g, err := s.bisect(search)
		if err != nil {
			return err
		}
		if off < 0 {
			return s.restartAt(target)
		}
		start, ok, err := s.pageRestartGranule(off, g)
		if err != nil {
			return err
		}
		if !ok {
			// No packet both starts and ends on that page: look for an
			// earlier page.
			search = g - 1
			continue
		}
		if err := s.reposition(off); err != nil {
			return err
		}
		s.asm.restart()
		s.dec.Clear()
		s.pkts.reset()
		s.pktIdx = 0
		s.inputDone, s.endErr = false, nil
		s.gran = start
		s.skipTo = target
		return nil
	}
}

// restartAt decodes from the first audio page and skips to target.
func (s *Stream) restartAt(target int64) error {
	if err := s.reposition(s.dataOff); err != nil {
		return err
	}
	if err := s.startFromBeginning(); err != nil {
		return err
	}
	s.skipTo = max(target, s.offset)
	return nil
}

// bisect returns the input offset and granule of the last page of the
// stream whose granule position is <= target and not -1, or off = -1 if
// there is none after the first audio page.
func (s *Stream) bisect(target int64) (off, granule int64, err error) {
	return s.bisectGranule(s.serial, s.firstGranAt, s.firstGran, target)
}

// bisectGranule returns the input offset and granule of the last page of
// logical stream serial whose granule position is <= target and not -1,
// searching from the page at lo (granule loGran); off = -1 if loGran is
// already past target.
func (s *oggFile) bisectGranule(serial uint32, lo, loGran, target int64) (off, granule int64, err error) {
	if loGran > target {
		return -1, 0, nil
	}
	hi := s.endOff
	// Invariant: the page at lo has a granule <= target; every page of
	// the stream starting at or after hi has a granule > target (or -1).
	for hi-lo > scanStep {
		mid := lo + (hi-lo)/2
		foundOff, foundGran := int64(-1), int64(0)
		err := s.scanPages(mid, hi, func(p *page) bool {
			if p.serial == serial && p.granule != -1 {
				foundOff, foundGran = p.off, p.granule
				return false
			}
			return true
		})
		if err != nil {
			return 0, 0, err
		}
		if foundOff < 0 || foundGran > target {
			hi = mid
		} else {
			lo, loGran = foundOff, foundGran
		}
	}
	// Linear scan of the remaining window.
	err = s.scanPages(lo+1, s.endOff, func(p *page) bool {
		if p.serial != serial || p.granule == -1 {
			return true
		}
		if p.granule > target {
			return false
		}
		lo, loGran = p.off, p.granule
		return true
	})
	return lo, loGran, err
}

// pageRestartGranule examines the page at off (granule g) and returns the
// granule at which decoding restarted on that page produces its first
// sample: the page's first packet that starts on it is decoded only to
// prime the overlap, and every later packet ending on the page is
// accounted for backwards from g. ok is false if no audio packet starts
// and ends on the page.
func (s *Stream) pageRestartGranule(off, g int64) (start int64, ok bool, err error) {
	b, err := s.readScan(off)
	if err != nil {
		return 0, false, err
	}
	var p page
	if err := parsePage(b, off, &p); err != nil {
		return 0, false, err
	}
	var blocks [maxSegments]int64 // blocksizes of the complete audio packets
	nb := 0
	pos, startPos := 0, 0
	skip := p.continued()
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
		long, audio, err := s.packetBlock(pkt)
		if err != nil {
			return 0, false, err
		}
		if audio {
			blocks[nb] = s.blocksize(long)
			nb++
		}
	}
	if nb == 0 {
		return 0, false, nil
	}
	start = g
	for i := nb - 1; i > 0; i-- {
		start -= blocks[i-1]/4 + blocks[i]/4
	}
	return start, true, nil
}
