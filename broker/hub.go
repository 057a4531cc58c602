package broker

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/gorilla/websocket"

	"github.com/roomcast/roomcast/protocol"
)

// hubEvent is what a hub's goroutine receives: connections post their
// arrival, frames and departure, timers their expiry, HTTP handlers ask
// for a snapshot, the revocation poller names revoked tokens. The set is
// sealed (only the types below implement it), and each event is handled
// to completion by the hub goroutine before the next.
type hubEvent interface{ isHubEvent() }

type (
	evRegister struct {
		c     *conn
		hello *protocol.Hello
	}
	evUnregister struct {
		c      *conn
		reason string
	}
	evFrame struct {
		c    *conn
		f    protocol.Frame
		recv time.Time
	}
	evTimeout  struct{ id string }
	evSnapshot struct{ reply chan Snapshot }
	evRevoke   struct{ hashes []string } // store.HashToken of revoked tokens
)

func (evRegister) isHubEvent()   {}
func (evUnregister) isHubEvent() {}
func (evFrame) isHubEvent()      {}
func (evTimeout) isHubEvent()    {}
func (evSnapshot) isHubEvent()   {}
func (evRevoke) isHubEvent()     {}

// pendingKind says what a pending request waits for.
type pendingKind int

const (
	pendCommand     pendingKind = iota // a relayed COMMAND: ACK goes back to from
	pendTransferOut                    // the old device's pause during a transfer
	pendTransferIn                     // the new device's start during a transfer
	pendHandoff                        // a pause sent to the old device on play --device; reply ignored
)

// pending is a request sent to a device and not yet answered.
type pending struct {
	kind   pendingKind
	ref    string // the client's request id, answered when done
	from   *conn  // who asked; may have gone
	target string // device id that must answer
	timer  *time.Timer
	// For transfers.
	transfer   *protocol.TransferPlayback
	wasPlaying bool
}

// reply is a finished request's answer, kept for idempotency.
type reply struct {
	ack *protocol.Ack
	err *protocol.Error
}

// idempotencyWindow bounds how many finished request ids a hub remembers.
const idempotencyWindow = 512

// hub owns one user's state.
//
// Concurrency: only its goroutine (run) touches the fields; everyone else
// posts a hubEvent, and a snapshot (/v1/state, /v1/devices) is an event
// too, answered between two others. So whoever reacts to a message from
// the hub and then asks sees at least the state that message implies.
// Within an event a change is recorded (and handed to the write-behind
// persister) before the messages that announce it are queued, and a new
// active device is announced before its state: a client that gets a
// PLAYER_STATE_CHANGED already holds a device list naming its device
// active. A command the hub itself refuses (unknown device or album, an
// offset past the end) is refused before it changes anything.
type hub struct {
	b      *Broker
	user   string
	events chan hubEvent

	conns   map[string]*conn                // device id -> live connection
	devices map[string]*protocol.DeviceInfo // playable devices known, online or not
	active  string                          // active device id; may be offline
	state   *protocol.PlayerState           // last accepted state; nil before any
	// lastWriter is the device whose update produced state ("" when the
	// broker wrote it, e.g. a transfer handover).
	lastWriter string

	pending   map[string]*pending // keyed by the id sent to the device
	done      map[string]reply    // finished request ids -> answer
	doneOrder []string
}

func newHub(b *Broker, user string) *hub {
	return &hub{
		b:       b,
		user:    user,
		events:  make(chan hubEvent, 1024),
		conns:   map[string]*conn{},
		devices: map[string]*protocol.DeviceInfo{},
		pending: map[string]*pending{},
		done:    map[string]reply{},
	}
}

// post hands an event to the hub. It returns false once the broker shuts
// down.
func (h *hub) post(ev hubEvent) bool {
	select {
	case h.events <- ev:
		return true
	case <-h.b.quit:
		return false
	}
}

func (h *hub) run() {
	defer h.b.hubsWG.Done()
	h.load()
	for {
		select {
		case ev := <-h.events:
			h.handle(ev)
		case <-h.b.quit:
			h.shutdown()
			return
		}
	}
}

func (h *hub) load() {
	ctx := context.Background()
	devs, err := h.b.store.Devices(ctx, h.user)
	if err != nil {
		h.b.log.Error("load devices", "user", h.user, "err", err)
	}
	for i := range devs {
		d := devs[i]
		h.devices[d.ID] = &d
	}
	active, st, err := h.b.store.LoadState(ctx, h.user)
	if err != nil {
		h.b.log.Error("load state", "user", h.user, "err", err)
	}
	h.active, h.state = active, st
}

