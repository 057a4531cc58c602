package library

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"path"
	"slices"
	"strings"

	"github.com/roomcast/roomcast/protocol"
	"github.com/roomcast/roomcast/protocol/httpapi"
)

// URI prefixes of library items.
const (
	TrackURIPrefix = protocol.URIScheme + ":track:"
	AlbumURIPrefix = protocol.URIScheme + ":album:"
)

// idLen is the length of track and album ids: 16 lower-case hex digits
// (64 bits of a SHA-256).
const idLen = 16

// trackID is the id of the file at relPath (slash-separated, inside the
// music directory). It depends on nothing else, so it is stable across
// rescans and re-tagging; a moved file gets a new id.
func trackID(relPath string) string {
	sum := sha256.Sum256([]byte(relPath))
	return hex.EncodeToString(sum[:])[:idLen]
}

// albumID is the id of an album: it depends on the normalised album
// artist and title only.
func albumID(artist, title string) string {
	sum := sha256.Sum256([]byte("album\x00" + normalizeKey(artist) + "\x00" + normalizeKey(title)))
	return hex.EncodeToString(sum[:])[:idLen]
}

// albumOf returns the artist and title a track is grouped under: the
// album artist (else the artist) and the album; a track without an ALBUM
// tag is grouped with the other files of its folder, titled after it.
func albumOf(t trackTags, relPath string) (artist, title string) {
	artist = t.AlbumArtist
	if artist == "" {
		artist = t.Artist
	}
	title = t.Album
	if title == "" {
		if dir := path.Dir(relPath); dir != "." {
			title = cleanText(path.Base(dir))
		}
	}
	return artist, title
}

