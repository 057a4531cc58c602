package speaker

import (
	"context"
	"log/slog"

	"golang.org/x/sync/errgroup"

	"github.com/roomcast/roomcast/events"
)

// eventsPart feeds home automation: the --events socket and the --onevent
// hook. Publish never blocks (a slow reader or hook loses events).
type eventsPart struct {
	sinks []events.Sink
}

func newEvents(cfg Config, log *slog.Logger) *eventsPart {
	e := &eventsPart{}
	if cfg.EventsPath != "" {
		e.sinks = append(e.sinks, events.NewSocket(cfg.EventsPath, log))
	}
	if cfg.OnEvent != "" {
		e.sinks = append(e.sinks, events.NewHook(cfg.OnEvent, log))
	}
	return e
}

// Publish hands ev to every sink; it is called on the receiver's goroutine.
func (e *eventsPart) Publish(ev events.Event) {
	for _, s := range e.sinks {
		s.Publish(ev)
	}
}

// Run runs the sinks until ctx ends.
func (e *eventsPart) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	for _, s := range e.sinks {
		g.Go(func() error { return s.Run(ctx) })
	}
	return g.Wait()
}
