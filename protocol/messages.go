package protocol

import (
	"fmt"
	"strings"
)

// Hello is the first frame a client sends on a new connection.
type Hello struct {
	ProtocolVersion int        `json:"protocol_version"`
	Device          DeviceInfo `json:"device"`
	// Resume, when set, asks the broker to continue an earlier session of
	// the same device (after a reconnect): if the device was active and no
	// other device took over, it stays active.
	Resume *Resume `json:"resume,omitempty"`
}

// Resume describes the session a reconnecting device continues.
type Resume struct {
	SessionID string `json:"session_id,omitempty"`
	// Active is true when the device believes it is still the active device.
	Active bool `json:"active,omitempty"`
	// StateVersion is the last player state version the device saw.
	StateVersion uint64 `json:"state_version,omitempty"`
}

// Welcome answers Hello. It carries everything a client needs to render a
// picker: the user's devices, the active one and the last player state.
type Welcome struct {
	ProtocolVersion int          `json:"protocol_version"`
	SessionID       string       `json:"session_id"`
	User            string       `json:"user"`
	ServerTimeMS    int64        `json:"server_time_ms"`
	HeartbeatMS     int64        `json:"heartbeat_ms"`
	DropAfterMS     int64        `json:"drop_after_ms"`
	MaxFrameBytes   int          `json:"max_frame_bytes"`
	Devices         []DeviceInfo `json:"devices"`
	ActiveDeviceID  string       `json:"active_device_id,omitempty"`
	State           *PlayerState `json:"state,omitempty"`
	// Resumed is true when the broker honoured Hello.Resume.Active.
	Resumed bool `json:"resumed,omitempty"`
}

// Ping asks the peer for a Pong. Either side may send it. T0US is the
// sender's clock in Unix microseconds.
type Ping struct {
	T0US int64 `json:"t0_us"`
}

// Pong answers Ping: T0US is echoed, T1US is the responder's clock when the
// ping arrived and T2US when the pong left (NTP-style offset estimation:
// offset = ((T1-T0)+(T2-T3))/2 with T3 the arrival time at the pinger).
type Pong struct {
	T0US int64 `json:"t0_us"`
	T1US int64 `json:"t1_us"`
	T2US int64 `json:"t2_us"`
}

// PlayerStateChanged carries a player state. From the active device to the
// broker it reports the device's state; from the broker to clients it is the
// stamped, authoritative state.
type PlayerStateChanged struct {
	State PlayerState `json:"state"`
	// TrackChanged is set by the broker: false means only position, status
	// or settings changed, so a receiver must not restart the track.
	TrackChanged bool `json:"track_changed,omitempty"`
}

// Command asks the active device (or DeviceID) to act. The envelope ID is
// the request id: acknowledgements refer to it and it is the idempotency
// key (a command id seen again is answered from the cache, never re-run).
type Command struct {
	Name CommandName `json:"name"`
	// DeviceID targets a specific device; empty means the active device.
	// play with a DeviceID other than the active one makes it active.
	DeviceID string `json:"device_id,omitempty"`
	// From is set by the broker to the sender's device id.
	From string `json:"from,omitempty"`

	URIs       []string `json:"uris,omitempty"`        // play: explicit track list
	ContextURI string   `json:"context_uri,omitempty"` // play: e.g. roomcast:album:<id>
	Offset     int      `json:"offset,omitempty"`      // play: index into the list or context
	PositionMS *int64   `json:"position_ms,omitempty"` // play (start), seek (required)
	Volume     *int     `json:"volume,omitempty"`      // volume: 0..100
	Shuffle    *bool    `json:"shuffle,omitempty"`     // shuffle
	Repeat     Repeat   `json:"repeat,omitempty"`      // repeat
	URI        string   `json:"uri,omitempty"`         // add_to_queue
	// Transfer marks the pause the broker sends to the old device of a
	// transfer; the device must answer with its exact final state.
	Transfer bool `json:"transfer,omitempty"`
	// Tracks, set by a broker that has a library, is the play list
	// resolved from URIs or ContextURI, in context order, with metadata
	// and loudness: the device needs no other request to play and
	// normalize. At most MaxResolvedTracks.
	Tracks []Track `json:"tracks,omitempty"`
}