func (h *hub) shutdown() {
	for _, p := range h.pending {
		p.timer.Stop()
	}
	for _, c := range h.conns {
		c.sendMsg("", &protocol.Goodbye{Reason: "shutdown", ReconnectMS: 500 + rand.Int64N(2500)})
		c.closeWith(websocket.CloseServiceRestart, "broker restarting")
	}
	h.saveState()
}

func (h *hub) handle(ev hubEvent) {
	switch e := ev.(type) {
	case evRegister:
		h.register(e.c, e.hello)
	case evUnregister:
		h.unregister(e.c, e.reason)
	case evFrame:
		h.frame(e)
	case evTimeout:
		h.timeout(e.id)
	case evSnapshot:
		e.reply <- h.snapshot()
	case evRevoke:
		for _, c := range h.conns {
			if slices.Contains(e.hashes, c.tokenHash) {
				h.b.log.Info("token revoked: closing its connection", "user", h.user, "device", c.device.ID)
				c.closeWith(CloseTokenRevoked, "token revoked")
			}
		}
	default:
		// Unreachable while the set is sealed; never worth a panic.
		h.b.log.Error("hub: unknown event", "user", h.user, "type", fmt.Sprintf("%T", ev))
	}
}

func nowMS() int64 { return time.Now().UnixMilli() }

func (h *hub) snapshot() Snapshot {
	s := Snapshot{Devices: h.deviceList(), ActiveDeviceID: h.active, ServerTimeMS: nowMS()}
	if h.state != nil {
		st := *h.state
		s.State = &st
	}
	return s
}

// deviceList is the user's playable devices with online and active set,
// sorted by name then id.
func (h *hub) deviceList() []protocol.DeviceInfo {
	out := make([]protocol.DeviceInfo, 0, len(h.devices))
	for id, d := range h.devices {
		dd := *d
		_, dd.Online = h.conns[id]
		dd.Active = id == h.active
		out = append(out, dd)
	}
	slices.SortFunc(out, func(a, b protocol.DeviceInfo) int {
		if a.Name != b.Name {
			if a.Name < b.Name {
				return -1
			}
			return 1
		}
		if a.ID < b.ID {
			return -1
		}
		if a.ID > b.ID {
			return 1
		}
		return 0
	})
	return out
}

func (h *hub) online(id string) *conn { return h.conns[id] }

func (h *hub) register(c *conn, hello *protocol.Hello) {
	id := c.device.ID
	if old := h.conns[id]; old != nil {
		old.closeWith(CloseReplaced, "replaced by a newer connection of this device")
	}
	h.conns[id] = c
	resumed := false
	if c.device.CanPlay() {
		d := c.device
		d.LastSeenMS = nowMS()
		h.devices[id] = &d
		h.saveDevice(d)
		if hello.Resume != nil && hello.Resume.Active {
			switch {
			case h.active == id:
				resumed = true
			case h.active == "" && h.state != nil && h.state.DeviceID == id:
				h.active, resumed = id, true
				h.saveState()
			}
		}
	}
	w := &protocol.Welcome{
		ProtocolVersion: protocol.Version,
		SessionID:       c.session,
		User:            h.user,
		ServerTimeMS:    nowMS(),
		HeartbeatMS:     h.b.opts.HeartbeatInterval.Milliseconds(),
		DropAfterMS:     h.b.opts.DropAfter.Milliseconds(),
		MaxFrameBytes:   h.b.opts.MaxFrameBytes,
		Devices:         h.deviceList(),
		ActiveDeviceID:  h.active,
		Resumed:         resumed,
	}
	if h.state != nil {
		st := *h.state
		w.State = &st
	}
	c.sendMsg("", w)
	h.b.log.Debug("device joined", "user", h.user, "device", id, "name", c.device.Name, "resumed", resumed)
	if c.device.CanPlay() {
		h.broadcastDevices(id, "joined", c)
	}
}

func (h *hub) unregister(c *conn, reason string) {
	id := c.device.ID
	if h.conns[id] != c {
		return // already replaced by a newer connection
	}
	delete(h.conns, id)
	// Requests waiting on this device fail now rather than at timeout.
	for key, p := range h.pending {
		if p.target == id {
			p.timer.Stop()
			delete(h.pending, key)
			h.failed(p, protocol.ErrDeviceOffline, "device "+id+" went offline")
		}
	}
	if d := h.devices[id]; d != nil {
		d.LastSeenMS = nowMS()
		h.saveDevice(*d)
		h.broadcastDevices(id, reason, nil)
	}
	h.b.log.Debug("device left", "user", h.user, "device", id, "reason", reason)
}

