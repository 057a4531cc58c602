package library

import (
	"bytes"
	"encoding/base64"
	"strconv"
	"testing"
	"unicode/utf8"
)

// FuzzPicture feeds METADATA_BLOCK_PICTURE values (untrusted: they come
// from files) to the parser: it must not panic, must respect its limits,
// and what it accepts must survive a rebuild and re-parse unchanged.
func FuzzPicture(f *testing.F) {
	f.Add(pictureBlock(3, "image/png", "front", []byte("\x89PNG\r\n\x1a\n0000")))
	f.Add(pictureBlock(0, "", "", []byte{0xff, 0xd8, 0xff}))
	f.Add(pictureBlock(3, "-->", "", []byte("http://x")))
	f.Add([]byte{0, 0, 0, 3, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parsePictureBlock(b)
		if err == nil {
			if len(p.Data) == 0 || len(p.Data) > maxPictureBytes || len(p.MIME) > maxPictureMIME || p.Type > 20 {
				t.Fatalf("accepted out-of-limit picture: %d bytes, MIME %q, type %d", len(p.Data), p.MIME, p.Type)
			}
			if !utf8.ValidString(p.Description) {
				t.Fatalf("description not UTF-8: %q", p.Description)
			}
			q, err := parsePictureBlock(pictureBlock(p.Type, p.MIME, p.Description, p.Data))
			if err != nil || !bytes.Equal(q.Data, p.Data) || q.MIME != p.MIME || q.Type != p.Type {
				t.Fatalf("rebuild: %v", err)
			}
		}
		// The tag path (base64) and the cover picker must not panic either.
		tag := base64.StdEncoding.EncodeToString(b)
		if _, err2 := parsePictureTag(tag); (err2 == nil) != (err == nil) {
			t.Fatalf("base64 path disagrees: %v vs %v", err2, err)
		}
		embeddedCover(map[string][]string{"METADATA_BLOCK_PICTURE": {string(b), tag}, "COVERART": {string(b)}})
	})
}

// FuzzTrackNumber checks TRACKNUMBER/DISCNUMBER parsing: no panic,
// results in range, and canonical "n/total" values round-trip.
func FuzzTrackNumber(f *testing.F) {
	for _, s := range []string{"3", "03/12", " 7 / 9 ", "/", "x/y", "99999999999999999999/1", "-1/-1", "1/2/3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, total := parseNumberPair(s)
		if n < 0 || n > maxNumber || total < 0 || total > maxNumber {
			t.Fatalf("parseNumberPair(%q) = %d, %d: out of range", s, n, total)
		}
		if n > 0 && total > 0 {
			n2, t2 := parseNumberPair(strconv.Itoa(n) + "/" + strconv.Itoa(total))
			if n2 != n || t2 != total {
				t.Fatalf("round trip of %d/%d gave %d/%d", n, total, n2, t2)
			}
		}
	})
}

// FuzzGain checks ReplayGain parsing: no panic, finite values in range.
func FuzzGain(f *testing.F) {
	for _, s := range []string{"-6.50 dB", "+1e1dB", "NaN", "1e400", "0x1p3", "  -0 DB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if v, ok := parseGain(s); ok && !(v >= -100 && v <= 100) {
			t.Fatalf("parseGain(%q) = %v", s, v)
		}
		if v, ok := parsePeak(s); ok && !(v >= 0 && v <= 100) {
			t.Fatalf("parsePeak(%q) = %v", s, v)
		}
	})
}
