package router

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the router's Prometheus metrics: per-stage outcome counts and
// latency histograms, the outbox depth and the quarantine size. A nil
// *Metrics records nothing.
type Metrics struct {
	stageTotal    *prometheus.CounterVec
	stageDuration *prometheus.HistogramVec
	forwarded     *prometheus.CounterVec
	outboxDepth   prometheus.Gauge
	quarantine    prometheus.Gauge
	operatorAlert *prometheus.CounterVec
	alerts        *prometheus.CounterVec
}

// NewMetrics creates the router's metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		stageTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "metertrust", Subsystem: "router", Name: "stage_total",
			Help: "Commands leaving each pipeline stage, by stage and outcome (ok or the refusal code).",
		}, []string{"stage", "outcome"}),
		stageDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "metertrust", Subsystem: "router", Name: "stage_duration_seconds",
			Help:    "Time spent in each pipeline stage.",
			Buckets: prometheus.ExponentialBuckets(20e-6, 2.5, 12),
		}, []string{"stage"}),
		forwarded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "metertrust", Subsystem: "router", Name: "forward_total",
			Help: "Forwarding attempts by outcome (delivered, retry, failed).",
		}, []string{"outcome"}),
		outboxDepth: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "metertrust", Subsystem: "router", Name: "outbox_depth",
			Help: "Commands recorded and not yet delivered to a transport.",
		}),
		quarantine: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "metertrust", Subsystem: "router", Name: "quarantine_size",
			Help: "Commands held in quarantine, as last reported by the detector.",
		}),
		operatorAlert: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "metertrust", Subsystem: "router", Name: "operator_alerts_total",
			Help: "Operator alerts raised by the change desk, by reason (diverged, reads).",
		}, []string{"reason"}),
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "metertrust", Subsystem: "router", Name: "alerts_total",
			Help: "Device alerts read from the device transports, by outcome (received, duplicate, or the refusal code).",
		}, []string{"outcome"}),
	}
	for _, c := range []prometheus.Collector{m.stageTotal, m.stageDuration, m.forwarded, m.outboxDepth, m.quarantine, m.operatorAlert, m.alerts} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) observeStage(stage string, err error, d time.Duration) {
	if m == nil {
		return
	}
	outcome := "ok"
	if err != nil {
		outcome = KindOf(err).Code()
	}
	m.stageTotal.WithLabelValues(stage, outcome).Inc()
	m.stageDuration.WithLabelValues(stage).Observe(d.Seconds())
}

func (m *Metrics) operatorAlerted(reason string) {
	if m != nil {
		m.operatorAlert.WithLabelValues(reason).Inc()
	}
}

func (m *Metrics) forward(outcome string) {
	if m != nil {
		m.forwarded.WithLabelValues(outcome).Inc()
	}
}

// SetOutboxDepth records the number of undelivered commands.
func (m *Metrics) SetOutboxDepth(n int) {
	if m != nil {
		m.outboxDepth.Set(float64(n))
	}
}

// SetQuarantineSize records the number of quarantined commands.
func (m *Metrics) SetQuarantineSize(n int) {
	if m != nil {
		m.quarantine.Set(float64(n))
	}
}

func (m *Metrics) alert(outcome string) {
	if m != nil {
		m.alerts.WithLabelValues(outcome).Inc()
	}
}
