package speaker

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/roomcast/roomcast/broker"
	"github.com/roomcast/roomcast/receiver"
	"github.com/roomcast/roomcast/systemd"
)

// metricsPart is the speaker's health and metrics. With the embedded
// broker its collectors join the broker's registry (and /metrics there);
// a speaker of a remote broker has its own registry, served on the
// pairing port's mux (token: its broker credential) and, with
// --metrics-listen, without a token on that address.
//
// SetBroker is called by the control goroutine; HTTP handlers read the
// token it stored from any goroutine.
type metricsPart struct {
	reg      *prometheus.Registry
	receiver *receiver.Metrics
	token    atomic.Pointer[string] // the broker credential guarding /metrics; "" refuses all
	ln       net.Listener           // --metrics-listen; nil without
	srv      *http.Server
}

// newMetrics registers /healthz (the watchdog's view) and /metrics on mux.
// reg is the embedded broker's registry, or nil for one of its own.
func newMetrics(reg *prometheus.Registry, metricsListen string, wd *systemd.Watchdog, mux *http.ServeMux) (*metricsPart, error) {
	m := &metricsPart{reg: reg}
	if reg == nil {
		m.reg = prometheus.NewRegistry()
		m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	m.receiver = receiver.NewMetrics(m.reg)
	none := ""
	m.token.Store(&none)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if ok, stuck := wd.Healthy(); !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(map[string]any{"status": "stuck", "loops": stuck})
			return
		}
		_, _ = io.WriteString(w, `{"status":"ok"}`+"\n")
	})
	promh := promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
	mux.Handle("GET /metrics", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		want := *m.token.Load()
		if want == "" || subtle.ConstantTimeCompare([]byte(broker.TokenFromRequest(r)), []byte(want)) != 1 {
			http.Error(w, "unauthorized: the speaker's broker token is required", http.StatusUnauthorized)
			return
		}
		promh.ServeHTTP(w, r)
	}))
	if reg == nil && metricsListen != "" {
		ln, err := net.Listen("tcp", metricsListen)
		if err != nil {
			return nil, fmt.Errorf("--metrics-listen: %w", err)
		}
		mm := http.NewServeMux()
		mm.Handle("GET /metrics", promh)
		m.ln, m.srv = ln, &http.Server{Handler: mm, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	}
	return m, nil
}

// SetBroker makes token the credential /metrics on the pairing port asks for.
func (m *metricsPart) SetBroker(_, token string) { m.token.Store(&token) }

// Run serves --metrics-listen until ctx ends (at once without one).
func (m *metricsPart) Run(ctx context.Context) error {
	if m.srv == nil {
		return nil
	}
	go func() { <-ctx.Done(); m.srv.Close() }()
	if err := m.srv.Serve(m.ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("--metrics-listen: %w", err)
	}
	return nil
}
