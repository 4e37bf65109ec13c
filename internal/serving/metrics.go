package serving

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The metrics listeners' default addresses, one port per service so that
// several services on one host do not collide (decision 024). All are on
// the loopback interface: a scraper elsewhere needs the address set.
const (
	DefaultRouterMetrics     = "127.0.0.1:9101"
	DefaultRepositoryMetrics = "127.0.0.1:9102"
	DefaultOperatorMetrics   = "127.0.0.1:9103"
	DefaultCAMetrics         = "127.0.0.1:9104"
	DefaultFleetMetrics      = "127.0.0.1:9105"
	DefaultAllMetrics        = "127.0.0.1:9100"
)

// MetricsOff, or an empty address, turns a service's metrics listener off.
const MetricsOff = "off"

// NewRegistry returns the process's metrics registry, with the Go runtime
// and process collectors registered. Each process (and each test) makes
// its own: nothing of ours registers with Prometheus's global default
// registry, so that "serve all" and tests may run several services in one
// process.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// MetricsEnabled reports whether addr turns a metrics listener on: not
// empty and not "off".
func MetricsEnabled(addr string) bool { return addr != "" && addr != MetricsOff }

// ListenMetrics opens the metrics listener on addr, or returns nil when
// addr turns it off (MetricsEnabled). Opening it before the service
// starts reports a taken port at once.
func ListenMetrics(addr string) (net.Listener, error) {
	if !MetricsEnabled(addr) {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-listen: %w", err)
	}
	return ln, nil
}

// MetricsHandler answers GET /metrics with g's metrics in the Prometheus
// text (or OpenMetrics) format, and 404 for any other path.
func MetricsHandler(g prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{EnableOpenMetrics: true}))
	return mux
}

// ServeMetrics serves GET /metrics from g over plain HTTP on ln until ctx
// ends, then closes it. A nil ln (metrics off) waits for ctx and returns
// nil, so that the caller may hand it to RunAll either way. The listener
// needs no client certificate: it carries counts and latencies, no key,
// certificate or identifier, and binds to the loopback interface unless
// configured otherwise.
func ServeMetrics(ctx context.Context, ln net.Listener, g prometheus.Gatherer, log *slog.Logger) error {
	if ln == nil {
		<-ctx.Done()
		return nil
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	hs := &http.Server{
		Handler:           MetricsHandler(g),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    8 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	log.InfoContext(ctx, "metrics listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("metrics: serving on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("metrics: shutting down: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("metrics: serving on %s: %w", ln.Addr(), err)
	}
	return nil
}
