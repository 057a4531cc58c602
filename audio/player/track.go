package player

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"github.com/roomcast/roomcast/audio/decode"
	"github.com/roomcast/roomcast/audio/dsp"
	"github.com/roomcast/roomcast/playback"
)

// track is one opened track. An opener goroutine builds it (fetch, decode
// headers, seek, decode ahead) and hands it to the pipeline goroutine,
// which owns it from then on.
type track struct {
	meta  playback.Track
	album bool
	gen   uint64 // request number; results of superseded requests are closed

	rc       io.ReadSeekCloser
	st       decode.Decoder
	gain     dsp.GainDecision
	rate     int
	channels int
	frames   int64 // decoded length (-1: unknown)
	start    int64 // source frame of the first frame read (Load position)

	pre     []float32 // decoded ahead by the opener; returned before st
	pos     int64     // source frame of the next frame read returns
	done    bool      // no more frames: EOF or a read error
	readErr error     // a read error other than EOF (truncated, corrupt)
	err     error     // open error: the track cannot be played
}

// mediaID returns the media id of a track URI: the part after the last
// colon of roomcast:track:<id>.
func mediaID(uri string) (string, error) {
	i := strings.LastIndexByte(uri, ':')
	id := uri[i+1:]
	if id == "" {
		return "", fmt.Errorf("track URI %q has no media id", uri)
	}
	return id, nil
}

// loudnessInfo turns the library's measurements carried by the track and
// the ReplayGain tags of the file into what dsp.ChooseGain needs.
func loudnessInfo(t playback.Track, tags map[string][]string) dsp.LoudnessInfo {
	m := func(lufs, peak *float64) dsp.Measurement {
		var r dsp.Measurement
		if lufs != nil {
			r.LUFS, r.HasLoudness = *lufs, true
		}
		if peak != nil {
			r.TruePeakDB, r.HasPeak = *peak, true
		}
		return r
	}
	info := dsp.LoudnessInfo{Track: m(t.Track.LUFS, t.Track.TruePeakDB), Album: m(t.Album.LUFS, t.Album.TruePeakDB)}
	info.RGTrack, info.RGAlbum = dsp.ReplayGainFromTags(tags)
	return info
}

// openTrack fetches and prepares a track: decoder opened, positioned at
// startMS, and up to aheadFrames decoded into pre. It runs on an opener
// goroutine and never panics on bad media (decode recovers internally);
// failures are returned in track.err with the cause wrapped once.
func openTrack(ctx context.Context, src Source, t playback.Track, album bool, pol dsp.GainPolicy,
	startMS int64, aheadFrames int) *track {
	tr := &track{meta: t, album: album, frames: -1}
	id, err := mediaID(t.URI)
	if err != nil {
		tr.err = err
		return tr
	}
	rc, err := src.Open(ctx, id)
	if err != nil {
		tr.err = fmt.Errorf("fetch: %w", err)
		return tr
	}
	st, err := decode.Open(rc)
	if errors.Is(err, decode.ErrTruncated) {
		// The end is missing (a cut download, a damaged file): play what
		// decodes, forward only. Length unknown, seeking unsupported.
		if _, serr := rc.Seek(0, io.SeekStart); serr == nil {
			st, err = decode.NewReader(rc)
		}
	}
	if err != nil {
		_ = rc.Close()
		tr.err = err // decode errors say "decode: ..." already
		return tr
	}
	tr.rc, tr.st = rc, st
	tr.rate, tr.channels, tr.frames = st.SampleRate(), st.Channels(), st.Len()
	if tr.channels > 8 {
		tr.close()
		tr.err = fmt.Errorf("decode: %d channels: at most 8 are supported", tr.channels)
		return tr
	}
	tr.gain = dsp.ChooseGain(pol, album, loudnessInfo(t, st.Tags()))
	if startMS > 0 {
		f := startMS * int64(tr.rate) / 1000
		if tr.frames >= 0 && f > tr.frames {
			f = tr.frames
		}
		if err := st.SeekFrame(f); err != nil {
			tr.close()
			tr.err = fmt.Errorf("decode: seek to %d ms: %w", startMS, err)
			return tr
		}
		tr.start, tr.pos = f, f
	}
	if aheadFrames > 0 {
		buf := make([]float32, aheadFrames*tr.channels)
		n := 0
		for n < len(buf) && !tr.done {
			k, err := st.Read(buf[n:])
			n += k
			if err != nil {
				tr.finish(err)
			}
		}
		tr.pre = buf[:n]
		if n == 0 && tr.readErr != nil && !errors.Is(tr.readErr, decode.ErrTruncated) {
			// Nothing at all decodes: the track cannot be played.
			tr.err = tr.readErr
			tr.close()
		}
	}
	return tr
}

// finish records the end of the decoded frames.
func (tr *track) finish(err error) {
	tr.done = true
	if err != nil && !errors.Is(err, io.EOF) {
		tr.readErr = err
	}
}

// decodeNanos is the time spent in decoder reads (fetch waits included),
// for the decode-time metric (DecodeTime).
var decodeNanos atomic.Int64

// DecodeTime is the total time the pipelines of this process have spent
// decoding (including waits for media bytes). Safe for concurrent use.
func DecodeTime() time.Duration { return time.Duration(decodeNanos.Load()) }

// read fills dst with whole frames and returns the number of samples; 0
// means the track has no more frames (done is set).
func (tr *track) read(dst []float32) int {
	n := 0
	if len(tr.pre) > 0 {
		n = copy(dst, tr.pre)
		n -= n % tr.channels
		tr.pre = tr.pre[n:]
	}
	for n < len(dst) && !tr.done && len(tr.pre) == 0 {
		t0 := time.Now()
		k, err := tr.st.Read(dst[n:])
		decodeNanos.Add(int64(time.Since(t0)))
		n += k
		if err != nil {
			tr.finish(err)
		}
		if k == 0 && err == nil {
			break
		}
	}
	tr.pos += int64(n / tr.channels)
	return n
}

// remaining returns the frames left to read (-1: unknown length).
func (tr *track) remaining() int64 {
	if tr.frames < 0 {
		return -1
	}
	return max(tr.frames-tr.pos, 0)
}

// rewind positions the track at source frame f again (a seek, or a
// track that must be joined again).
func (tr *track) rewind(f int64) error {
	if tr.st == nil {
		return errors.New("track not open")
	}
	if tr.frames >= 0 && f > tr.frames {
		f = tr.frames
	}
	if err := tr.st.SeekFrame(f); err != nil {
		return fmt.Errorf("seek: %w", err)
	}
	tr.pre, tr.pos, tr.done, tr.readErr = nil, f, false, nil
	return nil
}

// close releases the decoder and the media. Idempotent.
func (tr *track) close() {
	if tr == nil {
		return
	}
	if tr.st != nil {
		_ = tr.st.Close()
		tr.st = nil
	}
	if tr.rc != nil {
		_ = tr.rc.Close()
		tr.rc = nil
	}
}
