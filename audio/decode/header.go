package decode

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// Limits applied to the setup header before it is handed to
// github.com/jfreymuth/vorbis, whose setup code allocates in proportion to
// codebook sizes read from the stream without any bound. Real encoders
// stay far below these (libvorbis files use a few thousand entries in
// total), so they only reject hostile or corrupt input. With them the
// decoder's tables stay below roughly 50 MiB.
const (
	maxTotalEntries   = 1 << 20 // sum of codebook entries
	maxTotalVQValues  = 1 << 22 // sum of entries*dimensions over VQ codebooks
	maxClassbookDims  = 64      // residue classification codebook dimensions
	maxFloor1Values   = 65      // floor 1 X list length (libvorbis: 63+2)
	minBlocksizeExp   = 6       // Vorbis I: blocksizes are 64..8192
	maxBlocksizeExp   = 13
	vorbisHeaderMagic = "vorbis"
)

// bitReader reads Vorbis' LSB-first bit packing and remembers whether a
// read went past the end of the data (reads past the end return 0).
type bitReader struct {
	data []byte
	pos  int  // byte position
	bit  uint // bit position within data[pos]
	eop  bool // end of packet reached
}

// read returns the next n (0..32) bits.
func (r *bitReader) read(n uint) uint32 {
	var v uint32
	for i := uint(0); i < n; i++ {
		if r.pos >= len(r.data) {
			r.eop = true
			return 0
		}
		if r.data[r.pos]>>r.bit&1 != 0 {
			v |= 1 << i
		}
		r.bit++
		if r.bit == 8 {
			r.bit = 0
			r.pos++
		}
	}
	return v
}

func (r *bitReader) flag() bool { return r.read(1) == 1 }

// ilog is the Vorbis ilog function: the number of bits needed to
// represent x (0 for x <= 0).
func ilog(x int) uint {
	var n uint
	for x > 0 {
		n++
		x >>= 1
	}
	return n
}

// isHeaderPacket reports whether p starts with the common Vorbis header
// prefix for header type typ.
func isHeaderPacket(p []byte, typ byte) bool {
	return len(p) >= 7 && p[0] == typ && string(p[1:7]) == vorbisHeaderMagic
}

// identHeader is the parsed Vorbis identification header.
type identHeader struct {
	channels   int
	sampleRate int
	blocksize  [2]int
}

// parseIdent validates the identification header (Vorbis I, 4.2.2).
func parseIdent(p []byte) (identHeader, error) {
	var h identHeader
	if !isHeaderPacket(p, 1) {
		return h, fmt.Errorf("%w: first packet is not a Vorbis identification header", ErrNotVorbis)
	}
	if len(p) < 30 {
		return h, fmt.Errorf("%w: identification header too short (%d bytes)", ErrCorrupt, len(p))
	}
	le := binary.LittleEndian
	if v := le.Uint32(p[7:]); v != 0 {
		return h, fmt.Errorf("%w: unsupported Vorbis version %d", ErrCorrupt, v)
	}
	h.channels = int(p[11])
	rate := le.Uint32(p[12:])
	bs0, bs1 := uint(p[28]&0x0f), uint(p[28]>>4)
	switch {
	case h.channels == 0:
		return h, fmt.Errorf("%w: zero channels", ErrCorrupt)
	case rate == 0 || rate > 1<<30:
		return h, fmt.Errorf("%w: invalid sample rate %d", ErrCorrupt, rate)
	case bs0 < minBlocksizeExp || bs1 > maxBlocksizeExp || bs0 > bs1:
		return h, fmt.Errorf("%w: invalid blocksizes 2^%d, 2^%d", ErrCorrupt, bs0, bs1)
	case p[29]&1 == 0:
		return h, fmt.Errorf("%w: identification header framing bit not set", ErrCorrupt)
	}
	h.sampleRate = int(rate)
	h.blocksize = [2]int{1 << bs0, 1 << bs1}
	return h, nil
}

