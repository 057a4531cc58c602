package decode

import (
	"encoding/binary"
	"errors"
	"io"
)

// Ogg framing (RFC 3533).
const (
	pageHeaderSize = 27
	maxSegments    = 255
	maxPageSize    = pageHeaderSize + maxSegments + maxSegments*255 // 65307

	flagContinued = 0x01 // first packet on the page continues one from an earlier page
	flagBOS       = 0x02 // first page of a logical stream
	flagEOS       = 0x04 // last page of a logical stream

	// maxPacketSize caps the size of one reassembled audio packet. Real
	// Vorbis audio packets are a few KiB at most; anything bigger is
	// treated as corruption so memory stays bounded.
	maxPacketSize = 1 << 20

	// maxHeaderSize caps the comment and setup header packets. It is
	// larger than maxPacketSize because the comment header may embed
	// cover art (METADATA_BLOCK_PICTURE), which can be a few MiB.
	maxHeaderSize = 16 << 20

	// maxPacketPages caps how many pages one packet may span. A 1 MiB
	// packet needs at least 17 full pages; the cap only exists so that a
	// flood of empty continuation pages is rejected early. Header packets
	// may span maxHeaderPages pages.
	maxPacketPages = 4096
	maxHeaderPages = 1 << 16
)

var capturePattern = [4]byte{'O', 'g', 'g', 'S'}

