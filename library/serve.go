package library

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/roomcast/roomcast/audio/decode"
)

// Paging of GET /v1/library.
const (
	defaultLimit = 50
	maxLimit     = 500
)

// Register adds the library's routes to mux, each wrapped by auth (e.g.
// (*broker.Broker).RequireToken), which must not be nil:
//
//	GET  /v1/media/{id}            the track's file (Range, ETag, Last-Modified)
//	GET  /v1/art/{id}              cover of a track or album
//	GET  /v1/library               albums with tracks, ?offset=&limit= (JSON Page)
//	GET  /v1/library/albums/{id}   one album (JSON AlbumInfo)
//	GET  /v1/library/tracks/{id}   one track (JSON TrackInfo)
//	GET  /v1/library/status        scan and analysis progress (JSON Status)
//	POST /v1/library/rescan        request a rescan (202)
//
// GET routes answer HEAD too. Ids from the client are only ever looked up
// in the published index; the files served are those the index names,
// opened inside the music directory.
func (l *Library) Register(mux *http.ServeMux, auth func(http.Handler) http.Handler) {
	if auth == nil {
		panic("library: Register needs an auth wrapper")
	}
	h := func(pattern string, fn http.HandlerFunc) { mux.Handle(pattern, auth(fn)) }
	h("GET /v1/media/{id}", l.serveMedia)
	h("GET /v1/art/{id}", l.serveArt)
	h("GET /v1/library", l.serveLibrary)
	h("GET /v1/library/albums/{id}", l.serveAlbum)
	h("GET /v1/library/tracks/{id}", l.serveTrack)
	h("GET /v1/library/status", l.serveStatus)
	h("POST /v1/library/rescan", l.serveRescan)
}

func notFound(w http.ResponseWriter) { http.Error(w, "not found", http.StatusNotFound) }

func writeJSON(w http.ResponseWriter, v any) { writeJSONStatus(w, http.StatusOK, v) }

func writeJSONStatus(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// etag identifies one version of an indexed file.
func etag(id string, ref fileRef) string {
	return `"` + id + "-" + strconv.FormatInt(ref.size, 36) + "-" + strconv.FormatInt(ref.mtimeNS, 36) + `"`
}

func (l *Library) serveMedia(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !validID(id) {
		notFound(w)
		return
	}
	ref, ok := l.cat.Load().media[id]
	if !ok {
		notFound(w)
		return
	}
	f, fi, err := openRegular(l.root, ref.path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			l.Rescan()
			notFound(w)
			return
		}
		l.log.Error("library: cannot open media", "path", ref.path, "err", err)
		http.Error(w, "cannot open the file", http.StatusInternalServerError)
		return
	}
	defer f.Close()
	if fi.Size() != ref.size || fi.ModTime().UnixNano() != ref.mtimeNS {
		// The index describes another version (duration, loudness): refuse
		// rather than serve bytes that do not match it.
		l.Rescan()
		w.Header().Set("Retry-After", "10")
		http.Error(w, "the file changed since it was indexed; a rescan is under way", http.StatusServiceUnavailable)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "audio/ogg")
	h.Set("ETag", etag(id, ref))
	h.Set("Cache-Control", "private, no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, "", fi.ModTime(), &stableReader{f: f, size: fi.Size(), mtime: fi.ModTime(), ctime: changeTime(fi)})
}

// stableReader reads a file and fails as soon as the file is modified
// (size, modification or change time differ from when it was opened), so
// a response never mixes two versions: it ends short instead, and the
// client sees an incomplete body. Each Read checks after reading, so the
// bytes it returns were read while the file was unchanged.
type stableReader struct {
	f     *os.File
	size  int64
	mtime time.Time
	ctime int64
}

func (s *stableReader) Read(p []byte) (int, error) {
	n, err := s.f.Read(p)
	fi, serr := s.f.Stat()
	if serr != nil || fi.Size() != s.size || !fi.ModTime().Equal(s.mtime) || changeTime(fi) != s.ctime {
		return 0, errChanged
	}
	return n, err
}

func (s *stableReader) Seek(offset int64, whence int) (int64, error) { return s.f.Seek(offset, whence) }

func (l *Library) serveArt(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !validID(id) {
		notFound(w)
		return
	}
	ref, ok := l.cat.Load().art[id]
	if !ok {
		notFound(w)
		return
	}
	data, mod, err := l.loadArt(ref)
	if err != nil {
		l.log.Debug("library: no cover", "id", id, "err", err)
		notFound(w)
		return
	}
	ct := imageType(data)
	if ct == "" {
		notFound(w)
		return
	}
	sum := sha256.Sum256(data)
	h := w.Header()
	h.Set("Content-Type", ct)
	h.Set("ETag", `"`+hex.EncodeToString(sum[:8])+`"`)
	h.Set("Cache-Control", "private, no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, "", mod, bytes.NewReader(data))
}

var errNoArt = errors.New("no cover image")

// loadArt reads a cover: the embedded picture if the file is still the
// indexed version and has one, else the folder image.
func (l *Library) loadArt(ref artRef) ([]byte, time.Time, error) {
	if ref.embedded != nil {
		if data, mod, err := l.embeddedArt(*ref.embedded); err == nil {
			return data, mod, nil
		}
	}
	if ref.cover != "" {
		return l.folderArt(ref.cover)
	}
	return nil, time.Time{}, errNoArt
}

func (l *Library) embeddedArt(ref fileRef) (data []byte, mod time.Time, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("internal error: %v", r)
		}
	}()
	f, fi, err := openRegular(l.root, ref.path)
	if err != nil {
		return nil, mod, err
	}
	defer f.Close()
	if fi.Size() != ref.size || fi.ModTime().UnixNano() != ref.mtimeNS {
		return nil, mod, errChanged
	}
	s, err := decode.Open(f)
	if err != nil {
		return nil, mod, err
	}
	defer s.Close()
	data, ok := embeddedCover(s.Tags())
	if !ok {
		return nil, mod, errNoArt
	}
	return data, fi.ModTime(), nil
}

