package library

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/roomcast/roomcast/protocol"
)

// Options configure a Library.
type Options struct {
	// MusicDir is the folder to index (required). Nothing outside it is
	// ever read: symlinks that lead out of it are not followed.
	MusicDir string
	// StateDir holds the index, library.db (required; created if needed).
	StateDir string
	// Logger receives progress and problems; nil discards them.
	Logger *slog.Logger
	// RescanInterval, when positive, starts a rescan that often while Run
	// runs. 0: scan when Run starts and on Rescan only.
	RescanInterval time.Duration
}

// Library indexes a music folder, measures loudness and serves the result.
//
// Concurrency: all methods are safe for concurrent use, except that Run
// and RunOnce must not run at the same time (the second returns an
// error) and Close must be called after they returned. One goroutine —
// the one running Run or RunOnce — owns the index: it alone walks the
// folder, reads files, decodes them for analysis and writes the database.
// Readers (HTTP handlers, Track, Album, ResolveContext, Status) never wait
// for it: they read the last published snapshot, an immutable catalog
// swapped in atomically after each database commit.
type Library struct {
	log      *slog.Logger
	musicDir string // absolute
	interval time.Duration
	root     *os.Root // the music dir; every file access goes through it
	db       *indexDB

	cat     atomic.Pointer[catalog] // the last committed index
	rescan  chan struct{}           // capacity 1: pending rescan request
	running atomic.Bool             // Run or RunOnce is active
	closed  sync.Once

	mu       sync.Mutex // guards progress
	progress Status

	w worker // owned by the goroutine in Run/RunOnce
}

// worker is the state of the goroutine that owns the index.
type worker struct {
	files        map[string]*fileRec  // by path; mirrors the database
	albums       map[string]*albumRec // by album id; mirrors the database
	walkProblems []Failure            // of the last walk (not stored)
	// skip lists albums whose analysis failed for a reason that may pass
	// (I/O error, file changed): not retried before the next scan.
	skip        map[string]bool
	analysis    analyser
	lastPublish time.Time
	dirty       bool // changed since the last publish
}

// Status is a library's progress and counts.
type Status struct {
	// State is "idle", "scanning" (walking the folder and reading tags)
	// or "analysing" (measuring loudness).
	State string `json:"state"`
	// Current is the file being read or analysed.
	Current string `json:"current,omitempty"`
	// Error is why the last scan could not complete (e.g. the music
	// directory is unreadable), empty when it did.
	Error string `json:"error,omitempty"`
	// Scans counts completed scans since Open.
	Scans        int       `json:"scans"`
	ScanStarted  time.Time `json:"scan_started,omitzero"`
	ScanFinished time.Time `json:"scan_finished,omitzero"`
	// Of the current (or last) scan: audio files found, checked so far,
	// read because they were new or changed, and removed from the index.
	FilesTotal   int `json:"files_total"`
	FilesSeen    int `json:"files_seen"`
	FilesRead    int `json:"files_read"`
	FilesRemoved int `json:"files_removed"`
	// AnalysisPending counts tracks waiting for loudness analysis;
	// Decoded counts files decoded for analysis since Open.
	AnalysisPending int `json:"analysis_pending"`
	Decoded         int `json:"decoded"`
	// From the published index: playable tracks, albums, tracks whose
	// analysis is done, and files or folders that could not be used (the
	// first maxStatusFailures of them are listed).
	Tracks   int       `json:"tracks"`
	Albums   int       `json:"albums"`
	Measured int       `json:"measured"`
	Failed   int       `json:"failed"`
	Failures []Failure `json:"failures,omitempty"`
	// Unsupported counts, by extension, the audio files of the last walk
	// in formats we do not play (.m4a, .wav, ...); each is also listed in
	// Failures (stage "walk").
	Unsupported []FormatCount `json:"unsupported,omitempty"`
}

// FormatCount is a number of files with one extension.
type FormatCount struct {
	Ext   string `json:"ext"`
	Files int    `json:"files"`
}

const maxStatusFailures = 500

