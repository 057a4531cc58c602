package player

import "github.com/roomcast/roomcast/audio/output"

// markKind is what happens when the output plays past a mark.
type markKind int

const (
	markStarted markKind = iota // a joined track became audible
	markEnded                   // the last frame of the list was heard
	markFailed                  // the next track could not be opened: report it
	markReopen                  // the next track needs another channel count: reopen
	markRetire                  // a crossfade's outgoing track was fully heard: close it
)

// mark is an action due when the output's played index reaches at.
type mark struct {
	at   int64
	kind markKind
	tr   *track // markStarted: the track that started; markFailed, markReopen: the next track; markRetire: the track to close
	prev *track // markStarted: the track before, closed once the join is heard (nil after a crossfade)
}

// schedule is what the pipeline produced and the output has not played
// yet, in output indices: the timeline segments (published for Position)
// and the marks (actions due when the output gets there).
//
// Invariants: segs is sorted by start and begins with the segment
// audible at the output's played index when the last one was added
// (earlier ones are forgotten); a segment's start includes the limiter's
// latency. marks are sorted by at (appended as produced). The track of a
// markFailed or markReopen is owned by the mark until it fires or is
// dropped. Owned by the pipeline goroutine; Position reads the published
// copy (timeline).
type schedule struct {
	segs  []segment
	marks []mark
}

// add appends s and forgets the segments played through before played.
func (s *schedule) add(seg segment, played int64) {
	i := 0
	for i+1 < len(s.segs) && s.segs[i+1].start <= played {
		i++
	}
	s.segs = append(s.segs[i:], seg)
}

// restart replaces the timeline with seg.
func (s *schedule) restart(seg segment) { s.segs = []segment{seg} }

// dropSegmentsAfter forgets the segments that start after output index w
// (produced but flushed, never to be heard).
func (s *schedule) dropSegmentsAfter(w int64) {
	for len(s.segs) > 0 && s.segs[len(s.segs)-1].start > w {
		s.segs = s.segs[:len(s.segs)-1]
	}
}

// snapshot is an immutable copy of the timeline over out, for Position.
func (s *schedule) snapshot(out output.Output) *timeline {
	return &timeline{out: out, segs: append([]segment(nil), s.segs...)}
}

func (s *schedule) mark(m mark) { s.marks = append(s.marks, m) }

// due removes and returns the first mark if it is due: a join once it was
// heard (played), anything else once the device has taken the frames
// before it (consumed: pausing then plays out what the device holds).
func (s *schedule) due(played, consumed int64) (mark, bool) {
	if len(s.marks) == 0 {
		return mark{}, false
	}
	m := s.marks[0]
	at := played
	if m.kind != markStarted {
		at = consumed
	}
	if at < m.at {
		return mark{}, false
	}
	s.marks = s.marks[1:]
	return m, true
}

// startPending reports whether the join to uri was produced but not heard.
func (s *schedule) startPending(uri string) bool {
	for _, m := range s.marks {
		if m.kind == markStarted && m.tr.meta.URI == uri {
			return true
		}
	}
	return false
}

// dropMarksAfter drops the marks after output index w (produced but
// flushed, never to be heard) and returns the next tracks the dropped
// markFailed and markReopen owned, in order.
func (s *schedule) dropMarksAfter(w int64) []*track {
	var owned []*track
	keep := s.marks[:0]
	for _, m := range s.marks {
		if m.at <= w {
			keep = append(keep, m)
		} else if m.kind == markFailed || m.kind == markReopen {
			owned = append(owned, m.tr)
		}
	}
	s.marks = keep
	return owned
}

// dropMarks drops every mark and closes the tracks they owned.
func (s *schedule) dropMarks() {
	for _, m := range s.marks {
		if m.kind == markFailed || m.kind == markReopen {
			m.tr.close()
		}
	}
	s.marks = nil
}

// addSegment appends a timeline segment, forgets those already played
// through, and publishes the timeline.
func (pl *pipe) addSegment(s segment) {
	pl.sched.add(s, pl.dev.out.PlayedIndex())
	pl.publish()
}

// publish stores an immutable copy of the timeline for Position.
func (pl *pipe) publish() { pl.p.tl.Store(pl.sched.snapshot(pl.dev.out)) }
