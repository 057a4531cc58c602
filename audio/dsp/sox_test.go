package dsp

import (
	"encoding/binary"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/testenv"
)

// writeRawF32 / readRawF32: headerless little-endian float32 (sox -t f32).
func writeRawF32(t *testing.T, path string, x []float32) {
	b := make([]byte, 4*len(x))
	for i, v := range x {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readRawF32(t *testing.T, path string) []float32 {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, len(b)/4)
	for i := range x {
		x[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return x
}

// TestCompareSox resamples the same signals with sox's rate effect
// (default quality "high" and "-v") and with ours, and reports THD+N of a
// 1 kHz tone, the residual with a 21 kHz tone, and CPU time for 20 s of
// stereo. Ours must be within 3 dB of sox -h on THD+N or below
// −100 dB.
func TestCompareSox(t *testing.T) {
	sox := testenv.Tool(t, "sox", "sox")
	dir := t.TempDir()
	const in, out = 44100, 48000
	run := func(x []float32, ch int, effect ...string) ([]float32, time.Duration) {
		src, dst := filepath.Join(dir, "in.f32"), filepath.Join(dir, "out.f32")
		writeRawF32(t, src, x)
		args := append([]string{"-D", "-t", "f32", "-r", itoa(in), "-c", itoa(ch), src, "-t", "f32", dst}, effect...)
		cmd := exec.Command(sox, args...)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("sox %v: %v\n%s", args, err, b)
		}
		return readRawF32(t, dst), cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	measure := func(y []float32, freq float64) float64 {
		edge := 2000
		_, _, e := sineFit(channel(y, 1, 0)[edge:len(y)-edge], freq, out, edge)
		return db(e / 0.891)
	}
	tone := sine(in, 1, 1000, 0.891, in)
	nearNyq := sine(in, 1, 21000, 0.891, in)
	long := musicLike(in, 2, 20, 0.9, 5)
	for _, e := range []struct {
		name string
		args []string
	}{{"sox rate (high)", []string{"rate", itoa(out)}}, {"sox rate -v", []string{"rate", "-v", itoa(out)}}} {
		y, _ := run(tone, 1, e.args...)
		z, _ := run(nearNyq, 1, e.args...)
		_, cpu := run(long, 2, e.args...)
		t.Logf("%-16s THD+N(1 kHz) %6.1f dB, residual with 21 kHz tone %6.1f dB, CPU for 20 s stereo %v", e.name, measure(y, 1000), measure(z, 21000), cpu.Round(time.Millisecond))
	}
	soxHigh, _ := run(tone, 1, "rate", itoa(out))
	for _, q := range []Quality{QualityPi, QualityHigh} {
		y := resampleAll(t, in, out, 1, q, tone, 4096, 4096)
		z := resampleAll(t, in, out, 1, q, nearNyq, 4096, 4096)
		t0 := time.Now()
		resampleAll(t, in, out, 2, q, long, 4096, 4096)
		el := time.Since(t0)
		ours := measure(y, 1000)
		t.Logf("roomcast %-7v THD+N(1 kHz) %6.1f dB, residual with 21 kHz tone %6.1f dB, time for 20 s stereo %v", q, ours, measure(z, 21000), el.Round(time.Millisecond))
		if ref := measure(soxHigh, 1000); ours > ref+3 && ours > -100 {
			t.Errorf("%v: THD+N %.1f dB, sox %.1f dB", q, ours, ref)
		}
	}
}
