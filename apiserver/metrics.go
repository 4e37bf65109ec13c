package apiserver

import (
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
)

// HTTPMetrics counts a service's requests and times them, by route (the
// route's pattern, never the requested path, so that the label values are
// bounded), method and status code: metertrust_<service>_http_requests_total
// and metertrust_<service>_http_request_duration_seconds. A nil
// *HTTPMetrics records nothing.
type HTTPMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewHTTPMetrics creates the request metrics of service (a metric name
// part: "repository", "operator", "ca", "fleet") and registers them with
// reg.
func NewHTTPMetrics(reg prometheus.Registerer, service string) (*HTTPMetrics, error) {
	m := &HTTPMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "metertrust", Subsystem: service, Name: "http_requests_total",
			Help: "HTTP requests answered, by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "metertrust", Subsystem: service, Name: "http_request_duration_seconds",
			Help:    "Time from a request's routing to its answer, by route pattern and method.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Middleware returns echo middleware (for Echo.Use, after routing) that
// records each request. A handler's error goes to the error handler at
// once, so that the status counted is the one sent. Streams (server-sent
// events) are counted when they end.
func (m *HTTPMetrics) Middleware() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		if m == nil {
			return next
		}
		return func(c echo.Context) error {
			start := time.Now()
			if err := next(c); err != nil {
				c.Error(err)
			}
			route := c.Path()
			if route == "" || c.Response().Status == 404 && route == "/*" {
				route = "unmatched"
			}
			method := c.Request().Method
			switch method {
			case "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS":
			default:
				method = "other"
			}
			m.requests.WithLabelValues(OpenAPIPath(route), method, strconv.Itoa(c.Response().Status)).Inc()
			m.duration.WithLabelValues(OpenAPIPath(route), method).Observe(time.Since(start).Seconds())
			return nil
		}
	}
}