// Open opens the index in opts.StateDir (creating it if needed) for
// opts.MusicDir and publishes what it holds, so the library is browsable
// at once; Run then brings it up to date.
func Open(opts Options) (*Library, error) {
	if opts.MusicDir == "" {
		return nil, errors.New("library: no music directory given")
	}
	if opts.StateDir == "" {
		return nil, errors.New("library: no state directory given")
	}
	dir, err := filepath.Abs(opts.MusicDir)
	if err != nil {
		return nil, fmt.Errorf("library: music directory: %w", err)
	}
	if fi, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("library: music directory: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("library: music directory %s is not a directory", dir)
	}
	if err := os.MkdirAll(opts.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("library: state directory: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("library: music directory: %w", err)
	}
	ctx := context.Background()
	db, err := openIndex(ctx, indexPath(opts.StateDir), dir)
	if err != nil {
		root.Close()
		return nil, fmt.Errorf("library: %w", err)
	}
	files, albums, err := db.load(ctx)
	if err != nil {
		db.close()
		root.Close()
		return nil, fmt.Errorf("library: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &Library{
		log:      log,
		musicDir: dir,
		interval: opts.RescanInterval,
		root:     root,
		db:       db,
		rescan:   make(chan struct{}, 1),
		progress: Status{State: "idle"},
		w:        worker{files: files, albums: albums, skip: map[string]bool{}},
	}
	l.publish()
	return l, nil
}

// Close releases the database and the music directory. Call it after Run
// or RunOnce returned. Handlers registered by Register fail afterwards.
func (l *Library) Close() error {
	var err error
	l.closed.Do(func() {
		err = l.db.close()
		l.root.Close()
	})
	if err != nil {
		return fmt.Errorf("library: close: %w", err)
	}
	return nil
}

// Run keeps the index up to date until ctx is cancelled, then returns
// nil: a scan at start, on Rescan and every RescanInterval, and loudness
// analysis of new and changed albums in between (one album at a time; a
// rescan request is served between albums). Problems of a scan are
// logged and reported by Status; the next scan retries. Run returns an
// error only if Run or RunOnce is already running.
func (l *Library) Run(ctx context.Context) error {
	if !l.running.CompareAndSwap(false, true) {
		return errors.New("library: Run called while Run or RunOnce is running")
	}
	defer l.running.Store(false)
	var tick <-chan time.Time
	if l.interval > 0 {
		t := time.NewTicker(l.interval)
		defer t.Stop()
		tick = t.C
	}
	scanDue := true
	for {
		if ctx.Err() != nil {
			l.setState("idle", "")
			return nil
		}
		if scanDue {
			scanDue = false
			if err := l.scan(ctx); err != nil && ctx.Err() == nil {
				l.log.Error("library scan failed", "dir", l.musicDir, "err", err)
			}
			continue
		}
		if album, ok := l.nextAlbum(); ok {
			select {
			case <-l.rescan:
				scanDue = true
			case <-tick:
				scanDue = true
			default:
				l.analyseAlbum(ctx, album)
			}
			continue
		}
		l.publishNow()
		l.setState("idle", "")
		select {
		case <-ctx.Done():
		case <-l.rescan:
			scanDue = true
		case <-tick:
			scanDue = true
		}
	}
}

// RunOnce scans the folder and analyses everything that needs it, in the
// calling goroutine, then returns: for batch use (roomcast-broker scan).
// It returns the scan's error (unreadable music directory, database
// failure) or ctx's error when cancelled; problems with single files are
// not errors (see Status().Failures).
func (l *Library) RunOnce(ctx context.Context) error {
	if !l.running.CompareAndSwap(false, true) {
		return errors.New("library: RunOnce called while Run or RunOnce is running")
	}
	defer l.running.Store(false)
	defer l.setState("idle", "")
	if err := l.scan(ctx); err != nil {
		return fmt.Errorf("library: %w", err)
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		album, ok := l.nextAlbum()
		if !ok {
			break
		}
		l.analyseAlbum(ctx, album)
	}
	l.publishNow()
	return ctx.Err()
}

// Rescan asks Run for a scan as soon as the current album's analysis (or
// the current scan) is done. Requests made while one is pending are
// merged. It never blocks.
func (l *Library) Rescan() {
	select {
	case l.rescan <- struct{}{}:
	default:
	}
}

// Status returns the progress of the scanner and analyser and the counts
// of the published index.
func (l *Library) Status() Status {
	l.mu.Lock()
	s := l.progress
	l.mu.Unlock()
	c := l.cat.Load()
	s.Albums = len(c.albums)
	s.Tracks = len(c.trackBy)
	s.Measured = c.analysed
	s.Failed = len(c.failures)
	s.Failures = c.failures[:min(len(c.failures), maxStatusFailures):min(len(c.failures), maxStatusFailures)]
	return s
}

func (l *Library) setState(state, current string) {
	l.mu.Lock()
	l.progress.State, l.progress.Current = state, current
	l.mu.Unlock()
}

func (l *Library) update(fn func(*Status)) {
	l.mu.Lock()
	fn(&l.progress)
	l.mu.Unlock()
}

// publish swaps in a catalog built from the worker's state. Only the
// worker (or Open, before it starts) calls it.
func (l *Library) publish() {
	l.cat.Store(buildCatalog(l.w.files, l.w.albums, l.w.walkProblems))
	l.w.lastPublish = time.Now()
	l.w.dirty = false
}

// publishSoon publishes at most once per publishEvery, so that a large
// analysis does not rebuild the catalog after every album.
func (l *Library) publishSoon() {
	if l.w.dirty && time.Since(l.w.lastPublish) >= publishEvery {
		l.publish()
	}
}

// publishNow publishes if anything changed since the last publish.
func (l *Library) publishNow() {
	if l.w.dirty {
		l.publish()
	}
}

const publishEvery = time.Second

// Track returns the metadata of a track, with its loudness figures once
// measured, by id or by roomcast:track:<id> URI. ok is false for an
// unknown track.
func (l *Library) Track(id string) (protocol.Track, bool) {
	id = strings.TrimPrefix(id, TrackURIPrefix)
	t, ok := l.cat.Load().trackBy[id]
	if !ok {
		return protocol.Track{}, false
	}
	return cloneTrack(t.Track), true
}

// Album returns the tracks of an album, by id or by roomcast:album:<id>
// URI, in disc and track order. ok is false for an unknown album.
func (l *Library) Album(id string) (tracks []protocol.Track, ok bool) {
	id = strings.TrimPrefix(id, AlbumURIPrefix)
	a, ok := l.cat.Load().albumBy[id]
	if !ok {
		return nil, false
	}
	tracks = make([]protocol.Track, len(a.Tracks))
	for i := range a.Tracks {
		tracks[i] = cloneTrack(a.Tracks[i].Track)
	}
	return tracks, true
}

// ResolveContext returns the track URIs a context URI stands for, in
// playing order: the tracks of roomcast:album:<id>, or a
// roomcast:track:<id> itself. ok is false for an unknown or unsupported
// URI.
func (l *Library) ResolveContext(uri string) (trackURIs []string, ok bool) {
	c := l.cat.Load()
	if id, found := strings.CutPrefix(uri, AlbumURIPrefix); found {
		a, ok := c.albumBy[id]
		if !ok {
			return nil, false
		}
		out := make([]string, len(a.Tracks))
		for i, t := range a.Tracks {
			out[i] = t.URI
		}
		return out, true
	}
	if id, found := strings.CutPrefix(uri, TrackURIPrefix); found {
		if _, ok := c.trackBy[id]; ok {
			return []string{uri}, true
		}
	}
	return nil, false
}

// ResolveTracks returns the tracks of contextURI (a roomcast:album:<id>,
// or a single roomcast:track:<id>) when it is set, else of uris (track
// URIs), in playing order, with metadata and loudness. An unknown album or
// track is an error. It implements broker.Resolver: safe for concurrent
// use, an index lookup that never waits for a scan.
func (l *Library) ResolveTracks(contextURI string, uris []string) ([]protocol.Track, error) {
	c := l.cat.Load()
	if contextURI != "" {
		if id, ok := strings.CutPrefix(contextURI, AlbumURIPrefix); ok {
			a, ok := c.albumBy[id]
			if !ok {
				return nil, fmt.Errorf("library: unknown album %q", contextURI)
			}
			out := make([]protocol.Track, len(a.Tracks))
			for i := range a.Tracks {
				out[i] = cloneTrack(a.Tracks[i].Track)
			}
			return out, nil
		}
		if !strings.HasPrefix(contextURI, TrackURIPrefix) {
			return nil, fmt.Errorf("library: unsupported context %q (want %s<id>)", contextURI, AlbumURIPrefix)
		}
		uris = []string{contextURI}
	}
	if len(uris) == 0 {
		return nil, errors.New("library: nothing to resolve")
	}
	out := make([]protocol.Track, 0, len(uris))
	for _, u := range uris {
		id, ok := strings.CutPrefix(u, TrackURIPrefix)
		t, found := c.trackBy[id]
		if !ok || !found {
			return nil, fmt.Errorf("library: unknown track %q", u)
		}
		out = append(out, cloneTrack(t.Track))
	}
	return out, nil
}
