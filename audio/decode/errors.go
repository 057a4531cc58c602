package decode

import (
	"errors"
	"fmt"
	"io"
)

// Sentinel errors. Errors returned by this package wrap one of these (test
// with errors.Is); the wrapping message carries context such as the byte
// offset of the offending page.
var (
	// ErrUnknownFormat means the input is none of the formats this
	// package decodes (Ogg Vorbis, Ogg Opus, FLAC, MP3); the message names
	// what it looks like when that is recognisable (MP4/M4A, WAV, ...).
	ErrUnknownFormat = errors.New("decode: unsupported audio format")

	// ErrUnsupported means the format is recognised but this stream uses
	// a feature the decoder does not implement (MPEG 2.5 or Layer I/II,
	// FLAC above 32 bits or 8 channels, Opus mapping families other than
	// 0 and 1, a missing system libopus).
	ErrUnsupported = errors.New("decode: unsupported stream")

	// ErrNotVorbis means the input is not an Ogg stream, or its first
	// logical stream does not carry Vorbis audio.
	ErrNotVorbis = errors.New("decode: not an Ogg Vorbis stream")

	// ErrCorrupt means the input is structurally invalid: bad capture
	// pattern, unsupported Ogg version, CRC mismatch, inconsistent
	// continuation flags, gap in page sequence numbers, oversized packet,
	// malformed Vorbis header or audio packet (including any panic inside
	// github.com/jfreymuth/vorbis, which is recovered and reported as
	// ErrCorrupt).
	ErrCorrupt = errors.New("decode: corrupt stream")

	// ErrTruncated means the input ended before the end-of-stream page: in
	// the middle of a page, in the middle of a packet, or at a page
	// boundary without the EOS flag. Everything decodable before that point
	// has been returned by Read. errors.Is(err, io.ErrUnexpectedEOF) is
	// also true for it.
	ErrTruncated = fmt.Errorf("decode: truncated stream: %w", io.ErrUnexpectedEOF)

	// ErrChained means a second logical stream follows the Vorbis stream
	// (a chained Ogg file, RFC 3533 section 4). Chained streams are not
	// supported; with NewReader the first link is fully decoded before
	// this error is returned, Open reports it immediately.
	ErrChained = errors.New("decode: chained Ogg streams are not supported")

	// ErrNotSeekable is returned by SeekFrame on a Stream created by NewReader.
	ErrNotSeekable = errors.New("decode: stream is not seekable")

	// ErrClosed is returned by methods called after Close.
	ErrClosed = errors.New("decode: stream closed")
)

// corruptf returns an error wrapping ErrCorrupt that mentions the byte
// offset where the problem was found.
func corruptf(off int64, format string, args ...any) error {
	return fmt.Errorf("%w: %s (at byte %d)", ErrCorrupt, fmt.Sprintf(format, args...), off)
}

// truncatedf returns an error wrapping ErrTruncated.
func truncatedf(off int64, format string, args ...any) error {
	return fmt.Errorf("%w: %s (at byte %d)", ErrTruncated, fmt.Sprintf(format, args...), off)
}
