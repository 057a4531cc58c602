// Package httpapi holds the JSON bodies of the broker's HTTP API, declared
// once for the servers that write them (package library, package
// discovery's pairing API) and the client that reads them (package
// client). Routes and auth are in docs/operations.md.
//
// The types are plain data; the packages that produce them check their
// fields (library, discovery.ParseTXT).
package httpapi

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"github.com/roomcast/roomcast/protocol"
)

// Track is a track of the library: the protocol.Track fields (flattened
// into the same JSON object) plus library details.
type Track struct {
	protocol.Track
	ID         string `json:"id"`
	MediaURL   string `json:"media_url"`
	DiscNumber int    `json:"disc_number,omitempty"`
	Date       string `json:"date,omitempty"`
	SampleRate int    `json:"sample_rate"`
	Channels   int    `json:"channels"`
	// Codec is vorbis, opus, flac or mp3; BitDepth the bits per sample of
	// a lossless (FLAC) source, absent for lossy ones.
	Codec    string `json:"codec"`
	BitDepth int    `json:"bit_depth,omitempty"`
	// LoudnessRangeLU is the EBU Tech 3342 loudness range.
	LoudnessRangeLU *float64 `json:"loudness_range_lu,omitempty"`
	// Analysed is false while the track waits for its loudness analysis.
	Analysed bool `json:"analysed"`
}

// Album is an album with its tracks in disc and track order.
type Album struct {
	ID         string `json:"id"`
	URI        string `json:"uri"`
	Title      string `json:"title"`
	Artist     string `json:"artist,omitempty"`
	Date       string `json:"date,omitempty"`
	ArtURL     string `json:"art_url,omitempty"`
	TrackCount int    `json:"track_count"`
	DurationMS int64  `json:"duration_ms"`
	// Album loudness (R128, gated over all tracks) and true peak (the
	// maximum of the tracks'); nil until measured.
	LoudnessLUFS *float64 `json:"loudness_lufs,omitempty"`
	TruePeakDBTP *float64 `json:"true_peak_dbtp,omitempty"`
	Analysed     bool     `json:"analysed"`
	Tracks       []Track  `json:"tracks"`
}

// LibraryPage is one page of GET /v1/library: albums sorted by artist and
// title; Total counts every album.
type LibraryPage struct {
	Total  int     `json:"total"`
	Offset int     `json:"offset"`
	Limit  int     `json:"limit"`
	Albums []Album `json:"albums"`
}

// Info is what a speaker's mDNS TXT record says about it (the layout is
// in package discovery, which parses and validates it).
type Info struct {
	ID       string              `json:"id"`
	Type     protocol.DeviceType `json:"type"`
	Version  int                 `json:"protocol_version"`
	Paired   bool                `json:"paired"`
	InfoPath string              `json:"info_path"`
}

// Speaker is one speaker on the LAN as the broker's browser resolved it:
// an entry of GET /v1/speakers, and what `roomcast discover` lists.
type Speaker struct {
	// Name is the DNS-SD instance name (after any conflict renaming,
	// e.g. "Kitchen (2)").
	Name string `json:"name"`
	Info
	Host       string       `json:"host"` // SRV target without the final dot
	Port       int          `json:"port"`
	Addrs      []netip.Addr `json:"addresses"`  // sorted; IPv6 link-local ones carry their zone
	Interfaces []string     `json:"interfaces"` // where its addresses were seen
}

// InfoURL is the speaker's info endpoint on its first address (IPv4
// first); "" without addresses.
func (s Speaker) InfoURL() string {
	if len(s.Addrs) == 0 {
		return ""
	}
	a := s.Addrs[0]
	return "http://" + net.JoinHostPort(a.String(), strconv.Itoa(s.Port)) + s.InfoPath
}

// String is a one-line description for logs.
func (s Speaker) String() string {
	paired := "no"
	if s.Paired {
		paired = "yes"
	}
	return fmt.Sprintf("%s (%s, %s, paired %s) at %s:%d %v", s.Name, s.ID, s.Type, paired, s.Host, s.Port, s.Addrs)
}

// SpeakerList is the body of GET /v1/speakers.
type SpeakerList struct {
	Speakers []Speaker `json:"speakers"`
}

// PairRequest is the body of POST /v1/pair: pair the speaker DeviceID
// with the caller's user; PIN when the speaker has one, CurrentToken to
// move a paired speaker.
type PairRequest struct {
	DeviceID     string `json:"device_id"`
	PIN          string `json:"pin,omitempty"`
	CurrentToken string `json:"current_token,omitempty"`
}

// Paired is the answer to a successful POST /v1/pair.
type Paired struct {
	DeviceID string `json:"device_id"`
	Name     string `json:"name"`
}

// Error is the JSON body of a refusal: a stable code (e.g.
// "pin_required", "already_paired", "not_found") and a message for people.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}
