package library

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/testenv"
	"github.com/roomcast/roomcast/protocol"
)

// truncate writes the first frac of src to dst.
func truncateCopy(t testing.TB, src, dst string, frac float64) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b[:int(float64(len(b))*frac)], 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func garbage(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func failureFor(fs []Failure, path string) (Failure, bool) {
	for _, f := range fs {
		if f.Path == path {
			return f, true
		}
	}
	return Failure{}, false
}

// testMusic builds a small library: a 3-track album (one track with an
// album artist and another artist), a 2-disc album, an untagged folder,
// damaged files, and files that must be ignored.
func testMusic(t *testing.T) string {
	t.Helper()
	music := t.TempDir()
	plain := fixturePath("plain.ogg")
	addTrack(t, music, "Band/Album One/02.ogg", plain, "TITLE=Two", "ARTIST=Band", "ALBUM=Album One", "TRACKNUMBER=2/3", "DATE=2001")
	addTrack(t, music, "Band/Album One/01.ogg", plain, "TITLE=One", "ARTIST=Band", "ALBUM=Album One", "TRACKNUMBER=1/3", "DATE=2001")
	addTrack(t, music, "Band/Album One/03.oga", plain, "TITLE=Three", "ARTIST=Band feat. X", "ALBUMARTIST=Band", "ALBUM=album one", "TRACKNUMBER=3/3")
	testenv.CopyFile(t, fixturePath("cover.jpg"), filepath.Join(music, "Band/Album One/Cover.JPG"), 0o644)
	addTrack(t, music, "Other/b.ogg", plain, "TITLE=B", "ARTIST=Other", "ALBUM=Two Discs", "DISCNUMBER=2", "TRACKNUMBER=1")
	addTrack(t, music, "Other/a.ogg", plain, "TITLE=A", "ARTIST=Other", "ALBUM=Two Discs", "DISCNUMBER=1", "TRACKNUMBER=5")
	testenv.CopyFile(t, plain, filepath.Join(music, "Loose/x.ogg"), 0o644)
	writeFile(t, filepath.Join(music, "bad/garbage.ogg"), garbage(5000))
	truncateCopy(t, plain, filepath.Join(music, "bad/headers-cut.ogg"), 0.5)
	long := synth(t, t.TempDir(), "long.ogg", 4, 44100, 2, "pinknoise", "gain", "-15")
	truncateCopy(t, long, filepath.Join(music, "bad/audio-cut.ogg"), 0.6)
	writeFile(t, filepath.Join(music, "notes.txt"), []byte("not music"))
	testenv.CopyFile(t, plain, filepath.Join(music, ".hidden/h.ogg"), 0o644)
	testenv.CopyFile(t, plain, filepath.Join(music, "Loose/._x.ogg"), 0o644)
	if err := syscall.Mkfifo(filepath.Join(music, "Loose/fifo.ogg"), 0o644); err != nil {
		t.Fatal(err)
	}
	return music
}

func TestScan(t *testing.T) {
	music := testMusic(t)
	l := openLib(t, music)
	st := runOnce(t, l)

	if st.Tracks != 6 || st.Albums != 3 {
		t.Errorf("tracks %d albums %d, want 6 and 3", st.Tracks, st.Albums)
	}
	if st.FilesTotal != 9 || st.FilesRead != 9 {
		// 6 tracks + 3 damaged; the FIFO is not a regular file: skipped
		t.Errorf("files total %d read %d, want 9 and 9", st.FilesTotal, st.FilesRead)
	}
	for _, c := range []struct{ path, stage, reason string }{
		{"bad/garbage.ogg", "scan", "unsupported audio format"},
		{"bad/headers-cut.ogg", "scan", "truncated"},
		{"bad/audio-cut.ogg", "analysis", "truncated"},
	} {
		f, ok := failureFor(st.Failures, c.path)
		if !ok || f.Stage != c.stage || !strings.Contains(f.Reason, c.reason) {
			t.Errorf("failure for %s = %+v (found %v), want stage %s and reason with %q", c.path, f, ok, c.stage, c.reason)
		}
	}
	if st.Failed != 3 {
		t.Errorf("failed = %d, want 3: %+v", st.Failed, st.Failures)
	}
	if _, ok := l.Track(trackID("bad/audio-cut.ogg")); ok {
		t.Error("a track that does not decode completely is offered")
	}
	for _, p := range []string{".hidden/h.ogg", "Loose/._x.ogg", "notes.txt", "Loose/fifo.ogg"} {
		if _, ok := l.Track(trackID(p)); ok {
			t.Errorf("%s indexed", p)
		}
	}

	c := l.cat.Load()
	var titles [][]string
	for _, a := range c.albums {
		var ts []string
		for _, tr := range a.Tracks {
			ts = append(ts, tr.Title)
		}
		titles = append(titles, append([]string{a.Artist + "/" + a.Title}, ts...))
	}
	want := [][]string{{"/Loose", "x"}, {"Band/Album One", "One", "Two", "Three"}, {"Other/Two Discs", "A", "B"}}
	if len(titles) != len(want) {
		t.Fatalf("albums %v, want %v", titles, want)
	}
	for i := range want {
		if strings.Join(titles[i], "|") != strings.Join(want[i], "|") {
			t.Errorf("album %d = %v, want %v", i, titles[i], want[i])
		}
	}

	one := albumID("Band", "Album One")
	tracks, ok := l.Album(one)
	if !ok || len(tracks) != 3 {
		t.Fatalf("Album(%s) = %d tracks, %v", one, len(tracks), ok)
	}
	tr := tracks[0]
	if tr.URI != TrackURIPrefix+trackID("Band/Album One/01.ogg") || tr.AlbumURI != AlbumURIPrefix+one ||
		tr.DurationMS != 1000 || tr.TrackNumber != 1 || tr.AlbumArtist != "Band" || tr.Artist != "Band" {
		t.Errorf("track: %+v", tr)
	}
	if tr.ArtURL != "/v1/art/"+trackID("Band/Album One/01.ogg") {
		t.Errorf("art url %q: the folder has Cover.JPG", tr.ArtURL)
	}
	for _, tr := range tracks {
		if tr.LoudnessLUFS == nil || tr.TruePeakDBTP == nil || tr.AlbumLoudnessLUFS == nil || tr.AlbumTruePeakDBTP == nil {
			t.Errorf("%s: loudness missing: %+v", tr.Title, tr)
		}
	}
	uris, ok := l.ResolveContext(AlbumURIPrefix + one)
	if !ok || len(uris) != 3 || uris[0] != tracks[0].URI || uris[2] != tracks[2].URI {
		t.Errorf("ResolveContext = %v, %v", uris, ok)
	}
	if _, ok := l.ResolveContext(AlbumURIPrefix + "0000000000000000"); ok {
		t.Error("unknown album resolved")
	}
	if u, ok := l.ResolveContext(tracks[1].URI); !ok || len(u) != 1 {
		t.Error("track URI does not resolve to itself")
	}
	if got, ok := l.Track(tracks[1].URI); !ok || got.Title != "Two" {
		t.Errorf("Track by URI: %+v %v", got, ok)
	}
	// What callers get is theirs: changing it does not change the library.
	*tracks[0].LoudnessLUFS = 99
	if again, _ := l.Track(tracks[0].URI); *again.LoudnessLUFS == 99 {
		t.Error("Track returned a pointer into the catalog")
	}
}

// TestIncrementalRescan proves that unchanged files are not read again:
// counters, and a file whose content is swapped behind the scanner's back
// (same size and modification time) keeps its old tags.
func TestIncrementalRescan(t *testing.T) {
	music := t.TempDir()
	plain := fixturePath("plain.ogg")
	a1 := addTrack(t, music, "A/1.ogg", plain, "TITLE=A1", "ARTIST=X", "ALBUM=A", "TRACKNUMBER=1")
	addTrack(t, music, "A/2.ogg", plain, "TITLE=A2", "ARTIST=X", "ALBUM=A", "TRACKNUMBER=2")
	addTrack(t, music, "B/1.ogg", plain, "TITLE=B1", "ARTIST=Y", "ALBUM=B", "TRACKNUMBER=1")
	b2 := addTrack(t, music, "B/2.ogg", plain, "TITLE=B2", "ARTIST=Y", "ALBUM=B", "TRACKNUMBER=2")
	state := t.TempDir()

	l := openLibState(t, music, state)
	st := runOnce(t, l)
	if st.FilesRead != 4 || st.Decoded != 4 || st.Tracks != 4 || st.Measured != 4 {
		t.Fatalf("first scan: %+v", st)
	}
	l.Close()

	// A new Library on the same index: nothing to read or decode.
	l = openLibState(t, music, state)
	if st := l.Status(); st.Tracks != 4 || st.Measured != 4 {
		t.Fatalf("index not loaded at Open: %+v", st)
	}
	st = runOnce(t, l)
	if st.FilesRead != 0 || st.Decoded != 0 || st.Tracks != 4 {
		t.Fatalf("unchanged rescan read %d, decoded %d (tracks %d)", st.FilesRead, st.Decoded, st.Tracks)
	}

	// Swap a1's content for garbage of the same size and restore its
	// modification time: the scanner must not look.
	fi, _ := os.Stat(a1)
	writeFile(t, a1, garbage(int(fi.Size())))
	if err := os.Chtimes(a1, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	st = runOnce(t, l)
	if tr, ok := l.Track(trackID("A/1.ogg")); !ok || tr.Title != "A1" || st.FilesRead != 0 {
		t.Fatalf("unchanged (size, mtime) file was re-read: %+v %v read=%d", tr, ok, st.FilesRead)
	}
	addTrack(t, music, "A/1.ogg", plain, "TITLE=A1", "ARTIST=X", "ALBUM=A", "TRACKNUMBER=1") // repair

	// Re-tag b2: it is read again, and album B (both tracks) re-measured;
	// album A (repaired above: also changed) too, nothing else.
	retag(t, b2, "TITLE=B2 new", "ARTIST=Y", "ALBUM=B", "TRACKNUMBER=2")
	st = runOnce(t, l)
	if st.FilesRead != 2 || st.Decoded != 4 {
		t.Errorf("after two changes: read %d decoded %d, want 2 and 4", st.FilesRead, st.Decoded)
	}
	if tr, _ := l.Track(trackID("B/2.ogg")); tr.Title != "B2 new" || tr.AlbumLoudnessLUFS == nil {
		t.Errorf("changed track: %+v", tr)
	}

	// Remove one file, move another: remove + add.
	if err := os.Remove(filepath.Join(music, "A/2.ogg")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(music, "C"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(music, "B/1.ogg"), filepath.Join(music, "C/moved.ogg")); err != nil {
		t.Fatal(err)
	}
	st = runOnce(t, l)
	if st.FilesRemoved != 2 || st.FilesRead != 1 || st.Tracks != 3 {
		t.Errorf("after remove+move: removed %d read %d tracks %d, want 2, 1, 3", st.FilesRemoved, st.FilesRead, st.Tracks)
	}
	if _, ok := l.Track(trackID("B/1.ogg")); ok {
		t.Error("moved file still under its old id")
	}
	if tr, ok := l.Track(trackID("C/moved.ogg")); !ok || tr.Title != "B1" {
		t.Errorf("moved file: %+v %v", tr, ok)
	}
	if tracks, _ := l.Album(albumID("X", "A")); len(tracks) != 1 {
		t.Errorf("album A has %d tracks, want 1", len(tracks))
	}
}

// TestSymlinks: loops end, links leading outside the music directory are
// not followed (and are reported), links inside are followed once.
func TestSymlinks(t *testing.T) {
	base := t.TempDir()
	music := filepath.Join(base, "music")
	outside := filepath.Join(base, "outside")
	plain := fixturePath("plain.ogg")
	addTrack(t, music, "album/a.ogg", plain, "TITLE=A", "ALBUM=Al", "ARTIST=X")
	addTrack(t, outside, "secret.ogg", plain, "TITLE=Secret", "ALBUM=S", "ARTIST=X")
	addTrack(t, music, "real/r.ogg", plain, "TITLE=R", "ALBUM=R", "ARTIST=X")
	links := []struct{ name, target string }{
		{"album/loop", ".."},                         // loop to the root
		{"album/self", "."},                          // loop to itself
		{"album/alias.ogg", "a.ogg"},                 // the same file again
		{"zz-linked", "real"},                        // a folder inside: walked already
		{"out-rel", "../outside"},                    // outside, relative
		{"out-abs", outside},                         // outside, absolute
		{"out-file.ogg", "../outside/secret.ogg"},    // a file outside
		{"dangling.ogg", "nowhere.ogg"},              // nothing
		{"album/deeper", "../album/loop/album/self"}, // a chain of links
	}
	for _, ln := range links {
		if err := os.Symlink(ln.target, filepath.Join(music, ln.name)); err != nil {
			t.Fatal(err)
		}
	}
	l := openLib(t, music)
	done := make(chan Status)
	go func() { done <- runOnce(t, l) }()
	var st Status
	select {
	case st = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("scan with symlink loops did not finish")
	}
	if st.Tracks != 2 {
		t.Errorf("tracks = %d, want 2 (a.ogg and r.ogg once each): %+v", st.Tracks, l.cat.Load().trackBy)
	}
	for _, p := range []string{"album/a.ogg", "real/r.ogg"} {
		if _, ok := l.Track(trackID(p)); !ok {
			t.Errorf("%s not indexed under its real path", p)
		}
	}
	for _, tr := range l.cat.Load().trackBy {
		if tr.Title == "Secret" {
			t.Errorf("file outside the music directory indexed as %s", tr.ID)
		}
	}
	for _, p := range []string{"out-rel", "out-abs", "out-file.ogg", "dangling.ogg"} {
		if f, ok := failureFor(st.Failures, p); !ok || f.Stage != "walk" {
			t.Errorf("%s not reported: %+v", p, st.Failures)
		}
	}
}

// TestMusicDirChange: an index built for another folder is not reused.
func TestMusicDirChange(t *testing.T) {
	state := t.TempDir()
	m1, m2 := t.TempDir(), t.TempDir()
	addTrack(t, m1, "a.ogg", fixturePath("plain.ogg"), "TITLE=A")
	l := openLibState(t, m1, state)
	runOnce(t, l)
	l.Close()
	l = openLibState(t, m2, state)
	if st := l.Status(); st.Tracks != 0 {
		t.Fatalf("index of %s used for %s: %d tracks", m1, m2, st.Tracks)
	}
}

func TestOpenErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	writeFile(t, file, nil)
	cases := []Options{
		{MusicDir: "", StateDir: t.TempDir()},
		{MusicDir: t.TempDir(), StateDir: ""},
		{MusicDir: filepath.Join(t.TempDir(), "missing"), StateDir: t.TempDir()},
		{MusicDir: file, StateDir: t.TempDir()},
	}
	for _, o := range cases {
		if l, err := Open(o); err == nil {
			l.Close()
			t.Errorf("Open(%+v) succeeded", o)
		} else if !strings.HasPrefix(err.Error(), "library: ") {
			t.Errorf("error without context: %v", err)
		}
	}
}

// TestRun: Run scans at start, serves Rescan, publishes as it goes, and
// returns nil when cancelled.
func TestRun(t *testing.T) {
	music := t.TempDir()
	plain := fixturePath("plain.ogg")
	addTrack(t, music, "a.ogg", plain, "TITLE=A", "ALBUM=X")
	l := openLib(t, music)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- l.Run(ctx) }()
	waitFor(t, l, func(s Status) bool { return s.Scans >= 1 && s.Measured == 1 && s.State == "idle" })
	if err := l.RunOnce(ctx); err == nil {
		t.Error("RunOnce while Run runs succeeded")
	}
	addTrack(t, music, "b.ogg", plain, "TITLE=B", "ALBUM=X")
	l.Rescan()
	waitFor(t, l, func(s Status) bool { return s.Scans >= 2 && s.Measured == 2 && s.State == "idle" })
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("Run returned %v on cancel", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func waitFor(t *testing.T, l *Library, ok func(Status) bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok(l.Status()) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out; status %+v", l.Status())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestUnreadableFolder: a folder that cannot be read is reported, the rest
// is scanned, and what was indexed from it before stays (a permission
// glitch must not empty the library). Root reads every folder, so as root
// the test runs itself again as user nobody.
func TestUnreadableFolder(t *testing.T) {
	if os.Geteuid() == 0 {
		testenv.RerunAs(t, "nobody")
		return
	}
	music := t.TempDir()
	plain := fixturePath("plain.ogg")
	addTrack(t, music, "ok/a.ogg", plain, "TITLE=A")
	addTrack(t, music, "locked/b.ogg", plain, "TITLE=B")
	l := openLib(t, music)
	if st := runOnce(t, l); st.Tracks != 2 {
		t.Fatalf("tracks = %d", st.Tracks)
	}
	locked := filepath.Join(music, "locked")
	if err := os.Chmod(locked, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(locked, 0o755) })
	addTrack(t, music, "ok/c.ogg", plain, "TITLE=C")
	st := runOnce(t, l)
	if f, ok := failureFor(st.Failures, "locked"); !ok || !strings.Contains(f.Reason, "cannot read folder") {
		t.Errorf("unreadable folder not reported: %+v", st.Failures)
	}
	if st.Tracks != 3 || st.FilesRemoved != 0 {
		t.Errorf("tracks %d removed %d, want 3 and 0", st.Tracks, st.FilesRemoved)
	}
}

// resolver is broker.Resolver, repeated here (library must not import
// broker): *Library has to satisfy it.
type resolver interface {
	ResolveTracks(contextURI string, uris []string) ([]protocol.Track, error)
}

var _ resolver = (*Library)(nil)

func TestResolveTracks(t *testing.T) {
	music := t.TempDir()
	plain := fixturePath("plain.ogg")
	addTrack(t, music, "A/2.ogg", plain, "TITLE=Second", "ARTIST=X", "ALBUM=A", "TRACKNUMBER=2")
	addTrack(t, music, "A/1.ogg", plain, "TITLE=First", "ARTIST=X", "ALBUM=A", "TRACKNUMBER=1")
	addTrack(t, music, "B/1.ogg", plain, "TITLE=Other", "ARTIST=Y", "ALBUM=B")
	l := openLib(t, music)
	runOnce(t, l)
	album := AlbumURIPrefix + albumID("X", "A")
	t1, t2, t3 := TrackURIPrefix+trackID("A/1.ogg"), TrackURIPrefix+trackID("A/2.ogg"), TrackURIPrefix+trackID("B/1.ogg")
	unknown := TrackURIPrefix + "0000000000000000"
	cases := []struct {
		name    string
		context string
		uris    []string
		want    []string // titles; nil: an error
	}{
		{"album in order", album, nil, []string{"First", "Second"}},
		{"context wins over uris", album, []string{t3}, []string{"First", "Second"}},
		{"track as context", t3, nil, []string{"Other"}},
		{"uris in the given order", "", []string{t3, t2, t1}, []string{"Other", "Second", "First"}},
		{"unknown album", AlbumURIPrefix + "0000000000000000", nil, nil},
		{"unknown track", "", []string{t1, unknown}, nil},
		{"not a track uri", "", []string{album}, nil},
		{"other context kind", "roomcast:playlist:x", nil, nil},
		{"nothing", "", nil, nil},
	}
	for _, c := range cases {
		got, err := l.ResolveTracks(c.context, c.uris)
		if c.want == nil {
			if err == nil {
				t.Errorf("%s: no error, got %d tracks", c.name, len(got))
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		var titles []string
		for _, tr := range got {
			titles = append(titles, tr.Title)
			if tr.LoudnessLUFS == nil || tr.AlbumLoudnessLUFS == nil || tr.DurationMS != 1000 {
				t.Errorf("%s: %s lacks metadata: %+v", c.name, tr.Title, tr)
			}
		}
		if strings.Join(titles, "|") != strings.Join(c.want, "|") {
			t.Errorf("%s: %v, want %v", c.name, titles, c.want)
		}
	}
}
