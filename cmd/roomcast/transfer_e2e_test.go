package main

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/testenv"
)

// sweep track: sox's sine sweep from sweepF0 to sweepF1 Hz over sweepSecs
// is exponential (f(t) = f0·(f1/f0)^(t/T)), so the frequency heard says
// the position in the track.
const (
	sweepF0, sweepF1 = 200.0, 4200.0
	sweepSecs        = 20
)

// encodeSweep writes the sox sine sweep (sweepF0 to sweepF1 Hz over secs
// seconds; the position formulas assume secs = sweepSecs) as Ogg Vorbis
// files into dir, one per name, with the given quality and tags.
func encodeSweep(t *testing.T, secs int, dir, quality string, files map[string][]string) {
	t.Helper()
	testenv.Tool(t, "sox", "sox")
	testenv.Tool(t, "oggenc", "vorbis-tools")
	wav := filepath.Join(t.TempDir(), "s.wav")
	if out, err := exec.Command("sox", "-n", "-r", "44100", "-c", "2", "-b", "16", wav, "synth", fmt.Sprint(secs),
		"sine", fmt.Sprintf("%g-%g", sweepF0, sweepF1), "gain", "-6").CombinedOutput(); err != nil {
		t.Fatalf("sox: %v %s", err, out)
	}
	for name, tags := range files {
		args := []string{"-Q", "-q", quality, "-o", filepath.Join(dir, name)}
		for _, tag := range tags {
			args = append(args, "-c", tag)
		}
		if out, err := exec.Command("oggenc", append(args, wav)...).CombinedOutput(); err != nil {
			t.Fatalf("oggenc: %v %s", err, out)
		}
	}
}

// sweepLibrary makes a music folder with one tagged sweep track.
func sweepLibrary(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	encodeSweep(t, sweepSecs, dir, "4", map[string][]string{"sweep.ogg": {"TITLE=Sweep", "ARTIST=Test", "ALBUM=Sweeps"}})
	return dir
}

// readWAV returns the interleaved float32 samples of a float WAV written by
// the wav: output (data may still be growing) and its rate and channels.
func readWAV(t *testing.T, path string) ([]float32, int, int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil || len(b) < 12 || string(b[:4]) != "RIFF" {
		return nil, 0, 0
	}
	var rate, ch int
	for off := 12; off+8 <= len(b); {
		id, size := string(b[off:off+4]), int(binary.LittleEndian.Uint32(b[off+4:]))
		body := b[off+8:]
		switch id {
		case "fmt ":
			ch = int(binary.LittleEndian.Uint16(body[2:]))
			rate = int(binary.LittleEndian.Uint32(body[4:]))
		case "data":
			n := min(size, len(body)) / 4
			out := make([]float32, n)
			for i := range out {
				out[i] = math.Float32frombits(binary.LittleEndian.Uint32(body[4*i:]))
			}
			return out, rate, ch
		}
		off += 8 + size + size%2
	}
	return nil, rate, ch
}

// sweepPosition estimates, from 40 ms of the left channel starting at
// frame, where in the sweep they come from (seconds): the frequency from
// the interpolated times of the first and last zero crossings.
func sweepPosition(s []float32, rate, ch, frame int) float64 {
	n := rate / 25
	var first, last float64
	crossings := 0
	for i := frame + 1; i < frame+n && i*ch < len(s); i++ {
		a, b := float64(s[(i-1)*ch]), float64(s[i*ch])
		if (a < 0) != (b < 0) {
			at := float64(i-1) + a/(a-b) // sub-sample crossing time
			if crossings == 0 {
				first = at
			}
			last = at
			crossings++
		}
	}
	if crossings < 2 {
		return -1
	}
	f := float64(crossings-1) / 2 / ((last - first) / float64(rate))
	mid := (first + last) / 2
	t := sweepSecs * math.Log(f/sweepF0) / math.Log(sweepF1/sweepF0)
	return t - (mid-float64(frame))/float64(rate) // back to the window's start
}

