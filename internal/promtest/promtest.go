// Package promtest reads what the services' metrics listeners serve and
// what the Grafana dashboard asks of them, for tests: Scrape parses the
// Prometheus text exposition format, and MetricNames pulls the metric
// names out of a PromQL expression (the subset a dashboard uses: selectors
// with label matchers and range vectors, functions, aggregations with by
// and without, binary operators, numbers, strings, and Grafana's
// $variables), so that a test can check every name the dashboard queries
// against the names the services really export.
package promtest

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Scrape GETs url (a /metrics endpoint) and returns its metric families by
// name.
func Scrape(url string) (map[string]*dto.MetricFamily, error) {
	c := &http.Client{Timeout: 10 * time.Second}
	res, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(res.Body, 512))
		return nil, fmt.Errorf("GET %s: %s %s", url, res.Status, b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", url, err)
	}
	return fams, nil
}

// Total is the sum over a family's series of their counter or gauge value,
// or of their histogram or summary sample count.
func Total(f *dto.MetricFamily) float64 {
	if f == nil {
		return 0
	}
	var t float64
	for _, m := range f.GetMetric() {
		switch {
		case m.Counter != nil:
			t += m.Counter.GetValue()
		case m.Gauge != nil:
			t += m.Gauge.GetValue()
		case m.Histogram != nil:
			t += float64(m.Histogram.GetSampleCount())
		case m.Summary != nil:
			t += float64(m.Summary.GetSampleCount())
		case m.Untyped != nil:
			t += m.Untyped.GetValue()
		}
	}
	return t
}

// Family returns the name of the family a series name belongs to: a
// histogram's name_bucket, name_sum and name_count series, and a summary's
// name_sum and name_count, belong to the family name; a counter's series
// keep their _total. families is what Scrape returned.
func Family(series string, families map[string]*dto.MetricFamily) (string, bool) {
	if _, ok := families[series]; ok {
		return series, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(series, suffix)
		if !ok {
			continue
		}
		if f, ok := families[base]; ok {
			t := f.GetType()
			if t == dto.MetricType_HISTOGRAM || t == dto.MetricType_GAUGE_HISTOGRAM || (t == dto.MetricType_SUMMARY && suffix != "_bucket") {
				return base, true
			}
		}
	}
	return "", false
}

// keywords are PromQL's words that are not metric names: aggregation
// operators, their modifiers, the binary set operators and vector
// matching keywords, offset and @ modifiers, and the bool modifier.
var keywords = map[string]bool{
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true,
	"count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true, "limitk": true,
	"limit_ratio": true, "by": true, "without": true, "and": true, "or": true, "unless": true,
	"on": true, "ignoring": true, "group_left": true, "group_right": true, "offset": true, "bool": true,
	"start": true, "end": true, "inf": true, "nan": true,
}

// MetricNames returns the metric names expr selects, sorted and without
// duplicates. A name is an identifier that is not a keyword, not a
// function (followed by "("), not a label name (inside {...} or the
// parentheses after by, without, on, ignoring, group_left, group_right),
// and not inside a string, a range or subquery ([5m], [1h:1m]) or a
// Grafana variable ($__rate_interval, ${service}). A selector {__name__="x"}
// names x. It reports what it cannot read (an unbalanced bracket, an
// unterminated string).
func MetricNames(expr string) ([]string, error) {
	names := map[string]bool{}
	depthBrace, depthBracket := 0, 0
	labelParens := 0 // > 0 inside the label list of by(...), on(...)...
	parenStack := []bool{}
	expectLabels := false
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			j := i + 1
			for j < len(expr) && expr[j] != c {
				if expr[j] == '\\' && c != '`' {
					j++
				}
				j++
			}
			if j >= len(expr) {
				return nil, fmt.Errorf("promtest: unterminated string in %q", expr)
			}
			if depthBrace > 0 {
				// {__name__="x"} names x.
				before := strings.TrimSpace(expr[:i])
				if before, ok := strings.CutSuffix(before, "="); ok && strings.HasSuffix(strings.TrimSpace(before), "__name__") {
					names[expr[i+1:j]] = true
				}
			}
			i = j + 1
			continue
		case c == '$':
			j := i + 1
			if j < len(expr) && expr[j] == '{' {
				for j < len(expr) && expr[j] != '}' {
					j++
				}
				j++
			} else {
				for j < len(expr) && isIdent(expr[j]) {
					j++
				}
			}
			i = j
			continue
		case c == '{':
			depthBrace++
		case c == '}':
			depthBrace--
		case c == '[':
			depthBracket++
		case c == ']':
			depthBracket--
		case c == '(':
			parenStack = append(parenStack, expectLabels)
			if expectLabels {
				labelParens++
			}
			expectLabels = false
		case c == ')':
			if len(parenStack) == 0 {
				return nil, fmt.Errorf("promtest: unbalanced ) in %q", expr)
			}
			if parenStack[len(parenStack)-1] {
				labelParens--
			}
			parenStack = parenStack[:len(parenStack)-1]
		case isIdentStart(c):
			j := i
			for j < len(expr) && (isIdent(expr[j]) || expr[j] == ':') {
				j++
			}
			word := expr[i:j]
			k := j
			for k < len(expr) && (expr[k] == ' ' || expr[k] == '\t' || expr[k] == '\n') {
				k++
			}
			switch lw := strings.ToLower(word); {
			case depthBrace > 0 || depthBracket > 0 || labelParens > 0:
			case lw == "by" || lw == "without" || lw == "on" || lw == "ignoring" || lw == "group_left" || lw == "group_right":
				expectLabels = true
			case keywords[lw]:
			case k < len(expr) && expr[k] == '(':
				// a function
			default:
				names[word] = true
			}
			i = j
			continue
		case c >= '0' && c <= '9' || c == '.':
			// A number, or a duration (5m) outside brackets (offset 5m).
			j := i
			for j < len(expr) && (isIdent(expr[j]) || expr[j] == '.' || expr[j] == '+' && (expr[j-1] == 'e' || expr[j-1] == 'E')) {
				j++
			}
			i = j
			continue
		}
		if depthBrace < 0 || depthBracket < 0 {
			return nil, fmt.Errorf("promtest: unbalanced bracket in %q", expr)
		}
		i++
	}
	if depthBrace != 0 || depthBracket != 0 || len(parenStack) != 0 {
		return nil, fmt.Errorf("promtest: unbalanced brackets in %q", expr)
	}
	out := make([]string, 0, len(names))
	for n := range names {
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}

func isIdentStart(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isIdent(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }
