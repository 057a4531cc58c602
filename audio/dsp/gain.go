package dsp

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Mode selects which loudness measurement sets the normalization gain.
type Mode int

const (
	// ModeAuto uses album gain when playback comes from an album context
	// and track gain otherwise.
	ModeAuto Mode = iota
	// ModeTrack always uses track gain (album gain as a fallback).
	ModeTrack
	// ModeAlbum always uses album gain (track gain as a fallback).
	ModeAlbum
	// ModeOff applies no normalization gain.
	ModeOff
)

var modeNames = [...]string{"auto", "track", "album", "off"}

func (m Mode) String() string {
	if m >= 0 && int(m) < len(modeNames) {
		return modeNames[m]
	}
	return "Mode(" + strconv.Itoa(int(m)) + ")"
}

// ParseMode parses "auto", "track", "album" or "off" (case-insensitive).
func ParseMode(s string) (Mode, error) {
	for i, n := range modeNames {
		if strings.EqualFold(strings.TrimSpace(s), n) {
			return Mode(i), nil
		}
	}
	return ModeAuto, fmt.Errorf("dsp: unknown normalization mode %q", s)
}

// Defaults of the normalization policy.
const (
	// DefaultTargetLUFS is the programme loudness tracks are brought to.
	DefaultTargetLUFS = -14.0
	// DefaultCeilingDBTP is the highest true peak a positive gain may
	// produce.
	DefaultCeilingDBTP = -1.0
	// ReplayGainReferenceLUFS is the loudness that a ReplayGain value of
	// 0 dB stands for. ReplayGain 2.0 defines its 89 dB SPL reference as
	// −18 LUFS (integrated, BS.1770), so a tag value G dB means the track
	// measures −18 − G LUFS.
	ReplayGainReferenceLUFS = -18.0
	// MinGainDB and MaxGainDB bound every chosen gain, so that a broken
	// measurement (a silent hidden track at −70 LUFS, a garbage tag) cannot
	// produce an absurd gain.
	MinGainDB = -40.0
	MaxGainDB = 20.0
)

// Measurement is a loudness measurement made by the library (package
// loudness): integrated loudness and true peak.
type Measurement struct {
	LUFS        float64 // integrated loudness
	TruePeakDB  float64 // dBTP
	HasLoudness bool    // LUFS is valid
	HasPeak     bool    // TruePeakDB is valid
}

// ReplayGain holds the values of REPLAYGAIN_*_GAIN and REPLAYGAIN_*_PEAK
// tags.
type ReplayGain struct {
	GainDB  float64 // relative to the 89 dB SPL (−18 LUFS) reference
	Peak    float64 // linear sample peak (1.0 = full scale)
	HasGain bool
	HasPeak bool
}

// LoudnessInfo is everything known about a track's loudness: the library's
// measurements (preferred) and ReplayGain tags (fallback).
type LoudnessInfo struct {
	Track, Album     Measurement
	RGTrack, RGAlbum ReplayGain
}

// GainPolicy is the user's normalization setting.
type GainPolicy struct {
	Mode        Mode
	TargetLUFS  float64
	CeilingDBTP float64
}

// DefaultGainPolicy returns auto mode, −14 LUFS, −1 dBTP.
func DefaultGainPolicy() GainPolicy {
	return GainPolicy{Mode: ModeAuto, TargetLUFS: DefaultTargetLUFS, CeilingDBTP: DefaultCeilingDBTP}
}

// GainSource tells where a chosen gain came from.
type GainSource int

const (
	SourceNone GainSource = iota // nothing known, or mode off: 0 dB
	SourceTrack
	SourceAlbum
	SourceReplayGainTrack
	SourceReplayGainAlbum
)

var sourceNames = [...]string{"none", "track", "album", "replaygain-track", "replaygain-album"}

func (s GainSource) String() string {
	if s >= 0 && int(s) < len(sourceNames) {
		return sourceNames[s]
	}
	return "GainSource(" + strconv.Itoa(int(s)) + ")"
}

// GainDecision is the result of ChooseGain.
type GainDecision struct {
	// GainDB is the gain to apply, rounded to 0.01 dB, so that a gain that
	// is 0 dB to that precision is exactly 0 and the Gain stage passes the
	// samples through bit-exactly.
	GainDB float64
	Source GainSource
	// Capped is set when the true-peak ceiling lowered a positive gain.
	Capped bool
	// PeakDB is the expected true peak after the gain (dBTP) when a peak is
	// known (HasPeak). For ReplayGain peaks it is a sample peak.
	PeakDB  float64
	HasPeak bool
}

