package library

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/roomcast/roomcast/audio/decode"
)

// Scan limits.
const (
	// maxDepth bounds folder nesting, besides the loop detection.
	maxDepth = 64
	// A scan commits (and publishes) after this many files read or this
	// long, whichever comes first, so a first scan of a large folder is
	// browsable while it runs.
	commitFiles = 200
	commitEvery = 2 * time.Second
)

// coverNames are the folder images used as cover art, best first
// (compared case-insensitively).
var coverNames = []string{
	"folder.jpg", "folder.jpeg", "folder.png",
	"cover.jpg", "cover.jpeg", "cover.png",
	"front.jpg", "front.jpeg", "front.png",
}

// audioExts are the extensions of the formats package decode plays
// (the content is sniffed; the extension only selects files to read).
var audioExts = []string{".ogg", ".oga", ".opus", ".flac", ".mp3"}

// otherAudioExts are audio formats we do not play: found files are
// listed in the scan report (Status.Unsupported and Failures), never
// dropped silently.
var otherAudioExts = []string{".m4a", ".m4b", ".mp4", ".aac", ".alac", ".wma", ".wav", ".aif", ".aiff",
	".ape", ".wv", ".mpc", ".dsf", ".dff", ".mka", ".webm", ".ac3", ".mp2", ".amr", ".tta"}

// isAudio reports whether a file name has the extension of a format we play.
func isAudio(name string) bool { return hasExt(name, audioExts) }

func hasExt(name string, exts []string) bool {
	ext := path.Ext(name)
	for _, e := range exts {
		if strings.EqualFold(ext, e) {
			return true
		}
	}
	return false
}

// found is an audio file the walk found.
type found struct {
	path    string
	size    int64
	mtimeNS int64
	cover   string // folder image of its folder, or ""
}

// walker lists the audio files under a root. Everything goes through the
// os.Root, so no name can lead outside the music directory; symlinks
// inside it are followed once the real folders have been walked, and each
// folder and file is taken once (by device and inode), which also ends
// symlink loops.
type walker struct {
	ctx         context.Context
	root        *os.Root
	dirs        map[fileKey]bool
	files       map[fileKey]bool
	links       []link // symlinks seen, followed after the real tree
	found       []found
	problems    []Failure
	failedDirs  []string       // folders not (completely) read: their files stay indexed
	unsupported map[string]int // audio files of formats we do not play, by lower-case extension
}

type link struct {
	path  string
	depth int
}

// run walks the whole tree. It fails only if the music directory itself
// cannot be read or ctx is cancelled; other problems are collected.
func (w *walker) run() error {
	fi, err := w.root.Stat(".")
	if err != nil {
		return err
	}
	if k, ok := keyOf(fi); ok {
		w.dirs[k] = true
	}
	if err := w.dir(".", 0, true); err != nil {
		return err
	}
	for i := 0; i < len(w.links); i++ { // w.links grows while we follow
		if err := w.ctx.Err(); err != nil {
			return err
		}
		w.follow(w.links[i])
	}
	return nil
}

func (w *walker) problem(p, reason string) {
	w.problems = append(w.problems, Failure{Path: p, Stage: "walk", Reason: reason})
}

// dir lists one folder: audio files are added, subfolders walked, symlinks
// queued. isRoot makes a failure to read it fatal.
func (w *walker) dir(rel string, depth int, isRoot bool) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	entries, err := w.readDir(rel)
	if err != nil {
		if isRoot {
			return err
		}
		w.problem(rel, "cannot read folder: "+err.Error())
		w.failedDirs = append(w.failedDirs, rel)
		if len(entries) == 0 {
			return nil
		}
	}
	cover := w.cover(rel, entries)
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue // hidden files, ._AppleDouble, .Trash
		}
		p := joinRel(rel, name)
		switch t := e.Type(); {
		case t&fs.ModeSymlink != 0:
			w.links = append(w.links, link{p, depth})
		case t.IsDir():
			fi, err := e.Info()
			if err != nil {
				continue // vanished
			}
			if err := w.subdir(p, fi, depth+1); err != nil {
				return err
			}
		case t.IsRegular() && isAudio(name):
			fi, err := e.Info()
			if err != nil {
				continue
			}
			w.file(p, fi, cover)
		case t.IsRegular() && hasExt(name, otherAudioExts):
			w.unsupportedFile(p)
		}
	}
	return nil
}

func (w *walker) readDir(rel string) ([]fs.DirEntry, error) {
	d, err := w.root.Open(rel)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.ReadDir(-1)
}

func (w *walker) subdir(p string, fi fs.FileInfo, depth int) error {
	if k, ok := keyOf(fi); ok {
		if w.dirs[k] {
			return nil
		}
		w.dirs[k] = true
	}
	if depth > maxDepth {
		w.problem(p, fmt.Sprintf("folder nested deeper than %d levels: not scanned", maxDepth))
		return nil
	}
	return w.dir(p, depth, false)
}

