// Package systemd integrates roomcast daemons with the systemd service
// manager and journal.
//
// It provides three independent pieces:
//
//   - [Notifier] speaks the sd_notify(3) datagram protocol (READY=1,
//     STATUS=, RELOADING=1, STOPPING=1, WATCHDOG=1) to $NOTIFY_SOCKET.
//     Without NOTIFY_SOCKET every method is a silent no-op, so daemons can
//     call it unconditionally.
//   - [Watchdog] pings the systemd watchdog (WatchdogSec=) only while every
//     registered [Heartbeat] is fresh, so a wedged loop gets the service
//     killed and restarted instead of being hidden by a healthy ping goroutine.
//     [Watchdog.Healthy] serves the same data to /healthz.
//   - [NewLogger] / [NewHandler] return a log/slog handler that writes
//     structured entries to journald over its native protocol when stderr is
//     connected to the journal (JOURNAL_STREAM), and plain text otherwise.
//
// The unit files roomcastd.service, roomcastd.user.service and
// roomcast-broker.service live next to this package; units_test.go checks
// them with systemd-analyze.
//
// A typical main (errors elided):
//
//	log := systemd.NewLogger(os.Stderr, slog.LevelInfo)
//	notify := systemd.NotifierFromEnv()
//	wd := systemd.NewWatchdog(notify, log)
//	go func() { _ = wd.Run(ctx) }() // before READY=1: WatchdogSec= counts from start-up
//	audioHB := wd.Register("audio", 5*time.Second)
//	// inside the audio loop, at least every 5s: audioHB.Beat()
//	notify.Ready()
//	notify.Status("playing: kitchen")
//	// on SIGHUP:  notify.Reloading(); reload(); notify.Ready()
//	// on SIGTERM: notify.Stopping(); shut down; a loop that ends calls hb.Stop()
package systemd
