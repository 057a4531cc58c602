package decode

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
)

// Decoder is one opened track of any supported format, decoded to
// interleaved float32 frames. Every format behaves the same way:
//
//   - sample-exact: Len() frames come out, encoder priming and padding
//     already removed (Vorbis and Opus by granule position and pre-skip,
//     MP3 by the LAME/Xing info tag, FLAC has none); SeekFrame lands on
//     exactly the requested frame;
//   - unclamped where the codec allows it (Vorbis, Opus, FLAC); go-mp3
//     produces 16-bit samples, so MP3 is clipped at full scale;
//   - never panics: a panic inside a codec library is recovered and
//     reported as ErrCorrupt, and every error wraps one of this package's
//     sentinels (ErrUnknownFormat, ErrUnsupported, ErrNotVorbis, ErrCorrupt,
//     ErrTruncated, ErrChained, ErrNotSeekable, ErrOutOfRange, ErrClosed)
//     or is an I/O error of the input.
//
// Read fills dst with whole frames: it returns n > 0 with a nil error, or
// 0 with an error (io.EOF at the end of the track; ErrTruncated if the
// input ended early, after every decodable frame was returned; another
// error). Errors are sticky until a successful SeekFrame.
//
// A Decoder is not safe for concurrent use; distinct Decoders are
// independent. Close does not close the underlying reader.
type Decoder interface {
	// Codec names the format: "vorbis", "opus", "flac" or "mp3".
	Codec() string
	SampleRate() int
	Channels() int
	// BitDepth is the source's bits per sample for lossless formats
	// (FLAC: 4..32) and 0 for lossy ones.
	BitDepth() int
	// Len is the track length in frames, -1 if unknown (a forward-only
	// stream before its end, a file without length information).
	Len() int64
	// Position is the index of the frame the next Read returns.
	Position() int64
	// Tags returns the metadata as Vorbis comments: upper-case field
	// names, values in file order. Other formats' tags are mapped to the
	// same names (TITLE, ARTIST, ALBUM, ALBUMARTIST, DATE, TRACKNUMBER,
	// DISCNUMBER, REPLAYGAIN_*, R128_*), and embedded pictures (FLAC
	// PICTURE blocks, ID3v2 APIC frames) are returned as
	// METADATA_BLOCK_PICTURE values, base64 FLAC picture blocks, as Vorbis
	// files carry them. The map is the caller's.
	Tags() map[string][]string
	SeekFrame(frame int64) error
	Read(dst []float32) (int, error)
	Close() error
}

// Format kinds recognised by sniffing.
type kind int

const (
	kindUnknown kind = iota
	kindVorbis       // Ogg, first stream not Opus (Vorbis decides)
	kindOpus         // Ogg whose first page carries OpusHead
	kindFLAC         // fLaC, possibly after an ID3v2 tag
	kindMP3          // ID3v2 tag or an MPEG audio frame header
)

// sniffLen is how many bytes sniff needs to look at (an ID3v2 tag
// before them is skipped first).
const sniffLen = maxPageHeader + 8

// maxPageHeader is the largest Ogg page header: 27 bytes and 255 lacing
// values.
const maxPageHeader = pageHeaderSize + maxSegments

// id3v2Size returns the total size of the ID3v2 tag at the start of b
// (header, body and footer), 0 if b does not start with one.
func id3v2Size(b []byte) int64 {
	if len(b) < 10 || string(b[:3]) != "ID3" || b[3] == 0xff || b[4] == 0xff ||
		b[6]|b[7]|b[8]|b[9] >= 0x80 {
		return 0
	}
	n := int64(b[6])<<21 | int64(b[7])<<14 | int64(b[8])<<7 | int64(b[9])
	n += 10
	if b[5]&0x10 != 0 { // footer present
		n += 10
	}
	return n
}