// broadcastDevices tells every connection except skip the device list.
func (h *hub) broadcastDevices(changed, reason string, skip *conn) {
	m := &protocol.DeviceStateChanged{Devices: h.deviceList(), ActiveDeviceID: h.active, Changed: changed, Reason: reason}
	h.broadcast(m, skip, time.Time{})
}

// broadcast encodes m once and queues it on every connection but skip.
func (h *hub) broadcast(m protocol.Message, skip *conn, recv time.Time) {
	body, err := protocol.EncodeBody("", nowMS(), m)
	if err != nil {
		h.b.log.Error("encode broadcast", "type", m.Type(), "err", err)
		return
	}
	f := &outFrame{body: body, typ: m.Type(), recv: recv}
	for _, c := range h.conns {
		if c != skip {
			c.send(f)
		}
	}
}

func (h *hub) frame(e evFrame) {
	switch m := e.f.Msg.(type) {
	case *protocol.PlayerStateChanged:
		h.stateFromDevice(e.c, e.f.ID, &m.State, e.recv)
	case *protocol.Command:
		h.command(e.c, e.f.ID, m)
	case *protocol.TransferPlayback:
		h.transfer(e.c, e.f.ID, m)
	case *protocol.Ack:
		h.answer(e.c, m.Ref, m, nil)
	case *protocol.Error:
		if m.Ref != "" {
			h.answer(e.c, m.Ref, nil, m)
		}
	case *protocol.DeviceStateChanged:
		h.deviceUpdate(e.c, m)
	default:
		e.c.sendMsg("", &protocol.Error{Code: protocol.ErrBadRequest, Message: fmt.Sprintf("%s is not accepted from clients", m.Type())})
	}
}

// deviceUpdate applies a device's change of its own info (name, volume).
func (h *hub) deviceUpdate(c *conn, m *protocol.DeviceStateChanged) {
	if m.Device == nil || m.Device.ID != c.device.ID || m.Device.Type != c.device.Type {
		c.sendMsg("", &protocol.Error{Code: protocol.ErrBadRequest, Message: "a device may only update its own info, with the same id and type"})
		return
	}
	c.device = *m.Device
	if d := h.devices[c.device.ID]; d != nil && c.device.CanPlay() {
		nd := c.device
		nd.LastSeenMS = nowMS()
		*d = nd
		h.saveDevice(nd)
		h.broadcastDevices(nd.ID, "updated", c)
	}
}

// stateFromDevice applies a PLAYER_STATE_CHANGED from c. Rules (last
// write wins, with optimistic concurrency):
//   - a writer other than the last writer must have seen the current
//     version (BasedOn), else its update is stale: rejected, and the
//     writer is resynced with the current state;
//   - a device that is not active may write only a playing or loading
//     state, which makes it the active device (a takeover: the old active
//     device is told to pause); other states from it are not_active;
//   - accepted states get Version+1 and the broker's timestamp, and are
//     fanned out to everyone else (the writer gets an ACK when it sent an
//     id). The hub handles one event at a time, so of two concurrent
//     writers the later arrival wins, and the earlier one's next update is
//     stale.
func (h *hub) stateFromDevice(c *conn, id string, st *protocol.PlayerState, recv time.Time) {
	devID := c.device.ID
	reject := func(code protocol.ErrorCode, msg string) {
		e := &protocol.Error{Ref: id, Code: code, Message: msg}
		if h.state != nil {
			cur := *h.state
			e.State = &cur
		}
		c.sendMsg("", e)
	}
	if !c.device.CanPlay() {
		reject(protocol.ErrBadRequest, "only devices with the play capability report player state")
		return
	}
	if st.DeviceID != devID {
		reject(protocol.ErrBadRequest, "state.device_id must be the sender's id")
		return
	}
	if h.state != nil && h.lastWriter != devID && st.BasedOn < h.state.Version {
		reject(protocol.ErrStaleState, fmt.Sprintf("state based on version %d, current is %d", st.BasedOn, h.state.Version))
		return
	}
	if h.active != devID {
		if st.Status != protocol.StatusPlaying && st.Status != protocol.StatusLoading {
			reject(protocol.ErrNotActive, fmt.Sprintf("device %s is not the active device (active: %q)", devID, h.active))
			return
		}
		if old := h.online(h.active); old != nil {
			hid := fmt.Sprintf("takeover-%s-%d", devID, time.Now().UnixNano())
			old.sendMsg(hid, &protocol.Command{Name: protocol.CmdPause, Transfer: true, From: devID})
			h.addPending(hid, &pending{kind: pendHandoff, ref: hid, target: old.device.ID})
		}
		h.active = devID
		h.broadcastDevices(devID, "active", nil)
	}
	stamped := h.accept(*st, devID, recv)
	if id != "" {
		c.sendMsg("", &protocol.Ack{Ref: id, State: stamped})
	}
}

