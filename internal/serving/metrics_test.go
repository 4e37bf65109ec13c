package serving

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestServeMetrics serves a registry on a loopback listener and checks
// that GET /metrics answers its metrics and the runtime collectors', that
// nothing else is served, and that it stops with its context.
func TestServeMetrics(t *testing.T) {
	reg := NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "metertrust_test_things_total", Help: "Things."})
	reg.MustRegister(c)
	c.Add(3)
	ln, err := ListenMetrics("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeMetrics(ctx, ln, reg, nil) }()
	base := "http://" + ln.Addr().String()

	get := func(method, path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	st, body := get("GET", "/metrics")
	if st != http.StatusOK {
		t.Fatalf("GET /metrics: %d", st)
	}
	for _, want := range []string{"metertrust_test_things_total 3", "go_goroutines", "process_cpu_seconds_total"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	for _, r := range []struct{ method, path string }{{"GET", "/"}, {"GET", "/debug/pprof/"}, {"POST", "/metrics"}} {
		if st, _ := get(r.method, r.path); st < 400 {
			t.Errorf("%s %s answered %d", r.method, r.path, st)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("ServeMetrics: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ServeMetrics did not stop")
	}
}

// TestMetricsOff checks that "off" and "" open no listener, and that
// ServeMetrics without one waits for its context.
func TestMetricsOff(t *testing.T) {
	for _, addr := range []string{"", MetricsOff} {
		if MetricsEnabled(addr) {
			t.Errorf("MetricsEnabled(%q)", addr)
		}
		ln, err := ListenMetrics(addr)
		if ln != nil || err != nil {
			t.Errorf("ListenMetrics(%q) = %v, %v; want nothing", addr, ln, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := ServeMetrics(ctx, nil, NewRegistry(), nil); err != nil {
		t.Errorf("ServeMetrics without a listener: %v", err)
	}
	if _, err := ListenMetrics("256.0.0.1:1"); err == nil {
		t.Error("ListenMetrics on a bad address: no error")
	}
}

// TestRegistriesIndependent checks that two services in one process (serve
// all, tests) each get a registry of their own: registering the same
// metric in both does not collide.
func TestRegistriesIndependent(t *testing.T) {
	for range 2 {
		reg := NewRegistry()
		if err := reg.Register(prometheus.NewCounter(prometheus.CounterOpts{Name: "metertrust_router_x_total", Help: "x"})); err != nil {
			t.Fatal(err)
		}
	}
}
