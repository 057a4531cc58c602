package dsp

import (
	"math"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestVolumeCurve(t *testing.T) {
	for _, c := range []struct{ pct, db float64 }{{100, 0}, {50, -30}, {10, -54}, {1, -74}, {90, -6}} {
		if got := VolumeDB(c.pct); math.Abs(got-c.db) > 1e-9 {
			t.Errorf("VolumeDB(%v) = %v, want %v", c.pct, got, c.db)
		}
	}
	if VolumeGain(0) != 0 || VolumeGain(-5) != 0 || VolumeGain(math.NaN()) != 0 || VolumeGain(100) != 1 || VolumeGain(150) != 1 {
		t.Error("curve ends wrong")
	}
	prev := 0.0
	for p := 0.1; p <= 100; p += 0.1 {
		g := VolumeGain(p)
		if g <= prev {
			t.Fatalf("not increasing at %v %%", p)
		}
		// no step of 1 % is larger than 0.6 dB above the knee, and the
		// curve is continuous at the knee
		if p >= VolumeKnee+1 && 20*math.Log10(g/VolumeGain(p-1)) > 0.6+1e-9 {
			t.Fatalf("step at %v %% is %v dB", p, 20*math.Log10(g/VolumeGain(p-1)))
		}
		prev = g
	}
	if math.Abs(VolumeGain(VolumeKnee-1e-9)-VolumeGain(VolumeKnee)) > 1e-9 {
		t.Error("discontinuous at the knee")
	}
}

func TestVolumeUnityBitExact(t *testing.T) {
	x := musicLike(44100, 2, 0.2, 1.3, 91)
	v, _ := NewVolume(44100, 2, 100)
	y := append([]float32(nil), x...)
	v.Process(y)
	if i := bitsEqual(x, y); i >= 0 {
		t.Fatalf("100 %% changed sample %d", i)
	}
	// After a ramp down and back up, passthrough is exact again.
	v.SetVolume(30)
	v.Process(make([]float32, 2*4000))
	v.SetVolume(100)
	v.Process(make([]float32, 2*4000))
	y = append(y[:0], x...)
	v.Process(y)
	if i := bitsEqual(x, y); i >= 0 || v.Ramping() {
		t.Fatalf("after ramps: sample %d changed, ramping %v", i, v.Ramping())
	}
}

// TestVolumeZipper changes the volume from another goroutine while a
// full-scale DC signal plays in blocks of 64 frames: the output must move
// monotonically towards each target with no step above the ramp's slope.
func TestVolumeZipper(t *testing.T) {
	const rate = 48000
	v, _ := NewVolume(rate, 2, 100)
	rampFrames := float64(framesOf(DefaultVolumeRamp, rate, 1))
	maxStep := 1/rampFrames + 1e-6
	var wg sync.WaitGroup
	changes := make(chan float64)
	set := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for p := range changes {
			v.SetVolume(p)
			set <- struct{}{}
		}
	}()
	prev := float32(1)
	buf := make([]float32, 2*64)
	for blk, target := range []float64{0, 0, 0, 80, 80, 3, 3, 100, 100, 55} {
		changes <- target
		<-set
		for i := 0; i < 40; i++ { // 40 blocks = 53 ms > ramp
			for j := range buf {
				buf[j] = 1
			}
			v.Process(buf)
			for j := 0; j < len(buf); j += 2 {
				if d := math.Abs(float64(buf[j] - prev)); d > maxStep || buf[j] != buf[j+1] {
					t.Fatalf("block %d: step %v > %v", blk, d, maxStep)
				}
				prev = buf[j]
			}
		}
		if want := float32(VolumeGain(target)); prev != want {
			t.Fatalf("settled at %v, want %v", prev, want)
		}
	}
	close(changes)
	wg.Wait()
	if v.Volume() != 55 {
		t.Errorf("Volume() = %v", v.Volume())
	}
}

func TestVolumeFades(t *testing.T) {
	const rate = 44100
	v, _ := NewVolume(rate, 2, 100)
	n := v.FadeOut(20 * time.Millisecond)
	if n != 882 {
		t.Fatalf("FadeOut returned %d frames, want 882", n)
	}
	x := make([]float32, 2*(n+50))
	for i := range x {
		x[i] = 0.5
	}
	for off := 0; off < len(x); off += 2 * 100 {
		v.Process(x[off:min(len(x), off+200)])
	}
	if x[0] != 0.5 || x[2*n-2] == 0 || x[2*n] != 0 || x[len(x)-1] != 0 || !v.Faded() {
		t.Fatalf("fade-out: first %v, last of ramp %v, after %v, faded %v", x[0], x[2*n-2], x[2*n], v.Faded())
	}
	for i := 2; i < 2*n; i += 2 {
		if x[i] > x[i-2] {
			t.Fatal("fade-out not monotonic")
		}
	}
	if v.FadeOut(time.Millisecond) != 0 {
		t.Error("second FadeOut not 0")
	}
	// Silence while faded, even with NaN input.
	y := []float32{float32(math.NaN()), 1}
	v.Process(y)
	if y[0] != 0 || y[1] != 0 {
		t.Errorf("faded output %v", y)
	}
	v.FadeIn(10 * time.Millisecond)
	for i := range x {
		x[i] = 0.5
	}
	v.Process(x)
	m := 441
	if x[0] != 0 || x[1] != 0 || x[2*m] != 0.5 || x[2*m-2] >= 0.5 || v.Ramping() {
		t.Fatalf("fade-in: first %v, end of ramp %v, after %v", x[0], x[2*m-2], x[2*m])
	}
	// Mute + FadeIn (after a seek).
	v.Mute()
	if !v.Faded() {
		t.Error("Mute does not fade")
	}
	if a := testing.AllocsPerRun(20, func() { v.SetVolume(40); v.FadeIn(time.Millisecond); v.Process(x) }); a != 0 {
		t.Errorf("%v allocs", a)
	}
}

