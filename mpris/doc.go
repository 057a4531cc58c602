// Package mpris publishes a roomcast Connect session on D-Bus as an MPRIS
// media player (org.mpris.MediaPlayer2 and org.mpris.MediaPlayer2.Player),
// so that desktop media keys, shell widgets and playerctl control it.
//
// MPRIS here reflects the user's whole session, not one speaker: the
// service reads the player state and devices from the broker (as any
// picker does, through a Session) and sends every command through the
// broker to the active device, which may be this roomcastd or another
// one. It never talks to an audio player directly.
//
// Mapping, where MPRIS and roomcast differ:
//   - PlaybackStatus: playing and loading are Playing, paused is Paused,
//     everything else (idle, ended, error, no session) is Stopped.
//   - Stop pauses (a session has no stopped state to return to; Play
//     after Stop continues the same track). Quit is refused (CanQuit is
//     false): a daemon that plays for the whole house does not quit from
//     a desktop widget. Raise does nothing (CanRaise is false).
//   - Play resumes a paused session, restarts an ended one, and, when no
//     device is active, starts the last session on this device.
//   - LoopStatus None/Track/Playlist is repeat off/track/context. Volume
//     0.0–1.0 is the active device's volume 0–100. Rate is always 1.0:
//     writing 0.0 acts as Pause (as the spec asks), other rates are
//     refused with InvalidArgs.
//   - Position is in microseconds, extrapolated from the state's
//     position_ms at server_ts with the broker clock offset; it is
//     computed when read and never announced by PropertiesChanged. The
//     Seeked signal announces jumps: a position more than 1 s away from
//     the extrapolation, and every Seek or SetPosition of ours.
//   - mpris:trackid is /org/roomcast/track/<hex of the track URI>
//     (/org/mpris/MediaPlayer2/TrackList/NoTrack when nothing plays).
//     Metadata is replaced as a whole on every change.
//   - CanPlay, CanPause, CanGoNext, CanGoPrevious and CanSeek are false
//     while the broker is unreachable or the active device is offline.
//     A track of unknown length can be sought; Seek past the end acts as
//     Next and SetPosition past the end does nothing only when the length
//     is known.
//   - OpenUri plays roomcast: URIs (roomcast:track:… as a one-track list,
//     anything else as a context); other schemes get NotSupported.
//
// The bus name is org.mpris.MediaPlayer2.roomcast, or
// org.mpris.MediaPlayer2.roomcast.instance<pid> when it is taken. On the
// system bus the policy file packaging/dbus/org.mpris.MediaPlayer2.roomcast.conf
// must be installed. When the bus goes away (dbus-daemon restart), the
// service reconnects with backoff and exports everything again.
//
// Concurrency: one goroutine (Service.Run) owns the exported state.
// D-Bus method calls and property writes arrive on godbus goroutines and
// only send it typed messages (property callbacks never call back into
// godbus: prop holds its lock while they run). Commands to the broker run
// on their own goroutines and report back to Run as messages.
package mpris
