package apiserver

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
)

// TestHTTPMetrics checks that requests are counted by route pattern (never
// the path asked for), method and the status actually sent, a handler's
// error included, and that unrouted requests share one label value.
func TestHTTPMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewHTTPMetrics(reg, "test")
	if err != nil {
		t.Fatal(err)
	}
	e := NewEcho(func(err error, c echo.Context) {
		if he, ok := err.(*echo.HTTPError); ok {
			c.NoContent(he.Code)
			return
		}
		c.NoContent(http.StatusInternalServerError)
	})
	e.Use(m.Middleware())
	e.GET("/v1/things/:id", func(c echo.Context) error { return c.String(http.StatusOK, c.Param("id")) })
	e.POST("/v1/things", func(c echo.Context) error { return echo.NewHTTPError(http.StatusConflict) })
	for _, r := range []struct{ method, path string }{
		{"GET", "/v1/things/a"}, {"GET", "/v1/things/b"}, {"POST", "/v1/things"},
		{"GET", "/nowhere/1"}, {"GET", "/nowhere/2"}, {"BREW", "/v1/things/a"},
	} {
		e.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(r.method, r.path, nil))
	}
	tests := []struct {
		route, method, code string
		want                float64
	}{
		{"/v1/things/{id}", "GET", "200", 2},
		{"/v1/things", "POST", "409", 1},
		{"unmatched", "GET", "404", 2},
	}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]float64{}
	var total, observed float64
	for _, f := range fams {
		for _, s := range f.GetMetric() {
			l := map[string]string{}
			for _, p := range s.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			switch f.GetName() {
			case "metertrust_test_http_requests_total":
				counts[l["route"]+" "+l["method"]+" "+l["code"]] = s.GetCounter().GetValue()
				total += s.GetCounter().GetValue()
			case "metertrust_test_http_request_duration_seconds":
				observed += float64(s.GetHistogram().GetSampleCount())
			}
		}
	}
	for _, tc := range tests {
		if got := counts[tc.route+" "+tc.method+" "+tc.code]; got != tc.want {
			t.Errorf("requests{%s %s %s} = %v, want %v (all: %v)", tc.route, tc.method, tc.code, got, tc.want, counts)
		}
	}
	// Six requests, each counted and timed once, under bounded label values.
	if total != 6 || observed != 6 || len(counts) > 5 {
		t.Errorf("%v requests counted, %v timed, in %d series: want 6, 6 and few (%v)", total, observed, len(counts), counts)
	}
	var nilM *HTTPMetrics
	h := nilM.Middleware()(func(c echo.Context) error { return nil })
	if err := h(e.NewContext(httptest.NewRequest("GET", "/", nil), httptest.NewRecorder())); err != nil {
		t.Errorf("a nil HTTPMetrics' middleware: %v", err)
	}
}