// validID reports whether s has the form of a track or album id. Client
// input is checked with it before any lookup; it is never used as a path.
func validID(s string) bool {
	if len(s) != idLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// TrackInfo, AlbumInfo and Page are the JSON of the HTTP API (declared
// once, in httpapi, for the client too): a track with the protocol.Track
// fields plus library details; an album with its tracks in disc and track
// order; one page of GET /v1/library, albums sorted by artist and title.
type (
	TrackInfo = httpapi.Track
	AlbumInfo = httpapi.Album
	Page      = httpapi.LibraryPage
)

// Failure is a file or folder the library could not use.
type Failure struct {
	Path   string `json:"path"`   // inside the music directory
	Stage  string `json:"stage"`  // "walk", "scan" (tags) or "analysis" (decoding)
	Reason string `json:"reason"` // what went wrong
}

// fileRef is a file as it was indexed: handlers open path and refuse it
// when size or modification time differ.
type fileRef struct {
	path    string
	size    int64
	mtimeNS int64
}

// artRef says where a cover comes from: the embedded picture of a file,
// else (or when that fails) a folder image.
type artRef struct {
	embedded *fileRef
	cover    string
}

// catalog is an immutable snapshot of the index: what handlers and the
// Track/Album/ResolveContext methods read. The worker builds a new one
// after each commit and publishes it atomically.
type catalog struct {
	albums   []*AlbumInfo // sorted
	albumBy  map[string]*AlbumInfo
	trackBy  map[string]*TrackInfo
	media    map[string]fileRef // by track id
	art      map[string]artRef  // by track or album id
	failures []Failure
	analysed int // tracks with a finished analysis
}

func buildCatalog(files map[string]*fileRec, albums map[string]*albumRec, walkProblems []Failure) *catalog {
	c := &catalog{
		albumBy: map[string]*AlbumInfo{},
		trackBy: map[string]*TrackInfo{},
		media:   map[string]fileRef{},
		art:     map[string]artRef{},
	}
	c.failures = append(c.failures, walkProblems...)
	groups := map[string][]*fileRec{}
	for _, f := range files {
		switch {
		case f.Err != "":
			c.failures = append(c.failures, Failure{Path: f.Path, Stage: "scan", Reason: f.Err})
		case f.AnalysisErr != "":
			c.failures = append(c.failures, Failure{Path: f.Path, Stage: "analysis", Reason: f.AnalysisErr})
		default:
			groups[f.AlbumID] = append(groups[f.AlbumID], f)
		}
	}
	slices.SortFunc(c.failures, func(a, b Failure) int {
		return cmp.Or(strings.Compare(a.Path, b.Path), strings.Compare(a.Stage, b.Stage))
	})
	for id, recs := range groups {
		slices.SortFunc(recs, compareTracks)
		first := recs[0]
		artist, title := albumOf(first.Tags, first.Path)
		a := &AlbumInfo{ID: id, URI: AlbumURIPrefix + id, Title: title, Artist: artist, Date: first.Tags.Date}
		if ar := albums[id]; ar != nil && ar.Analysed {
			a.Analysed, a.LoudnessLUFS, a.TruePeakDBTP = true, clone(ar.LUFS), clone(ar.TruePeak)
		}
		for _, f := range recs {
			t := TrackInfo{
				Track: protocol.Track{
					URI:         TrackURIPrefix + f.ID,
					Title:       f.Tags.Title,
					Artist:      f.Tags.Artist,
					Album:       title,
					AlbumArtist: artist,
					AlbumURI:    a.URI,
					TrackNumber: f.Tags.Track,
					DurationMS:  durationMS(f.Frames, f.Rate),
				},
				ID:         f.ID,
				MediaURL:   "/v1/media/" + f.ID,
				DiscNumber: f.Tags.Disc,
				Date:       f.Tags.Date,
				SampleRate: f.Rate,
				Channels:   f.Channels,
				Codec:      f.Codec,
				BitDepth:   f.BitDepth,
				Analysed:   f.Analysed,
			}
			if f.Analysed {
				t.LoudnessLUFS, t.TruePeakDBTP, t.LoudnessRangeLU = clone(f.LUFS), clone(f.TruePeak), clone(f.LRA)
			}
			if a.Analysed {
				t.AlbumLoudnessLUFS, t.AlbumTruePeakDBTP = clone(a.LoudnessLUFS), clone(a.TruePeakDBTP)
			}
			var art artRef
			if f.Embedded {
				art.embedded = &fileRef{path: f.Path, size: f.Size, mtimeNS: f.MtimeNS}
			}
			art.cover = f.Cover
			if art.embedded != nil || art.cover != "" {
				c.art[f.ID] = art
				t.ArtURL = "/v1/art/" + f.ID
				if a.ArtURL == "" {
					c.art[id] = art
					a.ArtURL = "/v1/art/" + id
				}
			}
			c.media[f.ID] = fileRef{path: f.Path, size: f.Size, mtimeNS: f.MtimeNS}
			a.DurationMS += t.DurationMS
			a.Tracks = append(a.Tracks, t)
		}
		a.TrackCount = len(a.Tracks)
		c.albums = append(c.albums, a)
		c.albumBy[id] = a
		for i := range a.Tracks {
			c.trackBy[a.Tracks[i].ID] = &a.Tracks[i]
			if a.Tracks[i].Analysed {
				c.analysed++
			}
		}
	}
	slices.SortFunc(c.albums, func(x, y *AlbumInfo) int {
		return cmp.Or(
			strings.Compare(normalizeKey(x.Artist), normalizeKey(y.Artist)),
			strings.Compare(normalizeKey(x.Title), normalizeKey(y.Title)),
			strings.Compare(x.ID, y.ID))
	})
	return c
}

// compareTracks orders an album: disc, track number, then path.
func compareTracks(a, b *fileRec) int {
	return cmp.Or(cmp.Compare(a.Tags.Disc, b.Tags.Disc), cmp.Compare(a.Tags.Track, b.Tags.Track),
		strings.Compare(a.Path, b.Path))
}

func durationMS(frames int64, rate int) int64 {
	if rate <= 0 || frames <= 0 {
		return 0
	}
	return frames * 1000 / int64(rate)
}

func clone(p *float64) *float64 {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// cloneTrack returns t with its own copies of the pointer fields, so a
// caller cannot change the catalog through it.
func cloneTrack(t protocol.Track) protocol.Track {
	t.LoudnessLUFS, t.TruePeakDBTP = clone(t.LoudnessLUFS), clone(t.TruePeakDBTP)
	t.AlbumLoudnessLUFS, t.AlbumTruePeakDBTP = clone(t.AlbumLoudnessLUFS), clone(t.AlbumTruePeakDBTP)
	return t
}
