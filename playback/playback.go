// Package playback is the contract between whoever decides what plays
// (the receiver) and whatever makes the sound (the audio pipeline in
// audio/player, or the receiver's silent clock engine). It is a leaf:
// it imports nothing of roomcast, so the audio engine never imports its
// caller and the import graph runs receiver → playback ← audio.
package playback

import "time"

// Engine plays audio. Its owner (the receiver's goroutine) is its only
// caller; methods return promptly (work happens on the engine's own
// goroutines). Implementations say in their doc comment how they are
// safe for that use.
type Engine interface {
	// Load drops whatever plays and starts t at posMS, playing or paused.
	// albumContext selects album gain where the policy asks for it.
	Load(t Track, albumContext bool, posMS int64, play bool) error
	// SetNext names the track to join gaplessly after the current one
	// (nil: the list ends with the current track).
	SetNext(t *Track, albumContext bool)
	// Pause fades out and stops; Resume fades in.
	Pause() error
	Resume() error
	// Settle waits (at most timeout) until a pause has been heard to its
	// end, so that Position is final; it reports whether it was.
	Settle(timeout time.Duration) bool
	// SeekTo jumps within the current track.
	SeekTo(posMS int64) error
	// SetVolume sets 0..100 (ramped).
	SetVolume(v int)
	// Position is the track audible now and its position, from the
	// samples the output has played.
	Position() (uri string, posMS int64)
	// Events reports track starts (a gapless join passed), the end of the
	// list and per-track errors. The channel is the engine's; it is never
	// closed while the engine is open.
	Events() <-chan Event
	Close() error
}

// Track is what an engine needs to know of one track: where it is and
// what the library measured of it. Display metadata (title, artist) is
// not the engine's business.
type Track struct {
	// URI is roomcast:track:<id>; the media id is the part after the
	// last colon.
	URI string
	// DurationMS is the library's duration (0: unknown).
	DurationMS int64
	// Track and Album are the library's EBU R128 measurements.
	Track, Album Loudness
}

// Loudness is an integrated loudness and a true peak; nil when unknown.
type Loudness struct {
	LUFS       *float64
	TruePeakDB *float64
}

// EventKind says what an Event reports.
type EventKind int

const (
	// TrackStarted: the next track became audible (gapless join).
	TrackStarted EventKind = iota
	// Ended: the current track finished and no next track was set.
	Ended
	// TrackFailed: the track cannot be played (fetch, decode or output).
	TrackFailed
)

// String names the kind (logs, test failures).
func (k EventKind) String() string {
	switch k {
	case TrackStarted:
		return "started"
	case Ended:
		return "ended"
	case TrackFailed:
		return "failed"
	}
	return "unknown"
}

// Event is one report from an engine.
type Event struct {
	Kind EventKind
	URI  string
	Err  error
}
