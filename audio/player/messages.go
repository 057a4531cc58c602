package player

import (
	"errors"

	"github.com/roomcast/roomcast/playback"
)

// message is a command to the pipeline goroutine: one type per Engine
// method. The set is closed (isMessage is unexported): handle's switch
// names every case but cmdClose, which run takes first, and has no
// default.
type message interface{ isMessage() }

type (
	cmdLoad struct {
		t     playback.Track
		album bool
		posMS int64
		play  bool
	}
	cmdSetNext struct {
		t     *playback.Track
		album bool
	}
	cmdPause  struct{}
	cmdResume struct{}
	cmdSeek   struct{ posMS int64 }
	cmdSettle struct{ done chan struct{} } // closed once no fade-out is pending
	cmdClose  struct{}
)

func (cmdLoad) isMessage()    {}
func (cmdSetNext) isMessage() {}
func (cmdPause) isMessage()   {}
func (cmdResume) isMessage()  {}
func (cmdSeek) isMessage()    {}
func (cmdSettle) isMessage()  {}
func (cmdClose) isMessage()   {}

// request carries a message to the pipeline goroutine; reply gets nil
// once the message was applied, or the error only a seek can have
// (ErrClosed after a panic stopped the pipeline).
type request struct {
	msg   message
	reply chan error
}

// handle applies one command.
func (pl *pipe) handle(m message) error {
	switch c := m.(type) {
	case cmdLoad:
		if pl.fade.active || pl.audible() {
			pl.beginFade(jumpFade, c)
			return nil
		}
		pl.dev.out.Flush()
		pl.doLoad(c)
	case cmdSetNext:
		pl.setNext(c)
	case cmdSettle:
		pl.fade.settling = append(pl.fade.settling, c.done)
	case cmdPause:
		if !pl.play {
			return nil
		}
		audible := pl.audible()
		pl.play = false
		pl.fade.setPlay(false)
		switch {
		case pl.fade.active: // the pending fade ends in a pause
		case audible:
			pl.beginFade(pauseFade, nil)
		case pl.dev.started:
			pl.dev.pause(pl.p.log)
		}
	case cmdResume:
		if pl.play {
			return nil
		}
		pl.play = true
		pl.fade.setPlay(true)
		if pl.fade.active && pl.fade.act == nil {
			pl.fade.active = false // cancel the pause: fade back in from where the fader is
			pl.chain.vol.FadeIn(pauseFade)
			return nil
		}
		if pl.chain.vol.Faded() {
			pl.chain.vol.FadeIn(pauseFade)
		}
	case cmdSeek:
		switch {
		case pl.src == srcLoading:
			c2 := pl.q.loadReq
			c2.posMS = c.posMS
			pl.doLoad(c2)
		case pl.q.cur == nil:
			return errors.New("player: nothing to seek in")
		case pl.fade.active || pl.audible():
			pl.beginFade(jumpFade, c)
		default:
			pl.dev.out.Flush()
			pl.doSeek(c.posMS)
		}
	}
	return nil
}
