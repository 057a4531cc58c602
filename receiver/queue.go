package receiver

import (
	"errors"
	"math/rand/v2"

	"github.com/roomcast/roomcast/protocol"
)

// queue is the play order of a receiver: a context (an album) or an
// explicit list of tracks, the current track, shuffle, repeat and the
// tracks the user queued. It is a plain value owned by the receiver's
// goroutine.
//
// Shuffle is fair and reproducible: the order is the Fisher–Yates
// permutation of the list drawn from a PCG seeded with seed, rotated so that
// the anchor (the track that was playing when shuffle was turned on) comes
// first. Every track plays once per cycle, the current track keeps playing
// when shuffle is switched, and another device given (seed, anchor, index)
// continues with exactly the same order after a transfer.
type queue struct {
	context string
	tracks  []string // the list in context order
	index   int      // current track: an index into tracks
	shuffle bool
	seed    int64
	anchor  int // index into tracks; first in the shuffled order
	repeat  protocol.Repeat
	// user holds tracks added with add_to_queue; they play before the
	// list continues. playingUser is set while one of them plays (then
	// current is that track, and index still points into tracks).
	user        []string
	playingUser string
}

var errEmptyQueue = errors.New("nothing to play")

func newQueue(context string, tracks []string, index int) (*queue, error) {
	if len(tracks) == 0 {
		return nil, errEmptyQueue
	}
	if index < 0 || index >= len(tracks) {
		return nil, errors.New("offset out of range")
	}
	return &queue{context: context, tracks: tracks, index: index, repeat: protocol.RepeatOff}, nil
}

// current is the track to play now.
func (q *queue) current() string {
	if q.playingUser != "" {
		return q.playingUser
	}
	return q.tracks[q.index]
}

// order returns the play order as indexes into tracks.
func (q *queue) order() []int {
	n := len(q.tracks)
	o := make([]int, n)
	for i := range o {
		o[i] = i
	}
	if !q.shuffle || n < 2 {
		return o
	}
	r := rand.New(rand.NewPCG(uint64(q.seed), uint64(q.seed)^0x9e3779b97f4a7c15))
	for i := n - 1; i > 0; i-- {
		j := r.IntN(i + 1)
		o[i], o[j] = o[j], o[i]
	}
	// Rotate so the anchor comes first.
	at := 0
	for i, v := range o {
		if v == q.anchor {
			at = i
			break
		}
	}
	return append(o[at:], o[:at]...)
}

// position is the current track's place in the play order.
func (q *queue) position(o []int) int {
	for i, v := range o {
		if v == q.index {
			return i
		}
	}
	return 0
}

// setShuffle turns shuffle on (with a fresh seed, anchored at the current
// track) or off; the current track keeps playing either way.
func (q *queue) setShuffle(on bool, seed int64) {
	if on == q.shuffle {
		return
	}
	q.shuffle = on
	if on {
		q.seed, q.anchor = seed, q.index
	}
}

// peekNext is the track that follows the current one (for gapless
// prefetch), without moving: ok is false at the end of the list.
func (q *queue) peekNext() (string, bool) {
	if q.repeat == protocol.RepeatTrack {
		return q.current(), true
	}
	if len(q.user) > 0 {
		return q.user[0], true
	}
	o := q.order()
	p := q.position(o) + 1
	if p >= len(o) {
		if q.repeat != protocol.RepeatContext {
			return "", false
		}
		p = 0
	}
	return q.tracks[o[p]], true
}

// advance moves to the next track after the current one ended or was
// skipped. With manual set (skip_next), repeat-track does not hold the
// listener on the same track. ok is false at the end of the list with
// repeat off: playback stops there.
func (q *queue) advance(manual bool) bool {
	if q.repeat == protocol.RepeatTrack && !manual {
		return true
	}
	if len(q.user) > 0 {
		q.playingUser, q.user = q.user[0], q.user[1:]
		return true
	}
	q.playingUser = ""
	o := q.order()
	p := q.position(o) + 1
	if p >= len(o) {
		if q.repeat != protocol.RepeatContext {
			return false
		}
		p = 0
	}
	q.index = o[p]
	return true
}

// back moves to the previous track in play order (the caller restarts the
// current track instead when it has played more than 3 s). At the start
// of the list it stays on the first track, unless repeat context wraps.
func (q *queue) back() {
	if q.playingUser != "" {
		q.playingUser = ""
		return
	}
	o := q.order()
	p := q.position(o) - 1
	if p < 0 {
		if q.repeat != protocol.RepeatContext {
			return
		}
		p = len(o) - 1
	}
	q.index = o[p]
}

// add queues a track to play after the current one.
func (q *queue) add(uri string) { q.user = append(q.user, uri) }

// restore rebuilds a queue from a transferred state.
func restoreQueue(st *protocol.PlayerState, tracks []string) (*queue, error) {
	q, err := newQueue(st.ContextURI, tracks, st.Index)
	if err != nil {
		return nil, err
	}
	q.shuffle, q.seed, q.anchor = st.Shuffle, st.ShuffleSeed, st.ShuffleAnchor
	if q.anchor < 0 || q.anchor >= len(tracks) {
		q.anchor = 0
	}
	q.repeat = st.Repeat
	if !q.repeat.Valid() {
		q.repeat = protocol.RepeatOff
	}
	q.user = append([]string(nil), st.Queue...)
	return q, nil
}

// fill writes the queue's fields into a state.
func (q *queue) fill(st *protocol.PlayerState) {
	st.ContextURI = q.context
	if q.context == "" {
		st.URIs = q.tracks
	}
	st.Index = q.index
	st.Shuffle, st.ShuffleSeed, st.ShuffleAnchor = q.shuffle, q.seed, q.anchor
	st.Repeat = q.repeat
	st.Queue = q.user
}
