package library

import (
	"os"
	"strings"
	"testing"
)

func TestParseNumberPair(t *testing.T) {
	cases := []struct {
		in       string
		n, total int
	}{
		{"", 0, 0},
		{"3", 3, 0},
		{"03", 3, 0},
		{"3/12", 3, 12},
		{" 3 / 12 ", 3, 12},
		{"/12", 0, 12},
		{"3/", 3, 0},
		{"0", 0, 0},
		{"-1", 0, 0},
		{"+3", 0, 0},
		{"A1", 0, 0},
		{"1a", 0, 0},
		{"9999", 9999, 0},
		{"10000", 0, 0},
		{"99999999999999999999", 0, 0},
		{"3/12/4", 3, 0},
		{"３", 0, 0}, // full-width digit
	}
	for _, c := range cases {
		n, total := parseNumberPair(c.in)
		if n != c.n || total != c.total {
			t.Errorf("parseNumberPair(%q) = %d, %d; want %d, %d", c.in, n, total, c.n, c.total)
		}
	}
}

func TestParseGainAndPeak(t *testing.T) {
	gains := []struct {
		in   string
		want float64
		ok   bool
	}{
		{"-6.50 dB", -6.5, true},
		{"+1.2dB", 1.2, true},
		{"-3", -3, true},
		{" 2.5 DB ", 2.5, true},
		{"1e1 dB", 10, true},
		{"", 0, false},
		{"dB", 0, false},
		{"NaN dB", 0, false},
		{"Inf", 0, false},
		{"0x10", 0, false},
		{"-101 dB", 0, false},
		{"1_000", 0, false},
		{"six", 0, false},
	}
	for _, c := range gains {
		v, ok := parseGain(c.in)
		if ok != c.ok || v != c.want {
			t.Errorf("parseGain(%q) = %v, %v; want %v, %v", c.in, v, ok, c.want, c.ok)
		}
	}
	peaks := []struct {
		in   string
		want float64
		ok   bool
	}{
		{"0.988", 0.988, true},
		{"1.0", 1, true},
		{"1.5", 1.5, true},
		{"-0.1", 0, false},
		{"0.9 dB", 0, false},
		{"", 0, false},
	}
	for _, c := range peaks {
		v, ok := parsePeak(c.in)
		if ok != c.ok || v != c.want {
			t.Errorf("parsePeak(%q) = %v, %v; want %v, %v", c.in, v, ok, c.want, c.ok)
		}
	}
}

