package web

import (
	"fmt"
	"html/template"
	"strings"
	"time"
)

// The dashboard's charts are SVG drawn here, inline in the page: no
// script library, nothing fetched, and no style attribute (the CSP allows
// none); colours come from classes in style.css.

// bar is one bar of a bar chart.
type bar struct {
	Label string
	Value int64
}

// barChart draws horizontal bars, one per row, scaled to max (or to the
// largest value when max is 0), each labelled with its value.
func barChart(title string, bars []bar, max int64) template.HTML {
	const (
		width  = 480
		rowH   = 26
		labelW = 150
		barW   = width - labelW - 60
	)
	for _, b := range bars {
		max = maxInt(max, b.Value)
	}
	h := rowH*len(bars) + 8
	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg class="chart" role="img" viewBox="0 0 %d %d" width="%d" height="%d"><title>%s</title>`,
		width, h, width, h, template.HTMLEscapeString(title))
	for i, b := range bars {
		y := 4 + i*rowH
		w := 0
		if max > 0 {
			w = int(int64(barW) * b.Value / max)
		}
		fmt.Fprintf(&sb, `<text class="label" x="0" y="%d">%s</text>`, y+17, template.HTMLEscapeString(b.Label))
		fmt.Fprintf(&sb, `<rect class="track" x="%d" y="%d" width="%d" height="18"/>`, labelW, y+4, barW)
		fmt.Fprintf(&sb, `<rect class="bar" x="%d" y="%d" width="%d" height="18"/>`, labelW, y+4, w)
		fmt.Fprintf(&sb, `<text class="value" x="%d" y="%d">%d</text>`, labelW+barW+6, y+17, b.Value)
	}
	sb.WriteString(`</svg>`)
	return template.HTML(sb.String())
}

// sample is one reading of a series.
type sample struct {
	At    time.Time
	Value int64
}

// lineChart draws a series over time against a limit: the line of counts,
// a dashed line at the limit, the axis labelled with the first and last
// times; a point over the limit is marked.
func lineChart(title string, series []sample, limit int64) template.HTML {
	const (
		width, height = 480, 120
		left, right   = 40, 8
		top, bottom   = 8, 20
		plotW         = width - left - right
		plotH         = height - top - bottom
	)
	max := limit
	for _, s := range series {
		max = maxInt(max, s.Value)
	}
	if max <= 0 {
		max = 1
	}
	max += max / 10
	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg class="chart" role="img" viewBox="0 0 %d %d" width="%d" height="%d"><title>%s</title>`,
		width, height, width, height, template.HTMLEscapeString(title))
	fmt.Fprintf(&sb, `<rect class="track" x="%d" y="%d" width="%d" height="%d"/>`, left, top, plotW, plotH)
	y := func(v int64) int { return top + plotH - int(int64(plotH)*v/max) }
	if limit > 0 {
		fmt.Fprintf(&sb, `<line class="limit" x1="%d" y1="%d" x2="%d" y2="%d"/>`, left, y(limit), left+plotW, y(limit))
		fmt.Fprintf(&sb, `<text class="label" x="0" y="%d">%d</text>`, y(limit)+4, limit)
	}
	if n := len(series); n > 0 {
		t0, t1 := series[0].At, series[n-1].At
		span := t1.Sub(t0)
		x := func(t time.Time) int {
			if span <= 0 {
				return left + plotW
			}
			return left + int(int64(plotW)*int64(t.Sub(t0))/int64(span))
		}
		pts := make([]string, n)
		for i, s := range series {
			pts[i] = fmt.Sprintf("%d,%d", x(s.At), y(s.Value))
		}
		fmt.Fprintf(&sb, `<polyline class="series" points="%s"/>`, strings.Join(pts, " "))
		for _, s := range series {
			if limit > 0 && s.Value > limit {
				fmt.Fprintf(&sb, `<circle class="over" cx="%d" cy="%d" r="3"/>`, x(s.At), y(s.Value))
			}
		}
		last := series[n-1]
		fmt.Fprintf(&sb, `<circle class="last" cx="%d" cy="%d" r="3"/>`, x(last.At), y(last.Value))
		fmt.Fprintf(&sb, `<text class="value" x="%d" y="%d">%d</text>`, left+4, top+12, last.Value)
		fmt.Fprintf(&sb, `<text class="label" x="%d" y="%d">%s</text>`, left, height-4, t0.UTC().Format("15:04:05"))
		fmt.Fprintf(&sb, `<text class="label end" x="%d" y="%d">%s</text>`, left+plotW, height-4, t1.UTC().Format("15:04:05"))
	}
	sb.WriteString(`</svg>`)
	return template.HTML(sb.String())
}

func maxInt(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}
