package discovery

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The netns tests run our advertiser and browser as child processes inside
// a network namespace: the test binary re-executes itself through
// "ip netns exec NS" with ROOMCAST_DISCOVERY_HELPER naming the mode. The
// whole child process then lives in the namespace, so every socket,
// netlink query (net.Interfaces) and goroutine sees the namespace's
// interfaces. (Switching one locked OS thread with setns would not do:
// grandcat/zeroconf and net.Interfaces run on goroutines of their own,
// which may be scheduled on threads still in the host namespace.)
const helperEnv = "ROOMCAST_DISCOVERY_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		if err := runHelper(mode); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runHelper runs one mode until its stdin closes (or SIGTERM), writing
// JSON lines to stdout.
func runHelper(mode string) error {
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer cancel()
	// The parent writes commands on our stdin ("paired", "name NEW") and closes it to
	// stop us gracefully.
	cmds := make(chan string, 8)
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			cmds <- sc.Text()
		}
		cancel()
	}()
	spec, err := ParseInterfaces(os.Getenv("H_IFACES"))
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	out := json.NewEncoder(os.Stdout)
	switch mode {
	case "advertise":
		port, _ := strconv.Atoi(os.Getenv("H_PORT"))
		probe, _ := time.ParseDuration(os.Getenv("H_PROBE")) // "" -> 0 -> default
		a, err := NewAdvertiser(AdvertiserOptions{Name: os.Getenv("H_NAME"), DeviceID: os.Getenv("H_ID"), Port: port,
			Interfaces: spec, Paired: os.Getenv("H_PAIRED") == "yes", Logger: log, Poll: 300 * time.Millisecond, Probe: probe})
		if err != nil {
			return err
		}
		_ = out.Encode(helperLine{Event: "start", AtNS: time.Now().UnixNano()})
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()
		last := ""
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case err := <-done:
				_ = out.Encode(helperLine{Event: "stopped", AtNS: time.Now().UnixNano()})
				return err
			case c := <-cmds:
				switch {
				case c == "paired":
					a.SetPaired(true)
				case strings.HasPrefix(c, "name "):
					if err := a.SetName(strings.TrimPrefix(c, "name ")); err != nil {
						return err
					}
				}
			case <-t.C:
				if n := a.Instance(); n != last {
					last = n
					_ = out.Encode(helperLine{Event: "instance", Name: n, AtNS: time.Now().UnixNano()})
				}
			}
		}
	case "browse":
		b, err := NewBrowser(BrowserOptions{Interfaces: spec, Logger: log, Poll: 300 * time.Millisecond})
		if err != nil {
			return err
		}
		done := make(chan error, 1)
		go func() { done <- b.Run(ctx) }()
		for {
			select {
			case err := <-done:
				return err
			case <-b.Changes():
				_ = out.Encode(helperLine{Event: "speakers", Speakers: b.Speakers(), AtNS: time.Now().UnixNano()})
			}
		}
	}
	return fmt.Errorf("unknown helper mode %q", mode)
}

type helperLine struct {
	Event    string    `json:"event"`
	Name     string    `json:"name,omitempty"`
	AtNS     int64     `json:"at_ns"`
	Speakers []Speaker `json:"speakers,omitempty"`
}

// lines reads r line by line into a channel, closed at EOF.
func lines(r io.Reader) <-chan string {
	ch := make(chan string, 256)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			ch <- sc.Text()
		}
	}()
	return ch
}
