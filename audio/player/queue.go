package player

import "github.com/roomcast/roomcast/playback"

// queue holds the pipeline's tracks: the one being produced, the next
// one, and those produced but perhaps still audible.
//
// Invariants:
//   - cur is the track whose frames are being produced (device-rate
//     frames entering the gain stage; nil while a Load opens and after a
//     failure); loadReq is the Load that started the list.
//   - nextReq is the track to join after cur; next is it opened (or
//     failed to open: next.err), nil until the opener delivered it.
//     nextKnown: SetNext was called since cur started; until then the
//     pipeline does not assume the list ends after cur (nextReq == nil
//     with nextKnown: it does).
//   - retired tracks were fully produced but may still be audible; each
//     is closed when the join after it is heard (markStarted.prev), or,
//     after a crossfade, when the end of the overlap is heard
//     (markRetire), or on Load and Close.
//   - waitNext: production stalled on the next track (opening or unknown).
//
// Owned by the pipeline goroutine.
type queue struct {
	cur       *track
	loadReq   cmdLoad
	retired   []*track
	next      *track
	nextReq   *playback.Track
	nextAlb   bool
	nextKnown bool
	waitNext  bool
}

// curURI is the track the list is at: cur, or the one a Load opens.
func (q *queue) curURI() string {
	if q.cur != nil {
		return q.cur.meta.URI
	}
	return q.loadReq.t.URI
}

// advance makes nx the current track and retires cur; the next track is
// unknown again. It returns the track before.
func (q *queue) advance(nx *track) (prev *track) {
	prev = q.cur
	q.retired = append(q.retired, prev)
	q.cur, q.next, q.nextReq, q.nextKnown = nx, nil, nil, false
	return prev
}

// retire closes a track that is no longer audible.
func (q *queue) retire(tr *track) {
	for i, r := range q.retired {
		if r == tr {
			q.retired = append(q.retired[:i], q.retired[i+1:]...)
			break
		}
	}
	tr.close()
}

// closeAll closes every track and forgets the next one.
func (q *queue) closeAll() {
	for _, tr := range q.retired {
		tr.close()
	}
	q.retired = nil
	q.cur.close()
	q.next.close()
	q.cur, q.next, q.nextReq, q.nextKnown = nil, nil, nil, false
}

// backTo makes the retired track of uri current again (the join after
// it was produced but not heard: a seek applies to it) and cur, rewound,
// its next track. It reports whether there was such a track (false
// changes nothing); the caller stops any open of the next track.
func (q *queue) backTo(uri string) bool {
	for i := len(q.retired) - 1; i >= 0; i-- {
		r := q.retired[i]
		if r.meta.URI != uri || r.st == nil {
			continue
		}
		q.retired = q.retired[:i]
		if q.next != nil {
			q.next.close()
		}
		old := q.cur
		if err := old.rewind(0); err != nil {
			old.close()
			old = nil
		}
		q.cur, q.next, q.nextKnown = r, old, true
		q.nextReq = nil
		if old != nil {
			m := old.meta
			q.nextReq, q.nextAlb = &m, old.album
		}
		return true
	}
	return false
}

// joinable returns the next track if it can be joined now (opening it
// if that has not begun); wait means it is not known or not opened yet.
func (pl *pipe) joinable() (nx *track, wait bool) {
	q := &pl.q
	if !q.nextKnown {
		return nil, true
	}
	if q.nextReq == nil {
		return nil, false
	}
	if q.next == nil {
		if !pl.opener.next.pending() {
			pl.opener.openNext(*q.nextReq, q.nextAlb)
		}
		return nil, true
	}
	if q.next.err != nil || q.next.channels != pl.dev.ch {
		return nil, false
	}
	return q.next, false
}

// setNext records the track to join after cur.
func (pl *pipe) setNext(c cmdSetNext) {
	q := &pl.q
	q.nextKnown = true
	same := c.t != nil && q.nextReq != nil && c.t.URI == q.nextReq.URI && c.album == q.nextAlb
	if same {
		return
	}
	if c.t != nil && pl.sched.startPending(c.t.URI) {
		// The receiver has not heard the join to this track yet: it
		// names what follows its current track, which is cur already.
		return
	}
	if q.next != nil && pl.feed.tr == q.next && pl.src == srcPlaying {
		pl.p.log.Debug("next track already joined; SetNext ignored")
		return
	}
	q.next.close()
	q.next = nil
	pl.opener.next.stop()
	q.nextReq, q.nextAlb = c.t, c.album
}
