package player

import (
	"log/slog"

	"github.com/roomcast/roomcast/audio/dsp"
)

// feed is the source side of the gain stage: the track whose source
// frames are read, through a resampler when its rate differs from the
// device's.
//
// Invariants: without a resampler (rs == nil) tr is cur and its frames go
// straight to the gain stage. With one, tr is cur, or the next track once
// the resampler reached the end of cur and went on into it (same source
// rate: one resampler run, a seamless join); boundary ≥ 0 is then the
// resampler output index of the next track's first frame, and the
// pipeline makes it cur when it gets there. inBuf[:inLen] are source
// frames not yet taken by rs; inCount and outCount count the resampler's
// input and output frames since set. draining: tr is done, rs gives out
// what it holds. Owned by the pipeline goroutine.
type feed struct {
	tr       *track
	rs       *dsp.Resampler
	rsRate   int // rs's input rate
	inBuf    []float32
	inLen    int // samples in inBuf
	inCount  int64
	outCount int64
	boundary int64
	draining bool
}

func (f *feed) resampled() bool { return f.rs != nil }

// set prepares for tr's frames at the device's rate × ch: a resampler
// when tr's rate differs (reused, reset, when the rate is the same as the
// previous one).
func (f *feed) set(tr *track, rate, ch int, log *slog.Logger) {
	f.tr = tr
	f.inLen, f.inCount, f.outCount, f.boundary, f.draining = 0, 0, 0, -1, false
	if tr.rate == rate {
		f.rs = nil
		return
	}
	if f.rs != nil && f.rsRate == tr.rate {
		f.rs.Reset()
		return
	}
	rs, err := dsp.NewResampler(tr.rate, rate, ch, dsp.QualityPi)
	if err != nil { // rates were checked by the decoder; keep the format of the error
		log.Error("resampler", "err", err)
		tr.done = true
		f.rs = nil
		return
	}
	f.rs, f.rsRate = rs, tr.rate
	in := int(ceilDiv(int64(chunkFrames)*int64(tr.rate), int64(rate))) + 2*rs.LookAhead() + 16
	f.inBuf = make([]float32, in*ch)
}

// reset drops the resampler (a new output format).
func (f *feed) reset() { f.rs, f.rsRate = nil, 0 }

// drop forgets the track (every track was closed); the resampler is not
// used again before set.
func (f *feed) drop() { f.tr, f.rs = nil, nil }

// joined tells the feed that the track it went on into is cur now.
func (f *feed) joined() { f.boundary = -1 }

// read fills dst with device-rate frames (rate × ch) of cur only; 0 means
// cur is done in device frames; wait means the next track is needed and
// not there yet. join returns the next track if it can be joined now
// (wait: not known or not opened yet).
func (f *feed) read(dst []float32, rate, ch int, join func() (*track, bool)) (n int, wait bool) {
	if f.rs == nil {
		return f.tr.read(dst), false
	}
	want := int64(len(dst) / ch)
	if f.boundary >= 0 {
		want = min(want, f.boundary-f.outCount)
		if want == 0 {
			return 0, false
		}
	}
	if f.draining {
		k := f.rs.Drain(dst[:want*int64(ch)])
		f.outCount += int64(k / ch)
		return k, false
	}
	need := f.rs.InputFramesFor(int(want)) * ch
	need = min(need, len(f.inBuf))
	for f.inLen < need {
		k := f.tr.read(f.inBuf[f.inLen:need])
		f.inLen += k
		if k > 0 {
			continue
		}
		if f.boundary < 0 { // tr is cur: can the resampler go on into next?
			nx, w := join()
			if w {
				return 0, true
			}
			if nx != nil && nx.rate == f.tr.rate {
				f.boundary = ceilDiv((f.inCount+int64(f.inLen/ch))*int64(rate), int64(f.rsRate))
				f.tr = nx
				want = min(want, f.boundary-f.outCount)
				continue
			}
		}
		break // nothing more to feed: process what there is, then drain
	}
	c, k := f.rs.Process(f.inBuf[:f.inLen], dst[:want*int64(ch)])
	copy(f.inBuf, f.inBuf[c:f.inLen])
	f.inLen -= c
	f.inCount += int64(c / ch)
	f.outCount += int64(k / ch)
	if k == 0 && f.tr.done {
		f.draining = true
		return f.read(dst, rate, ch, join)
	}
	return k, false
}

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }
