package receiver

import (
	"time"

	"github.com/roomcast/roomcast/events"
	"github.com/roomcast/roomcast/protocol"
)

// What others read of the receiver besides the broker: the metrics, the
// status line (sd_notify STATUS=) and the events (--events, --onevent).
// observe stores the first two and computes the third; deliver publishes
// the events after the step's messages were sent.

// observed is the part of the receiver that events report on.
type observed struct {
	status            protocol.Status
	track, errMsg     string
	volume            int
	active, connected bool
}

// observe compares the receiver with what was last observed, updates the
// metrics and the status line, and returns an event for each change.
func (r *Receiver) observe() []events.Event {
	tr := r.transport
	now := observed{status: tr.status, volume: tr.volume, active: r.active, connected: r.last.connected, errMsg: tr.errMsg}
	if tr.q != nil {
		now.track = tr.q.current()
	}
	return r.observeAgainst(now)
}

func (r *Receiver) observeAgainst(now observed) []events.Event {
	prev := r.last
	r.last = now
	if now.status != prev.status {
		r.opts.Metrics.setStatus(now.status)
	}
	if now.connected != prev.connected {
		r.opts.Metrics.setConnected(now.connected)
	}
	r.reportStatus()
	if r.opts.OnEvent == nil {
		return nil
	}
	var evs []events.Event
	add := func(kind string) {
		e := events.Event{Event: kind, TimeMS: time.Now().UnixMilli(), DeviceID: r.deviceID, Volume: now.volume}
		if now.track != "" {
			t := r.transport.track(now.track)
			e.TrackURI, e.Title, e.Artist, e.Album, e.DurationMS = t.URI, t.Title, t.Artist, t.Album, t.DurationMS
			_, e.PositionMS = r.transport.position()
		}
		if kind == events.Error {
			e.Error = now.errMsg
		}
		evs = append(evs, e)
	}
	if now.connected != prev.connected {
		add(map[bool]string{true: events.Connected, false: events.Disconnected}[now.connected])
	}
	if now.active != prev.active {
		add(map[bool]string{true: events.Active, false: events.Inactive}[now.active])
	}
	if now.track != prev.track && now.track != "" {
		add(events.TrackChanged)
	}
	if now.errMsg != prev.errMsg && now.errMsg != "" {
		add(events.Error)
	}
	if now.status != prev.status {
		switch now.status {
		case protocol.StatusPlaying:
			add(events.Playing)
		case protocol.StatusPaused:
			add(events.Paused)
		case protocol.StatusEnded:
			add(events.Ended)
		}
	}
	if now.volume != prev.volume {
		add(events.Volume)
	}
	return evs
}

// publish hands events to OnEvent, in order.
func (r *Receiver) publish(evs []events.Event) {
	for _, e := range evs {
		r.opts.OnEvent(e)
	}
}

// setConnected records the connection's state and publishes the change
// (there is nothing to send with it).
func (r *Receiver) setConnected(on bool) {
	now := r.last
	now.connected = on
	r.publish(r.observeAgainst(now))
}

// status passes s to OnStatus when it differs from the last line.
func (r *Receiver) status(s string) {
	if r.opts.OnStatus != nil && s != r.statusLine {
		r.statusLine = s
		r.opts.OnStatus(s)
	}
}

// reportStatus sets the status line from the state: while no broker is
// joined "Waiting for broker", else what plays.
func (r *Receiver) reportStatus() {
	tr := r.transport
	switch {
	case !r.last.connected:
		r.status("Waiting for broker")
	case tr.status == protocol.StatusPlaying && tr.q != nil:
		t := tr.track(tr.q.current())
		what := t.URI
		if t.Title != "" {
			what = t.Title
			if t.Artist != "" {
				what = t.Artist + " – " + t.Title
			}
		}
		r.status("Playing " + what)
	case tr.status == protocol.StatusPaused:
		r.status("Paused")
	case tr.status == protocol.StatusError:
		r.status("Error: " + tr.errMsg)
	default:
		r.status("Idle")
	}
}
