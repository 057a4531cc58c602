package library

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/roomcast/roomcast/internal/testenv"
)

const testToken = "test-token"

// testAuth stands in for (*broker.Broker).RequireToken.
func testAuth(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+testToken && r.URL.Query().Get("token") != testToken {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

type served struct {
	l     *Library
	srv   *httptest.Server
	music string
}

// serveTestLibrary indexes three albums (one track with an embedded
// cover, one folder with a folder image, one without art) and serves
// them on a real HTTP server.
func serveTestLibrary(t *testing.T) *served {
	t.Helper()
	music := t.TempDir()
	plain := fixturePath("plain.ogg")
	testenv.CopyFile(t, fixturePath("tagged.ogg"), filepath.Join(music, "Band A/First Album/03.ogg"), 0o644)
	addTrack(t, music, "Band A/First Album/01.ogg", plain, "TITLE=Opener", "ARTIST=Band A", "ALBUM=First Album", "TRACKNUMBER=1")
	addTrack(t, music, "Folder Art/1.ogg", plain, "TITLE=F1", "ARTIST=C", "ALBUM=Folder Art", "TRACKNUMBER=1")
	testenv.CopyFile(t, fixturePath("cover.jpg"), filepath.Join(music, "Folder Art/folder.jpg"), 0o644)
	addTrack(t, music, "No Art/1.ogg", plain, "TITLE=N1", "ARTIST=D", "ALBUM=No Art")
	l := openLib(t, music)
	runOnce(t, l)
	mux := http.NewServeMux()
	l.Register(mux, testAuth)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &served{l: l, srv: srv, music: music}
}

func (s *served) do(t *testing.T, method, path string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, s.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Authorization" && hdr[i+1] == "" {
			req.Header.Del("Authorization")
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := s.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func TestServeMediaRanges(t *testing.T) {
	s := serveTestLibrary(t)
	id := trackID("Folder Art/1.ogg")
	data, err := os.ReadFile(filepath.Join(s.music, "Folder Art/1.ogg"))
	if err != nil {
		t.Fatal(err)
	}
	n := len(data)
	path := "/v1/media/" + id

	resp, body := s.do(t, "GET", path)
	if resp.StatusCode != 200 || !bytes.Equal(body, data) {
		t.Fatalf("GET: %d, %d bytes", resp.StatusCode, len(body))
	}
	etag := resp.Header.Get("ETag")
	for k, want := range map[string]string{"Content-Type": "audio/ogg", "Accept-Ranges": "bytes", "Content-Length": strconv.Itoa(n)} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if etag == "" || resp.Header.Get("Last-Modified") == "" {
		t.Errorf("ETag %q, Last-Modified %q", etag, resp.Header.Get("Last-Modified"))
	}

	cases := []struct {
		name       string
		hdr        []string
		status     int
		body       []byte
		contentRng string
	}{
		{"first 100", []string{"Range", "bytes=0-99"}, 206, data[:100], fmt.Sprintf("bytes 0-99/%d", n)},
		{"from 100", []string{"Range", "bytes=100-"}, 206, data[100:], fmt.Sprintf("bytes 100-%d/%d", n-1, n)},
		{"last 50", []string{"Range", "bytes=-50"}, 206, data[n-50:], fmt.Sprintf("bytes %d-%d/%d", n-50, n-1, n)},
		{"beyond the end", []string{"Range", fmt.Sprintf("bytes=%d-", n)}, 416, nil, fmt.Sprintf("bytes */%d", n)},
		{"not modified", []string{"If-None-Match", etag}, 304, []byte{}, ""},
		{"other version", []string{"If-None-Match", `"other"`}, 200, data, ""},
		{"if-range matches", []string{"Range", "bytes=0-9", "If-Range", etag}, 206, data[:10], fmt.Sprintf("bytes 0-9/%d", n)},
		{"if-range stale", []string{"Range", "bytes=0-9", "If-Range", `"old"`}, 200, data, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := s.do(t, "GET", path, c.hdr...)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, c.status)
			}
			if c.body != nil && !bytes.Equal(body, c.body) {
				t.Errorf("body %d bytes, want %d", len(body), len(c.body))
			}
			if got := resp.Header.Get("Content-Range"); got != c.contentRng {
				t.Errorf("Content-Range %q, want %q", got, c.contentRng)
			}
		})
	}

	// Several ranges: 206 multipart (or a 200 with everything) is fine.
	resp, body = s.do(t, "GET", path, "Range", "bytes=0-9,20-29")
	switch {
	case resp.StatusCode == 206 && strings.HasPrefix(resp.Header.Get("Content-Type"), "multipart/byteranges"):
		if !bytes.Contains(body, data[20:30]) {
			t.Error("multipart body lacks the second range")
		}
	case resp.StatusCode == 200 && bytes.Equal(body, data):
	default:
		t.Errorf("multi-range: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}

	resp, body = s.do(t, "HEAD", path)
	if resp.StatusCode != 200 || len(body) != 0 || resp.Header.Get("Content-Length") != strconv.Itoa(n) || resp.Header.Get("ETag") != etag {
		t.Errorf("HEAD: %d, body %d bytes, headers %v", resp.StatusCode, len(body), resp.Header)
	}
}

func TestServeAuthAndTraversal(t *testing.T) {
	s := serveTestLibrary(t)
	id := trackID("Folder Art/1.ogg")
	passwd, _ := os.ReadFile("/etc/passwd")
	outside := filepath.Join(filepath.Dir(s.music), "outside.ogg")
	testenv.CopyFile(t, fixturePath("plain.ogg"), outside, 0o644)

	auth := []struct {
		name string
		path string
		hdr  []string
		want int
	}{
		{"no token", "/v1/media/" + id, []string{"Authorization", ""}, 401},
		{"bad token", "/v1/media/" + id, []string{"Authorization", "Bearer nope"}, 401},
		{"query token", "/v1/media/" + id + "?token=" + testToken, []string{"Authorization", ""}, 200},
		{"library without token", "/v1/library", []string{"Authorization", ""}, 401},
		{"art without token", "/v1/art/" + id, []string{"Authorization", ""}, 401},
		{"status without token", "/v1/library/status", []string{"Authorization", ""}, 401},
	}
	for _, c := range auth {
		if resp, _ := s.do(t, "GET", c.path, c.hdr...); resp.StatusCode != c.want {
			t.Errorf("%s: %d, want %d", c.name, resp.StatusCode, c.want)
		}
	}

	evil := []string{
		"/v1/media/..%2F..%2Fetc%2Fpasswd",
		"/v1/media/..%2F..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd",
		"/v1/media/%2Fetc%2Fpasswd",
		"/v1/media/../../etc/passwd",
		"/v1/media//etc/passwd",
		"/v1/media/" + strings.ReplaceAll(outside, "/", "%2F"),
		"/v1/media/..%2Foutside.ogg",
		"/v1/media/Folder%20Art%2F1.ogg",
		"/v1/media/" + id + ".ogg",
		"/v1/media/" + id[:15] + ".",
		"/v1/media/..",
		"/v1/media/%2e%2e",
		"/v1/media/" + id[:15] + "%00",
		"/v1/media/%00",
		"/v1/media/" + strings.ToUpper(id),
		"/v1/media/" + id + "%00",
		"/v1/media/0000000000000000", // well-formed, unknown
		"/v1/art/..%2F..%2Fetc%2Fpasswd",
		"/v1/art/" + strings.ReplaceAll(filepath.Join(s.music, "Folder Art/folder.jpg"), "/", "%2F"),
		"/v1/library/tracks/..%2F..%2Fetc%2Fpasswd",
		"/v1/library/albums/..%2F",
	}
	outsideData, _ := os.ReadFile(outside)
	for _, p := range evil {
		resp, body := s.do(t, "GET", p)
		if resp.StatusCode != 404 {
			t.Errorf("%s: status %d, want 404", p, resp.StatusCode)
		}
		if (len(passwd) > 0 && bytes.Contains(body, passwd[:min(len(passwd), 16)])) || bytes.Contains(body, outsideData[:64]) {
			t.Errorf("%s: served a file outside the index", p)
		}
	}
}

func TestServeChangedFile(t *testing.T) {
	s := serveTestLibrary(t)
	path := filepath.Join(s.music, "No Art/1.ogg")
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("x"))
	f.Close()
	resp, _ := s.do(t, "GET", "/v1/media/"+trackID("No Art/1.ogg"))
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("changed file: %d, want 503 with Retry-After", resp.StatusCode)
	}
	select {
	case <-s.l.rescan:
	default:
		t.Error("no rescan requested")
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if resp, _ := s.do(t, "GET", "/v1/media/"+trackID("No Art/1.ogg")); resp.StatusCode != 404 {
		t.Errorf("removed file: %d, want 404", resp.StatusCode)
	}
}

// TestStableReader: a file modified while it is being served makes the
// reader fail instead of returning bytes of the new version.
func TestStableReader(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	writeFile(t, path, bytes.Repeat([]byte("a"), 1000))
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	r := &stableReader{f: f, size: fi.Size(), mtime: fi.ModTime(), ctime: changeTime(fi)}
	buf := make([]byte, 100)
	if n, err := r.Read(buf); n != 100 || err != nil {
		t.Fatalf("first read: %d %v", n, err)
	}
	w, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	w.WriteAt(bytes.Repeat([]byte("b"), 1000), 0) // same size
	w.Close()
	os.Chtimes(path, fi.ModTime(), fi.ModTime()) // same mtime: only ctime tells
	n, err := r.Read(buf)
	if !errors.Is(err, errChanged) || n != 0 {
		t.Fatalf("read after rewrite: %d bytes (%q), err %v", n, buf[:n], err)
	}
}

func TestServeLibraryJSON(t *testing.T) {
	s := serveTestLibrary(t)
	get := func(path string, v any) int {
		resp, body := s.do(t, "GET", path)
		if resp.StatusCode == 200 {
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("%s: Content-Type %q", path, ct)
			}
			if err := json.Unmarshal(body, v); err != nil {
				t.Fatalf("%s: %v\n%s", path, err, body)
			}
		}
		return resp.StatusCode
	}
	paging := []struct {
		query  string
		status int
		count  int
		first  string
	}{
		{"", 200, 3, "First Album"},
		{"?limit=2", 200, 2, "First Album"},
		{"?offset=2&limit=2", 200, 1, "No Art"},
		{"?offset=1", 200, 2, "Folder Art"},
		{"?offset=10", 200, 0, ""},
		{"?limit=0", 400, 0, ""},
		{"?limit=501", 400, 0, ""},
		{"?limit=x", 400, 0, ""},
		{"?offset=-1", 400, 0, ""},
	}
	for _, c := range paging {
		var p Page
		status := get("/v1/library"+c.query, &p)
		if status != c.status {
			t.Errorf("%q: status %d, want %d", c.query, status, c.status)
			continue
		}
		if status != 200 {
			continue
		}
		if p.Total != 3 || len(p.Albums) != c.count || (c.count > 0 && p.Albums[0].Title != c.first) {
			t.Errorf("%q: total %d, %d albums, first %v", c.query, p.Total, len(p.Albums), p.Albums)
		}
	}

	var a AlbumInfo
	aid := albumID("Band A", "First Album")
	if get("/v1/library/albums/"+aid, &a) != 200 || len(a.Tracks) != 2 || a.Tracks[0].Title != "Opener" ||
		a.Tracks[1].Title != "Fixture Song" || a.URI != AlbumURIPrefix+aid || a.LoudnessLUFS == nil || a.ArtURL == "" {
		t.Errorf("album: %+v", a)
	}
	var tr TrackInfo
	tid := trackID("Band A/First Album/03.ogg")
	if get("/v1/library/tracks/"+tid, &tr) != 200 || tr.URI != TrackURIPrefix+tid || tr.MediaURL != "/v1/media/"+tid ||
		tr.TrackNumber != 3 || tr.DiscNumber != 1 || tr.DurationMS != 1500 || tr.LoudnessLUFS == nil ||
		tr.TruePeakDBTP == nil || tr.AlbumLoudnessLUFS == nil || tr.SampleRate != 22050 || !tr.Analysed {
		t.Errorf("track: %+v", tr)
	}
	if get("/v1/library/albums/0000000000000000", &a) != 404 || get("/v1/library/tracks/0000000000000000", &tr) != 404 {
		t.Error("unknown ids not 404")
	}
	var st Status
	if get("/v1/library/status", &st) != 200 || st.Tracks != 4 || st.Albums != 3 || st.State != "idle" {
		t.Errorf("status: %+v", st)
	}
	if resp, _ := s.do(t, "POST", "/v1/library/rescan"); resp.StatusCode != 202 {
		t.Errorf("rescan: %d", resp.StatusCode)
	}
}

