package receiver

import (
	"fmt"

	"github.com/roomcast/roomcast/protocol"
)

// event is something that moves the player's state machine.
type event string

const (
	evLoad    event = "load"    // play or transfer-in: new track list or position
	evLoaded  event = "loaded"  // the first audio of the track is ready
	evPause   event = "pause"   // pause command, or transfer-out
	evResume  event = "resume"  // resume command
	evSeek    event = "seek"    // seek within the current track
	evAdvance event = "advance" // next/prev, or the next track joined gaplessly
	evEnd     event = "end"     // the last track of the list finished
	evFail    event = "fail"    // the track cannot be fetched, decoded or played
	evRetry   event = "retry"   // try the failed track again
	evSkip    event = "skip"    // give up on the failed track, play the next
	evStop    event = "stop"    // drop everything (another device took over)
)

var allEvents = []event{evLoad, evLoaded, evPause, evResume, evSeek, evAdvance, evEnd, evFail, evRetry, evSkip, evStop}

var allStatuses = []protocol.Status{protocol.StatusIdle, protocol.StatusLoading, protocol.StatusPlaying,
	protocol.StatusPaused, protocol.StatusEnded, protocol.StatusError}

// transitions is the whole state machine: (state, event) -> next state.
// A pair that is absent is an impossible transition and is rejected with
// an error, never ignored. Self-transitions that are allowed (pause while
// paused) are listed explicitly.
var transitions = map[protocol.Status]map[event]protocol.Status{
	protocol.StatusIdle: {
		evLoad: protocol.StatusLoading,
		evStop: protocol.StatusIdle,
	},
	protocol.StatusLoading: {
		evLoad:    protocol.StatusLoading,
		evLoaded:  protocol.StatusPlaying,
		evPause:   protocol.StatusPaused, // finish loading, do not start
		evResume:  protocol.StatusLoading,
		evSeek:    protocol.StatusLoading,
		evAdvance: protocol.StatusLoading,
		evFail:    protocol.StatusError,
		evStop:    protocol.StatusIdle,
	},
	protocol.StatusPlaying: {
		evLoad:    protocol.StatusLoading,
		evPause:   protocol.StatusPaused,
		evResume:  protocol.StatusPlaying,
		evSeek:    protocol.StatusPlaying,
		evAdvance: protocol.StatusPlaying,
		evEnd:     protocol.StatusEnded,
		evFail:    protocol.StatusError,
		evStop:    protocol.StatusIdle,
	},
	protocol.StatusPaused: {
		evLoad:    protocol.StatusLoading,
		evLoaded:  protocol.StatusPaused, // loaded while paused: stay paused
		evPause:   protocol.StatusPaused,
		evResume:  protocol.StatusPlaying,
		evSeek:    protocol.StatusPaused,
		evAdvance: protocol.StatusPaused,
		evEnd:     protocol.StatusEnded, // skip_next past the last track
		evFail:    protocol.StatusError,
		evStop:    protocol.StatusIdle,
	},
	protocol.StatusEnded: {
		evLoad:    protocol.StatusLoading,
		evResume:  protocol.StatusLoading, // play again from the start
		evAdvance: protocol.StatusLoading, // prev after the end
		evStop:    protocol.StatusIdle,
	},
	protocol.StatusError: {
		evLoad:  protocol.StatusLoading,
		evRetry: protocol.StatusLoading,
		evSkip:  protocol.StatusLoading,
		evEnd:   protocol.StatusEnded, // skipped the last track
		evStop:  protocol.StatusIdle,
	},
}

// step returns the state after ev, or an error for an impossible
// transition.
func step(from protocol.Status, ev event) (protocol.Status, error) {
	if to, ok := transitions[from][ev]; ok {
		return to, nil
	}
	return from, fmt.Errorf("cannot %s while %s", ev, from)
}
