package broker

import (
	"context"
	"log/slog"
	"time"

	"github.com/roomcast/roomcast/broker/store"
)

// persistJob is one database write. Jobs with the same key coalesce: only
// the newest is run, so a user's state is written at most once per
// interval however fast it changes.
type persistJob struct {
	key string
	run func(ctx context.Context, s *store.Store) error
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
	var order []string
	t := time.NewTicker(p.interval)
	defer t.Stop()
	add := func(j persistJob) {
		if _, ok := pending[j.key]; !ok {
			order = append(order, j.key)
		}
		pending[j.key] = j
	}
	flush := func() {
		for _, k := range order {
			j := pending[k]
			if err := j.run(context.Background(), p.store); err != nil {
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
