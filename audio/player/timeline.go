package player

import "github.com/roomcast/roomcast/audio/output"

// segment maps output frame indices to a track position: the frame that
// reaches the output at index start (after the limiter's delay) is source
// frame src0 of track uri; later indices advance by inRate/outRate source
// frames per output frame (1 when no resampling) until the next segment.
type segment struct {
	start           int64
	uri             string
	src0            int64
	inRate, outRate int64
	frames          int64 // track length for clamping (-1: unknown)
}

// sourceFrame returns the source frame of output index idx (idx ≥ start).
func (s segment) sourceFrame(idx int64) int64 {
	f := s.src0 + (idx-s.start)*s.inRate/s.outRate
	if s.frames >= 0 && f > s.frames {
		f = s.frames
	}
	return f
}

// timeline is an immutable snapshot published by the pipeline goroutine
// through an atomic pointer, so that Position() reads the output's played
// index and maps it without taking any lock or talking to the pipeline.
// segs is sorted by start; an index before the first segment maps to the
// first segment's start (the track is loaded but not audible yet).
type timeline struct {
	out  output.Output
	segs []segment
}

// position returns the track audible at output index idx and its
// position in ms.
func (tl *timeline) position(idx int64) (string, int64) {
	if tl == nil || len(tl.segs) == 0 {
		return "", 0
	}
	s := tl.segs[0]
	if idx < s.start {
		idx = s.start
	}
	for _, n := range tl.segs[1:] {
		if n.start > idx {
			break
		}
		s = n
	}
	return s.uri, s.sourceFrame(idx) * 1000 / s.inRate
}

// segmentAt returns the segment containing output index idx.
func (tl *timeline) segmentAt(idx int64) (segment, bool) {
	if tl == nil || len(tl.segs) == 0 {
		return segment{}, false
	}
	s := tl.segs[0]
	for _, n := range tl.segs[1:] {
		if n.start > idx {
			break
		}
		s = n
	}
	return s, true
}
