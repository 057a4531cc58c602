package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// buildAll builds the three commands once per test binary run.
func buildAll(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", dir+"/", "../roomcastd", "../roomcast-broker", ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return dir
}

type proc struct {
	cmd  *exec.Cmd
	url  string
	logs *lockedLog
}

// lockedLog collects a process's stderr: one goroutine writes while the
// process runs, and the test (or its cleanups, which may run before the
// process is stopped) reads it.
type lockedLog struct {
	mu sync.Mutex // guards b
	b  strings.Builder
}

func (l *lockedLog) WriteString(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.WriteString(s)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startDaemon runs roomcastd in embedded mode on a free loopback port and
// waits for the URL it prints.
func startDaemon(t *testing.T, bin, stateDir, name string, extra ...string) *proc {
	t.Helper()
	// Tests never advertise on the machine's interfaces.
	args := append([]string{"--listen", "127.0.0.1:0", "--state-dir", stateDir, "--name", name,
		"--mdns", "off", "--pair-listen", "127.0.0.1:0", "--mpris", "off", "--output", "none"}, extra...)
	cmd := exec.Command(filepath.Join(bin, "roomcastd"), args...)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, logs: &lockedLog{}}
	t.Cleanup(func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() })
	urlc := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`roomcast broker: (http://\S+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.logs.WriteString(sc.Text() + "\n")
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				urlc <- m[1]
			}
		}
	}()
	select {
	case p.url = <-urlc:
	case <-time.After(15 * time.Second):
		t.Fatalf("roomcastd printed no broker URL:\n%s", p.logs.String())
	}
	return p
}

// startProc starts cmd (a roomcastd), stops it with SIGINT when the test
// ends, and prints its stderr under name if the test failed.
func startProc(t *testing.T, name string, cmd *exec.Cmd) {
	t.Helper()
	var logs strings.Builder
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		if t.Failed() {
			t.Logf("%s:\n%s", name, logs.String())
		}
	})
}

func cli(t *testing.T, bin string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "roomcast"), args...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func TestCLIAgainstEmbeddedDaemon(t *testing.T) {
	bin := buildAll(t)
	state := t.TempDir()
	d := startDaemon(t, bin, state, "Kitchen")
	tokFile := filepath.Join(state, "owner.token")
	fi, err := os.Stat(tokFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("owner.token: %v %v", fi, err)
	}
	g := []string{"--broker", d.url, "--token-file", tokFile}
	run := func(args ...string) string {
		t.Helper()
		out, errOut, code := cli(t, bin, append(args, g...)...) // globals after the command work too
		if code != 0 {
			t.Fatalf("roomcast %v: exit %d: %s", args, code, errOut)
		}
		return out
	}
	var devs struct {
		Devices []struct {
			ID, Name string
			Online   bool
			Active   bool
			Volume   int
		}
	}
	// The receiver joins its embedded broker just after the URL is printed.
	for i := 0; i < 100 && len(devs.Devices) == 0; i++ {
		if err := json.Unmarshal([]byte(run("devices", "--json")), &devs); err != nil {
			t.Fatal(err)
		}
		if len(devs.Devices) == 0 {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if len(devs.Devices) != 1 || devs.Devices[0].Name != "Kitchen" || !devs.Devices[0].Online {
		t.Fatalf("devices: %+v", devs)
	}
	id := devs.Devices[0].ID
	if out := run("devices"); !strings.Contains(out, "Kitchen") || !strings.Contains(out, "ONLINE") {
		t.Fatalf("devices table:\n%s", out)
	}
	run("play", "--device", "kitchen", "roomcast:track:a", "roomcast:track:b", "roomcast:track:c")
	var st struct {
		Device     string `json:"device"`
		Status     string `json:"status"`
		PositionMS int64  `json:"position_ms"`
	}
	json.Unmarshal([]byte(run("--json", "status")), &st)
	if st.Device != id || st.Status != "playing" {
		t.Fatalf("status after play: %+v", st)
	}
	// The receiver's metrics join the embedded broker's /metrics.
	tokBytes, _ := os.ReadFile(tokFile)
	req, _ := http.NewRequest("GET", d.url+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tokBytes)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`roomcast_receiver_status{status="playing"} 1`, "roomcast_receiver_connected 1", `roomcast_receiver_commands_total{outcome="done"}`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	run("pause")
	run("seek", "42.5")
	json.Unmarshal([]byte(run("status", "--json")), &st)
	if st.Status != "paused" || st.PositionMS != 42500 {
		t.Fatalf("status after pause+seek: %+v", st)
	}
	run("volume", "33")
	run("resume")
	run("next")
	run("prev")
	run("shuffle", "on")
	run("repeat", "context")
	json.Unmarshal([]byte(run("status", "--json")), &st)
	if st.Status != "playing" {
		t.Fatalf("status after resume: %+v", st)
	}
	json.Unmarshal([]byte(run("devices", "--json")), &devs)
	if devs.Devices[0].Volume != 33 || !devs.Devices[0].Active {
		t.Fatalf("devices after volume: %+v", devs)
	}
	// The volume survives a restart of the daemon.
	d.cmd.Process.Signal(os.Interrupt)
	if err := d.cmd.Wait(); err != nil {
		t.Fatalf("roomcastd exit on SIGINT: %v\n%s", err, d.logs)
	}
	d = startDaemon(t, bin, state, "Kitchen")
	g[1] = d.url
	time.Sleep(300 * time.Millisecond)
	json.Unmarshal([]byte(run("devices", "--json")), &devs)
	if len(devs.Devices) != 1 || devs.Devices[0].ID != id || devs.Devices[0].Volume != 33 {
		t.Fatalf("after restart: %+v", devs)
	}

	// Bad input: one-line error, non-zero exit.
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"volume", "101"}, 2, "0-100"},
		{[]string{"seek", "soon"}, 2, "seconds"},
		{[]string{"frobnicate"}, 2, "unknown command"},
		{[]string{"transfer", "Nowhere"}, 1, "no device"},
		{[]string{"devices", "--token", "rc_wrong"}, 1, "401"},
		{[]string{"devices", "--broker", "ftp://x"}, 2, "scheme"}, // bad input: exit 2 (was 1 until the URL was checked at parse time)
	} {
		args := append(append([]string{}, g...), c.args...)
		_, errOut, code := cli(t, bin, args...)
		if code != c.code || !strings.Contains(errOut, c.msg) || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Errorf("roomcast %v: exit %d, stderr %q; want exit %d with %q on one line", c.args, code, errOut, c.code, c.msg)
		}
	}
}

func TestTokenCreateAndUserIsolation(t *testing.T) {
	bin := buildAll(t)
	state := t.TempDir()
	d := startDaemon(t, bin, state, "Kitchen")
	out, err := exec.Command(filepath.Join(bin, "roomcast-broker"), "token", "create", "--user", "guest", "--state-dir", state).Output()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	tok := lines[len(lines)-1]
	if !strings.HasPrefix(tok, "rc_") {
		t.Fatalf("token create printed %q", out)
	}
	o, errOut, code := cli(t, bin, "--broker", d.url, "--token", tok, "devices", "--json")
	if code != 0 || strings.Contains(o, "Kitchen") {
		t.Fatalf("guest sees: %s %s", o, errOut)
	}
	_, errOut, code = cli(t, bin, "--broker", d.url, "--token", tok, "pause")
	if code != 1 || !strings.Contains(errOut, "no_active_device") {
		t.Fatalf("guest pause: %d %s", code, errOut)
	}
	for _, c := range [][]string{{"--version"}, {"--help"}} {
		for _, prog := range []string{"roomcastd", "roomcast-broker", "roomcast"} {
			cmd := exec.Command(filepath.Join(bin, prog), c...)
			if out, err := cmd.CombinedOutput(); err != nil || len(out) == 0 {
				t.Errorf("%s %v: %v %s", prog, c, err, out)
			}
		}
	}
	cmd := exec.Command(filepath.Join(bin, "roomcastd"), "--volume", "150")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "0-100") {
		t.Errorf("roomcastd --volume 150: %v %s", err, out)
	}
	cfg := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(cfg, []byte("nmae = \"x\"\n"), 0o600)
	cmd = exec.Command(filepath.Join(bin, "roomcastd"), "--config", cfg)
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "unknown option") {
		t.Errorf("roomcastd bad config: %v %s", err, out)
	}
}

// TestLibraryPlayback serves the demo library from the embedded broker:
// the CLI lists it, plays an album by its context URI, and the broker's
// state follows the album from track to track.
func TestLibraryPlayback(t *testing.T) {
	bin := buildAll(t)
	state := t.TempDir()
	music, err := filepath.Abs("../../demo")
	if err != nil {
		t.Fatal(err)
	}
	// Real audio: the pipeline plays the album to the null output.
	d := startDaemon(t, bin, state, "Kitchen", "--music", music, "--output", "null")
	g := []string{"--broker", d.url, "--token-file", filepath.Join(state, "owner.token")}
	run := func(args ...string) string {
		t.Helper()
		out, errOut, code := cli(t, bin, append(g, args...)...)
		if code != 0 {
			t.Fatalf("roomcast %v: exit %d: %s", args, code, errOut)
		}
		return out
	}
	type album struct {
		URI    string `json:"uri"`
		Title  string `json:"title"`
		Tracks []struct {
			URI          string   `json:"uri"`
			Title        string   `json:"title"`
			DurationMS   int64    `json:"duration_ms"`
			LoudnessLUFS *float64 `json:"loudness_lufs"`
		} `json:"tracks"`
	}
	var lib struct {
		Albums []album `json:"albums"`
	}
	var gapless album
	deadline := time.Now().Add(20 * time.Second)
	for gapless.URI == "" || gapless.Tracks[0].LoudnessLUFS == nil {
		if time.Now().After(deadline) {
			t.Fatalf("library never listed the analysed demo album: %+v", lib)
		}
		time.Sleep(200 * time.Millisecond)
		lib.Albums = nil
		json.Unmarshal([]byte(run("library", "--json")), &lib)
		for _, a := range lib.Albums {
			if strings.Contains(a.Title, "Gapless") {
				gapless = a
			}
		}
	}
	if len(lib.Albums) != 2 || len(gapless.Tracks) != 3 || gapless.Tracks[0].Title != "C Major" {
		t.Fatalf("library: %+v", lib)
	}
	if out := run("library"); !strings.Contains(out, "C Major") || !strings.Contains(out, gapless.URI) {
		t.Fatalf("library table:\n%s", out)
	}
	run("play", "--device", "Kitchen", gapless.URI)
	var st struct {
		Status string `json:"status"`
		State  struct {
			Track struct {
				Title        string   `json:"title"`
				LoudnessLUFS *float64 `json:"loudness_lufs"`
			} `json:"track"`
		} `json:"state"`
	}
	json.Unmarshal([]byte(run("status", "--json")), &st)
	if st.Status != "playing" || st.State.Track.Title != "C Major" || st.State.Track.LoudnessLUFS == nil {
		t.Fatalf("status after play: %+v", st)
	}
	// The first track is about 5 s long: the state moves on to the second.
	deadline = time.Now().Add(time.Duration(gapless.Tracks[0].DurationMS)*time.Millisecond + 5*time.Second)
	for st.State.Track.Title != "F Major" {
		if time.Now().After(deadline) {
			t.Fatalf("never moved to the second track: %+v", st)
		}
		time.Sleep(250 * time.Millisecond)
		json.Unmarshal([]byte(run("status", "--json")), &st)
	}
	// The audio pipeline's counters are in /metrics: it really played.
	tokBytes, _ := os.ReadFile(filepath.Join(state, "owner.token"))
	req, _ := http.NewRequest("GET", d.url+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tokBytes)))
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	} else {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), "roomcast_audio_played_frames_total") ||
			strings.Contains(string(body), "roomcast_audio_played_frames_total 0\n") {
			t.Errorf("/metrics shows no played audio")
		}
	}
	// An unknown album is refused with a clear error.
	_, errOut, code := cli(t, bin, append(g, "play", "roomcast:album:0000000000000000")...)
	if code != 1 || !strings.Contains(errOut, "not_found") {
		t.Fatalf("unknown album: %d %s", code, errOut)
	}
}

// TestEventsStreamAndHook: what the daemon does reaches both the JSON-lines
// socket and the --onevent hook.
func TestEventsStreamAndHook(t *testing.T) {
	bin := buildAll(t)
	state := t.TempDir()
	sock := filepath.Join(t.TempDir(), "events.sock")
	hookOut := filepath.Join(t.TempDir(), "hook.log")
	d := startDaemon(t, bin, state, "Kitchen", "--events", "unix:"+sock,
		"--onevent", `echo "$ROOMCAST_EVENT $ROOMCAST_TRACK_URI" >> `+hookOut)
	var conn net.Conn
	var err error
	for i := 0; i < 100; i++ {
		if conn, err = net.Dial("unix", sock); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	time.Sleep(200 * time.Millisecond) // registered before the first event
	g := []string{"--broker", d.url, "--token-file", filepath.Join(state, "owner.token")}
	for _, args := range [][]string{{"play", "--device", "Kitchen", "roomcast:track:a", "roomcast:track:b"}, {"volume", "20"}, {"pause"}} {
		if _, errOut, code := cli(t, bin, append(g, args...)...); code != 0 {
			t.Fatalf("%v: %s", args, errOut)
		}
	}
	want := []string{"active", "track_changed", "playing", "volume", "paused"}
	var got []string
	sc := bufio.NewScanner(conn)
	for len(got) < len(want) {
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if !sc.Scan() {
			t.Fatalf("stream ended after %v: %v", got, sc.Err())
		}
		var e struct {
			Event string `json:"event"`
		}
		json.Unmarshal(sc.Bytes(), &e)
		if e.Event == "connected" {
			continue
		}
		got = append(got, e.Event)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("events %v, want %v", got, want)
	}
	var hook []byte
	for i := 0; i < 100 && !strings.Contains(string(hook), "paused roomcast:track:a"); i++ {
		time.Sleep(50 * time.Millisecond)
		hook, _ = os.ReadFile(hookOut)
	}
	if !strings.Contains(string(hook), "playing roomcast:track:a") || !strings.Contains(string(hook), "paused roomcast:track:a") {
		t.Fatalf("hook log:\n%s", hook)
	}
}

// demoAlbum is the gapless demo album's URI (its id derives from the album
// artist and title): `make run` plays it with --play.
const demoAlbum = "roomcast:album:25fefb1fd6579e15"

// TestAutoPlayDemo is `make run`'s path: with --play the daemon starts the
// demo album by itself once the library is indexed.
func TestAutoPlayDemo(t *testing.T) {
	bin := buildAll(t)
	state := t.TempDir()
	music, _ := filepath.Abs("../../demo")
	d := startDaemon(t, bin, state, "Kitchen", "--music", music, "--play", demoAlbum, "--output", "null")
	var st struct {
		Status string `json:"status"`
		State  struct {
			Track struct{ Title string } `json:"track"`
		} `json:"state"`
	}
	deadline := time.Now().Add(15 * time.Second)
	for st.Status != "playing" {
		if time.Now().After(deadline) {
			t.Fatalf("the demo album never started: %+v\n%s", st, d.logs.String())
		}
		time.Sleep(200 * time.Millisecond)
		out, _, _ := cli(t, bin, "--broker", d.url, "--token-file", filepath.Join(state, "owner.token"), "status", "--json")
		json.Unmarshal([]byte(out), &st)
	}
	if st.State.Track.Title != "C Major" {
		t.Fatalf("autoplay started %+v", st)
	}
}
