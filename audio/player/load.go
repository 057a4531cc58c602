package player

import (
	"math"

	"github.com/roomcast/roomcast/audio/output"
	"github.com/roomcast/roomcast/playback"
)

// The discontinuities: Load, the opened track arriving, a reopen at a
// join, a seek. Each starts the timeline (or the current track's part of
// it) afresh; the output has been flushed or paused before.

// doLoad replaces everything with a new current track, opened in the
// background. The output has been flushed.
func (pl *pipe) doLoad(c cmdLoad) {
	pl.dropTracks()
	pl.fade.clear()
	pl.dev.pend = nil
	pl.q.loadReq = c
	pl.play = c.play
	if !pl.play {
		pl.dev.pause(pl.p.log)
	}
	pl.src = srcLoading
	pl.opener.openCur(c.t, c.album, c.posMS)
	// Until it is open the position is the requested one.
	pl.sched.restart(segment{start: math.MaxInt64, uri: c.t.URI, src0: c.posMS, inRate: 1000, outRate: 1, frames: -1})
	pl.publish()
}

// dropTracks closes every track and cancels the openers.
func (pl *pipe) dropTracks() {
	pl.q.closeAll()
	pl.opener.next.stop()
	pl.sched.dropMarks()
	pl.feed.drop()
	pl.xf.end() // xf.out was in retired
	pl.xf.armed = false
}

// onOpened takes an opener's result.
func (pl *pipe) onOpened(tr *track) {
	switch {
	case pl.src == srcLoading && pl.opener.cur.take(tr):
		if tr.err != nil {
			pl.src = srcNone
			pl.dev.pause(pl.p.log)
			pl.p.emit(playback.Event{Kind: playback.TrackFailed, URI: tr.meta.URI, Err: tr.err})
			return
		}
		if err := pl.startLoaded(tr, false); err != nil {
			pl.p.emit(playback.Event{Kind: playback.TrackFailed, URI: tr.meta.URI, Err: err})
		}
	case pl.opener.next.take(tr):
		pl.q.next = tr
		if tr.err != nil {
			pl.p.log.Warn("next track cannot be played", "track", tr.meta.URI, "err", tr.err)
		}
	default:
		tr.close() // superseded
	}
}

// startLoaded starts an opened track from its start position after a
// Load (or a reopen at a boundary, which reports TrackStarted when heard).
// The output is reopened if the track's format differs from it; if that
// fails, tr is closed and the error returned for the caller to report.
func (pl *pipe) startLoaded(tr *track, started bool) error {
	if tr.rate != pl.dev.rate || tr.channels != pl.dev.ch || pl.dev.err != nil {
		pl.dev.pause(pl.p.log)
		_ = pl.dev.out.Close()
		if err := pl.openOutput(output.Format{SampleRate: tr.rate, Channels: tr.channels}); err != nil {
			tr.close()
			pl.src = srcNone
			return err
		}
	} else {
		pl.chain.lim.Reset()
		_ = pl.chain.newVolume(pl.dev.rate, pl.dev.ch, pl.p.ctl.volume.Load(), pl.p.ctl.curve.Load()) // same format as before: cannot fail
	}
	pl.q.cur = tr
	pl.feed.set(tr, pl.dev.rate, pl.dev.ch, pl.p.log)
	pl.xf.armed = false
	pl.chain.gain.Jump(tr.gain.GainDB)
	if tr.start > 0 {
		pl.chain.vol.Mute()
		pl.chain.vol.FadeIn(jumpFade)
	}
	pl.src = srcPlaying
	at := pl.dev.prodIndex() + pl.chain.lat
	pl.sched.restart(segment{start: at, uri: tr.meta.URI, src0: tr.start, inRate: int64(tr.rate), outRate: int64(pl.dev.rate), frames: tr.frames})
	pl.publish()
	if started {
		pl.sched.mark(mark{at: at, kind: markStarted, tr: tr})
	}
	pl.p.log.Debug("track loaded", "track", tr.meta.URI, "rate", tr.rate, "channels", tr.channels,
		"frames", tr.frames, "gain_db", tr.gain.GainDB, "gain_source", tr.gain.Source, "capped", tr.gain.Capped)
	return nil
}

// doSeek repositions within the audible track. The output has been
// flushed (or is paused).
func (pl *pipe) doSeek(posMS int64) {
	w := pl.dev.out.Written()
	tl := pl.p.tl.Load()
	if s, ok := tl.segmentAt(w - 1); ok && pl.q.cur != nil && s.uri != pl.q.cur.meta.URI && pl.q.backTo(s.uri) {
		// The join to cur was produced but not heard: seek in the track
		// still audible and join cur again later.
		pl.opener.next.stop()
	}
	if pl.xf.active() {
		// A seek ends a crossfade in progress: back in the outgoing track
		// (just picked as cur above) or within the incoming one.
		if pl.xf.out != pl.q.cur {
			pl.q.retire(pl.xf.out)
		}
		pl.xf.end()
	}
	pl.xf.armed = false // re-armed only if the new position is before the last crossfade length
	// Marks not yet in the device will never be heard: drop them.
	for _, nx := range pl.sched.dropMarksAfter(w) {
		if pl.q.next == nil {
			pl.q.next = nx // join it (or fail) again at the end
		} else {
			nx.close()
		}
	}
	tr := pl.q.cur
	f := posMS * int64(tr.rate) / 1000
	if err := tr.rewind(f); err != nil {
		pl.src = srcNone
		pl.dev.pause(pl.p.log)
		pl.p.emit(playback.Event{Kind: playback.TrackFailed, URI: tr.meta.URI, Err: err})
		return
	}
	tr.start = f
	if pl.q.next != nil && pl.feed.tr == pl.q.next {
		_ = pl.q.next.rewind(0)
	}
	pl.src = srcPlaying
	pl.chain.lim.Reset()
	pl.feed.set(tr, pl.dev.rate, pl.dev.ch, pl.p.log)
	pl.chain.gain.Jump(tr.gain.GainDB)
	pl.chain.vol.Mute()
	pl.chain.vol.FadeIn(jumpFade)
	pl.dev.pend = nil
	at := pl.dev.prodIndex() + pl.chain.lat
	pl.sched.dropSegmentsAfter(w)
	pl.addSegment(segment{start: at, uri: tr.meta.URI, src0: f, inRate: int64(tr.rate), outRate: int64(pl.dev.rate), frames: tr.frames})
}
