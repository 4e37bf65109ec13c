package web

import (
	"cmp"
	"context"
	"fmt"
	"html/template"
	"slices"
	"strings"
	"time"

	"github.com/metertrust/metertrust/router"
	"github.com/metertrust/metertrust/store"
)

// Rates is the per-minute rollup of the router's audit entries (accepted,
// refused and quarantined commands); *store.OperatorStore implements it.
// The operator process holds no key and is not the router: it learns what
// the router did only from the shared store.
type Rates interface {
	RollUpCommandRates(ctx context.Context, now time.Time) (int64, error)
	CommandRates(ctx context.Context, since time.Time) ([]store.CommandRate, error)
}

// rateMinutes is how many minutes the overview's rate charts show.
const rateMinutes = 60

// rollUp counts the router's audit entries appended since the last call.
func (s *Server) rollUp(ctx context.Context) {
	if s.deps.Rates == nil {
		return
	}
	if _, err := s.deps.Rates.RollUpCommandRates(ctx, s.now()); err != nil {
		s.log.WarnContext(ctx, "rolling up command rates", "err", err)
	}
}

// rateData is the overview's commands per minute: by stage (accepted
// commands and the refusals of each pipeline stage) and by refusal
// reason, over the last hour.
type rateData struct {
	ByStage, ByReason         template.HTML
	StageLegend, ReasonLegend []legendItem
	Accepted, Refused         int64
	From, To                  time.Time
}

// legendItem is one series of a stacked chart, with its total.
type legendItem struct {
	Name  string
	Class string
	Total int64
}

// rates reads the last hour's counts and draws them.
func (s *Server) rates(ctx context.Context) (*rateData, error) {
	if s.deps.Rates == nil {
		return nil, nil
	}
	to := s.now().UTC().Truncate(time.Minute)
	from := to.Add(-(rateMinutes - 1) * time.Minute)
	rs, err := s.deps.Rates.CommandRates(ctx, from)
	if err != nil {
		return nil, err
	}
	minutes := make([]time.Time, rateMinutes)
	for i := range minutes {
		minutes[i] = from.Add(time.Duration(i) * time.Minute)
	}
	d := &rateData{From: from, To: to}
	byStage, byReason := map[string][]int64{}, map[string][]int64{}
	add := func(m map[string][]int64, k string, i int, n int64) {
		if m[k] == nil {
			m[k] = make([]int64, rateMinutes)
		}
		m[k][i] += n
	}
	for _, r := range rs {
		i := int(r.Minute.Sub(from) / time.Minute)
		if i < 0 || i >= rateMinutes {
			continue
		}
		if r.Outcome == store.RateAccepted {
			d.Accepted += r.Count
			add(byStage, store.RateAccepted, i, r.Count)
			continue
		}
		d.Refused += r.Count
		stage := r.Stage
		if r.Outcome == store.RateQuarantined {
			stage = store.RateQuarantined
		}
		add(byStage, stage, i, r.Count)
		add(byReason, cmp.Or(r.Reason, "unknown"), i, r.Count)
	}
	stages := orderSeries(byStage, append([]string{store.RateAccepted, store.RateStageRequest}, append(slices.Clone(router.Stages), store.RateQuarantined)...))
	reasons := orderSeries(byReason, nil)
	var stageSeries, reasonSeries []stack
	for i, k := range stages {
		class := fmt.Sprintf("s%d", i%10)
		if k == store.RateAccepted {
			class = "accepted"
		}
		stageSeries = append(stageSeries, stack{Name: seriesName(k), Class: class, Values: byStage[k]})
	}
	for i, k := range reasons {
		reasonSeries = append(reasonSeries, stack{Name: k, Class: fmt.Sprintf("s%d", i%10), Values: byReason[k]})
	}
	d.ByStage = stackedChart("Commands per minute by stage: accepted, and refused at each stage", minutes, stageSeries)
	d.ByReason = stackedChart("Refused commands per minute by reason", minutes, reasonSeries)
	d.StageLegend, d.ReasonLegend = legend(stageSeries), legend(reasonSeries)
	return d, nil
}

