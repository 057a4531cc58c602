package speaker

import (
	"log/slog"
	"time"

	"github.com/roomcast/roomcast/audio/dsp"
	"github.com/roomcast/roomcast/mpris"
)

// Config is roomcastd's configuration, checked (cmd/roomcastd parses and
// validates flags, ROOMCAST_* and the TOML file into it). On SIGHUP the
// daemon takes Name, Level, Gain, Crossfade and VolumeCurve from a new
// Config (and rescans the library); the rest needs a restart.
type Config struct {
	// Name is shown in pickers, mDNS and MPRIS; "": the host name.
	Name string
	// Broker and Token join that broker. With no Broker the speaker uses
	// the credentials of its last pairing, else it waits to be paired
	// (WaitForPairing) or runs the embedded broker.
	Broker, Token  string
	WaitForPairing bool
	StateDir       string // device id, credentials, volume, cache, databases

	// The embedded broker (single-box mode).
	Listen, MetricsListen string
	Music                 string // the library to serve; "": none
	RescanInterval        time.Duration
	Heartbeat, DropAfter  time.Duration

	// Discovery: mDNS interfaces ("", "off" or a list; also where the
	// embedded broker browses), the info/pairing endpoint's address, and
	// the setup PIN.
	MDNS       string
	PairListen string
	// PairListenIsDefault says PairListen is the built-in default, not
	// the user's choice: when it is taken (a second daemon on the box)
	// another free port is used and advertised.
	PairListenIsDefault bool
	PIN                 string

	MPRIS    mpris.Bus
	AutoPlay []string // --play: URIs to play here once joined, if nothing plays

	EventsPath, OnEvent string // --events unix:PATH, --onevent CMD

	// Audio. Output "none": no audio (the receiver keeps time silently).
	Output            string
	Gain              dsp.GainPolicy
	Crossfade         time.Duration
	Prefetch          time.Duration
	VolumeCurve       dsp.VolumeCurve
	PeriodMS, Periods int
	CacheBytes        int64
	Volume            int // first-start volume 0-100

	Level slog.Level
}
