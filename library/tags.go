package library

import (
	"math"
	"path"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxTextLen bounds every text tag we keep, in bytes.
const maxTextLen = 1024

// trackTags are the Vorbis comments the library uses, cleaned up.
type trackTags struct {
	Title       string `json:"title,omitempty"`
	Artist      string `json:"artist,omitempty"`
	Album       string `json:"album,omitempty"`
	AlbumArtist string `json:"album_artist,omitempty"`
	Date        string `json:"date,omitempty"`
	Track       int    `json:"track,omitempty"`
	TrackTotal  int    `json:"track_total,omitempty"`
	Disc        int    `json:"disc,omitempty"`
	DiscTotal   int    `json:"disc_total,omitempty"`
	// ReplayGain values as tagged (dB and linear peak); nil when absent or
	// unparsable.
	RGTrackGain *float64 `json:"rg_track_gain,omitempty"`
	RGTrackPeak *float64 `json:"rg_track_peak,omitempty"`
	RGAlbumGain *float64 `json:"rg_album_gain,omitempty"`
	RGAlbumPeak *float64 `json:"rg_album_peak,omitempty"`
}

// parseTags extracts trackTags from Vorbis comments (keys upper-case, as
// decode.Stream.Tags returns them). relPath is the file's path inside the
// music directory: the title falls back to the file name.
func parseTags(c map[string][]string, relPath string) trackTags {
	first := func(keys ...string) string {
		for _, k := range keys {
			for _, v := range c[k] {
				if v = cleanText(v); v != "" {
					return v
				}
			}
		}
		return ""
	}
	var t trackTags
	t.Title = first("TITLE")
	if t.Title == "" {
		base := path.Base(relPath)
		t.Title = cleanText(strings.TrimSuffix(base, path.Ext(base)))
	}
	t.Artist = joinValues(c["ARTIST"])
	t.Album = first("ALBUM")
	t.AlbumArtist = first("ALBUMARTIST", "ALBUM ARTIST", "ALBUM_ARTIST")
	t.Date = first("DATE", "YEAR")
	t.Track, t.TrackTotal = parseNumberPair(first("TRACKNUMBER"))
	if t.TrackTotal == 0 {
		t.TrackTotal, _ = parseNumberPair(first("TRACKTOTAL", "TOTALTRACKS"))
	}
	t.Disc, t.DiscTotal = parseNumberPair(first("DISCNUMBER"))
	if t.DiscTotal == 0 {
		t.DiscTotal, _ = parseNumberPair(first("DISCTOTAL", "TOTALDISCS"))
	}
	t.RGTrackGain = optional(parseGain(first("REPLAYGAIN_TRACK_GAIN")))
	t.RGTrackPeak = optional(parsePeak(first("REPLAYGAIN_TRACK_PEAK")))
	t.RGAlbumGain = optional(parseGain(first("REPLAYGAIN_ALBUM_GAIN")))
	t.RGAlbumPeak = optional(parsePeak(first("REPLAYGAIN_ALBUM_PEAK")))
	// R128 gains (Opus, RFC 7845: Q7.8 dB to -23 LUFS) as ReplayGain
	// (-18 LUFS reference) when there is no ReplayGain tag.
	if t.RGTrackGain == nil {
		t.RGTrackGain = optional(parseR128Gain(first("R128_TRACK_GAIN")))
	}
	if t.RGAlbumGain == nil {
		t.RGAlbumGain = optional(parseR128Gain(first("R128_ALBUM_GAIN")))
	}
	return t
}

func optional(v float64, ok bool) *float64 {
	if !ok {
		return nil
	}
	return &v
}

// joinValues joins the non-empty cleaned values of a repeated tag (several
// ARTIST fields) with ", ", dropping duplicates.
func joinValues(vals []string) string {
	var out []string
	for _, v := range vals {
		v = cleanText(v)
		if v == "" {
			continue
		}
		dup := false
		for _, o := range out {
			dup = dup || o == v
		}
		if !dup {
			out = append(out, v)
		}
	}
	return cleanText(strings.Join(out, ", "))
}

// cleanText makes a tag value safe to show and store: valid UTF-8,
// control characters replaced by spaces, surrounding space trimmed, at
// most maxTextLen bytes (cut at a character boundary).
func cleanText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if len(s) > maxTextLen {
		cut := maxTextLen
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = strings.TrimSpace(s[:cut])
	}
	return s
}

// maxNumber bounds track and disc numbers; larger values are treated as
// absent.
const maxNumber = 9999

// parseNumberPair parses a TRACKNUMBER or DISCNUMBER value: "3", "03",
// "3/12", " 3 / 12 ". A part that is missing, not a decimal number, or
// outside 1..maxNumber gives 0.
func parseNumberPair(s string) (n, total int) {
	a, b, _ := strings.Cut(s, "/")
	return parseSmall(a), parseSmall(b)
}

func parseSmall(s string) int {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 8 {
		return 0
	}
	v := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0
		}
		v = v*10 + int(c-'0')
	}
	if v < 1 || v > maxNumber {
		return 0
	}
	return v
}

// parseGain parses a ReplayGain gain such as "-6.50 dB", "+1.2dB" or
// "-3". Values outside ±100 dB are rejected.
func parseGain(s string) (float64, bool) {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && strings.EqualFold(s[len(s)-2:], "db") {
		s = strings.TrimSpace(s[:len(s)-2])
	}
	v, ok := parseFinite(s)
	if !ok || v < -100 || v > 100 {
		return 0, false
	}
	return v, true
}

// parseR128Gain parses an R128_*_GAIN value (a signed Q7.8 integer, dB
// relative to -23 LUFS) and returns the ReplayGain gain it corresponds to
// (5 dB more: ReplayGain aims at about -18 LUFS).
func parseR128Gain(s string) (float64, bool) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 6 {
		return 0, false
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < -32768 || v > 32767 {
		return 0, false
	}
	return float64(v)/256 + 5, true
}

// parsePeak parses a ReplayGain peak: a linear amplitude, 1.0 = full
// scale. Negative values and values above 100 are rejected.
func parsePeak(s string) (float64, bool) {
	v, ok := parseFinite(strings.TrimSpace(s))
	if !ok || v < 0 || v > 100 {
		return 0, false
	}
	return v, true
}

func parseFinite(s string) (float64, bool) {
	if s == "" || len(s) > 32 {
		return 0, false
	}
	// Only plain decimal notation: no hex floats, no "Inf"/"NaN", no "_".
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E') {
			return 0, false
		}
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, false
	}
	return v, true
}

// normalizeKey lower-cases s and collapses runs of white space, so that
// "The  Band" and "the band" group together.
func normalizeKey(s string) string {
	return strings.Join(strings.Fields(strings.ToLower(s)), " ")
}
