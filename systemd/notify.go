package systemd

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"
)

// Notifier sends sd_notify(3) state messages to the service manager over the
// unix datagram socket named by $NOTIFY_SOCKET: a filesystem path ("/run/...")
// or an abstract socket ("@name").
//
// Invariants:
//   - A Notifier without a socket (NOTIFY_SOCKET unset, NewNotifier(""), the
//     zero value or a nil *Notifier) is disabled: every method returns nil
//     and sends, logs and allocates nothing.
//   - Each method sends exactly one datagram, opening a fresh connection for
//     it, so a restarted or re-executed service manager is picked up.
//   - Status never sends the same line twice in a row.
//
// A Notifier is safe for concurrent use by multiple goroutines; messages are
// sent one at a time in the order the calls acquire the Notifier's lock.
type Notifier struct {
	socket string

	mu         sync.Mutex // serialises sends and guards lastStatus/haveStatus
	lastStatus string
	haveStatus bool
}

// NotifierFromEnv returns a Notifier for $NOTIFY_SOCKET. The variable is left
// in the environment; child processes the daemon starts are not expected to
// notify (the units set NotifyAccess=main).
func NotifierFromEnv() *Notifier {
	return NewNotifier(os.Getenv("NOTIFY_SOCKET"))
}

// NewNotifier returns a Notifier that sends to socket, which uses the
// NOTIFY_SOCKET syntax: an absolute path, or "@name" for an abstract socket.
// An empty socket gives a disabled, silent Notifier.
func NewNotifier(socket string) *Notifier {
	return &Notifier{socket: socket}
}

// Enabled reports whether n has a socket to send to.
func (n *Notifier) Enabled() bool {
	return n != nil && n.socket != ""
}

// Ready sends READY=1: start-up, or a reload announced with Reloading, has
// finished.
func (n *Notifier) Ready() error {
	return n.Send(daemon.SdNotifyReady)
}

// Stopping sends STOPPING=1: the daemon has begun shutting down.
func (n *Notifier) Stopping() error {
	return n.Send(daemon.SdNotifyStopping)
}

// Reloading sends RELOADING=1 together with MONOTONIC_USEC=<CLOCK_MONOTONIC in
// µs>, which systemd requires for Type=notify-reload (v253+) and accepts for
// Type=notify. The daemon must call Ready once the reload is complete.
func (n *Notifier) Reloading() error {
	if !n.Enabled() {
		return nil
	}
	usec, err := monotonicUsec()
	if err != nil {
		return fmt.Errorf("sd_notify: read CLOCK_MONOTONIC: %w", err)
	}
	return n.Send(daemon.SdNotifyReloading, "MONOTONIC_USEC="+strconv.FormatUint(usec, 10))
}

// Watchdog sends WATCHDOG=1, resetting the service's watchdog timer. Daemons
// normally leave this to [Watchdog.Run], which pings only while healthy.
func (n *Notifier) Watchdog() error {
	return n.Send(daemon.SdNotifyWatchdog)
}

// Status sends STATUS=line, the one-line status shown by systemctl status.
// Newlines in line are replaced by spaces. If line equals the last status
// successfully sent, nothing is sent.
func (n *Notifier) Status(line string) error {
	if !n.Enabled() {
		return nil
	}
	line = strings.ReplaceAll(line, "\n", " ")
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.haveStatus && n.lastStatus == line {
		return nil
	}
	if err := n.sendLocked("STATUS=" + line); err != nil {
		return err
	}
	n.lastStatus, n.haveStatus = line, true
	return nil
}

// Send sends the given assignments ("KEY=value", one per element, no
// newlines inside an element) as a single datagram. It is the building block
// of the other methods and can send fields they do not cover, such as
// EXTEND_TIMEOUT_USEC=. It does not affect Status de-duplication.
func (n *Notifier) Send(assignments ...string) error {
	if !n.Enabled() {
		return nil
	}
	for _, a := range assignments {
		if strings.ContainsRune(a, '\n') || !strings.Contains(a, "=") {
			return fmt.Errorf("sd_notify: malformed assignment %q", a)
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.sendLocked(strings.Join(assignments, "\n"))
}

// sendLocked writes msg as one datagram. n.mu must be held.
func (n *Notifier) sendLocked(msg string) error {
	if n.socket[0] != '/' && n.socket[0] != '@' {
		return fmt.Errorf("sd_notify: unsupported NOTIFY_SOCKET %q", n.socket)
	}
	// The net package maps a leading '@' to the abstract namespace.
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: n.socket, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	defer conn.Close()
	written, err := conn.Write([]byte(msg))
	if err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	if written != len(msg) {
		return errors.New("sd_notify: short write")
	}
	return nil
}

// monotonicUsec returns CLOCK_MONOTONIC in microseconds, the clock systemd
// uses for MONOTONIC_USEC=.
func monotonicUsec() (uint64, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0, err
	}
	return uint64(ts.Sec)*1_000_000 + uint64(ts.Nsec)/1_000, nil
}
