package receiver

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/roomcast/roomcast/playback"
	"github.com/roomcast/roomcast/protocol"
)

// A step is what Run's goroutine does with one input: a frame from the
// broker (handle), an engine report (engineEvent), a control request from
// another goroutine (control), a timer. A step changes the receiver's
// state and returns the messages that answer or report it; it never
// talks to the connection. The loop hands them to deliver, the one place
// that sends, so each step can be tested without a client or a broker.

// outgoing is one message for the broker.
type outgoing struct {
	id  string // request id; "" for answers and reports
	msg protocol.Message
}

// reply is one message with no request id: an answer (ACK, ERROR) or a
// report.
func reply(m protocol.Message) []outgoing { return []outgoing{{msg: m}} }

// brokerClock is the estimate of the broker's clock that state reports
// are stamped with (*client.Client has it). A nil brokerClock means no
// connection.
type brokerClock interface {
	ClockEstimate() (offset, rtt time.Duration, ok bool)
}

// link is a broker connection as the loop uses it (*client.Client).
type link interface {
	brokerClock
	Send(id string, m protocol.Message) error
}

// control is a request from another goroutine into Run's goroutine
// (post). The set is sealed: only this package's types implement it.
type control interface{ isControl() }

// rename is SetName: the configuration gave the device a new name.
type rename struct{ name string }

func (rename) isControl() {}

// handle applies one frame from the broker and returns the answer to
// send: an ACK with the resulting state or an ERROR for a command or a
// transfer; nothing for the broker's own reports. clk stamps the state in
// an ACK.
func (r *Receiver) handle(clk brokerClock, f protocol.Frame) []outgoing {
	switch m := f.Msg.(type) {
	case *protocol.Command:
		return r.command(clk, f.ID, m)
	case *protocol.TransferPlayback:
		return r.transferIn(clk, f.ID, m)
	case *protocol.PlayerStateChanged:
		r.version = m.State.Version
		if m.State.DeviceID != r.deviceID && r.active {
			r.active = false
			r.transport.stop()
		}
	case *protocol.DeviceStateChanged:
		r.active = m.ActiveDeviceID == r.deviceID
	case *protocol.Error:
		r.brokerError(m)
	case *protocol.Goodbye:
		r.log.Info("broker going away", "reason", m.Reason)
	case *protocol.Ack:
		if strings.HasPrefix(m.Ref, "autoplay-") {
			r.autoPlay = nil
			r.log.Info("playing the --play list")
		}
	}
	return nil
}

// command executes a relayed command: ACK with the resulting state, or
// ERROR when the transport refuses it (the state did not change). A
// command id seen before is answered again, never re-run.
func (r *Receiver) command(clk brokerClock, id string, m *protocol.Command) []outgoing {
	if st, ok := r.done[id]; ok {
		r.opts.Metrics.command("duplicate")
		return reply(&protocol.Ack{Ref: id, State: st})
	}
	if err := r.transport.apply(m); err != nil {
		r.opts.Metrics.command("refused")
		return reply(&protocol.Error{Ref: id, Code: protocol.ErrBadRequest, Message: err.Error()})
	}
	r.opts.Metrics.command("done")
	if m.Transfer {
		r.active = false
		r.settle()
	} else if m.Name == protocol.CmdPlay {
		r.active = true
	}
	if m.Name == protocol.CmdVolume {
		r.saveVolume()
	}
	st := r.stamp(clk)
	r.remember(id, &st)
	return reply(&protocol.Ack{Ref: id, State: &st})
}

// transferIn continues playback moved here from another device.
func (r *Receiver) transferIn(clk brokerClock, id string, m *protocol.TransferPlayback) []outgoing {
	if st, ok := r.done[id]; ok {
		return reply(&protocol.Ack{Ref: id, State: st})
	}
	if m.State != nil {
		r.version = m.State.Version
		play := m.State.Status == protocol.StatusPlaying
		if err := r.transport.adopt(m.State, m.Tracks, play); err != nil {
			return reply(&protocol.Error{Ref: id, Code: protocol.ErrBadRequest, Message: err.Error()})
		}
	}
	r.active = true
	st := r.stamp(clk)
	r.remember(id, &st)
	return reply(&protocol.Ack{Ref: id, State: &st})
}

