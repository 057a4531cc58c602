package protocol

import (
	"fmt"
	"slices"
)

// URIScheme prefixes every track and context URI: roomcast:track:<id>,
// roomcast:album:<id>.
const URIScheme = "roomcast"

// DeviceType says what kind of device a connection is. Only devices with
// the play capability can be the active device.
type DeviceType string

const (
	DeviceSpeaker    DeviceType = "speaker"
	DeviceComputer   DeviceType = "computer"
	DeviceController DeviceType = "controller" // a picker: CLI, web page
)

// Capabilities a device may announce.
const (
	CapPlay   = "play"   // can be the active device
	CapVolume = "volume" // accepts volume commands
	CapSeek   = "seek"
)

// DeviceInfo describes one device of a user.
type DeviceInfo struct {
	ID           string     `json:"id"`
	Name         string     `json:"name"`
	Type         DeviceType `json:"type"`
	Volume       int        `json:"volume"`
	Capabilities []string   `json:"capabilities,omitempty"`
	Software     string     `json:"software,omitempty"`
	// Set by the broker.
	Online     bool  `json:"online,omitempty"`
	Active     bool  `json:"active,omitempty"`
	LastSeenMS int64 `json:"last_seen_ms,omitempty"`
}

// CanPlay reports whether the device can be the active device.
func (d *DeviceInfo) CanPlay() bool { return slices.Contains(d.Capabilities, CapPlay) }

// Validate checks the fields a client must send.
func (d *DeviceInfo) Validate(field string) error {
	if d.ID == "" {
		return missing(field + ".id")
	}
	if err := checkID(field+".id", d.ID); err != nil {
		return err
	}
	if d.Name == "" {
		return missing(field + ".name")
	}
	if len(d.Name) > MaxNameLen {
		return invalid(field+".name", "too long")
	}
	switch d.Type {
	case DeviceSpeaker, DeviceComputer, DeviceController:
	case "":
		return missing(field + ".type")
	default:
		return invalid(field+".type", fmt.Sprintf("unknown device type %q", d.Type))
	}
	if d.Volume < 0 || d.Volume > 100 {
		return invalid(field+".volume", fmt.Sprintf("%d not in 0..100", d.Volume))
	}
	if len(d.Capabilities) > 16 {
		return invalid(field+".capabilities", "too many")
	}
	return nil
}

// Status is the player's state-machine state.
type Status string

const (
	StatusIdle    Status = "idle"
	StatusLoading Status = "loading"
	StatusPlaying Status = "playing"
	StatusPaused  Status = "paused"
	StatusEnded   Status = "ended"
	StatusError   Status = "error"
)

// Valid reports whether s is a known status.
func (s Status) Valid() bool {
	switch s {
	case StatusIdle, StatusLoading, StatusPlaying, StatusPaused, StatusEnded, StatusError:
		return true
	}
	return false
}

// Repeat is the repeat mode.
type Repeat string

const (
	RepeatOff     Repeat = "off"
	RepeatContext Repeat = "context"
	RepeatTrack   Repeat = "track"
)

// Valid reports whether r is a known repeat mode.
func (r Repeat) Valid() bool { return r == RepeatOff || r == RepeatContext || r == RepeatTrack }

// Track is the metadata of one track, with the loudness figures receivers
// need to normalize without another request.
type Track struct {
	URI         string `json:"uri"`
	Title       string `json:"title,omitempty"`
	Artist      string `json:"artist,omitempty"`
	Album       string `json:"album,omitempty"`
	AlbumArtist string `json:"album_artist,omitempty"`
	AlbumURI    string `json:"album_uri,omitempty"`
	TrackNumber int    `json:"track_number,omitempty"`
	DurationMS  int64  `json:"duration_ms,omitempty"`
	ArtURL      string `json:"art_url,omitempty"`
	// Loudness in LUFS and true peak in dBTP; nil when unknown.
	LoudnessLUFS      *float64 `json:"loudness_lufs,omitempty"`
	TruePeakDBTP      *float64 `json:"true_peak_dbtp,omitempty"`
	AlbumLoudnessLUFS *float64 `json:"album_loudness_lufs,omitempty"`
	AlbumTruePeakDBTP *float64 `json:"album_true_peak_dbtp,omitempty"`
}

// Validate checks a track's URI.
func (t *Track) Validate(field string) error {
	if t.URI == "" {
		return missing(field + ".uri")
	}
	return checkURI(field+".uri", t.URI)
}