// parseComments parses the comment header (Vorbis I, 5.2). Field names
// are returned upper-cased (they are case-insensitive ASCII); values are
// kept as raw UTF-8 strings, including large ones such as
// METADATA_BLOCK_PICTURE. A comment without '=' is ignored. The framing
// bit is not required (some taggers omit it).
func parseComments(p []byte) (vendor string, tags map[string][]string, err error) {
	if !isHeaderPacket(p, 3) {
		return "", nil, fmt.Errorf("%w: second packet is not a Vorbis comment header", ErrCorrupt)
	}
	return parseCommentBody(p[7:])
}

// parseCommentBody parses the body of a Vorbis comment structure (vendor
// string, comment count, comments), as Vorbis and Opus headers and FLAC's
// VORBIS_COMMENT block carry it. Bytes after the last comment are ignored.
func parseCommentBody(b []byte) (vendor string, tags map[string][]string, err error) {
	le := binary.LittleEndian
	next := func() (string, bool) {
		if len(b) < 4 {
			return "", false
		}
		n := le.Uint32(b)
		if uint64(n) > uint64(len(b)-4) {
			return "", false
		}
		s := string(b[4 : 4+n])
		b = b[4+n:]
		return s, true
	}
	vendor, ok := next()
	if !ok || len(b) < 4 {
		return "", nil, fmt.Errorf("%w: comment header truncated", ErrCorrupt)
	}
	count := le.Uint32(b)
	b = b[4:]
	// Each comment needs at least its 4-byte length, which bounds count
	// by the packet size before anything is allocated.
	if uint64(count) > uint64(len(b)/4) {
		return "", nil, fmt.Errorf("%w: comment count %d exceeds header size", ErrCorrupt, count)
	}
	tags = make(map[string][]string)
	for i := uint32(0); i < count; i++ {
		c, ok := next()
		if !ok {
			return "", nil, fmt.Errorf("%w: comment %d truncated", ErrCorrupt, i)
		}
		key, value, found := strings.Cut(c, "=")
		if !found {
			continue
		}
		key = strings.ToUpper(key)
		tags[key] = append(tags[key], value)
	}
	return vendor, tags, nil
}

// setupInfo is what this package needs from the setup header: the block
// flag of every mode, so packet durations can be computed without
// decoding.
type setupInfo struct {
	modeLong []bool // modeLong[i]: mode i uses the long blocksize
}

// codebookInfo records what later parts of the setup header are checked
// against.
type codebookInfo struct {
	entries   int
	dims      int
	hasLookup bool
}

// parseSetup walks the whole setup header (Vorbis I, 4.2.4) and rejects
// anything that is out of spec, references a missing codebook, floor,
// residue or mapping, would make github.com/jfreymuth/vorbis allocate
// without bound, or could make its Huffman decoder loop forever (every
// codebook must describe a complete Huffman tree, as libvorbis also
// requires). Each section of the header has its own method on
// setupParser, in stream order.
func parseSetup(p []byte, channels int) (setupInfo, error) {
	if !isHeaderPacket(p, 5) {
		return setupInfo{}, fmt.Errorf("%w: third packet is not a Vorbis setup header", ErrCorrupt)
	}
	sp := &setupParser{r: &bitReader{data: p[7:]}, channels: channels}
	for _, section := range []func() error{sp.codebooks, sp.timeDomain, sp.floors, sp.residues, sp.mappings, sp.modes} {
		if err := section(); err != nil {
			return setupInfo{}, err
		}
	}
	return setupInfo{modeLong: sp.modeLong}, nil
}

// setupParser holds what the sections of a setup header are checked
// against: each section reads its part of r and records the counts later
// sections refer to.
type setupParser struct {
	r        *bitReader
	channels int

	books        []codebookInfo
	floorCount   int
	residueCount int
	mappingCount int
	modeLong     []bool
}

