package fetch

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const testToken = "rc_test"

// mediaServer serves named blobs like the broker's /v1/media/<id>, with
// Range, ETag and auth (http.ServeContent). dropAfter > 0 makes each
// response die after that many bytes, like a flaky network.
type mediaServer struct {
	files     map[string][]byte
	dropAfter atomic.Int64
	requests  atomic.Int64
	down      atomic.Bool
}

func (m *mediaServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.requests.Add(1)
	if m.down.Load() {
		hj, _ := w.(http.Hijacker)
		c, _, _ := hj.Hijack()
		c.Close()
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+testToken {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	id, ok := strings.CutPrefix(r.URL.Path, "/v1/media/")
	data, found := m.files[id]
	if !ok || !found {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("ETag", `"v1-`+id+`"`)
	var out io.Writer = w
	if n := m.dropAfter.Load(); n > 0 {
		out = &dropWriter{w: w, left: n}
	}
	http.ServeContent(responseWriter{w, out}, r, id, time.Unix(1_700_000_000, 0), bytes.NewReader(data))
}

// responseWriter routes the body through a dropWriter.
type responseWriter struct {
	http.ResponseWriter
	body io.Writer
}

func (r responseWriter) Write(p []byte) (int, error) { return r.body.Write(p) }

type dropWriter struct {
	w    http.ResponseWriter
	left int64
}

func (d *dropWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > d.left {
		p = p[:d.left]
		d.w.Write(p)
		d.w.(http.Flusher).Flush()
		c, _, _ := d.w.(http.Hijacker).Hijack()
		c.Close()
		return len(p), errors.New("dropped")
	}
	d.left -= int64(len(p))
	return d.w.Write(p)
}

func newServer(t *testing.T, files map[string][]byte) (*mediaServer, *httptest.Server) {
	m := &mediaServer{files: files}
	s := httptest.NewServer(m)
	t.Cleanup(s.Close)
	return m, s
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func newFetcher(t *testing.T, base string, cacheBytes int64) *Fetcher {
	c, err := OpenCache(t.TempDir(), cacheBytes)
	if err != nil {
		t.Fatal(err)
	}
	return &Fetcher{Base: base, Token: testToken, Cache: c, RetryFor: 5 * time.Second, StallTimeout: 2 * time.Second}
}

func readAll(t *testing.T, f *Fetcher, id string) []byte {
	t.Helper()
	fl, err := f.Open(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	defer fl.Close()
	b, err := io.ReadAll(fl)
	if err != nil {
		t.Fatalf("read %s: %v", id, err)
	}
	return b
}

func TestDownloadCacheAndOffline(t *testing.T) {
	data := randomBytes(3<<20 + 17)
	m, s := newServer(t, map[string][]byte{"t1": data})
	f := newFetcher(t, s.URL, DefaultCacheBytes)
	if got := readAll(t, f, "t1"); !bytes.Equal(got, data) {
		t.Fatal("downloaded bytes differ")
	}
	// A replay comes from the cache, even with the server gone.
	m.down.Store(true)
	before := m.requests.Load()
	if got := readAll(t, f, "t1"); !bytes.Equal(got, data) {
		t.Fatal("cached bytes differ")
	}
	if m.requests.Load() != before {
		t.Fatal("a cached file went to the network")
	}
}

func TestResumeAfterDroppedConnections(t *testing.T) {
	data := randomBytes(2<<20 + 5)
	m, s := newServer(t, map[string][]byte{"t1": data})
	m.dropAfter.Store(300 << 10) // every response dies after 300 KiB
	f := newFetcher(t, s.URL, DefaultCacheBytes)
	if got := readAll(t, f, "t1"); !bytes.Equal(got, data) {
		t.Fatal("resumed download differs")
	}
	if r := m.requests.Load(); r < 7 {
		t.Fatalf("only %d requests: the drops did not happen", r)
	}
}

func TestSeekAndFarReads(t *testing.T) {
	data := randomBytes(4 << 20)
	m, s := newServer(t, map[string][]byte{"t1": data})
	f := newFetcher(t, s.URL, DefaultCacheBytes)
	m.dropAfter.Store(64 << 10) // keep the background download slow
	fl, err := f.Open(context.Background(), "t1")
	if err != nil {
		t.Fatal(err)
	}
	defer fl.Close()
	// Read the last 100 bytes, as a decoder looking for the final page.
	if _, err := fl.Seek(-100, io.SeekEnd); err != nil {
		t.Fatal(err)
	}
	tail := make([]byte, 100)
	if _, err := io.ReadFull(fl, tail); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(tail, data[len(data)-100:]) {
		t.Fatal("tail differs")
	}
	if n, err := fl.Read(tail); n != 0 || err != io.EOF {
		t.Fatalf("read at end: %d %v", n, err)
	}
	fl.Seek(12345, io.SeekStart)
	mid := make([]byte, 1000)
	if _, err := io.ReadFull(fl, mid); err != nil || !bytes.Equal(mid, data[12345:13345]) {
		t.Fatalf("middle read: %v", err)
	}
}

func TestPartialNeverCached(t *testing.T) {
	data := randomBytes(4 << 20)
	m, s := newServer(t, map[string][]byte{"t1": data})
	m.dropAfter.Store(128 << 10)
	f := newFetcher(t, s.URL, DefaultCacheBytes)
	fl, err := f.Open(context.Background(), "t1")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1000)
	if _, err := io.ReadFull(fl, buf); err != nil {
		t.Fatal(err)
	}
	fl.Close() // before the download finished
	if _, _, ok := f.Cache.lookup("t1"); ok {
		t.Fatal("a partial download was cached as complete")
	}
	entries, _ := os.ReadDir(f.Cache.dir)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".part") {
			t.Fatalf("left a part file: %s", e.Name())
		}
	}
	// Leftover .part files from a crash are not taken for media either.
	os.WriteFile(filepath.Join(f.Cache.dir, "t1.123.part"), data[:10], 0o600)
	c2, err := OpenCache(f.Cache.dir, DefaultCacheBytes)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, ok := c2.lookup("t1"); ok {
		t.Fatal("crash leftovers served")
	}
	if _, err := os.Stat(filepath.Join(f.Cache.dir, "t1.123.part")); !os.IsNotExist(err) {
		t.Fatal("crash leftover .part not removed")
	}
}

func TestLRUEviction(t *testing.T) {
	files := map[string][]byte{}
	for _, id := range []string{"a", "b", "c", "d"} {
		files[id] = randomBytes(100 << 10)
	}
	_, s := newServer(t, files)
	f := newFetcher(t, s.URL, 250<<10) // room for two
	readAll(t, f, "a")
	time.Sleep(20 * time.Millisecond)
	readAll(t, f, "b")
	time.Sleep(20 * time.Millisecond)
	readAll(t, f, "a") // a is now the most recent
	time.Sleep(20 * time.Millisecond)
	readAll(t, f, "c") // evicts b
	for id, want := range map[string]bool{"a": true, "b": false, "c": true} {
		if _, _, ok := f.Cache.lookup(id); ok != want {
			t.Errorf("%s cached = %v, want %v", id, ok, want)
		}
	}
	if f.Cache.Size() > 250<<10 {
		t.Fatalf("cache holds %d bytes, cap %d", f.Cache.Size(), 250<<10)
	}
}

func TestCacheOff(t *testing.T) {
	data := randomBytes(200 << 10)
	m, s := newServer(t, map[string][]byte{"t1": data})
	f := newFetcher(t, s.URL, 0)
	readAll(t, f, "t1")
	readAll(t, f, "t1")
	if m.requests.Load() != 2 {
		t.Fatalf("%d requests with the cache off, want 2", m.requests.Load())
	}
	if f.Cache.Size() != 0 {
		t.Fatal("cache off but files kept")
	}
}

func TestErrors(t *testing.T) {
	_, s := newServer(t, map[string][]byte{"t1": randomBytes(10)})
	f := newFetcher(t, s.URL, DefaultCacheBytes)
	var se *StatusError
	if _, err := f.Open(context.Background(), "nope"); !errors.As(err, &se) || se.Status != 404 {
		t.Errorf("unknown id: %v", err)
	}
	bad := *f
	bad.Token = "rc_wrong"
	if _, err := bad.Open(context.Background(), "t1"); !errors.As(err, &se) || se.Status != 401 {
		t.Errorf("bad token: %v", err)
	}
	for _, id := range []string{"", "../etc/passwd", "a/b", "a.b", strings.Repeat("x", 200)} {
		if _, err := f.Open(context.Background(), id); err == nil {
			t.Errorf("id %q accepted", id)
		}
	}
	// A server that stays away: the download gives up after RetryFor.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	dead := newFetcher(t, "http://"+addr, DefaultCacheBytes)
	dead.RetryFor = 500 * time.Millisecond
	if _, err := dead.Open(context.Background(), "t1"); err == nil {
		t.Error("open from a dead server succeeded")
	}
}

func TestParseContentRange(t *testing.T) {
	for _, c := range []struct {
		in          string
		start, size int64
		ok          bool
	}{
		{"bytes 0-99/100", 0, 100, true},
		{"bytes 5-9/10", 5, 10, true},
		{"bytes 5-10/10", 0, 0, false},
		{"bytes */10", 0, 0, false},
		{"items 0-1/2", 0, 0, false},
		{"bytes 9-5/10", 0, 0, false},
		{"bytes -1-5/10", 0, 0, false},
	} {
		start, size, ok := parseContentRange(c.in)
		if ok != c.ok || (ok && (start != c.start || size != c.size)) {
			t.Errorf("%q: %d %d %v", c.in, start, size, ok)
		}
	}
}
