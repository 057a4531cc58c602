package dsp

import (
	"encoding/binary"
	"math"
	"strconv"
	"testing"
)

func FuzzParseReplayGain(f *testing.F) {
	for _, s := range []string{"+1.23 dB", "-7.5dB", "2,5 dB", "", "dB", "1e3", "NaN", "-0.00 dB", "64 dB", "0.988553"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseReplayGain(s)
		if err != nil {
			return
		}
		if math.IsNaN(v) || math.Abs(v) > maxReplayGainDB || (v == 0 && math.Signbit(v)) {
			t.Fatalf("%q → %v", s, v)
		}
		// What it accepts re-parses to the same value.
		w, err := ParseReplayGain(strconv.FormatFloat(v, 'f', -1, 64) + " dB")
		if err != nil || w != v {
			t.Fatalf("%q → %v, re-parsed %v, %v", s, v, w, err)
		}
		if p, err := ParseReplayGainPeak(s); err == nil && (p < 0 || p > 64) {
			t.Fatalf("peak %q → %v", s, p)
		}
	})
}

// FuzzResampler: random rates, channel counts, block sizes and samples
// (including NaN, Inf and huge values). No panic, finite and bounded
// output, InputFramesFor pulls are exact, and Drain completes the
// ⌈n·out/in⌉ frames.
func FuzzResampler(f *testing.F) {
	f.Add(uint32(44100), uint32(48000), uint8(2), uint8(0), uint16(7), uint16(13), []byte{1, 2, 3, 4, 5, 6, 7, 8})
	f.Add(uint32(8000), uint32(192000), uint8(1), uint8(1), uint16(1), uint16(1000), []byte{0xff, 0xff, 0xc0, 0x7f})
	f.Add(uint32(96000), uint32(7999), uint8(3), uint8(0), uint16(300), uint16(1), []byte{0, 0, 0x80, 0x7f, 0, 0, 0x80, 0xff})
	f.Fuzz(func(t *testing.T, in, out uint32, ch, q uint8, inBlock, outBlock uint16, data []byte) {
		rin, rout := MinRate+int(in%200_000), MinRate+int(out%200_000)
		channels := 1 + int(ch%4)
		r, err := NewResampler(rin, rout, channels, Quality(q%2))
		if err != nil {
			if rin <= rout*maxRatio && rout <= rin*maxRatio {
				t.Fatalf("NewResampler(%d, %d): %v", rin, rout, err)
			}
			return
		}
		x := make([]float32, len(data)/4/channels*channels)
		for i := range x {
			x[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
		}
		// Bound: sum of |coefficients| times the largest cleaned input.
		bound := 0.0
		for _, v := range x {
			bound = math.Max(bound, math.Abs(float64(clean(v))))
		}
		bound *= 4
		ib, ob := 1+int(inBlock%2048), 1+int(outBlock%2048)
		buf := make([]float32, ob*channels)
		check := func(y []float32) {
			for _, v := range y {
				if math.IsNaN(float64(v)) || math.Abs(float64(v)) > bound+1e-30 {
					t.Fatalf("%d→%d: output %v beyond %v", rin, rout, v, bound)
				}
			}
		}
		total, rest := int64(0), x
		for len(rest) > 0 {
			c, p := r.Process(rest[:min(len(rest), ib*channels)], buf)
			if c == 0 && p == 0 {
				t.Fatal("no progress")
			}
			check(buf[:p])
			total += int64(p / channels)
			rest = rest[c:]
		}
		for n := r.Drain(buf); n > 0; n = r.Drain(buf) {
			check(buf[:n])
			total += int64(n / channels)
		}
		frames := int64(len(x) / channels)
		if want := (frames*int64(rout) + int64(rin) - 1) / int64(rin); total != want {
			t.Fatalf("%d→%d: %d frames in, %d out, want %d", rin, rout, frames, total, want)
		}
	})
}

// FuzzLimiter: random samples and block sizes; the output never exceeds
// the ceiling and is never NaN.
func FuzzLimiter(f *testing.F) {
	f.Add(uint8(2), uint16(7), []byte{0, 0, 0x80, 0x7f, 1, 2, 3, 4, 0, 0, 0xc0, 0x7f})
	f.Fuzz(func(t *testing.T, ch uint8, block uint16, data []byte) {
		channels := 1 + int(ch%3)
		l, err := NewLimiter(44100, channels, LimiterConfig{})
		if err != nil {
			t.Fatal(err)
		}
		x := make([]float32, len(data)/4/channels*channels)
		for i := range x {
			x[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
		}
		b := 1 + int(block%512)
		for off := 0; off < len(x); off += b * channels {
			l.Process(x[off:min(len(x), off+b*channels)])
		}
		for i, v := range x {
			if !(math.Abs(float64(v)) <= 0.8913) {
				t.Fatalf("sample %d = %v", i, v)
			}
		}
	})
}

// FuzzParseVolumeCurve: any spec is either refused with an error or gives
// a curve that reads back from its String and maps 0–100 % to a
// non-decreasing gain in [0, 1] that is 1 at 100 %.
func FuzzParseVolumeCurve(f *testing.F) {
	for _, s := range []string{"", "log", "log:60", "log:20.5", "linear", "fixed", "LOG:1e2", "log:NaN", "log:-0", "fixed:1", ":"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseVolumeCurve(s)
		if err != nil {
			return
		}
		back, err := ParseVolumeCurve(c.String())
		if err != nil || back != c {
			t.Fatalf("%q -> %s does not read back: %v %v", s, c, back, err)
		}
		prev := 0.0
		for p := 0.0; p <= 100; p++ {
			g := c.Gain(p)
			if !(g >= prev && g <= 1) {
				t.Fatalf("%s: gain %v at %v %% after %v", c, g, p, prev)
			}
			prev = g
		}
		if c.Gain(100) != 1 {
			t.Fatalf("%s: gain at 100 %% is %v", c, c.Gain(100))
		}
	})
}
