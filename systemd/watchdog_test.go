package systemd

import (
	"context"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Timing tolerance for scheduling noise (-race on a loaded 2-core machine).
const slack = 80 * time.Millisecond

// startWatchdog runs wd.Run until the test ends and returns its result channel.
func startWatchdog(t *testing.T, wd *Watchdog) <-chan error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- wd.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return done
}

func setWatchdogEnv(t *testing.T, usec, pid string) {
	t.Helper()
	for k, v := range map[string]string{"WATCHDOG_USEC": usec, "WATCHDOG_PID": pid} {
		t.Setenv(k, v)
		if v == "" {
			os.Unsetenv(k)
		}
	}
}

// TestWatchdogCadence: WATCHDOG_USEC=200ms gives a WATCHDOG=1 right away and
// then one every 100ms.
func TestWatchdogCadence(t *testing.T) {
	setWatchdogEnv(t, "200000", strconv.Itoa(os.Getpid()))
	l := listenDgram(t, false)
	wd := NewWatchdog(NewNotifier(l.addr), nil)
	hb := wd.Register("audio", time.Hour)
	hb.Beat()
	start := time.Now()
	startWatchdog(t, wd)

	const period = 100 * time.Millisecond
	var times []time.Time
	for range 8 {
		d := l.recv(t, period+slack)
		if string(d.data) != "WATCHDOG=1" {
			t.Fatalf("datagram = %q, want WATCHDOG=1", d.data)
		}
		times = append(times, d.at)
	}
	if first := times[0].Sub(start); first > slack {
		t.Errorf("first ping after %v, want immediately", first)
	}
	// Ticks follow a fixed schedule; judge each ping against it rather than
	// against its (equally jittery) predecessor.
	for i := 1; i < len(times); i++ {
		off := times[i].Sub(times[0]) - time.Duration(i)*period
		if off < -slack/2 || off > 2*slack {
			t.Errorf("ping %d is %v off the %v schedule", i, off, period)
		}
	}
	// Over the whole run the average must be the period, tightly.
	avg := times[len(times)-1].Sub(times[1]) / time.Duration(len(times)-2)
	if avg < period*9/10 || avg > period*12/10 {
		t.Errorf("average gap %v, want ≈%v", avg, period)
	}
}

// TestWatchdogEnv covers when Run pings, waits silently, or fails.
func TestWatchdogEnv(t *testing.T) {
	cases := []struct {
		name      string
		usec, pid string
		wantPing  bool
		wantErr   bool
	}{
		{"usec only", "200000", "", true, false},
		{"usec and our pid", "200000", strconv.Itoa(os.Getpid()), true, false},
		{"other pid", "200000", "1", false, false},
		{"no watchdog", "", "", false, false},
		{"malformed usec", "soon", "", false, true},
		{"zero usec", "0", "", false, true},
		{"malformed pid", "200000", "me", false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			setWatchdogEnv(t, tc.usec, tc.pid)
			l := listenDgram(t, true)
			wd := NewWatchdog(NewNotifier(l.addr), nil)
			ctx, cancel := context.WithTimeout(context.Background(), 250*time.Millisecond)
			defer cancel()
			err := wd.Run(ctx)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Run = %v, wantErr %v", err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			if tc.wantPing {
				l.recv(t, time.Second)
			} else {
				l.expectNone(t, 50*time.Millisecond)
			}
		})
	}
}

