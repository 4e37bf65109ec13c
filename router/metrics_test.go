package router

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestObserveStageAllocs checks that a command passing a stage records
// its metrics without allocating (the labels are bound once, in
// NewMetrics), and that a refusal is counted under its code.
func TestObserveStageAllocs(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range Stages {
		if a := testing.AllocsPerRun(200, func() { m.observeStage(st, nil, 40*time.Microsecond) }); a != 0 {
			t.Errorf("observeStage(%s, ok) allocates %v times", st, a)
		}
	}
	m.observeStage(StageCounter, fmt.Errorf("%w: again", ErrReplay), time.Millisecond)
	got := gather(t, reg)
	if got[`metertrust_router_stage_total{outcome="ok",stage="parse"}`] != 201 {
		t.Errorf("parse ok = %v, want 201 (AllocsPerRun's warm-up run and 200)", got[`metertrust_router_stage_total{outcome="ok",stage="parse"}`])
	}
	if got[`metertrust_router_stage_total{outcome="replay",stage="counter"}`] != 1 {
		t.Errorf("counter refusals = %v, want 1 (all: %v)", got[`metertrust_router_stage_total{outcome="replay",stage="counter"}`], got)
	}
	if got[`metertrust_router_stage_duration_seconds{stage="counter"}`] != 202 {
		t.Errorf("counter durations = %v, want 202", got[`metertrust_router_stage_duration_seconds{stage="counter"}`])
	}
}

// TestGroupAndQueueMetrics checks the group-commit observers and the
// queue-depth gauges read at scrape time.
func TestGroupAndQueueMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	obs := m.observeGroup(groupAdmit)
	obs(3, 2*time.Millisecond)
	obs(5, time.Millisecond)
	depth := 7
	if err := m.watchQueues(map[string]func() int{"admit": func() int { return depth }}); err != nil {
		t.Fatal(err)
	}
	depth = 9
	got := gather(t, reg)
	for k, want := range map[string]float64{
		`metertrust_router_group_commit_duration_seconds{group="admit"}`: 2,
		`metertrust_router_group_commit_size{group="admit"}`:             2,
		`metertrust_router_group_commit_size_sum{group="admit"}`:         8,
		`metertrust_router_queue_depth{queue="admit"}`:                   9,
	} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v", k, got[k], want)
		}
	}
	if a := testing.AllocsPerRun(100, func() { obs(1, time.Millisecond) }); a != 0 {
		t.Errorf("a group commit's observation allocates %v times", a)
	}
	var nilM *Metrics
	if nilM.observeGroup(groupAdmit) != nil || nilM.watchQueues(map[string]func() int{"x": nil}) != nil {
		t.Error("a nil *Metrics records something")
	}
	nilM.observeStage(StageParse, nil, time.Second)
}

// gather returns each series of reg as name{label="value",...} (labels
// sorted by name, as the registry gives them) with its value, or a
// histogram's sample count (and its sum as name_sum).
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			labels := ""
			if ls := m.GetLabel(); len(ls) > 0 {
				labels = "{"
				for i, l := range ls {
					if i > 0 {
						labels += ","
					}
					labels += l.GetName() + `="` + l.GetValue() + `"`
				}
				labels += "}"
			}
			switch {
			case m.Counter != nil:
				out[f.GetName()+labels] = m.Counter.GetValue()
			case m.Gauge != nil:
				out[f.GetName()+labels] = m.Gauge.GetValue()
			case m.Histogram != nil:
				out[f.GetName()+labels] = float64(m.Histogram.GetSampleCount())
				out[f.GetName()+"_sum"+labels] = m.Histogram.GetSampleSum()
			}
		}
	}
	return out
}

// BenchmarkObserveStage measures what a command pays for its metrics at
// each stage it passes (docs/performance.md, "Metrics on the hot path").
func BenchmarkObserveStage(b *testing.B) {
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			for _, st := range Stages {
				m.observeStage(st, nil, 40*time.Microsecond)
			}
		}
	})
}
