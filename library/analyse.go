package library

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"slices"

	"github.com/roomcast/roomcast/audio/decode"
	"github.com/roomcast/roomcast/loudness"
)

// errChanged means a file differs from its index entry (or is gone): the
// analysis is dropped and a rescan requested.
var errChanged = errors.New("file changed since it was indexed")

// errUnsupported marks a stream the meter cannot measure.
var errUnsupported = errors.New("unsupported for loudness measurement")

type format struct{ rate, channels int }

// maxMeters bounds the meters kept for reuse per kind (each ~330 KB).
const maxMeters = 4

// analyser measures an album: each track through a track meter, and all
// of them, one after the other, through an album meter per stream format
// ("merge as you go": memory stays at two meters per format however long
// the album). The album's integrated loudness is loudness.Album over
// those meters, i.e. gated over all the album's 400 ms blocks together.
// Blocks that straddle a track boundary are measured across it, as when
// the album plays gapless (and as ffmpeg measures a concatenation).
type analyser struct {
	track, album map[format]*loudness.Meter
	used         []*loudness.Meter // album meters of the current album
	buf          []float32
}

func (a *analyser) meter(pool *map[format]*loudness.Meter, f format) (*loudness.Meter, error) {
	if *pool == nil || len(*pool) > maxMeters {
		*pool = map[format]*loudness.Meter{}
	}
	if m := (*pool)[f]; m != nil {
		return m, nil
	}
	m, err := loudness.NewMeter(f.rate, f.channels)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUnsupported, err)
	}
	(*pool)[f] = m
	return m, nil
}

// startAlbum forgets the previous album's measurements.
func (a *analyser) startAlbum() {
	for _, m := range a.album {
		m.Reset()
	}
	a.used = a.used[:0]
}

func (a *analyser) albumResult() loudness.Result { return loudness.Album(a.used...) }

// measure decodes one track completely into its track meter and the
// album meter. Errors: errChanged, ctx's error, a decode error (the
// content is bad: permanent), errUnsupported, or an I/O error.
func (a *analyser) measure(ctx context.Context, root *os.Root, f *fileRec) (res loudness.Result, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: internal error: %v", errUnsupported, r)
		}
	}()
	file, fi, err := openRegular(root, f.Path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return res, errChanged
		}
		return res, err
	}
	defer file.Close()
	if fi.Size() != f.Size || fi.ModTime().UnixNano() != f.MtimeNS {
		return res, errChanged
	}
	s, err := decode.Open(file)
	if err != nil {
		return res, err
	}
	defer s.Close()
	fm := format{s.SampleRate(), s.Channels()}
	if fm.rate != f.Rate || fm.channels != f.Channels {
		return res, errChanged
	}
	tm, err := a.meter(&a.track, fm)
	if err != nil {
		return res, err
	}
	am, err := a.meter(&a.album, fm)
	if err != nil {
		return res, err
	}
	if !slices.Contains(a.used, am) {
		a.used = append(a.used, am)
	}
	tm.Reset()
	if n := 4096 * fm.channels; cap(a.buf) < n {
		a.buf = make([]float32, n)
	}
	buf := a.buf[:4096*fm.channels]
	for i := 0; ; i++ {
		if i%64 == 0 {
			if err := ctx.Err(); err != nil {
				return res, err
			}
		}
		n, err := s.Read(buf)
		if n > 0 {
			tm.Write(buf[:n])
			am.Write(buf[:n])
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return res, err
		}
	}
	return tm.Result(), nil
}

// permanent reports whether an analysis error is due to the file's
// content, so that retrying before it changes is pointless.
func permanent(err error) bool { return isDecodeError(err) || errors.Is(err, errUnsupported) }

// nextAlbum returns an album that needs analysis: one with a track not
// yet analysed, or without album figures. Albums are taken in id order.
func (l *Library) nextAlbum() (string, bool) {
	best := ""
	for _, f := range l.w.files {
		if f.Err != "" || f.AlbumID == "" || l.w.skip[f.AlbumID] {
			continue
		}
		need := !f.Analysed
		if !need {
			a := l.w.albums[f.AlbumID]
			need = a == nil || !a.Analysed
		}
		if need && (best == "" || f.AlbumID < best) {
			best = f.AlbumID
		}
	}
	return best, best != ""
}

// pendingTracks counts tracks waiting for analysis.
func (l *Library) pendingTracks() int {
	n := 0
	for _, f := range l.w.files {
		if f.Err == "" && !f.Analysed && !l.w.skip[f.AlbumID] {
			n++
		}
	}
	return n
}

// analyseAlbum measures every track of an album (in album order) and the
// album, stores the figures and publishes them (at most once a second).
// Tracks whose content cannot be decoded get their reason recorded and
// leave the catalog; a transient problem postpones the album to after the
// next scan; a file that changed requests a rescan.
func (l *Library) analyseAlbum(ctx context.Context, id string) {
	var tracks []*fileRec
	for _, f := range l.w.files {
		if f.AlbumID == id && f.Err == "" {
			tracks = append(tracks, f)
		}
	}
	slices.SortFunc(tracks, compareTracks)
	l.w.analysis.startAlbum()
	results := make([]*fileRec, 0, len(tracks))
	for _, f := range tracks {
		l.setState("analysing", f.Path)
		res, err := l.w.analysis.measure(ctx, l.root, f)
		if ctx.Err() != nil {
			return
		}
		l.update(func(s *Status) { s.Decoded++ })
		nf := *f
		nf.Analysed, nf.AnalysisErr, nf.LUFS, nf.TruePeak, nf.LRA = true, "", nil, nil, nil
		switch {
		case err == nil:
			if res.HasLoudness {
				nf.LUFS, nf.LRA = finite(res.Integrated), finite(res.Range)
			}
			nf.TruePeak = finite(res.TruePeak)
		case permanent(err):
			nf.AnalysisErr = err.Error()
			l.log.Warn("library: cannot analyse track", "path", f.Path, "err", err)
		default:
			l.w.skip[id] = true
			if errors.Is(err, errChanged) {
				l.Rescan()
			} else {
				l.log.Warn("library: analysis postponed", "path", f.Path, "err", err)
			}
			return
		}
		results = append(results, &nf)
	}
	album := &albumRec{ID: id, Analysed: true}
	r := l.w.analysis.albumResult()
	if r.HasLoudness {
		album.LUFS = finite(r.Integrated)
	}
	album.TruePeak = finite(r.TruePeak)
	if err := l.db.saveAnalysis(ctx, results, album); err != nil {
		if ctx.Err() == nil {
			l.log.Error("library: cannot store analysis", "album", id, "err", err)
		}
		l.w.skip[id] = true
		return
	}
	for _, nf := range results {
		l.w.files[nf.Path] = nf
	}
	l.w.albums[id] = album
	l.w.dirty = true
	pending := l.pendingTracks()
	l.update(func(s *Status) { s.AnalysisPending = pending })
	l.publishSoon()
}

// finite returns a pointer to v, or nil for ±Inf and NaN.
func finite(v float64) *float64 {
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return nil
	}
	return &v
}
