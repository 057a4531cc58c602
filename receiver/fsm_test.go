package receiver

import (
	"testing"

	"github.com/roomcast/roomcast/protocol"
)

// TestEveryTransition walks every (state, event) pair: allowed pairs land
// on the listed state, every other pair is rejected and leaves the state
// unchanged.
func TestEveryTransition(t *testing.T) {
	allowed := map[protocol.Status]map[event]protocol.Status{
		protocol.StatusIdle:    {evLoad: "loading", evStop: "idle"},
		protocol.StatusLoading: {evLoad: "loading", evLoaded: "playing", evPause: "paused", evResume: "loading", evSeek: "loading", evAdvance: "loading", evFail: "error", evStop: "idle"},
		protocol.StatusPlaying: {evLoad: "loading", evPause: "paused", evResume: "playing", evSeek: "playing", evAdvance: "playing", evEnd: "ended", evFail: "error", evStop: "idle"},
		protocol.StatusPaused:  {evLoad: "loading", evLoaded: "paused", evPause: "paused", evResume: "playing", evSeek: "paused", evAdvance: "paused", evEnd: "ended", evFail: "error", evStop: "idle"},
		protocol.StatusEnded:   {evLoad: "loading", evResume: "loading", evAdvance: "loading", evStop: "idle"},
		protocol.StatusError:   {evLoad: "loading", evRetry: "loading", evSkip: "loading", evEnd: "ended", evStop: "idle"},
	}
	pairs := 0
	for _, s := range allStatuses {
		for _, ev := range allEvents {
			pairs++
			got, err := step(s, ev)
			want, ok := allowed[s][ev]
			switch {
			case ok && (err != nil || got != want):
				t.Errorf("%s --%s--> got %s, %v; want %s", s, ev, got, err, want)
			case !ok && (err == nil || got != s):
				t.Errorf("%s --%s--> accepted (%s); want rejected", s, ev, got)
			}
		}
	}
	if pairs != len(allStatuses)*len(allEvents) || pairs != 66 {
		t.Fatalf("walked %d pairs", pairs)
	}
	// Every state is reachable from idle, and every state can get back
	// to idle.
	for _, s := range allStatuses {
		if _, err := step(s, evStop); err != nil {
			t.Errorf("no way from %s to idle", s)
		}
	}
}