// candidate is one usable loudness value with its peak.
type candidate struct {
	lufs    float64
	peakDB  float64
	hasPeak bool
	src     GainSource
	ok      bool
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func measured(m Measurement, src GainSource) candidate {
	if !m.HasLoudness || !finite(m.LUFS) {
		return candidate{}
	}
	return candidate{lufs: m.LUFS, peakDB: m.TruePeakDB, hasPeak: m.HasPeak && finite(m.TruePeakDB), src: src, ok: true}
}

func fromReplayGain(rg ReplayGain, src GainSource) candidate {
	if !rg.HasGain || !finite(rg.GainDB) {
		return candidate{}
	}
	c := candidate{lufs: ReplayGainReferenceLUFS - rg.GainDB, src: src, ok: true}
	if rg.HasPeak && finite(rg.Peak) && rg.Peak > 0 {
		c.peakDB = 20 * math.Log10(rg.Peak)
		c.hasPeak = true
	}
	return c
}

// ChooseGain picks the normalization gain for a track. It is a pure
// function of its arguments.
//
// Preference order: ModeAlbum (and ModeAuto in an album context) uses the
// measured album loudness, then the ReplayGain album value, then falls back
// to the track values; ModeTrack (and ModeAuto elsewhere) uses the measured
// track loudness, then ReplayGain track, then falls back to the album
// values. ModeOff, or nothing known, gives 0 dB (SourceNone).
//
// The gain is target − loudness. A positive gain is capped at
// ceiling − peak so that the true peak stays at or below the ceiling (with
// a source that already peaks above the ceiling the capped "boost" becomes
// an attenuation); negative gains are left alone and the limiter catches
// what remains. Without a known peak no cap is possible and the limiter
// does all the work. The result is clamped to [MinGainDB, MaxGainDB] and
// rounded to 0.01 dB. Non-finite inputs count as unknown; a non-finite
// target or ceiling is replaced by the default.
func ChooseGain(p GainPolicy, albumContext bool, info LoudnessInfo) GainDecision {
	if p.Mode == ModeOff {
		return GainDecision{}
	}
	target := p.TargetLUFS
	if !finite(target) {
		target = DefaultTargetLUFS
	}
	ceiling := p.CeilingDBTP
	if !finite(ceiling) {
		ceiling = DefaultCeilingDBTP
	}
	track := []candidate{
		measured(info.Track, SourceTrack),
		fromReplayGain(info.RGTrack, SourceReplayGainTrack),
	}
	album := []candidate{
		measured(info.Album, SourceAlbum),
		fromReplayGain(info.RGAlbum, SourceReplayGainAlbum),
	}
	useAlbum := p.Mode == ModeAlbum || (p.Mode == ModeAuto && albumContext)
	order := append(track, album...)
	if useAlbum {
		order = append(album, track...)
	}
	var c candidate
	for _, k := range order {
		if k.ok {
			c = k
			break
		}
	}
	if !c.ok {
		return GainDecision{}
	}
	d := GainDecision{Source: c.src}
	g := target - c.lufs
	if c.hasPeak && g > 0 && g > ceiling-c.peakDB {
		g = ceiling - c.peakDB
		d.Capped = true
	}
	g = math.Max(MinGainDB, math.Min(MaxGainDB, g))
	g = math.Round(g*100) / 100
	if g == 0 {
		g = 0 // no negative zero
	}
	d.GainDB = g
	if c.hasPeak {
		d.PeakDB, d.HasPeak = c.peakDB+g, true
	}
	return d
}

// ErrReplayGain is returned (wrapped) for a malformed ReplayGain value.
var ErrReplayGain = errors.New("dsp: malformed ReplayGain value")

// maxReplayGainDB bounds the magnitude of a gain tag. Real values stay
// within about ±30 dB.
const maxReplayGainDB = 64

// ParseReplayGain parses a ReplayGain gain tag such as "+1.23 dB",
// "-7.5dB", "-3.10 DB" or "2,5 dB": optional surrounding space, an optional
// sign, decimal digits with at most one '.' or ',' as the decimal
// separator, and an optional "dB" suffix (any case, space before it
// allowed). Exponents, hex, "inf", "nan" and values beyond ±64 dB are
// rejected. It never panics.
func ParseReplayGain(s string) (float64, error) {
	t := strings.TrimSpace(s)
	if len(t) >= 2 && strings.EqualFold(t[len(t)-2:], "db") {
		t = strings.TrimSpace(t[:len(t)-2])
	}
	v, err := parseDecimal(t)
	if err != nil || math.Abs(v) > maxReplayGainDB {
		return 0, fmt.Errorf("%w: gain %q", ErrReplayGain, s)
	}
	if v == 0 {
		v = 0
	}
	return v, nil
}

// ParseReplayGainPeak parses a REPLAYGAIN_*_PEAK value: a non-negative
// decimal linear peak such as "0.988553" or "1.0213" (at most 64).
func ParseReplayGainPeak(s string) (float64, error) {
	v, err := parseDecimal(strings.TrimSpace(s))
	if err != nil || v < 0 || v > 64 {
		return 0, fmt.Errorf("%w: peak %q", ErrReplayGain, s)
	}
	return v, nil
}

// parseDecimal accepts [+-]digits[(.|,)digits] with at least one digit.
func parseDecimal(t string) (float64, error) {
	if len(t) == 0 || len(t) > 32 {
		return 0, ErrReplayGain
	}
	b := []byte(t)
	i := 0
	if b[0] == '+' || b[0] == '-' {
		i++
	}
	digits, seps := 0, 0
	for ; i < len(b); i++ {
		switch c := b[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' || c == ',':
			seps++
			b[i] = '.'
		default:
			return 0, ErrReplayGain
		}
	}
	if digits == 0 || seps > 1 {
		return 0, ErrReplayGain
	}
	return strconv.ParseFloat(string(b), 64)
}

// ReplayGainFromTags reads REPLAYGAIN_TRACK_GAIN, REPLAYGAIN_TRACK_PEAK,
// REPLAYGAIN_ALBUM_GAIN and REPLAYGAIN_ALBUM_PEAK from Vorbis comments as
// returned by decode.Decoder.Tags (upper-case keys; lower-case keys are
// looked up too), with R128_TRACK_GAIN and R128_ALBUM_GAIN as fallbacks
// for the gains. The first value of a field that parses wins; malformed
// values are ignored.
func ReplayGainFromTags(tags map[string][]string) (track, album ReplayGain) {
	get := func(key string, parse func(string) (float64, error)) (float64, bool) {
		for _, k := range []string{key, strings.ToLower(key)} {
			for _, v := range tags[k] {
				if x, err := parse(v); err == nil {
					return x, true
				}
			}
		}
		return 0, false
	}
	track.GainDB, track.HasGain = get("REPLAYGAIN_TRACK_GAIN", ParseReplayGain)
	track.Peak, track.HasPeak = get("REPLAYGAIN_TRACK_PEAK", ParseReplayGainPeak)
	album.GainDB, album.HasGain = get("REPLAYGAIN_ALBUM_GAIN", ParseReplayGain)
	album.Peak, album.HasPeak = get("REPLAYGAIN_ALBUM_PEAK", ParseReplayGainPeak)
	// Without ReplayGain tags, R128 gains (Opus files, RFC 7845: Q7.8 dB
	// to -23 LUFS) stand in, 5 dB higher (ReplayGain aims at -18 LUFS).
	r128 := func(v string) (float64, error) {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < -32768 || n > 32767 {
			return 0, fmt.Errorf("bad R128 gain %q", v)
		}
		return float64(n)/256 + 5, nil
	}
	if !track.HasGain {
		track.GainDB, track.HasGain = get("R128_TRACK_GAIN", r128)
	}
	if !album.HasGain {
		album.GainDB, album.HasGain = get("R128_ALBUM_GAIN", r128)
	}
	return track, album
}

// DefaultGainRamp is how long the Gain stage takes to move to a new gain.
const DefaultGainRamp = 5 * time.Millisecond

// Gain applies the normalization gain to interleaved samples in place.
//
// At 0 dB with no ramp in progress Process does not touch the samples
// (bit-exact passthrough). Set with the current gain does nothing, so
// gapless-joined tracks with the same gain (album mode) continue without
// any change at the boundary; a different gain is reached by a linear ramp
// of DefaultGainRamp starting at the first frame processed after Set. The
// pipeline should therefore split a block at a track boundary and call Set
// between the two halves. Jump sets a gain with no ramp (start of playback,
// after a seek).
//
// A Gain is not safe for concurrent use. Process never allocates.
type Gain struct {
	ch, rampFrames int
	db             float64
	r              ramp
}

// NewGain returns a Gain at 0 dB.
func NewGain(sampleRate, channels int) (*Gain, error) {
	if err := checkFormat(sampleRate, channels); err != nil {
		return nil, err
	}
	g := &Gain{ch: channels, rampFrames: framesOf(DefaultGainRamp, sampleRate, 1)}
	g.r.jump(1)
	return g, nil
}

// clampDB sanitizes a gain in dB.
func clampDB(db float64) float64 {
	if math.IsNaN(db) {
		return 0
	}
	return math.Max(MinGainDB, math.Min(MaxGainDB, db))
}

// Set moves to db dB: nothing happens if db equals the current target,
// otherwise a ramp starts. NaN counts as 0 dB; values are clamped to
// [MinGainDB, MaxGainDB].
func (g *Gain) Set(db float64) {
	db = clampDB(db)
	if db == g.db {
		return
	}
	g.db = db
	g.r.set(dbToLinear(db), g.rampFrames)
}

// Jump sets db dB at once, ending any ramp.
func (g *Gain) Jump(db float64) {
	g.db = clampDB(db)
	g.r.jump(dbToLinear(g.db))
}

// DB returns the target gain in dB.
func (g *Gain) DB() float64 { return g.db }

// Ramping reports whether a gain change is in progress.
func (g *Gain) Ramping() bool { return g.r.active() }

// Process applies the gain to the complete frames of buf in place.
func (g *Gain) Process(buf []float32) { g.r.apply(buf, g.ch) }