func TestCleanText(t *testing.T) {
	cases := []struct{ in, want string }{
		{"  Title  ", "Title"},
		{"a\x00b\nc\td", "a b c d"},
		{"bad \xff utf8", "bad \uFFFD utf8"},
		{strings.Repeat("é", 600), strings.Repeat("é", 512)}, // 1024 bytes, cut on a boundary
		{strings.Repeat("a", 1023) + "é", strings.Repeat("a", 1023)},
	}
	for _, c := range cases {
		if got := cleanText(c.in); got != c.want {
			t.Errorf("cleanText(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestParseTags(t *testing.T) {
	cases := []struct {
		name string
		tags map[string][]string
		path string
		want func(trackTags) string // "" when fine, else what is wrong
	}{
		{"full", map[string][]string{
			"TITLE": {"Song"}, "ARTIST": {"A", "B", "A"}, "ALBUM": {"Al"}, "ALBUMARTIST": {"AA"},
			"TRACKNUMBER": {"3/12"}, "DISCNUMBER": {"2"}, "DISCTOTAL": {"3"}, "DATE": {"1999"},
			"REPLAYGAIN_TRACK_GAIN": {"-6.50 dB"}, "REPLAYGAIN_ALBUM_PEAK": {"0.5"},
		}, "x/y.ogg", func(g trackTags) string {
			switch {
			case g.Title != "Song" || g.Artist != "A, B" || g.Album != "Al" || g.AlbumArtist != "AA":
				return "text fields"
			case g.Track != 3 || g.TrackTotal != 12 || g.Disc != 2 || g.DiscTotal != 3 || g.Date != "1999":
				return "numbers"
			case g.RGTrackGain == nil || *g.RGTrackGain != -6.5 || g.RGAlbumPeak == nil || *g.RGAlbumPeak != 0.5:
				return "replaygain"
			case g.RGTrackPeak != nil || g.RGAlbumGain != nil:
				return "absent replaygain must be nil"
			}
			return ""
		}},
		{"title from file name", map[string][]string{"TITLE": {"  "}}, "dir/01 - Intro.oga", func(g trackTags) string {
			if g.Title != "01 - Intro" {
				return "title " + g.Title
			}
			return ""
		}},
		{"track total tag", map[string][]string{"TRACKNUMBER": {"4"}, "TOTALTRACKS": {"9"}}, "a.ogg", func(g trackTags) string {
			if g.Track != 4 || g.TrackTotal != 9 {
				return "track total"
			}
			return ""
		}},
		{"bad values ignored", map[string][]string{"TRACKNUMBER": {"x"}, "REPLAYGAIN_TRACK_GAIN": {"loud"}}, "a.ogg", func(g trackTags) string {
			if g.Track != 0 || g.RGTrackGain != nil {
				return "garbage accepted"
			}
			return ""
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if msg := c.want(parseTags(c.tags, c.path)); msg != "" {
				t.Errorf("%s: %+v", msg, parseTags(c.tags, c.path))
			}
		})
	}
}

func TestAlbumGrouping(t *testing.T) {
	cases := []struct {
		name         string
		a, b         trackTags
		pathA, pathB string
		same         bool
	}{
		{"same album artist", trackTags{AlbumArtist: "X", Artist: "p", Album: "Al"}, trackTags{AlbumArtist: "X", Artist: "q", Album: "Al"}, "1/a.ogg", "2/b.ogg", true},
		{"case and spaces", trackTags{Artist: "The  Band", Album: "AL"}, trackTags{Artist: "the band", Album: " al"}, "a.ogg", "b.ogg", true},
		{"different artists without album artist", trackTags{Artist: "p", Album: "Al"}, trackTags{Artist: "q", Album: "Al"}, "a.ogg", "b.ogg", false},
		{"different albums", trackTags{Artist: "p", Album: "A"}, trackTags{Artist: "p", Album: "B"}, "a.ogg", "b.ogg", false},
		{"untagged: by folder", trackTags{Artist: "p"}, trackTags{Artist: "p"}, "Loose/a.ogg", "Loose/b.ogg", true},
		{"untagged: other folder", trackTags{Artist: "p"}, trackTags{Artist: "p"}, "Loose/a.ogg", "Other/b.ogg", false},
	}
	for _, c := range cases {
		ia, ib := albumID(albumOf(c.a, c.pathA)), albumID(albumOf(c.b, c.pathB))
		if (ia == ib) != c.same {
			t.Errorf("%s: ids %s %s, same=%v want %v", c.name, ia, ib, ia == ib, c.same)
		}
		if !validID(ia) {
			t.Errorf("%s: album id %q not valid", c.name, ia)
		}
	}
}

func TestIDs(t *testing.T) {
	if a, b := trackID("x/a.ogg"), trackID("x/a.ogg"); a != b || !validID(a) {
		t.Fatalf("track id not stable or invalid: %q %q", a, b)
	}
	if trackID("x/a.ogg") == trackID("x/b.ogg") {
		t.Fatal("different paths, same id")
	}
	for _, bad := range []string{"", "0123456789abcde", "0123456789abcdef0", "0123456789ABCDEF", "../../etc/passw", "0123456789abcde.", "0123456789abcde\x00"} {
		if validID(bad) {
			t.Errorf("validID(%q) = true", bad)
		}
	}
}

// TestFixtureTags reads the committed fixture through the scanner's file
// reader: every field it indexes.
func TestFixtureTags(t *testing.T) {
	music := t.TempDir()
	data, err := os.ReadFile(fixturePath("tagged.ogg"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(music+"/tagged.ogg", data, 0o644); err != nil {
		t.Fatal(err)
	}
	l := openLib(t, music)
	fi, _ := os.Stat(music + "/tagged.ogg")
	rec := l.readFile(found{path: "tagged.ogg", size: fi.Size(), mtimeNS: fi.ModTime().UnixNano()})
	if rec.Err != "" {
		t.Fatal(rec.Err)
	}
	g := rec.Tags
	if g.Title != "Fixture Song" || g.Artist != "Band A, Guest B" || g.Album != "First Album" || g.AlbumArtist != "Band A" ||
		g.Track != 3 || g.TrackTotal != 12 || g.Disc != 1 || g.DiscTotal != 2 || g.Date != "2021-05-01" {
		t.Errorf("tags: %+v", g)
	}
	if g.RGTrackGain == nil || *g.RGTrackGain != -6.5 || g.RGTrackPeak == nil || *g.RGTrackPeak != 0.988 ||
		g.RGAlbumGain == nil || *g.RGAlbumGain != -7.25 || g.RGAlbumPeak == nil || *g.RGAlbumPeak != 1 {
		t.Errorf("replaygain: %+v", g)
	}
	if rec.Rate != 22050 || rec.Channels != 1 || rec.Frames != 33075 || !rec.Embedded {
		t.Errorf("stream: rate %d channels %d frames %d embedded %v", rec.Rate, rec.Channels, rec.Frames, rec.Embedded)
	}
	if rec.AlbumID != albumID("Band A", "First Album") || rec.ID != trackID("tagged.ogg") {
		t.Errorf("ids: %s %s", rec.AlbumID, rec.ID)
	}
}

func TestR128Fallback(t *testing.T) {
	tg := parseTags(map[string][]string{"R128_TRACK_GAIN": {"-512"}, "R128_ALBUM_GAIN": {"256"}, "REPLAYGAIN_ALBUM_GAIN": {"-2 dB"}}, "a.opus")
	if tg.RGTrackGain == nil || *tg.RGTrackGain != 3 || tg.RGAlbumGain == nil || *tg.RGAlbumGain != -2 {
		t.Errorf("track %v, album %v: want 3 (from R128) and -2 (ReplayGain wins)", tg.RGTrackGain, tg.RGAlbumGain)
	}
	if _, ok := parseR128Gain("1e3"); ok {
		t.Error("R128 gain 1e3 accepted")
	}
}