// DeviceStateChanged is sent by a device to update its own info (Device),
// and by the broker to announce the user's device list.
type DeviceStateChanged struct {
	Device         *DeviceInfo  `json:"device,omitempty"`
	Devices        []DeviceInfo `json:"devices,omitempty"`
	ActiveDeviceID string       `json:"active_device_id,omitempty"`
	// Changed names the device the change is about, Reason says what
	// happened: joined, left, timeout, updated, active.
	Changed string `json:"changed,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// TransferPlayback moves playback to DeviceID. From a client it is a
// request; from the broker to the target device it carries the handover
// State to start from.
type TransferPlayback struct {
	DeviceID string `json:"device_id"`
	// Play forces playing (true) or paused (false) on the target; absent
	// keeps whether the old device was playing.
	Play  *bool        `json:"play,omitempty"`
	State *PlayerState `json:"state,omitempty"`
	// Tracks, set by the broker when it can resolve State's list, as in
	// Command.Tracks.
	Tracks []Track `json:"tracks,omitempty"`
}

// Ack acknowledges the request whose envelope ID is Ref.
type Ack struct {
	Ref   string       `json:"ref"`
	State *PlayerState `json:"state,omitempty"`
}

// Error reports a failure, for the request Ref when set.
type Error struct {
	Ref     string    `json:"ref,omitempty"`
	Code    ErrorCode `json:"code"`
	Message string    `json:"message"`
	// State, for stale_state and not_active, is the current state the
	// sender must resync to.
	State *PlayerState `json:"state,omitempty"`
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// Goodbye tells a client the broker is going away and when to reconnect.
type Goodbye struct {
	Reason      string `json:"reason"`
	ReconnectMS int64  `json:"reconnect_ms,omitempty"`
	URL         string `json:"url,omitempty"`
}

// Type implementations bind each Go type to its wire name.
func (*Hello) Type() Type              { return TypeHello }
func (*Welcome) Type() Type            { return TypeWelcome }
func (*Ping) Type() Type               { return TypePing }
func (*Pong) Type() Type               { return TypePong }
func (*PlayerStateChanged) Type() Type { return TypePlayerStateChanged }
func (*Command) Type() Type            { return TypeCommand }
func (*DeviceStateChanged) Type() Type { return TypeDeviceStateChanged }
func (*TransferPlayback) Type() Type   { return TypeTransferPlayback }
func (*Ack) Type() Type                { return TypeAck }
func (*Error) Type() Type              { return TypeError }
func (*Goodbye) Type() Type            { return TypeGoodbye }

func (m *Hello) Validate() error {
	if m.ProtocolVersion == 0 {
		return missing("protocol_version")
	}
	if m.ProtocolVersion != Version {
		return &DecodeError{Code: CodeUnsupportedVersion, Detail: fmt.Sprintf("protocol_version %d, broker speaks %d", m.ProtocolVersion, Version)}
	}
	return m.Device.Validate("device")
}

func (m *Welcome) Validate() error {
	if m.ProtocolVersion == 0 {
		return missing("protocol_version")
	}
	if m.SessionID == "" {
		return missing("session_id")
	}
	for i := range m.Devices {
		if err := m.Devices[i].Validate(fmt.Sprintf("devices[%d]", i)); err != nil {
			return err
		}
	}
	if m.State != nil {
		return m.State.Validate("state")
	}
	return nil
}

func (m *Ping) Validate() error {
	if m.T0US == 0 {
		return missing("t0_us")
	}
	return nil
}

func (m *Pong) Validate() error {
	if m.T0US == 0 {
		return missing("t0_us")
	}
	if m.T1US == 0 {
		return missing("t1_us")
	}
	if m.T2US == 0 {
		return missing("t2_us")
	}
	return nil
}

func (m *PlayerStateChanged) Validate() error { return m.State.Validate("state") }

func (m *Command) Validate() error {
	if m.Name == "" {
		return missing("name")
	}
	if err := validateTracks(m.Tracks); err != nil {
		return err
	}
	if m.DeviceID != "" {
		if err := checkID("device_id", m.DeviceID); err != nil {
			return err
		}
	}
	switch m.Name {
	case CmdPlay:
		if len(m.URIs) == 0 && m.ContextURI == "" {
			return missing("uris or context_uri")
		}
		if len(m.URIs) > MaxURIs {
			return invalid("uris", fmt.Sprintf("%d entries, at most %d", len(m.URIs), MaxURIs))
		}
		for i, u := range m.URIs {
			if err := checkURI(fmt.Sprintf("uris[%d]", i), u); err != nil {
				return err
			}
		}
		if m.ContextURI != "" {
			if err := checkURI("context_uri", m.ContextURI); err != nil {
				return err
			}
		}
		if m.Offset < 0 || (len(m.URIs) > 0 && m.Offset >= len(m.URIs)) {
			return invalid("offset", fmt.Sprintf("%d out of range", m.Offset))
		}
		if m.PositionMS != nil && *m.PositionMS < 0 {
			return invalid("position_ms", "negative")
		}
	case CmdPause, CmdResume, CmdSkipNext, CmdSkipPrev:
	case CmdSeek:
		if m.PositionMS == nil {
			return missing("position_ms")
		}
		if *m.PositionMS < 0 {
			return invalid("position_ms", "negative")
		}
	case CmdVolume:
		if m.Volume == nil {
			return missing("volume")
		}
		if *m.Volume < 0 || *m.Volume > 100 {
			return invalid("volume", fmt.Sprintf("%d not in 0..100", *m.Volume))
		}
	case CmdShuffle:
		if m.Shuffle == nil {
			return missing("shuffle")
		}
	case CmdRepeat:
		if m.Repeat == "" {
			return missing("repeat")
		}
		if !m.Repeat.Valid() {
			return invalid("repeat", fmt.Sprintf("%q is not off, context or track", m.Repeat))
		}
	case CmdAddToQueue:
		if m.URI == "" {
			return missing("uri")
		}
		if err := checkURI("uri", m.URI); err != nil {
			return err
		}
	default:
		return invalid("name", fmt.Sprintf("unknown command %q", m.Name))
	}
	return nil
}

func (m *DeviceStateChanged) Validate() error {
	if m.Device == nil && len(m.Devices) == 0 && m.Reason == "" {
		return missing("device or devices")
	}
	if m.Device != nil {
		if err := m.Device.Validate("device"); err != nil {
			return err
		}
	}
	for i := range m.Devices {
		if err := m.Devices[i].Validate(fmt.Sprintf("devices[%d]", i)); err != nil {
			return err
		}
	}
	return nil
}

func (m *TransferPlayback) Validate() error {
	if m.DeviceID == "" {
		return missing("device_id")
	}
	if err := checkID("device_id", m.DeviceID); err != nil {
		return err
	}
	if err := validateTracks(m.Tracks); err != nil {
		return err
	}
	if m.State != nil {
		return m.State.Validate("state")
	}
	return nil
}

func validateTracks(ts []Track) error {
	if len(ts) > MaxResolvedTracks {
		return invalid("tracks", fmt.Sprintf("%d entries, at most %d", len(ts), MaxResolvedTracks))
	}
	for i := range ts {
		if err := ts[i].Validate(fmt.Sprintf("tracks[%d]", i)); err != nil {
			return err
		}
	}
	return nil
}

func (m *Ack) Validate() error {
	if m.Ref == "" {
		return missing("ref")
	}
	if m.State != nil {
		return m.State.Validate("state")
	}
	return nil
}

func (m *Error) Validate() error {
	if m.Code == "" {
		return missing("code")
	}
	if m.State != nil {
		return m.State.Validate("state")
	}
	return nil
}

func (m *Goodbye) Validate() error {
	if m.Reason == "" {
		return missing("reason")
	}
	return nil
}

// Limits on strings inside messages, so that one frame cannot make the
// broker keep unbounded data per device.
const (
	MaxIDLen   = 128
	MaxNameLen = 256
	MaxURILen  = 512
	MaxURIs    = 10000
	// MaxResolvedTracks bounds Command.Tracks and TransferPlayback.Tracks
	// so that a resolved list fits in a frame.
	MaxResolvedTracks = 500
)

func checkID(field, id string) error {
	if len(id) > MaxIDLen {
		return invalid(field, "too long")
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.:", r)) {
			return invalid(field, fmt.Sprintf("character %q not allowed (use A-Z a-z 0-9 - _ . :)", r))
		}
	}
	return nil
}

func checkURI(field, uri string) error {
	if len(uri) > MaxURILen {
		return invalid(field, "too long")
	}
	if !strings.HasPrefix(uri, URIScheme+":") {
		return invalid(field, fmt.Sprintf("%q is not a %s: URI", uri, URIScheme))
	}
	return nil
}
