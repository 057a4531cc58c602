package library

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Limits of an embedded picture. The Vorbis comment header that carries
// it is at most 16 MiB in package decode, so larger pictures cannot occur.
const (
	maxPictureBytes = 16 << 20
	maxPictureMIME  = 256
	maxPictureDesc  = 64 << 10
)

// Picture types of the FLAC/ID3v2 APIC list that matter here.
const (
	pictureFrontCover = 3
)

// picture is a decoded FLAC METADATA_BLOCK_PICTURE.
type picture struct {
	Type        uint32
	MIME        string
	Description string
	Width       uint32
	Height      uint32
	Depth       uint32
	Colors      uint32
	Data        []byte
}

var errPicture = errors.New("invalid picture block")

// parsePictureBlock parses the body of a FLAC picture metadata block
// (https://xiph.org/flac/format.html#metadata_block_picture): big-endian
// 32-bit picture type, MIME length and MIME type, description length and
// UTF-8 description, width, height, colour depth, colour count, data
// length and data. Every length is checked against the input and the
// limits above; bytes after the data are ignored. A picture that is only
// a link (MIME "-->") is rejected: the library never follows URLs from
// files.
func parsePictureBlock(b []byte) (picture, error) {
	var p picture
	r := byteReader{b: b}
	p.Type = r.u32()
	mimeLen := r.u32()
	if mimeLen > maxPictureMIME {
		return picture{}, fmt.Errorf("%w: MIME type of %d bytes", errPicture, mimeLen)
	}
	p.MIME = string(r.bytes(mimeLen))
	descLen := r.u32()
	if descLen > maxPictureDesc {
		return picture{}, fmt.Errorf("%w: description of %d bytes", errPicture, descLen)
	}
	p.Description = cleanText(string(r.bytes(descLen)))
	p.Width, p.Height, p.Depth, p.Colors = r.u32(), r.u32(), r.u32(), r.u32()
	dataLen := r.u32()
	if dataLen > maxPictureBytes {
		return picture{}, fmt.Errorf("%w: data of %d bytes", errPicture, dataLen)
	}
	p.Data = r.bytes(dataLen)
	if r.short {
		return picture{}, fmt.Errorf("%w: truncated (%d bytes)", errPicture, len(b))
	}
	if p.Type > 20 {
		return picture{}, fmt.Errorf("%w: picture type %d", errPicture, p.Type)
	}
	if p.MIME == "-->" {
		return picture{}, fmt.Errorf("%w: a link, not an image", errPicture)
	}
	if len(p.Data) == 0 {
		return picture{}, fmt.Errorf("%w: no image data", errPicture)
	}
	return p, nil
}

// byteReader reads big-endian fields; reading past the end sets short
// and returns zeros.
type byteReader struct {
	b     []byte
	short bool
}

func (r *byteReader) u32() uint32 {
	if len(r.b) < 4 {
		r.short, r.b = true, nil
		return 0
	}
	v := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

func (r *byteReader) bytes(n uint32) []byte {
	if uint64(len(r.b)) < uint64(n) {
		r.short, r.b = true, nil
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

// decodeBase64 accepts standard base64 with or without padding and with
// line breaks or spaces inside (some taggers wrap long values).
func decodeBase64(s string) ([]byte, error) {
	if len(s) > maxPictureBytes*4/3+4096 {
		return nil, fmt.Errorf("%w: value of %d bytes", errPicture, len(s))
	}
	s = strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\r', '\n':
			return -1
		}
		return r
	}, s)
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		b, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
	}
	if err != nil {
		return nil, fmt.Errorf("%w: bad base64: %v", errPicture, err)
	}
	return b, nil
}

// parsePictureTag decodes one METADATA_BLOCK_PICTURE comment value.
func parsePictureTag(v string) (picture, error) {
	b, err := decodeBase64(v)
	if err != nil {
		return picture{}, err
	}
	return parsePictureBlock(b)
}

// embeddedCover returns the best image embedded in Vorbis comments: the
// first METADATA_BLOCK_PICTURE of type "front cover", else the first
// valid one, else the legacy COVERART field (plain base64 image bytes).
// Only data that sniffs as an image counts. ok is false when there is
// none.
func embeddedCover(c map[string][]string) (data []byte, ok bool) {
	var fallback []byte
	for _, v := range c["METADATA_BLOCK_PICTURE"] {
		p, err := parsePictureTag(v)
		if err != nil || imageType(p.Data) == "" {
			continue
		}
		if p.Type == pictureFrontCover {
			return p.Data, true
		}
		if fallback == nil {
			fallback = p.Data
		}
	}
	if fallback != nil {
		return fallback, true
	}
	for _, v := range c["COVERART"] {
		b, err := decodeBase64(v)
		if err == nil && len(b) <= maxPictureBytes && imageType(b) != "" {
			return b, true
		}
	}
	return nil, false
}

// imageType is the Content-Type of image bytes, sniffed from the data
// (never taken from a file's own claim), or "" when they are not a
// recognised image.
func imageType(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	ct := http.DetectContentType(b)
	if !strings.HasPrefix(ct, "image/") {
		return ""
	}
	return ct
}
