package mpris

import (
	"encoding/hex"
	"math"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/roomcast/roomcast/protocol"
)

// noTrack is the spec's track id for "nothing is playing".
const noTrack = dbus.ObjectPath("/org/mpris/MediaPlayer2/TrackList/NoTrack")

// TrackID is the MPRIS track id of a roomcast track URI: a D-Bus object
// path that carries the URI hex-encoded, so it is valid for every URI and
// distinct for distinct URIs.
func TrackID(uri string) dbus.ObjectPath {
	if uri == "" {
		return noTrack
	}
	return dbus.ObjectPath("/org/roomcast/track/" + hex.EncodeToString([]byte(uri)))
}

// view is the value of every Player property that follows the session,
// computed from one snapshot. Position is not here: it is computed when
// read (see clock).
type view struct {
	PlaybackStatus string
	LoopStatus     string
	Shuffle        bool
	Volume         float64
	Metadata       map[string]dbus.Variant
	CanGoNext      bool
	CanGoPrevious  bool
	CanPlay        bool
	CanPause       bool
	CanSeek        bool
}

// session facts that the methods and the view both need.
type facts struct {
	hasItem      bool // something to play or resume
	activeOnline bool // there is an active device and it is connected
	ownOnline    bool // this roomcastd's device is connected
}

func factsOf(sn *Snapshot, ownID string) facts {
	var f facts
	st := sn.State
	f.hasItem = st != nil && (st.Track != nil || st.ContextURI != "" || len(st.URIs) > 0)
	if d := sn.device(sn.ActiveDeviceID); d != nil && d.Online {
		f.activeOnline = true
	}
	if d := sn.device(ownID); d != nil && d.Online {
		f.ownOnline = true
	}
	if !sn.Connected {
		f.activeOnline, f.ownOnline = false, false
	}
	return f
}

// viewOf maps a snapshot to property values. ownID is this roomcastd's
// device id (may be empty).
func viewOf(sn *Snapshot, ownID string) view {
	f := factsOf(sn, ownID)
	st := sn.State
	v := view{PlaybackStatus: "Stopped", LoopStatus: "None", Metadata: metadataOf(nil)}
	if st != nil {
		v.PlaybackStatus = playbackStatus(st.Status)
		v.LoopStatus = loopStatus(st.Repeat)
		v.Shuffle = st.Shuffle
		v.Metadata = metadataOf(st.Track)
	}
	v.Volume = float64(volumeOf(sn)) / 100
	v.CanPlay = f.hasItem && (f.activeOnline || f.ownOnline)
	v.CanPause = f.hasItem && f.activeOnline
	v.CanGoNext = f.hasItem && f.activeOnline
	v.CanGoPrevious = f.hasItem && f.activeOnline
	// A track of unknown length can be sought too (the end checks of
	// Seek and SetPosition are skipped then).
	v.CanSeek = f.activeOnline && st != nil && st.Track != nil
	if d := sn.device(sn.ActiveDeviceID); v.CanSeek && d != nil && len(d.Capabilities) > 0 && !hasCap(d, protocol.CapSeek) {
		v.CanSeek = false
	}
	return v
}

func hasCap(d *protocol.DeviceInfo, c string) bool {
	for _, x := range d.Capabilities {
		if x == c {
			return true
		}
	}
	return false
}

// volumeOf is the active device's volume 0..100: from the state when it
// is the active device's (the freshest), else from the device list.
func volumeOf(sn *Snapshot) int {
	if st := sn.State; st != nil && (sn.ActiveDeviceID == "" || st.DeviceID == sn.ActiveDeviceID) {
		return st.Volume
	}
	if d := sn.device(sn.ActiveDeviceID); d != nil {
		return d.Volume
	}
	return 0
}

func playbackStatus(s protocol.Status) string {
	switch s {
	case protocol.StatusPlaying, protocol.StatusLoading:
		return "Playing"
	case protocol.StatusPaused:
		return "Paused"
	}
	return "Stopped"
}

func loopStatus(r protocol.Repeat) string {
	switch r {
	case protocol.RepeatTrack:
		return "Track"
	case protocol.RepeatContext:
		return "Playlist"
	}
	return "None"
}

// repeatOf maps an MPRIS LoopStatus to a repeat mode.
func repeatOf(loop string) (protocol.Repeat, bool) {
	switch loop {
	case "None":
		return protocol.RepeatOff, true
	case "Track":
		return protocol.RepeatTrack, true
	case "Playlist":
		return protocol.RepeatContext, true
	}
	return "", false
}

// volumePercent maps an MPRIS volume to 0..100 (negative: 0, above 1: 100).
func volumePercent(v float64) int {
	if math.IsNaN(v) || v < 0 {
		return 0
	}
	if v > 1 {
		return 100
	}
	return int(math.Round(v * 100))
}

// metadataOf is the MPRIS Metadata of a track (nil: nothing playing).
func metadataOf(t *protocol.Track) map[string]dbus.Variant {
	if t == nil {
		return map[string]dbus.Variant{"mpris:trackid": dbus.MakeVariant(noTrack)}
	}
	md := map[string]dbus.Variant{
		"mpris:trackid": dbus.MakeVariant(TrackID(t.URI)),
		"xesam:url":     dbus.MakeVariant(t.URI),
	}
	if t.DurationMS > 0 {
		md["mpris:length"] = dbus.MakeVariant(t.DurationMS * 1000)
	}
	if t.ArtURL != "" {
		md["mpris:artUrl"] = dbus.MakeVariant(t.ArtURL)
	}
	if t.Title != "" {
		md["xesam:title"] = dbus.MakeVariant(t.Title)
	}
	if t.Artist != "" {
		md["xesam:artist"] = dbus.MakeVariant([]string{t.Artist})
	}
	if t.Album != "" {
		md["xesam:album"] = dbus.MakeVariant(t.Album)
	}
	if t.AlbumArtist != "" {
		md["xesam:albumArtist"] = dbus.MakeVariant([]string{t.AlbumArtist})
	}
	if t.TrackNumber > 0 {
		md["xesam:trackNumber"] = dbus.MakeVariant(int32(t.TrackNumber))
	}
	return md
}

// clock is what Position needs, published by the owner goroutine as an
// immutable value so that property reads never wait for it.
type clock struct {
	state  *protocol.PlayerState // nil: position 0
	offset time.Duration         // broker clock minus ours
}

// positionMS is the state's position extrapolated to now (broker clock).
func (c *clock) positionMS(now time.Time) int64 {
	if c == nil || c.state == nil {
		return 0
	}
	return c.state.PositionAt(now.Add(c.offset).UnixMilli())
}

// jumped reports whether next's position is inconsistent with prev's
// extrapolated to next's timestamp by more than tolerance: a seek, not
// playback. Only states of the same track are compared.
func jumped(prev, next *protocol.PlayerState, tolerance time.Duration) bool {
	if prev == nil || next == nil || !protocol.SameTrack(prev, next) || next.Track == nil {
		return false
	}
	expect := prev.PositionAt(next.ServerTS)
	d := next.PositionMS - expect
	return d > tolerance.Milliseconds() || d < -tolerance.Milliseconds()
}
