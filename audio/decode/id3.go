package decode

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"strings"
	"unicode/utf16"
)

// maxID3Size bounds the ID3v2 tag read into memory (cover art included).
const maxID3Size = 32 << 20

// id3Frames maps ID3v2.3/2.4 frame ids (and their ID3v2.2 three-letter
// forms) to what they become in Tags. To support a new frame, add it
// here: text frames need only a name; others get their own handler
// (lyrics frames, USLT/SYLT, would be added the same way).
var id3Frames = map[string]id3Handler{
	"TIT2": id3Text("TITLE"), "TT2": id3Text("TITLE"),
	"TPE1": id3Text("ARTIST"), "TP1": id3Text("ARTIST"),
	"TALB": id3Text("ALBUM"), "TAL": id3Text("ALBUM"),
	"TPE2": id3Text("ALBUMARTIST"), "TP2": id3Text("ALBUMARTIST"),
	"TRCK": id3Text("TRACKNUMBER"), "TRK": id3Text("TRACKNUMBER"),
	"TPOS": id3Text("DISCNUMBER"), "TPA": id3Text("DISCNUMBER"),
	"TDRC": id3Text("DATE"), "TYER": id3Text("DATE"), "TYE": id3Text("DATE"),
	"TCON": id3Text("GENRE"), "TCO": id3Text("GENRE"),
	"TCOM": id3Text("COMPOSER"), "TCM": id3Text("COMPOSER"),
	"TXXX": id3UserText, "TXX": id3UserText,
	"COMM": id3Comment, "COM": id3Comment,
	"APIC": id3Picture, "PIC": id3Picture,
}

// id3Handler turns one frame's body into tags. v22 says the tag is
// ID3v2.2 (three-letter ids, PIC with a three-letter image format).
type id3Handler func(body []byte, v22 bool, tags map[string][]string)

func id3Text(name string) id3Handler {
	return func(body []byte, _ bool, tags map[string][]string) {
		if len(body) < 1 {
			return
		}
		for _, v := range id3Strings(body[0], body[1:]) {
			if v != "" {
				tags[name] = append(tags[name], v)
			}
		}
	}
}

// id3UserText: TXXX, a description and a value (REPLAYGAIN_TRACK_GAIN
// and friends are stored this way); the description becomes the name.
func id3UserText(body []byte, _ bool, tags map[string][]string) {
	if len(body) < 1 {
		return
	}
	s := id3Strings(body[0], body[1:])
	if len(s) < 2 || s[0] == "" {
		return
	}
	name := strings.ToUpper(s[0])
	tags[name] = append(tags[name], s[1:]...)
}

// id3Comment: COMM, language, short description and the text.
func id3Comment(body []byte, _ bool, tags map[string][]string) {
	if len(body) < 4 {
		return
	}
	s := id3Strings(body[0], body[4:])
	if len(s) >= 2 && s[len(s)-1] != "" {
		tags["COMMENT"] = append(tags["COMMENT"], s[len(s)-1])
	}
}

// id3Picture: APIC (or v2.2 PIC), stored as a FLAC picture block so that
// every format's cover art looks the same (METADATA_BLOCK_PICTURE).
func id3Picture(body []byte, v22 bool, tags map[string][]string) {
	if len(body) < 2 {
		return
	}
	enc, rest := body[0], body[1:]
	var mime string
	if v22 {
		if len(rest) < 3 {
			return
		}
		switch strings.ToUpper(string(rest[:3])) {
		case "PNG":
			mime = "image/png"
		case "JPG":
			mime = "image/jpeg"
		default:
			mime = "image/" + strings.ToLower(string(rest[:3]))
		}
		rest = rest[3:]
	} else {
		i := bytes.IndexByte(rest, 0)
		if i < 0 {
			return
		}
		mime, rest = string(rest[:i]), rest[i+1:]
	}
	if len(rest) < 1 {
		return
	}
	ptype := uint32(rest[0])
	desc, data, ok := id3CutString(enc, rest[1:])
	if !ok || len(data) == 0 {
		return
	}
	var b bytes.Buffer
	w := func(v uint32) { _ = binary.Write(&b, binary.BigEndian, v) }
	w(ptype)
	w(uint32(len(mime)))
	b.WriteString(mime)
	w(uint32(len(desc)))
	b.WriteString(desc)
	w(0) // width, height, depth, colours: unknown
	w(0)
	w(0)
	w(0)
	w(uint32(len(data)))
	b.Write(data)
	tags["METADATA_BLOCK_PICTURE"] = append(tags["METADATA_BLOCK_PICTURE"], base64.StdEncoding.EncodeToString(b.Bytes()))
}