func (w *walker) file(p string, fi fs.FileInfo, cover string) {
	if k, ok := keyOf(fi); ok {
		if w.files[k] {
			return // the same file under another name (symlink, hard link)
		}
		w.files[k] = true
	}
	w.found = append(w.found, found{path: p, size: fi.Size(), mtimeNS: fi.ModTime().UnixNano(), cover: cover})
}

// unsupportedFile records an audio file of a format we do not play.
func (w *walker) unsupportedFile(p string) {
	ext := strings.ToLower(path.Ext(p))
	if w.unsupported == nil {
		w.unsupported = map[string]int{}
	}
	w.unsupported[ext]++
	w.problems = append(w.problems, Failure{Path: p, Stage: "walk", Reason: "unsupported format (" + ext + "): not indexed"})
}

// follow resolves a symlink inside the root. os.Root refuses links that
// lead outside it (and absolute links); those are reported, not followed.
func (w *walker) follow(l link) {
	fi, err := w.root.Stat(l.path)
	if err != nil {
		if isAudio(l.path) || !errors.Is(err, fs.ErrNotExist) {
			w.problem(l.path, "symlink not followed (it must stay inside the music directory and be relative): "+err.Error())
		}
		return
	}
	switch {
	case fi.IsDir():
		if err := w.subdir(l.path, fi, l.depth+1); err != nil {
			return // cancelled; run notices
		}
	case fi.Mode().IsRegular() && isAudio(l.path):
		w.file(l.path, fi, w.coverOf(path.Dir(l.path)))
	case fi.Mode().IsRegular() && hasExt(l.path, otherAudioExts):
		w.unsupportedFile(l.path)
	}
}

// cover returns the folder image among a folder's entries, or "".
func (w *walker) cover(rel string, entries []fs.DirEntry) string {
	for _, want := range coverNames {
		for _, e := range entries {
			if !strings.EqualFold(e.Name(), want) {
				continue
			}
			p := joinRel(rel, e.Name())
			if e.Type().IsRegular() {
				return p
			}
			if e.Type()&fs.ModeSymlink != 0 {
				if fi, err := w.root.Stat(p); err == nil && fi.Mode().IsRegular() {
					return p
				}
			}
		}
	}
	return ""
}

// coverOf lists a folder again to find its image (for symlinked files).
func (w *walker) coverOf(rel string) string {
	entries, err := w.readDir(rel)
	if err != nil {
		return ""
	}
	return w.cover(rel, entries)
}

// underFailedDir reports whether p lies in a folder the walk could not read.
func (w *walker) underFailedDir(p string) bool {
	for _, d := range w.failedDirs {
		if d == "." || strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}

func joinRel(dir, name string) string {
	if dir == "." {
		return name
	}
	return dir + "/" + name
}

// openRegular opens a file inside the root for reading and returns its
// metadata; anything but a regular file is refused. Opening does not block
// on FIFOs.
func openRegular(root *os.Root, p string) (*os.File, fs.FileInfo, error) {
	f, err := root.OpenFile(p, openFlags, 0)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, fmt.Errorf("%s: not a regular file", p)
	}
	return f, fi, nil
}

// isDecodeError reports whether err says the file's content is not a
// playable stream (as opposed to an I/O problem that may pass).
func isDecodeError(err error) bool {
	return errors.Is(err, decode.ErrUnknownFormat) || errors.Is(err, decode.ErrUnsupported) ||
		errors.Is(err, decode.ErrNotVorbis) || errors.Is(err, decode.ErrCorrupt) ||
		errors.Is(err, decode.ErrTruncated) || errors.Is(err, decode.ErrChained)
}

// readFile reads a file's tags and stream parameters. A file whose
// content is not usable gets Err (kept until the file changes); an I/O
// error gets Err too, with a size of -1 so the next scan tries again.
func (l *Library) readFile(fd found) (rec *fileRec) {
	rec = &fileRec{Path: fd.path, ID: trackID(fd.path), Size: fd.size, MtimeNS: fd.mtimeNS, Cover: fd.cover}
	defer func() {
		if r := recover(); r != nil {
			rec.Err = fmt.Sprintf("internal error while reading tags: %v", r)
		}
	}()
	f, fi, err := openRegular(l.root, fd.path)
	if err != nil {
		rec.Err, rec.Size = "cannot open: "+err.Error(), -1
		return rec
	}
	defer f.Close()
	rec.Size, rec.MtimeNS = fi.Size(), fi.ModTime().UnixNano()
	s, err := decode.Open(f)
	if err != nil {
		rec.Err = err.Error()
		if !isDecodeError(err) {
			rec.Size = -1
		}
		return rec
	}
	defer s.Close()
	tags := s.Tags()
	rec.Tags = parseTags(tags, fd.path)
	rec.Rate, rec.Channels, rec.Frames = s.SampleRate(), s.Channels(), max(s.Len(), 0)
	rec.Codec, rec.BitDepth = s.Codec(), s.BitDepth()
	_, rec.Embedded = embeddedCover(tags)
	rec.AlbumID = albumID(albumOf(rec.Tags, rec.Path))
	return rec
}