// accept stamps st as the new state written by writer and fans it out to
// everyone but the writer. It returns a copy of the stamped state.
func (h *hub) accept(st protocol.PlayerState, writer string, recv time.Time) *protocol.PlayerState {
	now := nowMS()
	if st.PositionAtMS != 0 && st.Status == protocol.StatusPlaying {
		if d := now - st.PositionAtMS; d > 0 && d < 5000 {
			st.PositionMS += d
		}
	}
	st.PositionAtMS, st.BasedOn = 0, 0
	prev := h.state
	st.Version = 1
	if prev != nil {
		st.Version = prev.Version + 1
		// Server timestamps never go backwards, so LWW order equals
		// version order on one node.
		now = max(now, prev.ServerTS)
	}
	st.ServerTS = now
	if d := h.devices[st.DeviceID]; d != nil && d.Volume != st.Volume && writer != "" {
		d.Volume = st.Volume
	}
	h.state = &st
	h.lastWriter = writer
	h.saveState()
	var skip *conn
	if writer != "" {
		skip = h.conns[writer]
	}
	h.broadcast(&protocol.PlayerStateChanged{State: st, TrackChanged: !protocol.SameTrack(prev, &st)}, skip, recv)
	out := st
	return &out
}

// remember stores a finished request's answer for idempotency.
func (h *hub) remember(ref string, r reply) {
	if _, ok := h.done[ref]; !ok {
		h.doneOrder = append(h.doneOrder, ref)
	}
	h.done[ref] = r
	if len(h.doneOrder) > idempotencyWindow {
		delete(h.done, h.doneOrder[0])
		h.doneOrder = h.doneOrder[1:]
	}
}

// duplicate answers a request id that was seen before. It reports whether
// the request was a duplicate.
func (h *hub) duplicate(c *conn, ref string) bool {
	if r, ok := h.done[ref]; ok {
		h.b.metrics.commands.WithLabelValues("duplicate").Inc()
		if r.ack != nil {
			c.sendMsg("", r.ack)
		} else {
			c.sendMsg("", r.err)
		}
		return true
	}
	for _, p := range h.pending {
		if p.ref == ref && p.kind != pendHandoff {
			h.b.metrics.commands.WithLabelValues("duplicate").Inc()
			return true // in flight: its answer will come
		}
	}
	return false
}

func (h *hub) finish(c *conn, ref string, r reply) {
	h.remember(ref, r)
	if c == nil {
		return
	}
	if r.ack != nil {
		h.b.metrics.commands.WithLabelValues("acked").Inc()
		c.sendMsg("", r.ack)
	} else {
		h.b.metrics.commands.WithLabelValues("error").Inc()
		c.sendMsg("", r.err)
	}
}

func (h *hub) fail(c *conn, ref string, code protocol.ErrorCode, msg string) {
	h.finish(c, ref, reply{err: &protocol.Error{Ref: ref, Code: code, Message: msg}})
}

// target checks that id can receive playback commands.
func (h *hub) target(id string) (*conn, protocol.ErrorCode, string) {
	d := h.devices[id]
	if d == nil {
		return nil, protocol.ErrNotFound, fmt.Sprintf("no device %q", id)
	}
	c := h.conns[id]
	if c == nil {
		return nil, protocol.ErrDeviceOffline, fmt.Sprintf("device %q (%s) is offline", id, d.Name)
	}
	return c, "", ""
}