// TestWatchdogFrozenLoop: when a loop stops beating, WATCHDOG=1 stops within
// maxSilence + period, stays off, and resumes right after the next Beat.
func TestWatchdogFrozenLoop(t *testing.T) {
	setWatchdogEnv(t, "200000", "")
	const (
		period     = 100 * time.Millisecond
		maxSilence = 150 * time.Millisecond
	)
	l := listenDgram(t, false)
	var logBuf syncBuffer
	log := slog.New(slog.NewTextHandler(&logBuf, nil))
	wd := NewWatchdog(NewNotifier(l.addr), log)
	audio := wd.Register("audio", maxSilence)
	_ = wd.Register("network", time.Hour) // stays healthy throughout

	freeze := make(chan struct{})
	beating := make(chan struct{})
	go func() {
		defer close(beating)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-freeze:
				return
			case <-tick.C:
				audio.Beat()
			}
		}
	}()
	startWatchdog(t, wd)

	// Healthy: pings flow.
	for range 3 {
		l.recv(t, period+slack)
	}

	close(freeze)
	<-beating
	frozenAt := time.Now()
	deadline := frozenAt.Add(maxSilence + period + slack)
	// Drain pings that were legitimately sent before detection.
	for {
		select {
		case d := <-l.ch:
			if d.at.After(deadline) {
				t.Fatalf("ping %v after freezing, want none after %v", d.at.Sub(frozenAt), maxSilence+period)
			}
			continue
		case <-time.After(time.Until(deadline)):
		}
		break
	}
	l.expectNone(t, 3*period)
	if ok, stuck := wd.Healthy(); ok || !slices.Equal(stuck, []string{"audio"}) {
		t.Fatalf("Healthy() = %v, %v; want false, [audio]", ok, stuck)
	}
	if n := strings.Count(logBuf.String(), "loop stuck"); n != 1 {
		t.Fatalf("logged %d stuck messages, want 1:\n%s", n, logBuf.String())
	}
	if !strings.Contains(logBuf.String(), "loops=[audio]") {
		t.Fatalf("stuck log does not name the loop:\n%s", logBuf.String())
	}

	// Recovery: one beat and the next tick pings again.
	audio.Beat()
	resumedAt := time.Now()
	d := l.recv(t, period+slack)
	if string(d.data) != "WATCHDOG=1" {
		t.Fatalf("datagram = %q", d.data)
	}
	if lag := d.at.Sub(resumedAt); lag > period+slack {
		t.Fatalf("resumed after %v, want within %v", lag, period)
	}
	if !strings.Contains(logBuf.String(), "resuming WATCHDOG=1") {
		t.Fatalf("no resume log:\n%s", logBuf.String())
	}
}

func TestWatchdogHealthy(t *testing.T) {
	type step struct {
		sleep time.Duration
		beat  []string // heartbeats to Beat after sleeping
		stop  []string // heartbeats to Stop after sleeping
		want  []string // stuck loops expected afterwards
	}
	cases := []struct {
		name  string
		loops map[string]time.Duration
		steps []step
	}{
		{"no loops", nil, []step{{want: nil}}},
		{"fresh registration counts as beat",
			map[string]time.Duration{"audio": time.Hour}, []step{{want: nil}}},
		{"silent loop goes stuck",
			map[string]time.Duration{"audio": 30 * time.Millisecond, "mdns": time.Hour},
			[]step{{sleep: 60 * time.Millisecond, want: []string{"audio"}}}},
		{"beat clears stuck",
			map[string]time.Duration{"audio": 30 * time.Millisecond},
			[]step{
				{sleep: 60 * time.Millisecond, want: []string{"audio"}},
				{beat: []string{"audio"}, want: nil},
			}},
		{"stop unregisters",
			map[string]time.Duration{"audio": 30 * time.Millisecond, "mdns": 30 * time.Millisecond},
			[]step{
				{sleep: 60 * time.Millisecond, want: []string{"audio", "mdns"}},
				{stop: []string{"mdns", "mdns"}, want: []string{"audio"}},
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wd := NewWatchdog(nil, nil)
			hbs := map[string]*Heartbeat{}
			for _, name := range []string{"audio", "mdns"} { // fixed order
				if d, ok := tc.loops[name]; ok {
					hbs[name] = wd.Register(name, d)
				}
			}
			for i, s := range tc.steps {
				time.Sleep(s.sleep)
				for _, n := range s.beat {
					hbs[n].Beat()
				}
				for _, n := range s.stop {
					hbs[n].Stop()
				}
				ok, stuck := wd.Healthy()
				if ok != (len(s.want) == 0) || !slices.Equal(stuck, s.want) {
					t.Fatalf("step %d: Healthy() = %v, %v; want %v", i, ok, stuck, s.want)
				}
			}
		})
	}
}

func TestHeartbeatNilAndInvalid(t *testing.T) {
	var hb *Heartbeat
	hb.Beat() // must not panic
	hb.Stop()

	defer func() {
		if recover() == nil {
			t.Fatal("Register with maxSilence 0 did not panic")
		}
	}()
	NewWatchdog(nil, nil).Register("audio", 0)
}
