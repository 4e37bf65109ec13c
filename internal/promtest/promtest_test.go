package promtest

import (
	"reflect"
	"testing"
)

func TestMetricNames(t *testing.T) {
	tests := []struct {
		expr string
		want []string
	}{
		{`metertrust_router_outbox_depth`, []string{"metertrust_router_outbox_depth"}},
		{`sum by (stage) (rate(metertrust_router_stage_total{outcome="ok", job=~"$job"}[$__rate_interval]))`,
			[]string{"metertrust_router_stage_total"}},
		{`histogram_quantile(0.99, sum by (le, stage) (rate(metertrust_router_stage_duration_seconds_bucket[5m])))`,
			[]string{"metertrust_router_stage_duration_seconds_bucket"}},
		{`rate(a_sum[1m]) / rate(a_count[1m])`, []string{"a_count", "a_sum"}},
		{`sum without (instance) (x) > bool 0 and on (job) y offset 5m`, []string{"x", "y"}},
		{`max_over_time(m[1h:5m]) * 1e3 + 2.5e+2`, []string{"m"}},
		{`{__name__="metertrust_ca_issuance_total", action="ca.issue.org"}`, []string{"metertrust_ca_issuance_total"}},
		{`count(up{job="${service}"}) - count(metertrust_x:rate5m)`, []string{"metertrust_x:rate5m", "up"}},
		{`topk(5, sum by (route, code) (rate(metertrust_repository_http_requests_total{code!~"2.."}[5m])))`,
			[]string{"metertrust_repository_http_requests_total"}},
		{`time() - metertrust_ca_refresh_last_success_timestamp_seconds`, []string{"metertrust_ca_refresh_last_success_timestamp_seconds"}},
	}
	for _, tc := range tests {
		t.Run(tc.expr, func(t *testing.T) {
			got, err := MetricNames(tc.expr)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("MetricNames = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestMetricNamesErrors(t *testing.T) {
	for _, expr := range []string{`rate(x[5m]`, `x{a="b}`, `sum(x))`, `x[5m`} {
		if got, err := MetricNames(expr); err == nil {
			t.Errorf("MetricNames(%q) = %q, want an error", expr, got)
		}
	}
}

// FuzzMetricNames checks that no expression makes MetricNames panic or
// loop (the dashboard file is ours, but a test should not hang on a typo).
func FuzzMetricNames(f *testing.F) {
	f.Add(`sum by (le) (rate(x_bucket{a="b"}[5m]))`)
	f.Add(`{__name__="x"}`)
	f.Add(`$__rate_interval ${a} "\"" ')'`)
	f.Fuzz(func(t *testing.T, expr string) {
		MetricNames(expr) //nolint:errcheck // only must not panic
	})
}