// PlayerState is a user's playback state. The broker owns Version and
// ServerTS: every accepted state gets Version = previous+1 and ServerTS =
// the broker's clock (Unix ms) at which PositionMS was valid. A picker
// extrapolates: position(now) = PositionMS + (now - ServerTS) while
// Status is playing.
type PlayerState struct {
	DeviceID   string   `json:"device_id"`
	Status     Status   `json:"status"`
	ContextURI string   `json:"context_uri,omitempty"`
	URIs       []string `json:"uris,omitempty"`
	Index      int      `json:"index"`
	Track      *Track   `json:"track,omitempty"`
	PositionMS int64    `json:"position_ms"`
	Shuffle    bool     `json:"shuffle,omitempty"`
	// ShuffleSeed and ShuffleAnchor make the shuffle order reproducible
	// on another device after a transfer: the order is the Fisher–Yates
	// permutation of the list drawn from PCG(seed, seed^0x9e3779b97f4a7c15),
	// rotated so that index ShuffleAnchor comes first. Index is always an
	// index into the list in context order.
	ShuffleSeed   int64    `json:"shuffle_seed,omitempty"`
	ShuffleAnchor int      `json:"shuffle_anchor,omitempty"`
	Repeat        Repeat   `json:"repeat,omitempty"`
	Queue         []string `json:"queue,omitempty"`
	Volume        int      `json:"volume"`
	Error         string   `json:"error,omitempty"`

	// PositionAtMS, sent by a device, is the broker-clock time (from its
	// clock-offset estimate) at which PositionMS was measured. The broker
	// moves a playing position forward to its own receive time with it.
	PositionAtMS int64 `json:"position_at_ms,omitempty"`
	// BasedOn, sent by a writer, is the last Version it had seen.
	BasedOn uint64 `json:"based_on,omitempty"`
	// Set by the broker.
	Version  uint64 `json:"version,omitempty"`
	ServerTS int64  `json:"server_ts,omitempty"`
}

// Validate checks a state's fields.
func (s *PlayerState) Validate(field string) error {
	if s.DeviceID == "" {
		return missing(field + ".device_id")
	}
	if err := checkID(field+".device_id", s.DeviceID); err != nil {
		return err
	}
	if s.Status == "" {
		return missing(field + ".status")
	}
	if !s.Status.Valid() {
		return invalid(field+".status", fmt.Sprintf("unknown status %q", s.Status))
	}
	if s.Repeat != "" && !s.Repeat.Valid() {
		return invalid(field+".repeat", fmt.Sprintf("%q is not off, context or track", s.Repeat))
	}
	if s.PositionMS < 0 {
		return invalid(field+".position_ms", "negative")
	}
	if s.Index < 0 {
		return invalid(field+".index", "negative")
	}
	if s.Volume < 0 || s.Volume > 100 {
		return invalid(field+".volume", fmt.Sprintf("%d not in 0..100", s.Volume))
	}
	if len(s.URIs) > MaxURIs || len(s.Queue) > MaxURIs {
		return invalid(field, "too many uris")
	}
	if s.Track != nil {
		if err := s.Track.Validate(field + ".track"); err != nil {
			return err
		}
	}
	return nil
}

// PositionAt extrapolates the position to the broker time nowMS.
func (s *PlayerState) PositionAt(nowMS int64) int64 {
	if s.Status != StatusPlaying || nowMS <= s.ServerTS {
		return s.PositionMS
	}
	p := s.PositionMS + (nowMS - s.ServerTS)
	if s.Track != nil && s.Track.DurationMS > 0 && p > s.Track.DurationMS {
		p = s.Track.DurationMS
	}
	return p
}

// SameTrack reports whether a and b play the same item of the same list,
// so that moving from a to b needs no restart of the track.
func SameTrack(a, b *PlayerState) bool {
	if a == nil || b == nil {
		return false
	}
	ta, tb := "", ""
	if a.Track != nil {
		ta = a.Track.URI
	}
	if b.Track != nil {
		tb = b.Track.URI
	}
	return ta == tb && a.Index == b.Index && a.ContextURI == b.ContextURI
}

// Newer reports whether a wins over b under last-write-wins: the later
// server timestamp wins; equal timestamps are broken by the higher version,
// then by the lexically greater device id, so every node picks the same.
func Newer(a, b *PlayerState) bool {
	if a.ServerTS != b.ServerTS {
		return a.ServerTS > b.ServerTS
	}
	if a.Version != b.Version {
		return a.Version > b.Version
	}
	return a.DeviceID > b.DeviceID
}

// CommandName names a COMMAND.
type CommandName string

const (
	CmdPlay       CommandName = "play"
	CmdPause      CommandName = "pause"
	CmdResume     CommandName = "resume"
	CmdSkipNext   CommandName = "skip_next"
	CmdSkipPrev   CommandName = "skip_prev"
	CmdSeek       CommandName = "seek"
	CmdVolume     CommandName = "volume"
	CmdShuffle    CommandName = "shuffle"
	CmdRepeat     CommandName = "repeat"
	CmdAddToQueue CommandName = "add_to_queue"
)

// ErrorCode classifies an ERROR message.
type ErrorCode string

const (
	ErrProtocol       ErrorCode = "protocol_error"   // malformed frame; see message
	ErrBadRequest     ErrorCode = "bad_request"      // well-formed but not acceptable
	ErrUnauthorized   ErrorCode = "unauthorized"     // missing or bad token
	ErrNotFound       ErrorCode = "not_found"        // unknown device
	ErrNoActiveDevice ErrorCode = "no_active_device" // a command with nobody to run it
	ErrDeviceOffline  ErrorCode = "device_offline"   // target known but not connected
	ErrNotActive      ErrorCode = "not_active"       // state from a device that is not active
	ErrStaleState     ErrorCode = "stale_state"      // state based on an old version
	ErrTimeout        ErrorCode = "timeout"          // the device did not answer in time
	ErrUnsupported    ErrorCode = "unsupported"      // the device cannot do that
	ErrInternal       ErrorCode = "internal"
)