// seriesName labels a stage series: refusals at a stage, or accepted.
func seriesName(k string) string {
	switch k {
	case store.RateAccepted, store.RateQuarantined:
		return k
	case store.RateStageRequest:
		return "refused before the pipeline"
	}
	return "refused at " + k
}

// orderSeries returns the keys of m in the order first lists them, then
// the others by total, largest first.
func orderSeries(m map[string][]int64, first []string) []string {
	var out, rest []string
	for _, k := range first {
		if m[k] != nil {
			out = append(out, k)
		}
	}
	for k := range m {
		if !slices.Contains(first, k) {
			rest = append(rest, k)
		}
	}
	total := func(k string) (n int64) {
		for _, v := range m[k] {
			n += v
		}
		return n
	}
	slices.SortFunc(rest, func(a, b string) int {
		if c := cmp.Compare(total(b), total(a)); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	return append(out, rest...)
}

func legend(ss []stack) []legendItem {
	out := make([]legendItem, len(ss))
	for i, s := range ss {
		out[i] = legendItem{Name: s.Name, Class: s.Class}
		for _, v := range s.Values {
			out[i].Total += v
		}
	}
	return out
}

// stack is one series of a stacked bar chart: a value per column.
type stack struct {
	Name   string
	Class  string // the CSS class colouring it
	Values []int64
}

// stackedChart draws one bar per column (a minute), each the stack of the
// series' values in order, against a y axis up to the tallest bar; the
// axis is labelled with its maximum and the first and last columns'
// times. Each segment carries a title naming its series, minute and count.
func stackedChart(title string, columns []time.Time, series []stack) template.HTML {
	const (
		width, height = 960, 170
		left, right   = 44, 8
		top, bottom   = 8, 20
		plotW         = width - left - right
		plotH         = height - top - bottom
	)
	var peak int64
	for i := range columns {
		var sum int64
		for _, s := range series {
			sum += s.Values[i]
		}
		peak = max(peak, sum)
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg class="chart" role="img" viewBox="0 0 %d %d" width="%d" height="%d"><title>%s</title>`,
		width, height, width, height, template.HTMLEscapeString(title))
	fmt.Fprintf(&sb, `<rect class="track" x="%d" y="%d" width="%d" height="%d"/>`, left, top, plotW, plotH)
	fmt.Fprintf(&sb, `<text class="label end" x="%d" y="%d">%d</text>`, left-4, top+10, peak)
	fmt.Fprintf(&sb, `<text class="label end" x="%d" y="%d">0</text>`, left-4, top+plotH)
	if n := len(columns); n > 0 {
		colW := plotW / n
		barW := max(colW-1, 1)
		scale := func(v int64) int {
			if peak == 0 {
				return 0
			}
			return int(int64(plotH) * v / peak)
		}
		for i, at := range columns {
			x := left + i*colW
			var below int64
			for _, s := range series {
				v := s.Values[i]
				if v == 0 {
					continue
				}
				y0, y1 := top+plotH-scale(below), top+plotH-scale(below+v)
				h := max(y0-y1, 1)
				fmt.Fprintf(&sb, `<rect class="%s" x="%d" y="%d" width="%d" height="%d"><title>%s %s: %d</title></rect>`,
					s.Class, x, y0-h, barW, h, at.UTC().Format("15:04"), template.HTMLEscapeString(s.Name), v)
				below += v
			}
		}
		fmt.Fprintf(&sb, `<text class="label" x="%d" y="%d">%s</text>`, left, height-4, columns[0].UTC().Format("15:04"))
		fmt.Fprintf(&sb, `<text class="label end" x="%d" y="%d">%s</text>`, left+plotW, height-4, columns[n-1].UTC().Format("15:04"))
	}
	sb.WriteString(`</svg>`)
	return template.HTML(sb.String())
}