// parseID3v2 reads the frames of a whole ID3v2.2/2.3/2.4 tag (header
// included) into tags. Unknown frames, compressed or encrypted frames and
// anything malformed are skipped: tags never make a file unplayable.
func parseID3v2(tag []byte, tags map[string][]string) {
	if len(tag) < 10 || string(tag[:3]) != "ID3" {
		return
	}
	ver, flags := tag[3], tag[5]
	if ver < 2 || ver > 4 {
		return
	}
	body := tag[10:min(len(tag), int(id3v2Size(tag)))]
	if flags&0x80 != 0 && ver < 4 {
		body = unsync(body) // whole-tag unsynchronisation (v2.4 does it per frame)
	}
	if flags&0x40 != 0 && ver >= 3 { // extended header: skipped
		if len(body) < 4 {
			return
		}
		n := int(binary.BigEndian.Uint32(body))
		if ver == 4 {
			n = synchsafe(body)
		} else {
			n += 4
		}
		if n > len(body) {
			return
		}
		body = body[n:]
	}
	idLen, hdrLen := 4, 10
	if ver == 2 {
		idLen, hdrLen = 3, 6
	}
	for len(body) >= hdrLen && body[0] != 0 {
		id := string(body[:idLen])
		var size int
		var fflags uint16
		switch ver {
		case 2:
			size = int(body[3])<<16 | int(body[4])<<8 | int(body[5])
		case 3:
			size = int(binary.BigEndian.Uint32(body[4:]))
			fflags = binary.BigEndian.Uint16(body[8:])
		case 4:
			size = synchsafe(body[4:])
			fflags = binary.BigEndian.Uint16(body[8:])
		}
		if size < 0 || size > len(body)-hdrLen {
			return
		}
		fb := body[hdrLen : hdrLen+size]
		body = body[hdrLen+size:]
		switch ver {
		case 3:
			if fflags&0x00c0 != 0 { // compressed or encrypted
				continue
			}
			if fflags&0x0020 != 0 && len(fb) > 0 { // grouping identity byte
				fb = fb[1:]
			}
		case 4:
			if fflags&0x000c != 0 { // compressed or encrypted
				continue
			}
			if fflags&0x0040 != 0 && len(fb) > 0 { // grouping identity byte
				fb = fb[1:]
			}
			if fflags&0x0001 != 0 { // data length indicator
				if len(fb) < 4 {
					continue
				}
				fb = fb[4:]
			}
			if fflags&0x0002 != 0 {
				fb = unsync(fb)
			}
		}
		if h := id3Frames[id]; h != nil {
			h(fb, ver == 2, tags)
		}
	}
}

// parseID3v1 reads an ID3v1(.1) tag (the last 128 bytes of a file) into
// tags, for the fields the ID3v2 tag did not provide.
func parseID3v1(b []byte, tags map[string][]string) {
	if len(b) != 128 || string(b[:3]) != "TAG" {
		return
	}
	field := func(name string, v []byte) {
		if i := bytes.IndexByte(v, 0); i >= 0 {
			v = v[:i]
		}
		s := strings.TrimSpace(latin1(v))
		if s != "" && len(tags[name]) == 0 {
			tags[name] = []string{s}
		}
	}
	field("TITLE", b[3:33])
	field("ARTIST", b[33:63])
	field("ALBUM", b[63:93])
	field("DATE", b[93:97])
	if b[125] == 0 && b[126] != 0 && len(tags["TRACKNUMBER"]) == 0 {
		tags["TRACKNUMBER"] = []string{itoa(int(b[126]))}
	}
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

func synchsafe(b []byte) int {
	return int(b[0]&0x7f)<<21 | int(b[1]&0x7f)<<14 | int(b[2]&0x7f)<<7 | int(b[3]&0x7f)
}

// unsync undoes ID3 unsynchronisation: 0xff 0x00 becomes 0xff.
func unsync(b []byte) []byte {
	if !bytes.Contains(b, []byte{0xff, 0x00}) {
		return b
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		out = append(out, b[i])
		if b[i] == 0xff && i+1 < len(b) && b[i+1] == 0 {
			i++
		}
	}
	return out
}

// id3Strings decodes NUL-separated strings in text encoding enc.
func id3Strings(enc byte, b []byte) []string {
	var out []string
	for len(b) > 0 {
		s, rest, ok := id3CutString(enc, b)
		out = append(out, s)
		if !ok {
			break
		}
		b = rest
	}
	return out
}

// id3CutString decodes one NUL-terminated string in encoding enc and
// returns the rest; ok is false when no terminator was found (the whole
// input is the string).
func id3CutString(enc byte, b []byte) (s string, rest []byte, ok bool) {
	if enc == 1 || enc == 2 { // UTF-16 (with BOM) or UTF-16BE: 2-byte NUL
		i := 0
		for ; i+1 < len(b); i += 2 {
			if b[i] == 0 && b[i+1] == 0 {
				return utf16String(enc, b[:i]), b[i+2:], true
			}
		}
		return utf16String(enc, b), nil, false
	}
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		i, rest = len(b), nil
	} else {
		rest, ok = b[i+1:], true
	}
	if enc == 3 {
		return string(b[:i]), rest, ok
	}
	return latin1(b[:i]), rest, ok
}

func utf16String(enc byte, b []byte) string {
	be := enc == 2
	if len(b) >= 2 {
		switch {
		case b[0] == 0xff && b[1] == 0xfe:
			be, b = false, b[2:]
		case b[0] == 0xfe && b[1] == 0xff:
			be, b = true, b[2:]
		}
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		if be {
			u[i] = binary.BigEndian.Uint16(b[2*i:])
		} else {
			u[i] = binary.LittleEndian.Uint16(b[2*i:])
		}
	}
	return string(utf16.Decode(u))
}

func latin1(b []byte) string {
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return string(r)
}
