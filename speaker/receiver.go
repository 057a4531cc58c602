package speaker

import (
	"context"
	"log/slog"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/roomcast/roomcast/client"
	"github.com/roomcast/roomcast/receiver"
	"github.com/roomcast/roomcast/systemd"
)

// receiverPart runs the device (package receiver) against the broker the
// speaker belongs to now: SetBroker stops the running receiver, waits for
// it, and starts a new one with the new credentials.
//
// Concurrency: SetBroker and Apply are called by the control goroutine
// only, which owns every field. The receiver's own goroutine (in the
// daemon's group) reports a refused token with a message, and closes done
// before it does, so SetBroker's wait never depends on the control
// goroutine.
type receiverPart struct {
	opts receiver.Options // template: Broker, Token and Name change
	wd   *systemd.Watchdog
	log  *slog.Logger
	g    *errgroup.Group
	ctx  context.Context // the group's
	post func(message)

	cur    *receiver.Receiver // nil while none runs
	cancel context.CancelFunc
	done   chan struct{} // closed when cur's Run has returned
}

// SetBroker switches the receiver to url and token; url "" stops it (the
// speaker has no broker). A receiver that cannot be created is an error.
func (p *receiverPart) SetBroker(url, token string) error {
	if p.cur != nil {
		p.cancel()
		<-p.done
		p.cur = nil
	}
	if url == "" {
		return nil
	}
	opts := p.opts
	opts.Broker, opts.Token = url, token
	// A heartbeat per run: while no receiver runs (waiting to be paired),
	// the watchdog does not wait for one.
	hb := p.wd.Register("control", 10*time.Second)
	opts.Heartbeat = hb
	r, err := receiver.New(opts)
	if err != nil {
		hb.Stop()
		return err
	}
	p.log.Info("receiver starting", "device", r.DeviceID(), "broker", url)
	ctx, cancel := context.WithCancel(p.ctx)
	done := make(chan struct{})
	p.cur, p.cancel, p.done = r, cancel, done
	p.g.Go(func() error {
		err := r.Run(ctx)
		hb.Stop()
		close(done)
		if client.TokenRefused(err) {
			p.post(tokenRefused{part: "receiver", token: token, err: err})
			return nil
		}
		return err
	})
	return nil
}

// Apply renames the device (the broker and every picker learn it at once).
func (p *receiverPart) Apply(cfg Config) {
	p.opts.Name = speakerName(cfg.Name)
	if p.cur != nil {
		p.cur.SetName(p.opts.Name)
	}
}