// brokerError reacts to an ERROR: a refused --play is retried while the
// library may still be scanning; a refused state report with another
// device active means this one lost the role.
func (r *Receiver) brokerError(m *protocol.Error) {
	if strings.HasPrefix(m.Ref, "autoplay-") {
		if m.Code == protocol.ErrNotFound && r.autoTries < 30 {
			r.autoAt = time.Now().Add(time.Second) // the library may still be scanning
		} else {
			r.log.Error("--play refused", "code", m.Code, "err", m.Message)
			r.autoPlay = nil
		}
	}
	if m.State != nil {
		r.version = m.State.Version
		if (m.Code == protocol.ErrNotActive || m.Code == protocol.ErrStaleState) && m.State.DeviceID != r.deviceID {
			r.active = false
			r.transport.stop()
		}
	}
}

// engineEvent applies an engine report; connected (clk not nil) and
// active, it returns the new state to report.
func (r *Receiver) engineEvent(clk brokerClock, ev playback.Event) []outgoing {
	if !r.transport.onEngine(ev) || clk == nil || !r.active {
		return nil
	}
	return r.stateReport(clk)
}

// control applies a request posted by another goroutine.
func (r *Receiver) control(m control) []outgoing {
	switch m := m.(type) {
	case rename:
		if m.name == "" || m.name == r.opts.Name {
			return nil
		}
		r.opts.Name = m.name
		r.log.Info("renamed", "name", m.name)
		info := r.info()
		return reply(&protocol.DeviceStateChanged{Device: &info})
	default:
		// Unreachable while the set is sealed; never worth a panic.
		r.log.Error("receiver: unknown control request", "type", fmt.Sprintf("%T", m))
		return nil
	}
}

// autoPlayRequest asks the broker to play the --play list here: the
// broker resolves it and relays the command back like any picker's.
func (r *Receiver) autoPlayRequest() []outgoing {
	uris := r.autoPlay
	r.autoAt = time.Time{}
	cmd := &protocol.Command{Name: protocol.CmdPlay, DeviceID: r.deviceID}
	if len(uris) == 1 && !strings.HasPrefix(uris[0], protocol.URIScheme+":track:") {
		cmd.ContextURI = uris[0]
	} else {
		cmd.URIs = uris
	}
	if err := cmd.Validate(); err != nil {
		r.log.Error("--play", "err", err)
		r.autoPlay = nil
		return nil
	}
	r.autoTries++
	return []outgoing{{id: fmt.Sprintf("autoplay-%s-%d", r.deviceID, r.autoTries), msg: cmd}}
}

// settle waits (at most 800 ms) until a pause has been heard to its end:
// the fade-out and what the output still held were played, so the
// position reported to the next device is exactly where the sound stopped
// here.
func (r *Receiver) settle() {
	const limit = 800 * time.Millisecond
	if !r.transport.settle(limit) {
		r.log.Warn("transfer out: the fade did not finish in time; reporting the position as it is", "limit", limit)
	}
}

// remember keeps the last 256 command answers.
func (r *Receiver) remember(id string, st *protocol.PlayerState) {
	if id == "" {
		return
	}
	r.done[id] = st
	r.doneOrder = append(r.doneOrder, id)
	if len(r.doneOrder) > 256 {
		delete(r.done, r.doneOrder[0])
		r.doneOrder = r.doneOrder[1:]
	}
}

// stamp is the transport's state with the fields the broker needs: the
// last version seen and, once the clock is estimated, the broker-clock
// time of the position.
func (r *Receiver) stamp(clk brokerClock) protocol.PlayerState {
	st := r.transport.state()
	st.BasedOn = r.version
	if clk == nil {
		return st
	}
	if off, _, ok := clk.ClockEstimate(); ok {
		st.PositionAtMS = time.Now().Add(off).UnixMilli()
		r.opts.Metrics.offset(off.Seconds())
	}
	return st
}

// stateReport is the current state as a report; the next fan-out or
// resync carries the new version.
func (r *Receiver) stateReport(clk brokerClock) []outgoing {
	return reply(&protocol.PlayerStateChanged{State: r.stamp(clk)})
}

func (r *Receiver) saveVolume() {
	if err := writeFileAtomic(filepath.Join(r.opts.StateDir, "volume"), []byte(strconv.Itoa(r.transport.volume)+"\n")); err != nil {
		r.log.Error("save volume", "err", err)
	}
}