func TestServeArt(t *testing.T) {
	s := serveTestLibrary(t)
	png, _ := os.ReadFile(fixturePath("cover.png"))
	jpg, _ := os.ReadFile(fixturePath("cover.jpg"))
	cases := []struct {
		name   string
		id     string
		status int
		ctype  string
		body   []byte
	}{
		// The embedded picture claims image/jpeg; its bytes are a PNG.
		{"embedded, track", trackID("Band A/First Album/03.ogg"), 200, "image/png", png},
		{"embedded, album", albumID("Band A", "First Album"), 200, "image/png", png},
		{"folder image, track", trackID("Folder Art/1.ogg"), 200, "image/jpeg", jpg},
		{"folder image, album", albumID("C", "Folder Art"), 200, "image/jpeg", jpg},
		{"no art", trackID("No Art/1.ogg"), 404, "", nil},
		{"track without art in an album with art", trackID("Band A/First Album/01.ogg"), 404, "", nil},
		{"unknown", "0000000000000000", 404, "", nil},
	}
	for _, c := range cases {
		resp, body := s.do(t, "GET", "/v1/art/"+c.id)
		if resp.StatusCode != c.status {
			t.Errorf("%s: status %d, want %d", c.name, resp.StatusCode, c.status)
			continue
		}
		if c.status == 200 && (resp.Header.Get("Content-Type") != c.ctype || !bytes.Equal(body, c.body) || resp.Header.Get("ETag") == "") {
			t.Errorf("%s: %s, %d bytes, ETag %q", c.name, resp.Header.Get("Content-Type"), len(body), resp.Header.Get("ETag"))
		}
		if c.status == 200 {
			if r2, _ := s.do(t, "GET", "/v1/art/"+c.id, "If-None-Match", resp.Header.Get("ETag")); r2.StatusCode != 304 {
				t.Errorf("%s: revalidation %d, want 304", c.name, r2.StatusCode)
			}
		}
	}
}
