package main

import (
	"encoding/json"
	"fmt"
	"math"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/netfault"
)

// silentGaps counts the 10 ms blocks of silence between the first and the
// last audible block: an underrun or a stop heard in the file.
func silentGaps(s []float32, rate, ch int) int {
	first, last := audible(s, rate, ch, false), audible(s, rate, ch, true)
	if first < 0 {
		return -1
	}
	block := rate / 100
	gaps := 0
	for b := first / block; b < last/block; b++ {
		quiet := true
		for i := b * block; i < (b+1)*block; i++ {
			if math.Abs(float64(s[i*ch])) > 1e-4 {
				quiet = false
				break
			}
		}
		if quiet {
			gaps++
		}
	}
	return gaps
}

// TestBrokerKilledMidTrack: the broker dies (SIGKILL) while a speaker
// plays; the audio goes on with no gap, and once the broker is back the
// speaker rejoins within 2 s and pickers see it playing.
func TestBrokerKilledMidTrack(t *testing.T) {
	music := sweepLibrary(t)
	bin := buildAll(t)
	brokerState := t.TempDir()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	url := "http://" + addr
	startBroker := func() *exec.Cmd {
		cmd := exec.Command(filepath.Join(bin, "roomcast-broker"), "--listen", addr, "--state-dir", brokerState,
			"--music", music, "--mdns", "off", "--log-level", "warn")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd
	}
	brk := startBroker()
	out, err := exec.Command(filepath.Join(bin, "roomcast-broker"), "token", "create", "--state-dir", brokerState).Output()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	tok := lines[len(lines)-1]
	wav := filepath.Join(t.TempDir(), "den.wav")
	spk := exec.Command(filepath.Join(bin, "roomcastd"), "--broker", url, "--token", tok, "--state-dir", t.TempDir(),
		"--name", "Den", "--mdns", "off", "--pair-listen", "127.0.0.1:0", "--mpris", "off", "--output", "wav:"+wav,
		"--volume", "100", "--normalize", "off")
	startProc(t, "speaker", spk)
	run := func(args ...string) (string, error) {
		o, errOut, code := cli(t, bin, append([]string{"--broker", url, "--token", tok}, args...)...)
		if code != 0 {
			return o, fmt.Errorf("exit %d: %s", code, errOut)
		}
		return o, nil
	}
	var lib struct {
		Albums []struct {
			Tracks []struct{ URI string } `json:"tracks"`
		} `json:"albums"`
	}
	var devs struct {
		Devices []struct {
			Name   string
			Online bool
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(lib.Albums) == 0 || len(devs.Devices) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("library %+v, devices %+v", lib, devs)
		}
		time.Sleep(200 * time.Millisecond)
		o, _ := run("library", "--json")
		json.Unmarshal([]byte(o), &lib)
		o, _ = run("devices", "--json")
		json.Unmarshal([]byte(o), &devs)
	}
	if _, err := run("play", "--device", "Den", lib.Albums[0].Tracks[0].URI); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)

	// The broker dies without a word, stays away 4 s, and comes back.
	brk.Process.Kill()
	brk.Wait()
	time.Sleep(4 * time.Second)
	startBroker()
	back := time.Now()
	var st struct {
		Status     string `json:"status"`
		DeviceName string `json:"device_name"`
	}
	for {
		o, err := run("devices", "--json")
		devs.Devices = nil
		if err == nil {
			json.Unmarshal([]byte(o), &devs)
		}
		if len(devs.Devices) == 1 && devs.Devices[0].Online {
			break
		}
		if time.Since(back) > 4*time.Second {
			t.Fatalf("speaker not back 4 s after the broker: %+v", devs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	rejoin := time.Since(back)
	o, _ := run("status", "--json")
	json.Unmarshal([]byte(o), &st)
	if st.Status != "playing" || st.DeviceName != "Den" {
		t.Fatalf("picker sees %+v after the broker's return", st)
	}
	time.Sleep(time.Second)
	s, rate, ch := readWAV(t, wav)
	gaps := silentGaps(s, rate, ch)
	played := float64(len(s)/max(ch, 1)) / float64(max(rate, 1))
	t.Logf("rejoined %v after the broker came back (the broker's own start included); %.1f s of audio, %d silent 10 ms blocks",
		rejoin.Round(time.Millisecond), played, gaps)
	if gaps != 0 {
		t.Errorf("%d silent 10 ms blocks in the audio: playback stalled while the broker was away", gaps)
	}
	if played < 7 {
		t.Errorf("only %.1f s of audio for ~8 s of playing", played)
	}
	if rejoin > 2*time.Second {
		t.Errorf("rejoined %v after the broker's return, want ≤ 2 s", rejoin)
	}
}

// TestNetworkBlocked60s: the network between a playing speaker and its
// broker goes silent for 60 s. The speaker plays on with no gap; the
// broker drops it; once the network is back the speaker rejoins within 2 s
// and pickers see it playing again.
func TestNetworkBlocked60s(t *testing.T) {
	music := t.TempDir()
	encodeSweep(t, 90, music, "0", map[string][]string{"long.ogg": {"TITLE=Long", "ARTIST=Test", "ALBUM=Long"}})
	bin := buildAll(t)
	stateA := t.TempDir()
	a := startDaemon(t, bin, stateA, "Hub", "--music", music)
	tokFile := filepath.Join(stateA, "owner.token")
	proxy, err := netfault.Listen(strings.TrimPrefix(a.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	wav := filepath.Join(t.TempDir(), "den.wav")
	spk := exec.Command(filepath.Join(bin, "roomcastd"), "--broker", "http://"+proxy.Addr(), "--token-file", tokFile,
		"--state-dir", t.TempDir(), "--name", "Den", "--mdns", "off", "--pair-listen", "127.0.0.1:0", "--mpris", "off",
		"--output", "wav:"+wav, "--volume", "100", "--normalize", "off")
	startProc(t, "speaker", spk)
	run := func(args ...string) string {
		o, _, _ := cli(t, bin, append([]string{"--broker", a.url, "--token-file", tokFile}, args...)...)
		return o
	}
	type devices struct {
		Devices []struct {
			Name   string
			Online bool
		}
	}
	den := func() (known, online bool) {
		var d devices
		json.Unmarshal([]byte(run("devices", "--json")), &d)
		for _, x := range d.Devices {
			if x.Name == "Den" {
				return true, x.Online
			}
		}
		return false, false
	}
	var lib struct {
		Albums []struct {
			Tracks []struct{ URI string } `json:"tracks"`
		} `json:"albums"`
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		json.Unmarshal([]byte(run("library", "--json")), &lib)
		if _, on := den(); on && len(lib.Albums) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("setup: library %+v", lib)
		}
		time.Sleep(200 * time.Millisecond)
	}
	run("play", "--device", "Den", lib.Albums[0].Tracks[0].URI)
	time.Sleep(2 * time.Second)

	proxy.Block()
	time.Sleep(30 * time.Second)
	if _, on := den(); on {
		t.Error("the broker still lists the speaker online 30 s into the outage")
	}
	time.Sleep(30 * time.Second)
	back := time.Now()
	proxy.Unblock()
	for {
		if _, on := den(); on {
			break
		}
		if time.Since(back) > 4*time.Second {
			t.Fatal("speaker not back 4 s after the network")
		}
		time.Sleep(50 * time.Millisecond)
	}
	rejoin := time.Since(back)
	var st struct {
		Status     string `json:"status"`
		DeviceName string `json:"device_name"`
	}
	json.Unmarshal([]byte(run("status", "--json")), &st)
	s, rate, ch := readWAV(t, wav)
	gaps := silentGaps(s, rate, ch)
	played := float64(len(s)/max(ch, 1)) / float64(max(rate, 1))
	t.Logf("rejoined %v after the network returned; %.1f s of audio, %d silent 10 ms blocks", rejoin.Round(time.Millisecond), played, gaps)
	if st.Status != "playing" || st.DeviceName != "Den" {
		t.Errorf("picker sees %+v", st)
	}
	if gaps != 0 || played < 60 {
		t.Errorf("audio: %.1f s with %d silent blocks; want > 60 s without a gap", played, gaps)
	}
	if rejoin > 2*time.Second {
		t.Errorf("rejoined %v after the network's return, want ≤ 2 s", rejoin)
	}
}
