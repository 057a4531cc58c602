package output

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Kind names an output backend as written in an output spec.
type Kind string

// The output kinds accepted by ParseSpec.
const (
	// KindAuto opens the default device of the first real sound backend
	// that works (on Linux: PulseAudio/PipeWire, then ALSA). It never falls
	// back to the null backend: a speaker that silently plays into nothing
	// is worse than one that reports an error.
	KindAuto Kind = "auto"
	// KindALSA opens an ALSA PCM: the default one, or DEVICE ("hw:1,0",
	// "plughw:CARD=DAC,DEV=0", "default", ...).
	KindALSA Kind = "alsa"
	// KindPulse opens a PulseAudio (or pipewire-pulse) sink: the server's
	// default sink, or the sink named DEVICE (see `pactl list short sinks`).
	KindPulse Kind = "pulse"
	// KindNull is miniaudio's null backend: a real-time clock that consumes
	// and discards audio. Useful for headless tests and benchmarks.
	KindNull Kind = "null"
	// KindWAV writes what a device would play into a 32-bit float WAV file
	// at PATH, paced in real time.
	KindWAV Kind = "wav"
)

// maxDeviceLen is the longest device name miniaudio can carry: ALSA and
// PulseAudio ids are NUL-terminated strings in a 256-byte ma_device_id.
const maxDeviceLen = 255

// ErrBadSpec is wrapped by every error ParseSpec returns.
var ErrBadSpec = errors.New("bad output spec")

const specSyntax = "want auto, alsa[:DEVICE], pulse[:DEVICE], null or wav:PATH"

// Spec selects an output: a backend and, for ALSA and PulseAudio, an
// optional device, or for KindWAV the file path. The zero Spec is not
// valid; use ParseSpec or set Kind.
type Spec struct {
	Kind Kind
	// Device is the ALSA PCM name or PulseAudio sink name; empty means the
	// backend's default device. Only used by KindALSA and KindPulse.
	Device string
	// Path is the WAV file to write. Only used by KindWAV.
	Path string
}

// ParseSpec parses the value of `--output`:
//
//	auto | alsa[:DEVICE] | pulse[:DEVICE] | null | wav:PATH
//
// The kind is case-insensitive; DEVICE and PATH are taken verbatim after the
// first colon (so "alsa:hw:1,0" is ALSA device "hw:1,0" and
// "wav:/tmp/a:b.wav" is the file "/tmp/a:b.wav"). DEVICE and PATH may not be
// empty, contain control characters or NUL, or be invalid UTF-8; DEVICE is
// at most 255 bytes. Every error wraps ErrBadSpec.
func ParseSpec(s string) (Spec, error) {
	kindText, arg, hasArg := strings.Cut(s, ":")
	kind := Kind(strings.ToLower(kindText))
	spec := Spec{Kind: kind}
	switch kind {
	case KindAuto, KindNull:
		if hasArg {
			return Spec{}, fmt.Errorf("%w %q: %s takes no argument", ErrBadSpec, s, kind)
		}
	case KindALSA, KindPulse:
		if !hasArg {
			break
		}
		if err := checkArg(arg, "device"); err != nil {
			return Spec{}, fmt.Errorf("%w %q: %v", ErrBadSpec, s, err)
		}
		if len(arg) > maxDeviceLen {
			return Spec{}, fmt.Errorf("%w %q: device name longer than %d bytes", ErrBadSpec, s, maxDeviceLen)
		}
		spec.Device = arg
	case KindWAV:
		if !hasArg {
			return Spec{}, fmt.Errorf("%w %q: wav needs a path (wav:PATH)", ErrBadSpec, s)
		}
		if err := checkArg(arg, "path"); err != nil {
			return Spec{}, fmt.Errorf("%w %q: %v", ErrBadSpec, s, err)
		}
		spec.Path = arg
	default:
		if s == "" {
			return Spec{}, fmt.Errorf("%w: empty (%s)", ErrBadSpec, specSyntax)
		}
		return Spec{}, fmt.Errorf("%w %q: unknown output %q (%s)", ErrBadSpec, s, kindText, specSyntax)
	}
	return spec, nil
}

func checkArg(arg, what string) error {
	if arg == "" {
		return fmt.Errorf("empty %s after ':'", what)
	}
	if !utf8.ValidString(arg) {
		return fmt.Errorf("%s is not valid UTF-8", what)
	}
	for _, r := range arg {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%s contains control character %U", what, r)
		}
	}
	return nil
}

// String returns the spec in the syntax ParseSpec accepts; for every Spec
// returned by ParseSpec without error, ParseSpec(s.String()) returns s.
func (s Spec) String() string {
	switch s.Kind {
	case KindALSA, KindPulse:
		if s.Device != "" {
			return string(s.Kind) + ":" + s.Device
		}
	case KindWAV:
		return string(s.Kind) + ":" + s.Path
	}
	return string(s.Kind)
}
