package speaker

import (
	"context"
	"log/slog"

	"golang.org/x/sync/errgroup"

	"github.com/roomcast/roomcast/client"
	"github.com/roomcast/roomcast/mpris"
)

// mprisPart publishes MPRIS (media keys, playerctl) for the user's whole
// Connect session, through the speaker's broker. The service is created
// with the first credentials; later ones are handed to it; a service that
// stopped because the broker refused its token is replaced by a new one
// with the next credentials.
//
// Concurrency: SetBroker and Apply are called by the control goroutine,
// which owns every field; the service's setters are safe from any
// goroutine.
type mprisPart struct {
	bus      mpris.Bus
	deviceID string
	identity string
	log      *slog.Logger
	g        *errgroup.Group
	ctx      context.Context // the group's
	post     func(message)

	cur *mpris.Service // nil before the first credentials and after a refusal
}

// SetBroker points the service at url and token, starting it if none runs.
// url "" leaves a running service be (it keeps retrying its broker).
func (p *mprisPart) SetBroker(url, token string) error {
	if url == "" {
		return nil
	}
	if p.cur != nil {
		p.cur.SetBroker(url, token)
		return nil
	}
	m, err := mpris.New(mpris.Options{Bus: p.bus, Broker: url, Token: token, DeviceID: p.deviceID,
		Identity: p.identity, Logger: p.log})
	if err != nil {
		return err
	}
	p.cur = m
	p.g.Go(func() error {
		err := m.Run(p.ctx)
		if client.TokenRefused(err) {
			p.post(tokenRefused{part: "mpris", token: token, err: err, mpris: m})
			return nil
		}
		return err
	})
	return nil
}

// stopped forgets m if it is the running service (it returned after a
// refusal).
func (p *mprisPart) stopped(m *mpris.Service) {
	if p.cur == m {
		p.cur = nil
	}
}

// Apply changes the Identity to the speaker's (new) name.
func (p *mprisPart) Apply(cfg Config) {
	p.identity = mprisIdentity(cfg.Name)
	if p.cur != nil {
		p.cur.SetIdentity(p.identity)
	}
}

// mprisIdentity is the MPRIS Identity of a speaker named name.
func mprisIdentity(name string) string { return "roomcast (" + speakerName(name) + ")" }