// audible finds the first (or last) frame whose 10 ms block is not silent.
func audible(s []float32, rate, ch int, last bool) int {
	block := rate / 100
	frames := len(s) / ch
	loud := func(b int) bool {
		for i := b * block; i < (b+1)*block && i < frames; i++ {
			if math.Abs(float64(s[i*ch])) > 0.05 {
				return true
			}
		}
		return false
	}
	nb := frames / block
	if last {
		for b := nb - 1; b >= 0; b-- {
			if loud(b) {
				return b * block
			}
		}
		return -1
	}
	for b := 0; b < nb; b++ {
		if loud(b) {
			return b * block
		}
	}
	return -1
}

// TestTransferBetweenDaemonsFromWAV: two real roomcastd processes with wav:
// outputs. Playback moves from the first to the second; the second is
// audible within 300 ms of the request, continuing the track within 100 ms
// of where the first stopped, as heard in the two files.
func TestTransferBetweenDaemonsFromWAV(t *testing.T) {
	music := sweepLibrary(t)
	bin := buildAll(t)
	out := t.TempDir()
	aWAV, bWAV := filepath.Join(out, "a.wav"), filepath.Join(out, "b.wav")
	stateA := t.TempDir()
	a := startDaemon(t, bin, stateA, "Kitchen", "--music", music, "--output", "wav:"+aWAV, "--volume", "100", "--normalize", "off")
	tokFile := filepath.Join(stateA, "owner.token")
	b := exec.Command(filepath.Join(bin, "roomcastd"), "--broker", a.url, "--token-file", tokFile, "--state-dir", t.TempDir(),
		"--name", "Den", "--mdns", "off", "--pair-listen", "127.0.0.1:0", "--mpris", "off",
		"--output", "wav:"+bWAV, "--volume", "100", "--normalize", "off")
	startProc(t, "den", b)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kitchen:\n%s", a.logs.String())
		}
	})
	g := []string{"--broker", a.url, "--token-file", tokFile}
	run := func(args ...string) string {
		t.Helper()
		o, errOut, code := cli(t, bin, append(g, args...)...)
		if code != 0 {
			t.Fatalf("roomcast %v: %s", args, errOut)
		}
		return o
	}
	var lib struct {
		Albums []struct {
			Tracks []struct{ URI string } `json:"tracks"`
		} `json:"albums"`
	}
	var devs struct{ Devices []struct{ Name string } }
	deadline := time.Now().Add(20 * time.Second)
	for len(lib.Albums) == 0 || len(devs.Devices) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("library %+v, devices %+v", lib, devs)
		}
		time.Sleep(200 * time.Millisecond)
		json.Unmarshal([]byte(run("library", "--json")), &lib)
		json.Unmarshal([]byte(run("devices", "--json")), &devs)
	}
	run("play", "--device", "Kitchen", lib.Albums[0].Tracks[0].URI)
	time.Sleep(3 * time.Second)

	// Transfer, and watch the second daemon's file for its first sound.
	t0 := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		run("transfer", "Den")
	}()
	var heard time.Duration
	for heard == 0 {
		s, rate, ch := readWAV(t, bWAV)
		if rate > 0 && audible(s, rate, ch, false) >= 0 {
			heard = time.Since(t0)
			break
		}
		if time.Since(t0) > 5*time.Second {
			t.Fatal("the second daemon never played")
		}
		time.Sleep(5 * time.Millisecond)
	}
	<-done
	time.Sleep(time.Second) // let both files settle
	sa, rateA, chA := readWAV(t, aWAV)
	sb, rateB, chB := readWAV(t, bWAV)
	lastA := audible(sa, rateA, chA, true)
	firstB := audible(sb, rateB, chB, false)
	if lastA < 0 || firstB < 0 {
		t.Fatalf("no audio: a %d, b %d", lastA, firstB)
	}
	// Positions from the sound itself: where A stopped (just before its
	// fade-out) and where B began (just after its start).
	posA := sweepPosition(sa, rateA, chA, lastA-rateA/25)
	posB := sweepPosition(sb, rateB, chB, firstB+rateB/100)
	firstA := audible(sa, rateA, chA, false)
	t.Logf("heard after %v; kitchen stopped at %.3f s, den began at %.3f s; kitchen's file: %d frames, audio %d..%d; den's: %d frames, audio from %d",
		heard.Round(time.Millisecond), posA, posB, len(sa)/max(chA, 1), firstA, lastA, len(sb)/max(chB, 1), firstB)
	if heard > 300*time.Millisecond {
		t.Errorf("the second daemon was heard %v after the transfer request, want ≤ 300 ms", heard)
	}
	if posA < 2 || posA > 6 {
		t.Errorf("the first daemon stopped at %.3f s, want about 3 s in", posA)
	}
	if d := math.Abs(posB - posA); d > 0.1 {
		t.Errorf("the second daemon began at %.3f s, the first stopped at %.3f s: %.0f ms apart, want ≤ 100 ms", posB, posA, d*1000)
	}
}

