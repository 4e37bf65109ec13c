package router

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the router's Prometheus metrics: per-stage outcome counts and
// latency histograms, the outbox depth and the quarantine size. A nil
// *Metrics records nothing.
type Metrics struct {
	reg prometheus.Registerer
	// stages holds each stage's pre-bound "ok" counter and duration
	// observer, so that a command passing a stage looks up no label.
	stages map[string]stageMetrics
	// groups holds the pre-bound group-commit observers, by group.
	groups map[string]groupMetrics

	groupDuration *prometheus.HistogramVec
	groupSize     *prometheus.HistogramVec
	stageTotal    *prometheus.CounterVec
	stageDuration *prometheus.HistogramVec
	forwarded     *prometheus.CounterVec
	outboxDepth   prometheus.Gauge
	quarantine    prometheus.Gauge
	operatorAlert *prometheus.CounterVec
	alerts        *prometheus.CounterVec
}

// stageMetrics are one stage's pre-bound metrics.
type stageMetrics struct {
	ok       prometheus.Counter
	duration prometheus.Observer
}

// groupMetrics are one group commit's pre-bound metrics.
type groupMetrics struct {
	duration, size prometheus.Observer
}

// The router's group commits, as named in metrics: the admitter's (the
// admissions, the forwarder's marks and completions) and the forwarder's
// records of commands the transport took.
const (
	groupAdmit   = "admit"
	groupForward = "forward"
)

// NewMetrics creates the router's metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		reg: reg,
		groupDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "metertrust", Subsystem: "router", Name: "group_commit_duration_seconds",
			Help:    "Time to commit one group (one transaction) of a group commit, by group (admit, forward).",
			Buckets: prometheus.ExponentialBuckets(100e-6, 2.5, 12),
		}, []string{"group"}),
		groupSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "metertrust", Subsystem: "router", Name: "group_commit_size",
			Help:    "Items committed by one group of a group commit, by group (admit, forward).",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256},
		}, []string{"group"}),
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
	for _, c := range []prometheus.Collector{m.groupDuration, m.groupSize, m.stageTotal, m.stageDuration, m.forwarded, m.outboxDepth, m.quarantine, m.operatorAlert, m.alerts} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	m.stages = make(map[string]stageMetrics, len(Stages))
	for _, st := range Stages {
		m.stages[st] = stageMetrics{ok: m.stageTotal.WithLabelValues(st, "ok"), duration: m.stageDuration.WithLabelValues(st)}
	}
	// The series every router has, at zero until something happens, so
	// that a dashboard finds them from the start.
	for _, o := range []string{"delivered", "retry", "failed"} {
		m.forwarded.WithLabelValues(o)
	}
	for _, r := range []string{"diverged", "reads"} {
		m.operatorAlert.WithLabelValues(r)
	}
	for _, o := range []string{"received", "duplicate"} {
		m.alerts.WithLabelValues(o)
	}
	m.groups = make(map[string]groupMetrics, 2)
	for _, g := range []string{groupAdmit, groupForward} {
		m.groups[g] = groupMetrics{duration: m.groupDuration.WithLabelValues(g), size: m.groupSize.WithLabelValues(g)}
	}
	return m, nil
}

// observeGroup returns the groupcommit.Group Observe of group; nil for a
// nil *Metrics.
func (m *Metrics) observeGroup(group string) func(int, time.Duration) {
	if m == nil {
		return nil
	}
	g := m.groups[group]
	return func(n int, d time.Duration) {
		g.duration.Observe(d.Seconds())
		g.size.Observe(float64(n))
	}
}

// watchQueues registers metertrust_router_queue_depth, read from depth
// (by queue name) at each scrape.
func (m *Metrics) watchQueues(depth map[string]func() int) error {
	if m == nil {
		return nil
	}
	for name, fn := range depth {
		g := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "metertrust", Subsystem: "router", Name: "queue_depth",
			Help: "Work waiting in the router's in-memory queues, at scrape time: admit (commands, marks and " +
				"completions awaiting the admitter's next group), forward (records awaiting the forwarder's next group), " +
				"forward_attempts (forwarding attempts running).",
			ConstLabels: prometheus.Labels{"queue": name},
		}, func() float64 { return float64(fn()) })
		if err := m.reg.Register(g); err != nil {
			return err
		}
	}
	return nil
}

func (m *Metrics) observeStage(stage string, err error, d time.Duration) {
	if m == nil {
		return
	}
	st, ok := m.stages[stage]
	if !ok { // not a stage of Stages: never on the hot path
		st = stageMetrics{ok: m.stageTotal.WithLabelValues(stage, "ok"), duration: m.stageDuration.WithLabelValues(stage)}
	}
	st.duration.Observe(d.Seconds())
	if err == nil {
		st.ok.Inc()
		return
	}
	// A refusal: rare, and its code is known only now.
	m.stageTotal.WithLabelValues(stage, KindOf(err).Code()).Inc()
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
