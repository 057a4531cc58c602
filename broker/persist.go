package broker

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/roomcast/roomcast/broker/store"
	"github.com/roomcast/roomcast/protocol"
)

// persistJob is one database write, handed by a hub to the persister.
// The set is sealed (deviceWrite, stateWrite). Jobs with the same key
// coalesce: only the newest is written, so a user's state is written at
// most once per interval however fast it changes.
type persistJob interface{ key() string }

// deviceWrite records a device's info and when it was last seen.
type deviceWrite struct {
	user string
	dev  protocol.DeviceInfo
	seen time.Time
}

// stateWrite records a user's active device and last state (nil: none).
type stateWrite struct {
	user, active string
	state        *protocol.PlayerState
}

func (j deviceWrite) key() string { return "dev/" + j.user + "/" + j.dev.ID }
func (j stateWrite) key() string  { return "state/" + j.user }

// write runs one job against the store.
func (p *persister) write(ctx context.Context, j persistJob) error {
	switch j := j.(type) {
	case deviceWrite:
		return p.store.UpsertDevice(ctx, j.user, j.dev, j.seen)
	case stateWrite:
		return p.store.SaveState(ctx, j.user, j.active, j.state)
	default:
		// Unreachable while the set is sealed; never worth a panic.
		return fmt.Errorf("unknown job %T", j)
	}
}

// persister owns the write-behind buffer. Hubs submit jobs and never wait
// for the disk.
type persister struct {
	store    *store.Store
	interval time.Duration
	log      *slog.Logger
	in       chan persistJob
}

func newPersister(s *store.Store, interval time.Duration, log *slog.Logger) *persister {
	return &persister{store: s, interval: interval, log: log, in: make(chan persistJob, 4096)}
}

// submit queues a job; it blocks only if 4096 jobs are waiting.
func (p *persister) submit(j persistJob) { p.in <- j }

// run writes pending jobs every interval and, when ctx ends, drains and
// writes everything still queued.
func (p *persister) run(ctx context.Context) {
	pending := map[string]persistJob{}
	var order []string // keys in the order they first became pending
	t := time.NewTicker(p.interval)
	defer t.Stop()
	add := func(j persistJob) {
		k := j.key()
		if _, ok := pending[k]; !ok {
			order = append(order, k)
		}
		pending[k] = j
	}
	flush := func() {
		for _, k := range order {
			if err := p.write(context.Background(), pending[k]); err != nil {
				p.log.Error("persist", "key", k, "err", err)
			}
		}
		clear(pending)
		order = order[:0]
	}
	for {
		select {
		case j := <-p.in:
			add(j)
		case <-t.C:
			flush()
		case <-ctx.Done():
			for {
				select {
				case j := <-p.in:
					add(j)
				default:
					flush()
					return
				}
			}
		}
	}
}
