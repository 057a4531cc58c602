package broker

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/roomcast/roomcast/protocol"
)

// metrics are the broker's Prometheus collectors. Counters per message
// type are resolved once, so the hot path does no label hashing.
type metrics struct {
	connections    prometheus.Gauge
	received       map[protocol.Type]prometheus.Counter
	sent           map[protocol.Type]prometheus.Counter
	fanout         prometheus.Histogram
	disconnects    *prometheus.CounterVec
	protocolErrors prometheus.Counter
	commands       *prometheus.CounterVec
}

var allTypes = []protocol.Type{
	protocol.TypeHello, protocol.TypeWelcome, protocol.TypePing, protocol.TypePong,
	protocol.TypePlayerStateChanged, protocol.TypeCommand, protocol.TypeDeviceStateChanged,
	protocol.TypeTransferPlayback, protocol.TypeAck, protocol.TypeError, protocol.TypeGoodbye,
}

func newMetrics(reg *prometheus.Registry) *metrics {
	recv := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "roomcast_broker_messages_received_total", Help: "Frames received from clients, by type.",
	}, []string{"type"})
	sent := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "roomcast_broker_messages_sent_total", Help: "Frames written to clients, by type.",
	}, []string{"type"})
	m := &metrics{
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "roomcast_broker_connections", Help: "Open websocket connections.",
		}),
		received: map[protocol.Type]prometheus.Counter{},
		sent:     map[protocol.Type]prometheus.Counter{},
		fanout: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "roomcast_broker_fanout_latency_seconds",
			Help:    "From reading a state update to writing it to each recipient.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}),
		disconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roomcast_broker_disconnects_total", Help: "Connections closed, by reason (slow_consumer, heartbeat_timeout, protocol_error, too_large, replaced, shutdown, closed).",
		}, []string{"reason"}),
		protocolErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "roomcast_broker_protocol_errors_total", Help: "Frames rejected by the decoder.",
		}),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roomcast_broker_commands_total", Help: "Commands and transfers by outcome (acked, error, timeout, duplicate).",
		}, []string{"outcome"}),
	}
	for _, t := range allTypes {
		m.received[t] = recv.WithLabelValues(string(t))
		m.sent[t] = sent.WithLabelValues(string(t))
	}
	reg.MustRegister(m.connections, recv, sent, m.fanout, m.disconnects, m.protocolErrors, m.commands,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) receivedByType(t protocol.Type) prometheus.Counter { return m.received[t] }
func (m *metrics) sentByType(t protocol.Type) prometheus.Counter     { return m.sent[t] }

func promhttpHandler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}