func (sp *setupParser) fail(format string, args ...any) error {
	return fmt.Errorf("%w: setup header: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

// bookOK reports whether b is a defined codebook (with a VQ lookup table
// if needLookup).
func (sp *setupParser) bookOK(b uint32, needLookup bool) bool {
	return int(b) < len(sp.books) && (!needLookup || sp.books[b].hasLookup)
}

// codebooks reads the codebook section, bounding the total entries and
// vector values and checking every Huffman tree.
func (sp *setupParser) codebooks() error {
	r := sp.r
	sp.books = make([]codebookInfo, r.read(8)+1)
	totalEntries, totalValues := 0, 0
	lengths := make([]uint8, 0, 256)
	for i := range sp.books {
		if r.read(24) != 0x564342 {
			return sp.fail("codebook %d: bad sync pattern", i)
		}
		dims := int(r.read(16))
		entries := int(r.read(24))
		if r.eop {
			return sp.fail("codebook %d: truncated", i)
		}
		if dims == 0 || entries == 0 {
			return sp.fail("codebook %d: %d dimensions, %d entries", i, dims, entries)
		}
		totalEntries += entries
		if totalEntries > maxTotalEntries {
			return sp.fail("codebooks have more than %d entries in total", maxTotalEntries)
		}
		var err error
		if lengths, err = sp.codewordLengths(i, entries, lengths[:0]); err != nil {
			return err
		}
		if err := checkHuffman(lengths); err != nil {
			return sp.fail("codebook %d: %v", i, err)
		}
		lookup := r.read(4)
		switch lookup {
		case 0:
		case 1, 2:
			r.read(32) // minimum value
			r.read(32) // delta value
			valueBits := uint(r.read(4)) + 1
			r.read(1) // sequence_p
			var n int
			if lookup == 1 {
				n = lookup1Values(entries, dims)
			} else {
				n = entries * dims
			}
			totalValues += entries * dims
			if totalValues > maxTotalVQValues || n > maxTotalVQValues {
				return sp.fail("codebooks have more than %d vector values in total", maxTotalVQValues)
			}
			// The multiplicands must be present in the packet.
			if int64(n)*int64(valueBits) > int64(len(r.data))*8 {
				return sp.fail("codebook %d: multiplicands exceed header size", i)
			}
			for range n {
				r.read(valueBits)
			}
		default:
			return sp.fail("codebook %d: invalid lookup type %d", i, lookup)
		}
		if r.eop {
			return sp.fail("codebook %d: truncated", i)
		}
		sp.books[i] = codebookInfo{entries: entries, dims: dims, hasLookup: lookup != 0}
	}
	return nil
}

// codewordLengths reads the codeword lengths of codebook i (ordered or
// not, sparse or not) and appends the used ones to lengths.
func (sp *setupParser) codewordLengths(i, entries int, lengths []uint8) ([]uint8, error) {
	r := sp.r
	if !r.flag() { // not ordered
		sparse := r.flag()
		for range entries {
			if sparse && !r.flag() {
				continue // unused entry
			}
			lengths = append(lengths, uint8(r.read(5)+1))
			if r.eop {
				return nil, sp.fail("codebook %d: truncated lengths", i)
			}
		}
		return lengths, nil
	}
	cur := 0
	length := int(r.read(5)) + 1
	for cur < entries {
		n := int(r.read(ilog(entries - cur)))
		if r.eop || cur+n > entries || length > 32 {
			return nil, sp.fail("codebook %d: invalid ordered lengths", i)
		}
		for range n {
			lengths = append(lengths, uint8(length))
		}
		cur += n
		length++
	}
	return lengths, nil
}

// timeDomain reads the time domain transforms: placeholders, must be zero.
func (sp *setupParser) timeDomain() error {
	for n := sp.r.read(6) + 1; n > 0; n-- {
		if sp.r.read(16) != 0 {
			return sp.fail("nonzero time domain transform type")
		}
	}
	return nil
}

// floors reads the floor configurations (types 0 and 1).
func (sp *setupParser) floors() error {
	r := sp.r
	sp.floorCount = int(r.read(6)) + 1
	for i := range sp.floorCount {
		var err error
		switch typ := r.read(16); typ {
		case 0:
			err = sp.floor0(i)
		case 1:
			err = sp.floor1(i)
		default:
			err = sp.fail("floor %d: invalid type %d", i, typ)
		}
		if err != nil {
			return err
		}
		if r.eop {
			return sp.fail("floor %d: truncated", i)
		}
	}
	return nil
}

func (sp *setupParser) floor0(i int) error {
	r := sp.r
	if r.read(8) == 0 { // order
		return sp.fail("floor %d: zero order", i)
	}
	r.read(16) // rate
	if r.read(16) == 0 {
		return sp.fail("floor %d: zero bark map size", i)
	}
	r.read(6) // amplitude bits
	r.read(8) // amplitude offset
	for n := r.read(4) + 1; n > 0; n-- {
		if !sp.bookOK(r.read(8), true) {
			return sp.fail("floor %d: bad codebook", i)
		}
	}
	return nil
}

func (sp *setupParser) floor1(i int) error {
	r := sp.r
	partitions := int(r.read(5))
	classOf := make([]int, partitions)
	maxClass := -1
	for j := range classOf {
		classOf[j] = int(r.read(4))
		maxClass = max(maxClass, classOf[j])
	}
	classDims := make([]int, maxClass+1)
	for c := range classDims {
		classDims[c] = int(r.read(3)) + 1
		sub := r.read(2)
		if sub > 0 && !sp.bookOK(r.read(8), false) {
			return sp.fail("floor %d: bad master codebook", i)
		}
		for range 1 << sub {
			if b := r.read(8); b > 0 && !sp.bookOK(b-1, false) {
				return sp.fail("floor %d: bad subclass codebook", i)
			}
		}
	}
	r.read(2) // multiplier - 1
	rangeBits := uint(r.read(4))
	xs := []uint32{0, 1 << rangeBits}
	for _, c := range classOf {
		for range classDims[c] {
			xs = append(xs, r.read(rangeBits))
			if len(xs) > maxFloor1Values {
				return sp.fail("floor %d: more than %d X values", i, maxFloor1Values)
			}
		}
	}
	seen := make(map[uint32]bool, len(xs))
	for _, x := range xs {
		if seen[x] {
			return sp.fail("floor %d: duplicate X value %d", i, x)
		}
		seen[x] = true
	}
	return nil
}

// residues reads the residue configurations (types 0..2).
func (sp *setupParser) residues() error {
	r := sp.r
	sp.residueCount = int(r.read(6)) + 1
	for i := range sp.residueCount {
		if typ := r.read(16); typ > 2 {
			return sp.fail("residue %d: invalid type %d", i, typ)
		}
		r.read(24) // begin
		r.read(24) // end
		r.read(24) // partition size - 1
		classifications := int(r.read(6)) + 1
		classbook := r.read(8)
		if !sp.bookOK(classbook, false) {
			return sp.fail("residue %d: bad classbook", i)
		}
		cb := sp.books[classbook]
		if cb.dims > maxClassbookDims {
			return sp.fail("residue %d: classbook has %d dimensions", i, cb.dims)
		}
		partvals := 1
		for range cb.dims {
			partvals *= classifications
			if partvals > cb.entries {
				return sp.fail("residue %d: classbook too small for %d classifications", i, classifications)
			}
		}
		cascade := make([]uint32, classifications)
		for j := range cascade {
			low := r.read(3)
			high := uint32(0)
			if r.flag() {
				high = r.read(5)
			}
			cascade[j] = high<<3 | low
		}
		for _, c := range cascade {
			for bit := range 8 {
				if c&(1<<bit) != 0 && !sp.bookOK(r.read(8), true) {
					return sp.fail("residue %d: bad VQ codebook", i)
				}
			}
		}
		if r.eop {
			return sp.fail("residue %d: truncated", i)
		}
	}
	return nil
}

// mappings reads the channel mappings (type 0).
func (sp *setupParser) mappings() error {
	r, channels := sp.r, sp.channels
	sp.mappingCount = int(r.read(6)) + 1
	for i := range sp.mappingCount {
		if typ := r.read(16); typ != 0 {
			return sp.fail("mapping %d: invalid type %d", i, typ)
		}
		submaps := 1
		if r.flag() {
			submaps = int(r.read(4)) + 1
		}
		if r.flag() {
			steps := int(r.read(8)) + 1
			bits := ilog(channels - 1)
			for range steps {
				mag, ang := int(r.read(bits)), int(r.read(bits))
				if mag == ang || mag >= channels || ang >= channels {
					return sp.fail("mapping %d: invalid channel coupling", i)
				}
			}
		}
		if r.read(2) != 0 {
			return sp.fail("mapping %d: reserved bits set", i)
		}
		if submaps > 1 {
			for range channels {
				if int(r.read(4)) >= submaps {
					return sp.fail("mapping %d: bad submap multiplex", i)
				}
			}
		}
		for range submaps {
			r.read(8) // unused time configuration
			if int(r.read(8)) >= sp.floorCount {
				return sp.fail("mapping %d: bad floor number", i)
			}
			if int(r.read(8)) >= sp.residueCount {
				return sp.fail("mapping %d: bad residue number", i)
			}
		}
		if r.eop {
			return sp.fail("mapping %d: truncated", i)
		}
	}
	return nil
}

// modes reads the modes (the block flag of each is what this package
// keeps) and the final framing bit.
func (sp *setupParser) modes() error {
	r := sp.r
	modeCount := int(r.read(6)) + 1
	sp.modeLong = make([]bool, modeCount)
	for i := range sp.modeLong {
		sp.modeLong[i] = r.flag()
		if r.read(16) != 0 || r.read(16) != 0 {
			return sp.fail("mode %d: nonzero window or transform type", i)
		}
		if int(r.read(8)) >= sp.mappingCount {
			return sp.fail("mode %d: bad mapping number", i)
		}
	}
	if !r.flag() || r.eop {
		return sp.fail("framing bit not set")
	}
	return nil
}

// checkHuffman verifies that the used codeword lengths describe a complete
// prefix code (Kraft sum exactly 1) with at least two codewords: an
// overfull tree cannot be built, and a tree with holes would let
// jfreymuth/vorbis' lookup spin forever on input past the packet end.
// (libvorbis rejects both too; it special-cases single-entry codebooks,
// which jfreymuth/vorbis cannot build, so they are rejected here.)
func checkHuffman(lengths []uint8) error {
	if len(lengths) < 2 {
		return fmt.Errorf("%d used entries", len(lengths))
	}
	var sum uint64
	for _, l := range lengths {
		sum += 1 << (32 - uint(l))
		if sum > 1<<32 {
			return fmt.Errorf("overspecified Huffman tree")
		}
	}
	if sum != 1<<32 {
		return fmt.Errorf("underspecified Huffman tree")
	}
	return nil
}

// lookup1Values returns the greatest integer v with v^dims <= entries
// (Vorbis I, 9.2.3), computed exactly.
func lookup1Values(entries, dims int) int {
	pow := func(v int) int { // v^dims, saturating above entries
		r := 1
		for range dims {
			r *= v
			if r > entries {
				return entries + 1
			}
		}
		return r
	}
	lo, hi := 0, entries // pow(lo) <= entries always holds
	for lo < hi {
		mid := lo + (hi-lo+1)/2
		if pow(mid) <= entries {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo
}