func (h *hub) command(from *conn, ref string, cmd *protocol.Command) {
	if h.duplicate(from, ref) {
		return
	}
	targetID := cmd.DeviceID
	if targetID == "" {
		targetID = h.active
	}
	if targetID == "" {
		h.fail(from, ref, protocol.ErrNoActiveDevice, "no device is active: transfer playback to a device or play on one (--device)")
		return
	}
	tc, code, msg := h.target(targetID)
	if tc == nil {
		h.fail(from, ref, code, msg)
		return
	}
	if targetID != h.active && cmd.Name != protocol.CmdPlay && cmd.Name != protocol.CmdVolume {
		h.fail(from, ref, protocol.ErrNotActive, fmt.Sprintf("device %q is not active: only play and volume can target another device", targetID))
		return
	}
	fwd := *cmd
	fwd.From = from.device.ID
	if cmd.Name == protocol.CmdPlay && h.b.opts.Resolver != nil {
		tracks, err := h.b.opts.Resolver.ResolveTracks(cmd.ContextURI, cmd.URIs)
		if err != nil {
			h.fail(from, ref, protocol.ErrNotFound, err.Error())
			return
		}
		if len(tracks) > protocol.MaxResolvedTracks {
			h.fail(from, ref, protocol.ErrBadRequest, fmt.Sprintf("%d tracks: at most %d can be played as one list", len(tracks), protocol.MaxResolvedTracks))
			return
		}
		if cmd.Offset >= len(tracks) {
			h.fail(from, ref, protocol.ErrBadRequest, fmt.Sprintf("offset %d: the list has %d tracks", cmd.Offset, len(tracks)))
			return
		}
		fwd.Tracks = tracks
	}
	if cmd.Name == protocol.CmdPlay && targetID != h.active {
		// Playing on another device makes it the active one; the old
		// one is paused. Only a play that can be forwarded does so:
		// everything that may refuse it comes first.
		if old := h.online(h.active); old != nil {
			hid := ref + "#handoff"
			old.sendMsg(hid, &protocol.Command{Name: protocol.CmdPause, Transfer: true, From: from.device.ID})
			h.addPending(hid, &pending{kind: pendHandoff, ref: ref, target: old.device.ID})
		}
		h.active = targetID
		h.saveState()
		h.broadcastDevices(targetID, "active", nil)
	}
	tc.sendMsg(ref, &fwd)
	h.addPending(ref, &pending{kind: pendCommand, ref: ref, from: from, target: targetID})
}

func (h *hub) addPending(id string, p *pending) {
	timeout := h.b.opts.CommandTimeout
	if p.kind == pendTransferOut {
		timeout = h.b.opts.TransferOutTimeout
	}
	p.timer = time.AfterFunc(timeout, func() { h.post(evTimeout{id: id}) })
	h.pending[id] = p
}

func (h *hub) transfer(from *conn, ref string, tp *protocol.TransferPlayback) {
	if h.duplicate(from, ref) {
		return
	}
	tc, code, msg := h.target(tp.DeviceID)
	if tc == nil {
		h.fail(from, ref, code, msg)
		return
	}
	if !tc.device.CanPlay() {
		h.fail(from, ref, protocol.ErrUnsupported, fmt.Sprintf("device %q cannot play", tp.DeviceID))
		return
	}
	wasPlaying := h.state != nil && h.state.Status == protocol.StatusPlaying
	if tp.DeviceID == h.active {
		// Already there; only a requested play/pause change remains.
		h.startTarget(from, ref, tp, wasPlaying, h.currentState())
		return
	}
	if old := h.online(h.active); old != nil {
		oid := ref + "#out"
		old.sendMsg(oid, &protocol.Command{Name: protocol.CmdPause, Transfer: true, From: from.device.ID})
		h.addPending(oid, &pending{kind: pendTransferOut, ref: ref, from: from, target: old.device.ID, transfer: tp, wasPlaying: wasPlaying})
		return
	}
	h.startTarget(from, ref, tp, wasPlaying, h.currentState())
}

// currentState is the last state with its position extrapolated to now.
func (h *hub) currentState() *protocol.PlayerState {
	if h.state == nil {
		return nil
	}
	st := *h.state
	st.PositionMS = st.PositionAt(nowMS())
	return &st
}