func TestParseVolumeCurve(t *testing.T) {
	cases := []struct {
		in, want string
		err      bool
	}{
		{"", "log", false}, {"log", "log", false}, {" LOG ", "log", false}, {"log:54", "log", false},
		{"log:60", "log:60", false}, {"log:20", "log:20", false}, {"log:100", "log:100", false}, {"log:37.5", "log:37.5", false},
		{"linear", "linear", false}, {"Fixed", "fixed", false},
		{"log:19.9", "", true}, {"log:101", "", true}, {"log:", "", true}, {"log:NaN", "", true}, {"log:inf", "", true},
		{"log:-60", "", true}, {"linear:3", "", true}, {"fixed:", "", true}, {"cubic", "", true}, {"loud", "", true},
	}
	for _, c := range cases {
		got, err := ParseVolumeCurve(c.in)
		if (err != nil) != c.err {
			t.Errorf("ParseVolumeCurve(%q): err %v, want error %v", c.in, err, c.err)
			continue
		}
		if err != nil {
			if !strings.Contains(err.Error(), "volume curve") {
				t.Errorf("ParseVolumeCurve(%q): unclear error %q", c.in, err)
			}
			continue
		}
		if got.String() != c.want {
			t.Errorf("ParseVolumeCurve(%q) = %s, want %s", c.in, got, c.want)
		}
		if back, err := ParseVolumeCurve(got.String()); err != nil || back != got {
			t.Errorf("%q does not read back: %v %v", got, back, err)
		}
	}
}

func TestVolumeCurveGain(t *testing.T) {
	mustCurve := func(s string) VolumeCurve {
		c, err := ParseVolumeCurve(s)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	db := func(g float64) float64 { return 20 * math.Log10(g) }
	cases := []struct {
		curve string
		pct   float64
		db    float64
	}{
		{"log", 50, -30}, {"log", 10, -54}, {"log", 100, 0},
		{"log:60", 10, -60}, {"log:60", 55, -30}, {"log:30", 10, -30}, {"log:30", 40, -20},
		{"linear", 50, db(0.5)}, {"linear", 10, -20}, {"linear", 100, 0},
		{"fixed", 1, 0}, {"fixed", 50, 0}, {"fixed", 100, 0},
	}
	for _, c := range cases {
		if got := db(mustCurve(c.curve).Gain(c.pct)); math.Abs(got-c.db) > 1e-9 {
			t.Errorf("%s at %v %%: %v dB, want %v", c.curve, c.pct, got, c.db)
		}
	}
	for _, s := range []string{"log", "log:60", "log:20", "linear"} {
		c := mustCurve(s)
		if c.Gain(0) != 0 || c.Gain(-3) != 0 || c.Gain(math.NaN()) != 0 || c.Gain(100) != 1 || c.Gain(140) != 1 {
			t.Errorf("%s: ends not 0 and 1", s)
		}
		prev := 0.0
		for p := 0.5; p <= 100; p += 0.5 {
			g := c.Gain(p)
			if !(g > prev) {
				t.Fatalf("%s not strictly increasing at %v %%", s, p)
			}
			prev = g
		}
	}
	// The default curve is VolumeGain.
	for p := 0.0; p <= 100; p += 0.25 {
		if (VolumeCurve{}).Gain(p) != VolumeGain(p) || mustCurve("log:54").Gain(p) != VolumeGain(p) {
			t.Fatalf("default curve differs from VolumeGain at %v %%", p)
		}
	}
}

// TestVolumeSetCurve: a new curve ramps (no step larger than the volume
// ramp's slope) to the gain of the current volume on that curve; "fixed"
// at 100 % passes samples bit-exact.
func TestVolumeSetCurve(t *testing.T) {
	const rate = 48000
	v, err := NewVolumeCurve(rate, 2, 50, VolumeCurve{})
	if err != nil {
		t.Fatal(err)
	}
	maxStep := 1/float64(framesOf(DefaultVolumeRamp, rate, 1)) + 1e-6
	run := func(blocks int) float32 {
		buf := make([]float32, 2*64)
		prev := float32(math.NaN())
		for i := 0; i < blocks; i++ {
			for j := range buf {
				buf[j] = 1
			}
			v.Process(buf)
			for j := 0; j < len(buf); j += 2 {
				if !math.IsNaN(float64(prev)) && math.Abs(float64(buf[j]-prev)) > maxStep {
					t.Fatalf("step %v > %v", buf[j]-prev, maxStep)
				}
				prev = buf[j]
			}
		}
		return prev
	}
	if got := run(10); got != float32(VolumeGain(50)) {
		t.Fatalf("log at 50 %%: %v", got)
	}
	for _, c := range []string{"linear", "fixed", "log:30", "log"} {
		curve, _ := ParseVolumeCurve(c)
		v.SetCurve(curve)
		if got, want := run(40), float32(curve.Gain(50)); got != want || v.Curve() != curve {
			t.Fatalf("%s at 50 %%: settled at %v, want %v", c, got, want)
		}
	}
	fixed, _ := ParseVolumeCurve("fixed")
	f, _ := NewVolumeCurve(rate, 2, 20, fixed)
	x := musicLike(rate, 2, 0.2, 1.3, 7)
	y := append([]float32(nil), x...)
	f.Process(y)
	if i := bitsEqual(x, y); i >= 0 {
		t.Fatalf("fixed curve changed sample %d", i)
	}
}
