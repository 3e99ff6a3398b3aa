package console

import "github.com/prometheus/client_golang/prometheus"

// Metrics count the gateway's sessions and refusals. A nil *Metrics counts nothing.
type Metrics struct {
	sessions *prometheus.CounterVec
	active   *prometheus.GaugeVec
	refusals *prometheus.CounterVec
	bytes    *prometheus.CounterVec
}

// NewMetrics registers the gateway's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		sessions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cloudstack_kubevirt_console_sessions_total", Help: "Console sessions relayed, by mode (vnc, direct)."}, []string{"mode"}),
		active:   prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cloudstack_kubevirt_console_sessions_active", Help: "Console sessions being relayed, by mode."}, []string{"mode"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cloudstack_kubevirt_console_refusals_total", Help: "Console connections refused, by mode and stage (handshake, authentication, upstream, too many ...)."}, []string{"mode", "stage"}),
		bytes:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cloudstack_kubevirt_console_bytes_total", Help: "Bytes relayed, by mode and direction (to_vm, to_client)."}, []string{"mode", "direction"}),
	}
	reg.MustRegister(m.sessions, m.active, m.refusals, m.bytes)
	return m
}

func (m *Metrics) started(mode string) {
	if m != nil {
		m.sessions.WithLabelValues(mode).Inc()
		m.active.WithLabelValues(mode).Inc()
	}
}

func (m *Metrics) ended(mode string, toVM, toClient int64) {
	if m != nil {
		m.active.WithLabelValues(mode).Dec()
		m.bytes.WithLabelValues(mode, "to_vm").Add(float64(toVM))
		m.bytes.WithLabelValues(mode, "to_client").Add(float64(toClient))
	}
}

func (m *Metrics) refused(mode, stage string) {
	if m != nil {
		m.refusals.WithLabelValues(mode, stage).Inc()
	}
}
