package player

import "time"

// fader is the state of a fade-out before a pause, a seek or a load.
//
// Invariants: active from the start of a fade-out until the device has
// taken its last frame (output index end); the block loop produces
// exactly up to end and no further. act runs then: a load or a seek (nil:
// the fade ends in a pause); a later seek or load replaces it, a pause
// keeps it (a load then starts paused). padded: the silence behind a fade
// before a seek or load was written. settling are Settle callers, released
// once no fade is active. Owned by the pipeline goroutine.
type fader struct {
	active   bool
	end      int64 // output index after the last frame of the fade
	act      fadeAction
	padded   bool // silence was written after the fade (seek, load)
	settling []chan struct{}
}

// fadeAction is what runs once a fade-out was heard: a load or a seek
// (nil: the fade ends in a pause).
type fadeAction interface{ afterFade() }

func (cmdLoad) afterFade() {}
func (cmdSeek) afterFade() {}

// setPlay makes a pending load start playing or paused (Resume, Pause
// during the fade before it).
func (f *fader) setPlay(play bool) {
	if l, ok := f.act.(cmdLoad); ok {
		l.play = play
		f.act = l
	}
}

// clear forgets the fade (nothing of it remains to be heard).
func (f *fader) clear() { f.active, f.act, f.padded = false, nil, false }

// finish ends the fade and returns its action.
func (f *fader) finish() fadeAction {
	act := f.act
	f.clear()
	return act
}

// release closes the Settle callers' channels once no fade is active.
func (f *fader) release() {
	if len(f.settling) > 0 && !f.active {
		for _, ch := range f.settling {
			close(ch)
		}
		f.settling = nil
	}
}

// audible reports whether audio is flowing, so a change must fade out first.
func (pl *pipe) audible() bool {
	return pl.dev.started && pl.play && pl.src == srcPlaying && !pl.chain.vol.Faded()
}

// beginFade starts (or retargets) a fade-out; act runs once the fade has
// been consumed by the device.
func (pl *pipe) beginFade(d time.Duration, act fadeAction) {
	if act != nil || !pl.fade.active {
		pl.fade.act = act
	}
	if pl.fade.active {
		return
	}
	n := pl.chain.vol.FadeOut(d)
	pl.fade.active, pl.fade.end = true, pl.dev.prodIndex()+int64(n)
}

// checkFade completes a fade once the device took its last frame (or
// production stopped before it) and runs the pending action; it reports
// whether it did.
func (pl *pipe) checkFade() bool {
	if len(pl.dev.pend) > 0 {
		return false
	}
	end := pl.fade.end
	if pi := pl.dev.prodIndex(); pi < end {
		if pl.src == srcPlaying && !pl.q.waitNext {
			return false // still producing the fade
		}
		end = pi
	}
	if pl.fade.act != nil && !pl.fade.padded {
		// A seek or load flushes the ring after the fade: silence behind
		// the fade keeps the device fed meanwhile (no underrun), and is
		// dropped by that flush.
		pl.fade.padded = true
		pl.dev.writeSilence(endPadMS)
	}
	if consumed := pl.dev.consumed(); consumed < end {
		return false
	}
	switch c := pl.fade.finish().(type) {
	case cmdLoad:
		pl.dev.out.Flush()
		pl.doLoad(c)
	case cmdSeek:
		pl.dev.out.Flush()
		pl.doSeek(c.posMS)
	}
	if !pl.play {
		pl.dev.pause(pl.p.log)
	}
	return true
}