// startTarget completes a transfer: the target becomes active and is told
// to continue from final.
func (h *hub) startTarget(from *conn, ref string, tp *protocol.TransferPlayback, wasPlaying bool, final *protocol.PlayerState) {
	tc := h.online(tp.DeviceID)
	if tc == nil {
		h.fail(from, ref, protocol.ErrDeviceOffline, fmt.Sprintf("device %q went offline during the transfer", tp.DeviceID))
		return
	}
	var st protocol.PlayerState
	if final != nil {
		st = *final
	} else {
		st = protocol.PlayerState{Status: protocol.StatusIdle, Repeat: protocol.RepeatOff}
	}
	st.DeviceID = tp.DeviceID
	st.Volume = tc.device.Volume
	play := wasPlaying
	if tp.Play != nil {
		play = *tp.Play
	}
	switch {
	case st.Track == nil && len(st.URIs) == 0 && st.ContextURI == "":
		st.Status = protocol.StatusIdle
	case play:
		st.Status = protocol.StatusPlaying
	default:
		st.Status = protocol.StatusPaused
	}
	// The new active device is announced before its state (as on a
	// takeover): whoever gets the state already knows who plays it.
	if h.active != tp.DeviceID {
		h.active = tp.DeviceID
		h.broadcastDevices(tp.DeviceID, "active", nil)
	}
	stamped := h.accept(st, "", time.Time{})
	iid := ref + "#in"
	in := &protocol.TransferPlayback{DeviceID: tp.DeviceID, Play: tp.Play, State: stamped}
	if r := h.b.opts.Resolver; r != nil && (st.ContextURI != "" || len(st.URIs) > 0) {
		if tracks, err := r.ResolveTracks(st.ContextURI, st.URIs); err == nil && len(tracks) <= protocol.MaxResolvedTracks {
			in.Tracks = tracks
		} else if err != nil {
			h.b.log.Warn("transfer: cannot resolve the play list", "user", h.user, "context", st.ContextURI, "err", err)
		}
	}
	tc.sendMsg(iid, in)
	h.addPending(iid, &pending{kind: pendTransferIn, ref: ref, from: from, target: tp.DeviceID})
}

// answer handles a device's ACK or ERROR for a pending request.
func (h *hub) answer(c *conn, id string, ack *protocol.Ack, e *protocol.Error) {
	p := h.pending[id]
	if p == nil || p.target != c.device.ID {
		return // late, duplicate, or not this device's to answer
	}
	p.timer.Stop()
	delete(h.pending, id)
	var st *protocol.PlayerState
	if ack != nil && ack.State != nil && ack.State.DeviceID == c.device.ID {
		st = ack.State
	}
	switch p.kind {
	case pendHandoff:
		// The old device paused; its final state is no longer current.
	case pendTransferOut:
		final := h.currentState()
		if st != nil {
			f := *st
			if final != nil && f.Track == nil {
				f.Track = final.Track
			}
			final = &f
		}
		h.startTarget(p.from, p.ref, p.transfer, p.wasPlaying, final)
	case pendCommand, pendTransferIn:
		if e != nil {
			h.finish(p.from, p.ref, reply{err: &protocol.Error{Ref: p.ref, Code: e.Code, Message: e.Message}})
			return
		}
		out := &protocol.Ack{Ref: p.ref}
		if st != nil && h.active == c.device.ID {
			out.State = h.accept(*st, c.device.ID, time.Time{})
		} else if h.state != nil {
			cur := *h.state
			out.State = &cur
		}
		h.finish(p.from, p.ref, reply{ack: out})
	}
}

func (h *hub) timeout(id string) {
	p := h.pending[id]
	if p == nil {
		return
	}
	delete(h.pending, id)
	if p.kind == pendTransferOut {
		// The old device did not answer: continue from the last known
		// state, extrapolated.
		h.b.log.Warn("transfer: old device did not confirm the pause", "user", h.user, "device", p.target)
		h.startTarget(p.from, p.ref, p.transfer, p.wasPlaying, h.currentState())
		return
	}
	h.b.metrics.commands.WithLabelValues("timeout").Inc()
	h.failed(p, protocol.ErrTimeout, fmt.Sprintf("device %q did not answer within %s", p.target, h.b.opts.CommandTimeout))
}

// failed ends a pending request with an error.
func (h *hub) failed(p *pending, code protocol.ErrorCode, msg string) {
	switch p.kind {
	case pendHandoff:
		return
	case pendTransferOut:
		h.startTarget(p.from, p.ref, p.transfer, p.wasPlaying, h.currentState())
		return
	}
	if p.from != nil && h.conns[p.from.device.ID] != p.from {
		p.from = nil // the requester is gone; still remember the outcome
	}
	h.fail(p.from, p.ref, code, msg)
}

func (h *hub) saveDevice(d protocol.DeviceInfo) {
	h.b.persist.submit(deviceWrite{user: h.user, dev: d, seen: time.UnixMilli(d.LastSeenMS)})
}

func (h *hub) saveState() {
	var st *protocol.PlayerState
	if h.state != nil {
		cp := *h.state
		st = &cp
	}
	h.b.persist.submit(stateWrite{user: h.user, active: h.active, state: st})
}
