package systemd

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// Watchdog feeds the systemd watchdog (WatchdogSec=) on behalf of the whole
// daemon, but only while every registered loop proves it is alive.
//
// Each long-running loop registers a [Heartbeat] with the longest silence it
// can legitimately have and calls [Heartbeat.Beat] from inside the loop. Run
// sends WATCHDOG=1 every WATCHDOG_USEC/2 while all heartbeats are fresh and
// withholds it while any heartbeat is older than its maximum, so a stuck loop
// makes systemd kill and restart the service (Restart=on-failure). Pinging
// resumes as soon as the loop beats again.
//
// Heartbeats are tracked even when systemd has no watchdog configured, so
// [Watchdog.Healthy] can back a /healthz endpoint in any environment.
//
// All methods, and all Heartbeat methods, are safe for concurrent use.
type Watchdog struct {
	notify *Notifier
	log    *slog.Logger
	epoch  time.Time // monotonic reference for heartbeat timestamps

	mu    sync.Mutex
	beats []*Heartbeat // registration order
}

// NewWatchdog returns a Watchdog that pings through notify and reports stuck
// loops to log. A nil log discards messages.
func NewWatchdog(notify *Notifier, log *slog.Logger) *Watchdog {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Watchdog{notify: notify, log: log, epoch: time.Now()}
}

// Heartbeat is one loop's proof of life. It counts as stuck when more than
// its maximum silence has passed since the last Beat (or since Register).
// A nil *Heartbeat is valid and ignores all calls.
type Heartbeat struct {
	w    *Watchdog
	name string
	max  time.Duration
	last atomic.Int64 // nanoseconds since w.epoch
}

// Register adds a heartbeat named name (used in logs and Healthy) that must
// beat at least every maxSilence. The registration itself counts as a beat.
// Register panics if maxSilence is not positive.
func (w *Watchdog) Register(name string, maxSilence time.Duration) *Heartbeat {
	if maxSilence <= 0 {
		panic(fmt.Sprintf("systemd: heartbeat %q: maxSilence must be positive, got %v", name, maxSilence))
	}
	hb := &Heartbeat{w: w, name: name, max: maxSilence}
	hb.Beat()
	w.mu.Lock()
	w.beats = append(w.beats, hb)
	w.mu.Unlock()
	return hb
}

// Beat records that the loop is alive. It is a single atomic store and cheap
// enough to call on every iteration.
func (h *Heartbeat) Beat() {
	if h == nil {
		return
	}
	h.last.Store(int64(time.Since(h.w.epoch)))
}

// Stop unregisters the heartbeat; call it when its loop exits normally so the
// watchdog stops expecting beats. Stop is idempotent.
func (h *Heartbeat) Stop() {
	if h == nil {
		return
	}
	h.w.mu.Lock()
	defer h.w.mu.Unlock()
	h.w.beats = slices.DeleteFunc(h.w.beats, func(x *Heartbeat) bool { return x == h })
}

// Healthy reports whether every registered heartbeat is within its maximum
// silence, and lists the names of those that are not, in registration order.
func (w *Watchdog) Healthy() (bool, []string) {
	now := int64(time.Since(w.epoch))
	w.mu.Lock()
	defer w.mu.Unlock()
	var stuck []string
	for _, hb := range w.beats {
		if time.Duration(now-hb.last.Load()) > hb.max {
			stuck = append(stuck, hb.name)
		}
	}
	return len(stuck) == 0, stuck
}

// Run drives the watchdog until ctx is done, then returns nil.
//
// It reads WATCHDOG_USEC and WATCHDOG_PID (see sd_watchdog_enabled(3)). If the
// watchdog is not enabled for this process, or the Notifier is disabled, Run
// only waits for ctx. Otherwise it checks the heartbeats immediately and then
// every WATCHDOG_USEC/2, sending WATCHDOG=1 when all are healthy. A malformed
// WATCHDOG_USEC/WATCHDOG_PID is returned as an error at once.
//
// Run logs once (at Error) when loops become stuck, naming them, again if the
// set of stuck loops changes, and once (at Info) when pinging resumes. A
// failed send is logged once until a send succeeds again.
//
// Run is meant to be started once per Watchdog, early in main (systemd
// enforces WatchdogSec= from start-up, before READY=1); concurrent Runs would
// each ping and log.
func (w *Watchdog) Run(ctx context.Context) error {
	timeout, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		return fmt.Errorf("systemd watchdog: %w", err)
	}
	if timeout == 0 || !w.notify.Enabled() {
		<-ctx.Done()
		return nil
	}
	period := timeout / 2
	ticker := time.NewTicker(period)
	defer ticker.Stop()

	var st runState
	w.check(&st, timeout)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
			w.check(&st, timeout)
		}
	}
}

// runState is what Run remembers between checks to log transitions once.
type runState struct {
	stuck      []string // stuck loops at the last check; nil when healthy
	sendFailed bool
}

func (w *Watchdog) check(st *runState, timeout time.Duration) {
	ok, stuck := w.Healthy()
	if !ok {
		if !slices.Equal(st.stuck, stuck) {
			w.log.Error("watchdog: loop stuck, withholding WATCHDOG=1 so systemd restarts the service",
				"loops", stuck, "watchdog_timeout", timeout)
		}
		st.stuck = stuck
		return
	}
	if st.stuck != nil {
		w.log.Info("watchdog: all loops beating again, resuming WATCHDOG=1")
		st.stuck = nil
	}
	if err := w.notify.Watchdog(); err != nil {
		if !st.sendFailed {
			w.log.Warn("watchdog: sending WATCHDOG=1 failed", "err", err)
		}
		st.sendFailed = true
		return
	}
	st.sendFailed = false
}
