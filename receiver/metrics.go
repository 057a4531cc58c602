package receiver

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/roomcast/roomcast/protocol"
)

// Metrics are the receiver's Prometheus collectors. Safe for concurrent
// use (the collectors are).
type Metrics struct {
	status      *prometheus.GaugeVec
	connected   prometheus.Gauge
	reconnects  prometheus.Counter
	clockOffset prometheus.Gauge
	commands    *prometheus.CounterVec
}

// NewMetrics registers the receiver's metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		status: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "roomcast_receiver_status", Help: "1 for the player's current state (idle, loading, playing, paused, ended, error).",
		}, []string{"status"}),
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "roomcast_receiver_connected", Help: "1 while joined to the broker.",
		}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "roomcast_receiver_reconnects_total", Help: "Sessions with the broker after the first.",
		}),
		clockOffset: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "roomcast_receiver_clock_offset_seconds", Help: "Estimated broker clock minus ours.",
		}),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roomcast_receiver_commands_total", Help: "Commands by outcome (done, refused, duplicate).",
		}, []string{"outcome"}),
	}
	reg.MustRegister(m.status, m.connected, m.reconnects, m.clockOffset, m.commands)
	return m
}

func (m *Metrics) setStatus(s protocol.Status) {
	if m == nil {
		return
	}
	for _, st := range allStatuses {
		v := 0.0
		if st == s {
			v = 1
		}
		m.status.WithLabelValues(string(st)).Set(v)
	}
}

func (m *Metrics) setConnected(on bool) {
	if m == nil {
		return
	}
	if on {
		m.connected.Set(1)
	} else {
		m.connected.Set(0)
	}
}

func (m *Metrics) reconnected() {
	if m != nil {
		m.reconnects.Inc()
	}
}

func (m *Metrics) offset(seconds float64) {
	if m != nil {
		m.clockOffset.Set(seconds)
	}
}

func (m *Metrics) command(outcome string) {
	if m != nil {
		m.commands.WithLabelValues(outcome).Inc()
	}
}