// scan brings the index up to date with the folder: new and changed
// files are read (size or modification time differ from the index),
// removed ones dropped, and the albums concerned queued for analysis. It
// commits in batches and publishes after each. It returns an error if
// the music directory cannot be read or the database cannot be written;
// the index is then left as it was committed.
func (l *Library) scan(ctx context.Context) (err error) {
	start := time.Now()
	l.update(func(s *Status) {
		s.State, s.Current, s.ScanStarted = "scanning", "", start
		s.FilesTotal, s.FilesSeen, s.FilesRead, s.FilesRemoved = 0, 0, 0, 0
	})
	defer func() {
		pending := l.pendingTracks()
		l.update(func(s *Status) {
			s.Current, s.ScanFinished, s.Error = "", time.Now(), ""
			if err != nil {
				s.Error = err.Error()
			} else {
				s.Scans++
			}
			s.AnalysisPending = pending
		})
	}()

	// Start from the database: another process (roomcast-broker scan) may
	// have written it.
	files, albums, err := l.db.load(ctx)
	if err != nil {
		return err
	}
	l.w.files, l.w.albums = files, albums
	clear(l.w.skip)

	w := &walker{ctx: ctx, root: l.root, dirs: map[fileKey]bool{}, files: map[fileKey]bool{}}
	if err := w.run(); err != nil {
		return fmt.Errorf("scan %s: %w", l.musicDir, err)
	}
	l.w.walkProblems = w.problems
	l.update(func(s *Status) { s.FilesTotal, s.Unsupported = len(w.found), formatCounts(w.unsupported) })

	var (
		put   []*fileRec
		del   []string
		stale = map[string]bool{}
		last  = time.Now()
		read  int
	)
	commit := func() error {
		ids := make([]string, 0, len(stale))
		for id := range stale {
			ids = append(ids, id)
		}
		if err := l.db.saveScan(ctx, put, del, ids); err != nil {
			return err
		}
		for _, f := range put {
			l.w.files[f.Path] = f
		}
		for _, p := range del {
			delete(l.w.files, p)
		}
		for _, id := range ids {
			delete(l.w.albums, id)
		}
		put, del, stale, last = nil, nil, map[string]bool{}, time.Now()
		l.publish()
		return nil
	}

	seen := make(map[string]bool, len(w.found))
	for i, fd := range w.found {
		if err := ctx.Err(); err != nil {
			return err
		}
		seen[fd.path] = true
		old := l.w.files[fd.path]
		if old != nil && old.Size == fd.size && old.MtimeNS == fd.mtimeNS {
			if old.Cover != fd.cover { // a folder image appeared or went
				nf := *old
				nf.Cover = fd.cover
				put = append(put, &nf)
			}
			l.update(func(s *Status) { s.FilesSeen = i + 1 })
			continue
		}
		l.update(func(s *Status) { s.FilesSeen, s.Current = i+1, fd.path })
		rec := l.readFile(fd)
		read++
		l.update(func(s *Status) { s.FilesRead = read })
		if rec.Err != "" {
			l.log.Warn("library: cannot use file", "path", fd.path, "err", rec.Err)
		}
		if old != nil && old.AlbumID != "" {
			stale[old.AlbumID] = true
		}
		if rec.AlbumID != "" {
			stale[rec.AlbumID] = true
		}
		put = append(put, rec)
		if len(put) >= commitFiles || time.Since(last) >= commitEvery {
			if err := commit(); err != nil {
				return err
			}
		}
	}
	for p, f := range l.w.files {
		if seen[p] || w.underFailedDir(p) {
			continue
		}
		del = append(del, p)
		if f.AlbumID != "" {
			stale[f.AlbumID] = true
		}
	}
	removed := len(del)
	if err := commit(); err != nil {
		return err
	}
	l.update(func(s *Status) { s.FilesRemoved = removed })
	l.log.Info("library scan done", "dir", l.musicDir, "files", len(w.found), "read", read,
		"removed", removed, "problems", len(w.problems), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// formatCounts lists counts by extension, sorted by extension.
func formatCounts(m map[string]int) []FormatCount {
	out := make([]FormatCount, 0, len(m))
	for ext, n := range m {
		out = append(out, FormatCount{Ext: ext, Files: n})
	}
	slices.SortFunc(out, func(a, b FormatCount) int { return strings.Compare(a.Ext, b.Ext) })
	return out
}
