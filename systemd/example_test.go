package systemd_test

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/roomcast/roomcast/systemd"
)

// Example shows how roomcastd's main wires the package. It is compiled but
// not run (no Output comment).
func Example() {
	var level slog.LevelVar // adjustable on reload
	log := slog.New(systemd.NewHandler(os.Stderr, &systemd.HandlerOptions{Level: &level}))
	notify := systemd.NotifierFromEnv()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	wd := systemd.NewWatchdog(notify, log)
	go func() { // start first: WatchdogSec= is enforced from start-up
		if err := wd.Run(ctx); err != nil {
			log.Error("systemd watchdog disabled", "err", err)
		}
	}()

	// Each long-running loop proves liveness from inside its own loop.
	audio := wd.Register("audio", 5*time.Second)
	go func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		defer audio.Stop() // a loop that ends on purpose stops being watched
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C: // or: a period written to ALSA
				audio.Beat()
			}
		}
	}()

	http.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if ok, stuck := wd.Healthy(); !ok {
			http.Error(w, "stuck: "+strings.Join(stuck, ","), http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	})

	notify.Ready()
	notify.Status("idle, waiting for broker")

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	for {
		select {
		case <-hup:
			notify.Reloading()
			// reload /etc/roomcast/roomcastd.toml, e.g. level.Set(newLevel)
			notify.Ready()
		case <-ctx.Done():
			notify.Stopping()
			// drain audio, close connections ...
			return
		}
	}
}