// crcTable is the lookup table for the Ogg CRC-32: polynomial 0x04c11db7,
// most significant bit first, initial value 0, no final inversion.
var crcTable = func() (t [256]uint32) {
	for i := range t {
		c := uint32(i) << 24
		for range 8 {
			if c&0x80000000 != 0 {
				c = c<<1 ^ 0x04c11db7
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return t
}()

// crcUpdate continues an Ogg CRC-32 over b.
func crcUpdate(crc uint32, b []byte) uint32 {
	for _, v := range b {
		crc = crc<<8 ^ crcTable[byte(crc>>24)^v]
	}
	return crc
}

// pageCRC computes the checksum of a complete page whose CRC field (bytes
// 22..25) is treated as zero, without modifying the page.
func pageCRC(pg []byte) uint32 {
	var zero [4]byte
	crc := crcUpdate(0, pg[:22])
	crc = crcUpdate(crc, zero[:])
	return crcUpdate(crc, pg[26:])
}

// page is one parsed Ogg page. Its slices alias the buffer of the reader
// that produced it and are valid until that reader's next call.
type page struct {
	flags   byte
	granule int64 // -1: no packet finishes on this page
	serial  uint32
	seq     uint32
	segs    []byte // lacing values
	body    []byte
	off     int64 // byte offset of the page's first byte in the input
	size    int   // total size of the page in bytes
}

func (p *page) continued() bool { return p.flags&flagContinued != 0 }
func (p *page) bos() bool       { return p.flags&flagBOS != 0 }
func (p *page) eos() bool       { return p.flags&flagEOS != 0 }

// errShortPage is returned by parsePage when b ends before the page does.
var errShortPage = errors.New("short page")

// parsePage parses the page at the start of b, which was found at byte
// offset off of the input, verifying capture pattern, version and CRC. It
// returns errShortPage if b is too short to hold the whole page, otherwise
// nil or an ErrCorrupt error. p's slices alias b.
func parsePage(b []byte, off int64, p *page) error {
	if len(b) < pageHeaderSize {
		return errShortPage
	}
	if [4]byte(b[:4]) != capturePattern {
		return corruptf(off, "missing Ogg capture pattern")
	}
	if b[4] != 0 {
		return corruptf(off, "unsupported Ogg version %d", b[4])
	}
	nseg := int(b[26])
	if len(b) < pageHeaderSize+nseg {
		return errShortPage
	}
	segs := b[pageHeaderSize : pageHeaderSize+nseg]
	bodyLen := 0
	for _, v := range segs {
		bodyLen += int(v)
	}
	size := pageHeaderSize + nseg + bodyLen
	if len(b) < size {
		return errShortPage
	}
	if got, want := pageCRC(b[:size]), binary.LittleEndian.Uint32(b[22:26]); got != want {
		return corruptf(off, "page CRC mismatch (computed %08x, stored %08x)", got, want)
	}
	*p = page{
		flags:   b[5],
		granule: int64(binary.LittleEndian.Uint64(b[6:14])),
		serial:  binary.LittleEndian.Uint32(b[14:18]),
		seq:     binary.LittleEndian.Uint32(b[18:22]),
		segs:    segs,
		body:    b[pageHeaderSize+nseg : size],
		off:     off,
		size:    size,
	}
	return nil
}

// pageReader reads consecutive Ogg pages from an io.Reader. It does not
// resynchronise: any garbage between pages is reported as ErrCorrupt.
// It is not safe for concurrent use.
type pageReader struct {
	r   io.Reader
	off int64  // input offset of the next page
	buf []byte // maxPageSize bytes, reused for every page
}

func newPageReader(r io.Reader, off int64) *pageReader {
	return &pageReader{r: r, off: off, buf: make([]byte, maxPageSize)}
}

// reset makes the reader continue at input offset off, which r must be
// positioned at.
func (pr *pageReader) reset(r io.Reader, off int64) {
	pr.r = r
	pr.off = off
}

// next reads the next page into p. It returns io.EOF if the input ends
// exactly at a page boundary, an ErrTruncated error if it ends inside a
// page, and an ErrCorrupt error for an invalid page. It performs no
// allocation.
func (pr *pageReader) next(p *page) error {
	b := pr.buf
	n, err := io.ReadFull(pr.r, b[:pageHeaderSize])
	if err != nil {
		if n == 0 && err == io.EOF {
			return io.EOF
		}
		if err == io.ErrUnexpectedEOF {
			return truncatedf(pr.off, "input ends inside a page header")
		}
		return err
	}
	if [4]byte(b[:4]) != capturePattern {
		return corruptf(pr.off, "missing Ogg capture pattern")
	}
	if b[4] != 0 {
		return corruptf(pr.off, "unsupported Ogg version %d", b[4])
	}
	nseg := int(b[26])
	if _, err := io.ReadFull(pr.r, b[pageHeaderSize:pageHeaderSize+nseg]); err != nil {
		return pr.readErr(err)
	}
	bodyLen := 0
	for _, v := range b[pageHeaderSize : pageHeaderSize+nseg] {
		bodyLen += int(v)
	}
	size := pageHeaderSize + nseg + bodyLen
	if _, err := io.ReadFull(pr.r, b[pageHeaderSize+nseg:size]); err != nil {
		return pr.readErr(err)
	}
	if err := parsePage(b[:size], pr.off, p); err != nil {
		return err
	}
	pr.off += int64(size)
	return nil
}

func (pr *pageReader) readErr(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return truncatedf(pr.off, "input ends inside a page")
	}
	return err
}

// packetList holds packets in one contiguous, reusable arena.
type packetList struct {
	arena []byte
	ends  []int // ends[i] is the end offset of packet i in arena
}

func (l *packetList) reset() {
	l.arena = l.arena[:0]
	l.ends = l.ends[:0]
}

func (l *packetList) len() int { return len(l.ends) }

// packet returns packet i; it aliases the arena.
func (l *packetList) packet(i int) []byte {
	start := 0
	if i > 0 {
		start = l.ends[i-1]
	}
	return l.arena[start:l.ends[i]]
}

func (l *packetList) add(p []byte) {
	l.arena = append(l.arena, p...)
	l.ends = append(l.ends, len(l.arena))
}

// assembler turns the pages of one logical stream into packets, checking
// page sequence numbers, continuation flags and the packet size caps
// (maxPacketSize and maxPacketPages unless header is set). It is not safe
// for concurrent use.
type assembler struct {
	header    bool // header packets: maxHeaderSize and maxHeaderPages apply
	serial    uint32
	nextSeq   uint32
	haveSeq   bool
	partial   []byte // data of a packet that continues on the next page
	inPacket  bool   // partial holds an unfinished packet
	pages     int    // pages spanned so far by the unfinished packet
	skipFirst bool   // drop a leading continuation (reader was repositioned)
}

// restart forgets all state; the next page may begin with a continuation,
// which is dropped (used after repositioning the input).
func (a *assembler) restart() {
	a.haveSeq = false
	a.partial = a.partial[:0]
	a.inPacket = false
	a.pages = 0
	a.skipFirst = true
}

// add consumes page p (which must belong to the assembler's serial) and
// appends every packet that finishes on it to out, in order. A packet
// that continues on the next page is kept internally.
func (a *assembler) add(p *page, out *packetList) error {
	if a.haveSeq && p.seq != a.nextSeq {
		return corruptf(p.off, "page sequence gap (expected %d, got %d)", a.nextSeq, p.seq)
	}
	a.haveSeq = true
	a.nextSeq = p.seq + 1

	maxSize, maxPages := maxPacketSize, maxPacketPages
	if a.header {
		maxSize, maxPages = maxHeaderSize, maxHeaderPages
	}
	dropping := false // discarding the tail of a packet whose head we never saw
	switch {
	case p.continued() && a.inPacket:
		a.pages++
		if a.pages > maxPages {
			return corruptf(p.off, "packet spans more than %d pages", maxPages)
		}
	case p.continued() && a.skipFirst:
		dropping = true
	case p.continued():
		return corruptf(p.off, "page continues a packet but none is in progress")
	case a.inPacket:
		return corruptf(p.off, "packet in progress is not continued on the next page")
	}
	a.skipFirst = false

	body := p.body
	start := 0 // start of the current packet's data within body
	pos := 0
	for _, lace := range p.segs {
		pos += int(lace)
		if lace == 255 {
			continue
		}
		// A packet (or the tail of one) ends here.
		chunk := body[start:pos]
		start = pos
		switch {
		case dropping:
			dropping = false
		case a.inPacket:
			if len(a.partial)+len(chunk) > maxSize {
				return corruptf(p.off, "packet larger than %d bytes", maxSize)
			}
			a.partial = append(a.partial, chunk...)
			out.add(a.partial)
			a.partial = a.partial[:0]
			a.inPacket = false
			a.pages = 0
		default:
			out.add(chunk)
		}
	}
	if len(p.segs) > 0 && p.segs[len(p.segs)-1] == 255 {
		// The last packet continues on the next page.
		chunk := body[start:pos]
		switch {
		case dropping:
			// Still inside a packet whose head we skipped: keep
			// dropping it on the next page.
			a.skipFirst = true
		case a.inPacket:
			if len(a.partial)+len(chunk) > maxSize {
				return corruptf(p.off, "packet larger than %d bytes", maxSize)
			}
			a.partial = append(a.partial, chunk...)
		default:
			a.partial = append(a.partial[:0], chunk...)
			a.inPacket = true
			a.pages = 1
		}
	} else if dropping {
		// Zero-segment continuation page while skipping: keep skipping.
		a.skipFirst = true
	}
	return nil
}
