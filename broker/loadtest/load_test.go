// Package loadtest measures the broker as a separate process under many
// real websocket connections on loopback: memory per idle connection and
// fan-out latency of state updates. Run it with `make bench` or
//
//	go test -run '^$' -bench Load -benchtime 1x -timeout 30m ./broker/loadtest/
//
// Each benchmark starts a real roomcast-broker binary, so its memory is
// measured apart from the load generator's.
package loadtest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/roomcast/roomcast/broker/store"
	"github.com/roomcast/roomcast/client"
	"github.com/roomcast/roomcast/protocol"
)

const devicesPerUser = 5

func BenchmarkLoad1k(b *testing.B)  { benchLoad(b, 1000) }
func BenchmarkLoad10k(b *testing.B) { benchLoad(b, 10000) }

// benchLoad connects n devices (n/5 users of 5 devices), measures the
// broker's memory, then sends 1000 state updates per second for 10 s,
// each from a user's active device, and times their arrival at the other
// four devices.
func benchLoad(b *testing.B, n int) {
	for b.Loop() {
		r := runLoad(b, n, 1000, 10*time.Second)
		b.ReportMetric(r.rssPerConn/1024, "KB-RSS/conn")
		b.ReportMetric(r.goPerConn/1024, "KB-go/conn")
		b.ReportMetric(float64(r.p50.Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(r.p99.Microseconds())/1000, "p99-ms")
		b.ReportMetric(float64(r.max.Microseconds())/1000, "max-ms")
		b.ReportMetric(r.rate, "updates/s")
		b.Logf("n=%d connect=%s rss_before=%.1fMB rss_after=%.1fMB rss/conn=%.1fKB go/conn=%.1fKB updates=%d deliveries=%d/%d p50=%s p99=%s max=%s",
			n, r.connect, r.rssBefore/1e6, r.rssAfter/1e6, r.rssPerConn/1024, r.goPerConn/1024, r.updates, r.got, r.want, r.p50, r.p99, r.max)
		if r.got != r.want {
			b.Errorf("%d of %d deliveries arrived", r.got, r.want)
		}
	}
}

type result struct {
	connect                                    time.Duration
	rssBefore, rssAfter, rssPerConn, goPerConn float64
	updates, got, want                         int
	rate                                       float64
	p50, p99, max                              time.Duration
}

func runLoad(b *testing.B, n, perSecond int, dur time.Duration) result {
	dir := b.TempDir()
	bin := filepath.Join(dir, "roomcast-broker")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/roomcast-broker").CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	users := n / devicesPerUser
	st, err := store.OpenDir(filepath.Join(dir, "state"))
	if err != nil {
		b.Fatal(err)
	}
	tokens := make([]string, users)
	for i := range tokens {
		if tokens[i], err = st.CreateToken(context.Background(), fmt.Sprintf("user%05d", i), "load"); err != nil {
			b.Fatal(err)
		}
	}
	st.Close()

	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "--listen", addr, "--state-dir", filepath.Join(dir, "state"), "--log-level", "error", "--mdns", "off")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }()
	url := "http://" + addr
	for i := 0; ; i++ {
		if resp, err := http.Get(url + "/healthz"); err == nil {
			resp.Body.Close()
			break
		}
		if i > 200 {
			b.Fatal("broker did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second)
	var r result
	r.rssBefore = rss(b, cmd.Process.Pid)
	goBefore := goMem(b, url, tokens[0])

	// Connect every device.
	clients := make([]*client.Client, n)
	start := time.Now()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	var dialErr atomic.Value
	for i := range clients {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			u, d := i/devicesPerUser, i%devicesPerUser
			hello := protocol.Hello{ProtocolVersion: protocol.Version, Device: protocol.DeviceInfo{
				ID: fmt.Sprintf("u%d-d%d", u, d), Name: fmt.Sprintf("Speaker %d", d), Type: protocol.DeviceSpeaker,
				Volume: 50, Capabilities: []string{protocol.CapPlay}}}
			c, err := client.Dial(context.Background(), url, tokens[u], hello, client.Options{FrameBuffer: 64})
			if err != nil {
				dialErr.Store(err)
				return
			}
			clients[i] = c
		}()
	}
	wg.Wait()
	if err, _ := dialErr.Load().(error); err != nil {
		b.Fatalf("dial: %v", err)
	}
	r.connect = time.Since(start)
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()

	// Receivers: every device measures arrival of PLAYER_STATE_CHANGED.
	// PositionMS carries the send time in µs since t0 (same process clock).
	t0 := time.Now()
	var mu sync.Mutex
	lat := make([]time.Duration, 0, perSecond*int(dur.Seconds())*(devicesPerUser-1)+users*devicesPerUser)
	var measuring atomic.Bool
	for _, c := range clients {
		go func() {
			for f := range c.Frames() {
				m, ok := f.Msg.(*protocol.PlayerStateChanged)
				if !ok || !measuring.Load() {
					continue
				}
				d := time.Since(t0) - time.Duration(m.State.PositionMS)*time.Microsecond
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			}
		}()
	}
	// Let the join broadcasts settle, then measure idle memory.
	time.Sleep(3 * time.Second)
	r.rssAfter = rss(b, cmd.Process.Pid)
	r.rssPerConn = (r.rssAfter - r.rssBefore) / float64(n)
	r.goPerConn = (goMem(b, url, tokens[0]) - goBefore) / float64(n)

	// Make device 0 of every user active.
	for u := 0; u < users; u++ {
		c := clients[u*devicesPerUser]
		if _, err := c.Request(context.Background(), state(c, u, 0)); err != nil {
			b.Fatalf("claim active: %v", err)
		}
	}
	time.Sleep(time.Second)
	measuring.Store(true)

	// Paced updates: every 10 ms, perSecond/100 updates round-robin.
	batch := perSecond / 100
	tick := time.NewTicker(10 * time.Millisecond)
	end := time.Now().Add(dur)
	next := 0
	sendStart := time.Now()
	for time.Now().Before(end) {
		<-tick.C
		for k := 0; k < batch; k++ {
			u := next % users
			next++
			c := clients[u*devicesPerUser]
			if err := c.Send("", state(c, u, time.Since(t0).Microseconds())); err != nil {
				b.Fatalf("send: %v", err)
			}
			r.updates++
		}
	}
	tick.Stop()
	r.rate = float64(r.updates) / time.Since(sendStart).Seconds()
	r.want = r.updates * (devicesPerUser - 1)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		got := len(lat)
		mu.Unlock()
		if got >= r.want {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	measuring.Store(false)
	mu.Lock()
	r.got = len(lat)
	slices.Sort(lat)
	if len(lat) > 0 {
		r.p50, r.p99, r.max = lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1]
	}
	mu.Unlock()
	return r
}

func state(c *client.Client, u int, posUS int64) *protocol.PlayerStateChanged {
	return &protocol.PlayerStateChanged{State: protocol.PlayerState{
		DeviceID: fmt.Sprintf("u%d-d0", u), Status: protocol.StatusPlaying, ContextURI: "roomcast:album:bench",
		Track:      &protocol.Track{URI: "roomcast:track:bench", Title: "Bench", Artist: "Load", DurationMS: 300_000},
		PositionMS: posUS, Volume: 50, Repeat: protocol.RepeatOff}}
}

// rss is the process's resident set in bytes.
func rss(b *testing.B, pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb * 1024
		}
	}
	b.Fatal("no VmRSS")
	return 0
}

// goMem is the broker's Go heap in use plus goroutine stacks, from /metrics.
func goMem(b *testing.B, url, tok string) float64 {
	req, _ := http.NewRequest("GET", url+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var total float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		for _, name := range []string{"go_memstats_heap_inuse_bytes ", "go_memstats_stack_inuse_bytes "} {
			if v, ok := strings.CutPrefix(sc.Text(), name); ok {
				f, _ := strconv.ParseFloat(v, 64)
				total += f
			}
		}
	}
	return total
}
