package receiver

import (
	"sync"
	"time"

	"github.com/roomcast/roomcast/playback"
)

// clockEngine is a silent playback.Engine: the position advances with the wall
// clock while playing; a track ends after its duration (when known) and
// the next one starts at once. It stands in for the audio pipeline where
// there is no audio (tests, and roomcastd until the pipeline lands).
// Safe for concurrent use: its timer goroutine shares the state, guarded
// by mu.
type clockEngine struct {
	mu      sync.Mutex // guards the fields below
	cur     playback.Track
	next    *playback.Track
	playing bool
	posBase int64
	since   time.Time
	timer   *time.Timer
	events  chan playback.Event
	closed  bool
}

func newClockEngine() *clockEngine {
	return &clockEngine{events: make(chan playback.Event, 16)}
}

func (e *clockEngine) posLocked() int64 {
	if e.playing {
		return e.posBase + time.Since(e.since).Milliseconds()
	}
	return e.posBase
}

// armLocked schedules the end of the current track.
func (e *clockEngine) armLocked() {
	if e.timer != nil {
		e.timer.Stop()
		e.timer = nil
	}
	if !e.playing || e.cur.DurationMS <= 0 || e.closed {
		return
	}
	left := time.Duration(e.cur.DurationMS-e.posLocked()) * time.Millisecond
	e.timer = time.AfterFunc(max(left, 0), e.trackDone)
}

func (e *clockEngine) trackDone() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed || !e.playing {
		return
	}
	if e.next == nil {
		e.playing = false
		e.posBase = e.cur.DurationMS
		e.send(playback.Event{Kind: playback.Ended, URI: e.cur.URI})
		return
	}
	e.cur, e.next = *e.next, nil
	e.posBase, e.since = 0, time.Now()
	e.send(playback.Event{Kind: playback.TrackStarted, URI: e.cur.URI})
	e.armLocked()
}

func (e *clockEngine) send(ev playback.Event) {
	select {
	case e.events <- ev:
	default: // the receiver is gone; nothing to tell
	}
}

func (e *clockEngine) Load(t playback.Track, _ bool, posMS int64, play bool) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cur, e.next = t, nil
	e.posBase, e.since, e.playing = posMS, time.Now(), play
	e.armLocked()
	return nil
}

func (e *clockEngine) SetNext(t *playback.Track, _ bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.next = t
}

func (e *clockEngine) Pause() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.posBase, e.playing = e.posLocked(), false
	e.armLocked()
	return nil
}

// Settle reports at once: a pause stops the clock immediately.
func (e *clockEngine) Settle(time.Duration) bool { return true }

func (e *clockEngine) Resume() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.playing {
		e.since, e.playing = time.Now(), true
	}
	e.armLocked()
	return nil
}

func (e *clockEngine) SeekTo(posMS int64) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.posBase, e.since = posMS, time.Now()
	e.armLocked()
	return nil
}

func (e *clockEngine) SetVolume(int) {}

func (e *clockEngine) Position() (string, int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := e.posLocked()
	if e.cur.DurationMS > 0 && p > e.cur.DurationMS {
		p = e.cur.DurationMS
	}
	return e.cur.URI, p
}

func (e *clockEngine) Events() <-chan playback.Event { return e.events }

func (e *clockEngine) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = true
	if e.timer != nil {
		e.timer.Stop()
	}
	return nil
}