// sniff tells the format from the first bytes of a file (after any ID3v2
// tag). hadID3 says an ID3v2 tag preceded them.
func sniff(b []byte, hadID3 bool) kind {
	switch {
	case bytes.HasPrefix(b, []byte("fLaC")):
		return kindFLAC
	case bytes.HasPrefix(b, capturePattern[:]):
		if len(b) >= pageHeaderSize {
			body := pageHeaderSize + int(b[26])
			if len(b) >= body+8 && string(b[body:body+8]) == "OpusHead" {
				return kindOpus
			}
		}
		return kindVorbis
	case len(b) >= 4 && validMPEGHeader(binary.BigEndian.Uint32(b)):
		return kindMP3
	case hadID3:
		return kindMP3 // an ID3v2 tag followed by junk: MP3 decides
	}
	return kindUnknown
}

// Open sniffs the format of the seekable input at its current position
// and opens the matching decoder. It does not take ownership of r: r must
// not be used by anyone else while the Decoder is in use. Errors wrap
// ErrUnknownFormat (not a format this package decodes: the name of what
// it looks like is in the message), ErrUnsupported, ErrNotVorbis,
// ErrCorrupt, ErrTruncated or ErrChained, or are I/O errors.
func Open(r io.ReadSeeker) (Decoder, error) {
	base, err := r.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, err
	}
	head := make([]byte, sniffLen)
	n, err := io.ReadFull(r, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return nil, err
	}
	head = head[:n]
	skip := id3v2Size(head)
	if skip > 0 {
		if _, err := r.Seek(base+skip, io.SeekStart); err != nil {
			return nil, err
		}
		n, err := io.ReadFull(r, head[:cap(head)])
		if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
			return nil, err
		}
		head = head[:n]
	}
	if _, err := r.Seek(base, io.SeekStart); err != nil {
		return nil, err
	}
	switch k := sniff(head, skip > 0); k {
	case kindVorbis:
		return OpenVorbis(r)
	case kindOpus:
		return openOpus(r, r)
	case kindFLAC:
		return openFLAC(r, r, skip)
	case kindMP3:
		return openMP3(r, r)
	default:
		return nil, unknownFormat(head)
	}
}

// NewReader is Open for an input that cannot seek (or whose end is
// missing): the Decoder reads forward only, SeekFrame returns
// ErrNotSeekable, and Len may be -1 until the end was read.
func NewReader(r io.Reader) (Decoder, error) {
	br := bufio.NewReaderSize(r, readBufferSize)
	head, _ := br.Peek(sniffLen)
	skip := id3v2Size(head)
	if skip > 0 {
		// A forward-only MP3 or FLAC loses its ID3v2 tag (tags only).
		if _, err := br.Discard(int(skip)); err != nil {
			return nil, truncatedf(0, "input ends inside the ID3v2 tag")
		}
		head, _ = br.Peek(sniffLen)
	}
	switch k := sniff(head, skip > 0); k {
	case kindVorbis:
		return NewVorbisReader(br)
	case kindOpus:
		return openOpus(br, nil)
	case kindFLAC:
		return openFLAC(br, nil, 0)
	case kindMP3:
		return openMP3(br, nil)
	default:
		return nil, unknownFormat(head)
	}
}

// unknownFormat names what a file that is no supported format looks like.
func unknownFormat(b []byte) error {
	what := "unrecognised data"
	switch {
	case len(b) >= 8 && string(b[4:8]) == "ftyp":
		what = "MP4/M4A (AAC or ALAC)"
	case len(b) >= 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WAVE":
		what = "WAV"
	case len(b) >= 4 && (string(b[:4]) == "FORM"):
		what = "AIFF"
	case len(b) >= 4 && string(b[:4]) == "wvpk":
		what = "WavPack"
	case len(b) >= 4 && string(b[:4]) == "MAC ":
		what = "Monkey's Audio"
	case len(b) >= 16 && bytes.Equal(b[:16], []byte{0x30, 0x26, 0xb2, 0x75, 0x8e, 0x66, 0xcf, 0x11, 0xa6, 0xd9, 0x00, 0xaa, 0x00, 0x62, 0xce, 0x6c}):
		what = "ASF/WMA"
	case len(b) == 0:
		what = "an empty file"
	}
	return fmt.Errorf("%w: %s", ErrUnknownFormat, what)
}

// recovered turns a panic inside a codec library into ErrCorrupt. Use as
// defer recovered(&err, "flac").
func recovered(err *error, codec string) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%w: %s decoder panic: %v", ErrCorrupt, codec, r)
	}
}