// sweepAlbum makes a music folder with an album of n sweep tracks.
func sweepAlbum(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string][]string{}
	for i := 1; i <= n; i++ {
		files[fmt.Sprintf("%02d.ogg", i)] = []string{fmt.Sprintf("TITLE=Sweep %d", i), "ARTIST=Test", "ALBUM=Sweeps",
			fmt.Sprintf("TRACKNUMBER=%d", i)}
	}
	encodeSweep(t, sweepSecs, dir, "2", files)
	return dir
}

// TestCommandsWithRealAudio drives a speaker playing through the audio
// pipeline into wav: from the CLI, and checks each command in the sound:
// seek, next, prev, pause, resume and volume.
func TestCommandsWithRealAudio(t *testing.T) {
	music := sweepAlbum(t, 3)
	bin := buildAll(t)
	state := t.TempDir()
	wav := filepath.Join(t.TempDir(), "out.wav")
	d := startDaemon(t, bin, state, "Kitchen", "--music", music, "--output", "wav:"+wav, "--volume", "100", "--normalize", "off")
	g := []string{"--broker", d.url, "--token-file", filepath.Join(state, "owner.token")}
	run := func(args ...string) string {
		t.Helper()
		o, errOut, code := cli(t, bin, append(g, args...)...)
		if code != 0 {
			t.Fatalf("roomcast %v: %s", args, errOut)
		}
		return o
	}
	var lib struct {
		Albums []struct{ URI string } `json:"albums"`
	}
	for i := 0; i < 100 && len(lib.Albums) == 0; i++ {
		time.Sleep(200 * time.Millisecond)
		json.Unmarshal([]byte(run("library", "--json")), &lib)
	}
	if len(lib.Albums) != 1 {
		t.Fatalf("library: %+v", lib)
	}
	type status struct {
		Status     string `json:"status"`
		PositionMS int64  `json:"position_ms"`
		State      struct {
			Index   int    `json:"index"`
			Shuffle bool   `json:"shuffle"`
			Repeat  string `json:"repeat"`
			Track   struct {
				Title string `json:"title"`
			} `json:"track"`
		} `json:"state"`
	}
	st := func() status {
		var s status
		json.Unmarshal([]byte(run("status", "--json")), &s)
		return s
	}
	// tail returns where the last 100 ms of the file come from in the
	// sweep, and their peak level.
	tail := func() (pos, peak float64) {
		s, rate, ch := readWAV(t, wav)
		end := len(s)/ch - rate/10
		for i := end; i < len(s)/ch; i++ {
			peak = math.Max(peak, math.Abs(float64(s[i*ch])))
		}
		return sweepPosition(s, rate, ch, end), peak
	}
	run("play", "--device", "Kitchen", lib.Albums[0].URI)
	time.Sleep(1500 * time.Millisecond)
	if s := st(); s.Status != "playing" || s.State.Track.Title != "Sweep 1" {
		t.Fatalf("after play: %+v", s)
	}
	// A picker extrapolating the broker's state knows where the sound is
	// to within 50 ms. status --json says the server-clock instant its
	// position is for (position_at_ms); on loopback the broker shares this
	// machine's clock, so that instant must fall within the command's run
	// (the picker's clock estimate) and the sound at that instant is the
	// file's end moved back by the time since (the command's own start-up
	// time, long under load, does not count against it).
	type told struct {
		PositionMS   int64 `json:"position_ms"`
		PositionAtMS int64 `json:"position_at_ms"`
	}
	var worst float64
	for i := 0; i < 5; i++ {
		before := time.Now()
		var tl told
		json.Unmarshal([]byte(run("status", "--json")), &tl)
		after := time.Now()
		if at := time.UnixMilli(tl.PositionAtMS); at.Before(before.Add(-5*time.Millisecond)) || at.After(after.Add(5*time.Millisecond)) {
			t.Fatalf("status computed its position for %s, outside its run %s..%s: the clock estimate is off",
				at.Format("15:04:05.000"), before.Format("15:04:05.000"), after.Format("15:04:05.000"))
		}
		readAt := time.Now()
		s, rate, ch := readWAV(t, wav)
		end := sweepPosition(s, rate, ch, len(s)/ch-rate/25) + 0.04 // the file's end, in track time
		heard := end - readAt.Sub(time.UnixMilli(tl.PositionAtMS)).Seconds()
		worst = math.Max(worst, math.Abs(float64(tl.PositionMS)/1000-heard))
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("picker extrapolation vs the sound: worst %.0f ms over 5 samples", worst*1000)
	if worst > 0.05 {
		t.Fatalf("the picker's position is %.0f ms off the sound, want ≤ 50 ms", worst*1000)
	}
	run("seek", "10")
	time.Sleep(700 * time.Millisecond)
	if pos, _ := tail(); pos < 10.2 || pos > 11.2 {
		t.Fatalf("after seek 10 the sound is at %.2f s of the track", pos)
	}
	run("next")
	time.Sleep(700 * time.Millisecond)
	if s := st(); s.State.Track.Title != "Sweep 2" || s.State.Index != 1 {
		t.Fatalf("after next: %+v", s)
	}
	if pos, _ := tail(); pos < 0.2 || pos > 1.2 {
		t.Fatalf("after next the sound is at %.2f s of the track, want the start", pos)
	}
	run("prev") // within 3 s: the previous track
	time.Sleep(700 * time.Millisecond)
	if s := st(); s.State.Track.Title != "Sweep 1" {
		t.Fatalf("after prev: %+v", s)
	}
	run("pause")
	time.Sleep(400 * time.Millisecond)
	s1, _, _ := readWAV(t, wav)
	time.Sleep(600 * time.Millisecond)
	s2, rate, ch := readWAV(t, wav)
	if grown := (len(s2) - len(s1)) / ch; grown > rate/20 {
		t.Fatalf("the output grew by %d frames while paused", grown)
	}
	if s := st(); s.Status != "paused" {
		t.Fatalf("after pause: %+v", s)
	}
	run("resume")
	time.Sleep(700 * time.Millisecond)
	_, loud := tail()
	run("volume", "50")
	time.Sleep(700 * time.Millisecond)
	_, soft := tail()
	if db := 20 * math.Log10(soft/loud); db > -20 || db < -40 {
		t.Fatalf("volume 100 -> 50 changed the level by %.1f dB (peaks %.3f -> %.4f), want about -30 dB", db, loud, soft)
	}
	run("shuffle", "on")
	run("repeat", "context")
	if s := st(); !s.State.Shuffle || s.State.Repeat != "context" || s.Status != "playing" {
		t.Fatalf("after shuffle/repeat: %+v", s)
	}
}
