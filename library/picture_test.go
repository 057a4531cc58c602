package library

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"os"
	"strings"
	"testing"
)

// pictureBlock builds a FLAC picture block.
func pictureBlock(typ uint32, mime, desc string, data []byte) []byte {
	var b bytes.Buffer
	w := func(v uint32) { binary.Write(&b, binary.BigEndian, v) }
	w(typ)
	w(uint32(len(mime)))
	b.WriteString(mime)
	w(uint32(len(desc)))
	b.WriteString(desc)
	w(4)
	w(4)
	w(24)
	w(0)
	w(uint32(len(data)))
	b.Write(data)
	return b.Bytes()
}

func TestParsePictureBlock(t *testing.T) {
	png, err := os.ReadFile(fixturePath("cover.png"))
	if err != nil {
		t.Fatal(err)
	}
	good := pictureBlock(3, "image/png", "front", png)
	hugeLen := append([]byte(nil), good...)
	binary.BigEndian.PutUint32(hugeLen[4:], 1<<31) // MIME length
	cases := []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"valid", good, true},
		{"trailing bytes ignored", append(append([]byte(nil), good...), 1, 2, 3), true},
		{"empty", nil, false},
		{"truncated in header", good[:10], false},
		{"truncated in data", good[:len(good)-1], false},
		{"huge MIME length", hugeLen, false},
		{"link", pictureBlock(3, "-->", "", []byte("http://example.com/x.jpg")), false},
		{"no data", pictureBlock(3, "image/png", "", nil), false},
		{"unknown type", pictureBlock(21, "image/png", "", png), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := parsePictureBlock(c.in)
			if c.ok != (err == nil) {
				t.Fatalf("err = %v, want ok=%v", err, c.ok)
			}
			if err != nil && !errors.Is(err, errPicture) {
				t.Errorf("error %v does not wrap errPicture", err)
			}
			if c.ok && (!bytes.Equal(p.Data, png) || p.MIME != "image/png" || p.Type != 3 || p.Description != "front" || p.Width != 4) {
				t.Errorf("parsed %+v", p)
			}
		})
	}
}

func TestParsePictureTagBase64(t *testing.T) {
	block := pictureBlock(3, "image/png", "", []byte("\x89PNG\r\n\x1a\n...."))
	std := base64.StdEncoding.EncodeToString(block)
	variants := map[string]string{
		"padded":   std,
		"unpadded": strings.TrimRight(std, "="),
		"wrapped":  std[:10] + "\n" + std[10:20] + " \r\n" + std[20:],
	}
	for name, v := range variants {
		if _, err := parsePictureTag(v); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := parsePictureTag("not base64!"); err == nil {
		t.Error("bad base64 accepted")
	}
}

func TestEmbeddedCover(t *testing.T) {
	png, _ := os.ReadFile(fixturePath("cover.png"))
	jpg, _ := os.ReadFile(fixturePath("cover.jpg"))
	enc := func(typ uint32, data []byte) string {
		return base64.StdEncoding.EncodeToString(pictureBlock(typ, "image/x", "", data))
	}
	cases := []struct {
		name string
		tags map[string][]string
		want []byte
	}{
		{"front cover preferred", map[string][]string{"METADATA_BLOCK_PICTURE": {enc(4, jpg), enc(3, png)}}, png},
		{"else the first valid", map[string][]string{"METADATA_BLOCK_PICTURE": {"garbage", enc(4, jpg), enc(5, png)}}, jpg},
		{"not an image skipped", map[string][]string{"METADATA_BLOCK_PICTURE": {enc(3, []byte("<svg onload=alert(1)>")), enc(0, jpg)}}, jpg},
		{"legacy COVERART", map[string][]string{"COVERART": {base64.StdEncoding.EncodeToString(png)}}, png},
		{"none", map[string][]string{"TITLE": {"x"}}, nil},
	}
	for _, c := range cases {
		got, ok := embeddedCover(c.tags)
		if ok != (c.want != nil) || !bytes.Equal(got, c.want) {
			t.Errorf("%s: got %d bytes ok=%v", c.name, len(got), ok)
		}
	}
	if imageType(png) != "image/png" || imageType(jpg) != "image/jpeg" || imageType([]byte("<html>")) != "" {
		t.Error("imageType")
	}
}