func (l *Library) folderArt(p string) ([]byte, time.Time, error) {
	f, fi, err := openRegular(l.root, p)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer f.Close()
	if fi.Size() > maxPictureBytes {
		return nil, time.Time{}, fmt.Errorf("%s: image larger than %d bytes", p, maxPictureBytes)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxPictureBytes))
	if err != nil {
		return nil, time.Time{}, err
	}
	return data, fi.ModTime(), nil
}

func (l *Library) serveLibrary(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	offset, err := intParam(q.Get("offset"), 0, 0, 1<<31-1)
	if err != nil {
		http.Error(w, "offset: "+err.Error(), http.StatusBadRequest)
		return
	}
	limit, err := intParam(q.Get("limit"), defaultLimit, 1, maxLimit)
	if err != nil {
		http.Error(w, "limit: "+err.Error(), http.StatusBadRequest)
		return
	}
	c := l.cat.Load()
	p := Page{Total: len(c.albums), Offset: offset, Limit: limit, Albums: []AlbumInfo{}}
	for i := offset; i < len(c.albums) && i < offset+limit; i++ {
		p.Albums = append(p.Albums, *c.albums[i])
	}
	writeJSON(w, p)
}

// intParam parses an optional integer query parameter within [lo, hi].
func intParam(s string, def, lo, hi int) (int, error) {
	if s == "" {
		return def, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < lo || v > hi {
		return 0, fmt.Errorf("%q is not a whole number from %d to %d", s, lo, hi)
	}
	return v, nil
}

func (l *Library) serveAlbum(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	a, ok := l.cat.Load().albumBy[id]
	if !validID(id) || !ok {
		notFound(w)
		return
	}
	writeJSON(w, a)
}

func (l *Library) serveTrack(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	t, ok := l.cat.Load().trackBy[id]
	if !validID(id) || !ok {
		notFound(w)
		return
	}
	writeJSON(w, t)
}

func (l *Library) serveStatus(w http.ResponseWriter, r *http.Request) { writeJSON(w, l.Status()) }

func (l *Library) serveRescan(w http.ResponseWriter, r *http.Request) {
	l.Rescan()
	writeJSONStatus(w, http.StatusAccepted, map[string]string{"status": "rescan requested"})
}
