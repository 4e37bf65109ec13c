package conformance

import (
	"encoding/xml"
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"
)

// WriteText writes the terminal summary: one line per case, then the
// totals and the verdict.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "metertrust conformance: %s %s\n\n", r.Target, r.Name)
	for _, res := range r.Results {
		fmt.Fprintf(&b, "  %-5s %-11s %-22s %s\n", strings.ToUpper(string(res.Status)), res.ID, res.Section, res.Title)
		if res.Status != StatusPass && res.Detail != "" {
			fmt.Fprintf(&b, "        %s\n", res.Detail)
		}
	}
	verdict := "PASS"
	if r.Failed() {
		verdict = "FAIL: " + strings.Join(r.FailedIDs(), ", ")
	}
	fmt.Fprintf(&b, "\n%d cases: %d passed, %d failed, %d warnings, %d skipped in %s\n%s\n",
		len(r.Results), r.Count(StatusPass), r.Count(StatusFail), r.Count(StatusWarn), r.Count(StatusSkip),
		r.Duration.Round(time.Millisecond), verdict)
	_, err := io.WriteString(w, b.String())
	return err
}

// The JUnit XML schema most CI tools read (Jenkins, GitLab, GitHub
// actions' reporters): a testsuites element with one testsuite.
type junitSuites struct {
	XMLName  xml.Name   `xml:"testsuites"`
	Name     string     `xml:"name,attr"`
	Tests    int        `xml:"tests,attr"`
	Failures int        `xml:"failures,attr"`
	Skipped  int        `xml:"skipped,attr"`
	Time     string     `xml:"time,attr"`
	Suites   []junitSet `xml:"testsuite"`
}

type junitSet struct {
	Name      string      `xml:"name,attr"`
	Tests     int         `xml:"tests,attr"`
	Failures  int         `xml:"failures,attr"`
	Errors    int         `xml:"errors,attr"`
	Skipped   int         `xml:"skipped,attr"`
	Time      string      `xml:"time,attr"`
	Timestamp string      `xml:"timestamp,attr"`
	Props     []junitProp `xml:"properties>property"`
	Cases     []junitCase `xml:"testcase"`
}

type junitProp struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",chardata"`
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }

// WriteJUnit writes the report as JUnit XML: a testcase per case, named
// "<id> <title>", with class "metertrust.conformance.<target>"; failures as
// failure, skips as skipped, warnings as passes whose system-out says
// WARNING.
func (r *Report) WriteJUnit(w io.Writer) error {
	set := junitSet{Name: "metertrust conformance " + string(r.Target), Tests: len(r.Results), Failures: r.Count(StatusFail),
		Skipped: r.Count(StatusSkip), Time: seconds(r.Duration), Timestamp: r.Started.UTC().Format("2006-01-02T15:04:05"),
		Props: []junitProp{{"target", string(r.Target)}, {"implementation", r.Name}}}
	for _, res := range r.Results {
		c := junitCase{Name: res.ID + " " + res.Title, Classname: "metertrust.conformance." + string(r.Target), Time: seconds(res.Duration)}
		text := fmt.Sprintf("%s (%s, severity %s): %s", res.ID, res.Section, res.Severity, res.Detail)
		switch res.Status {
		case StatusFail:
			c.Failure = &junitMessage{Message: res.Detail, Type: "conformance", Text: text}
		case StatusSkip:
			c.Skipped = &junitMessage{Message: res.Detail}
		case StatusWarn:
			c.SystemOut = "WARNING: " + text
		default:
			c.SystemOut = text
		}
		set.Cases = append(set.Cases, c)
	}
	doc := junitSuites{Name: "metertrust conformance", Tests: set.Tests, Failures: set.Failures, Skipped: set.Skipped,
		Time: set.Time, Suites: []junitSet{set}}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// htmlReport is one page, its style inline, no script, no external
// resource: it opens from a file with no network.
var htmlReport = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>metertrust conformance: {{.R.Target}} {{.R.Name}}</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem;color:#1d2430;background:#fff}
h1{font-size:1.4rem;margin:0 0 .3rem}
.meta{color:#5a6372;margin-bottom:1rem}
.verdict{display:inline-block;padding:.4rem .8rem;border-radius:.3rem;font-weight:600;color:#fff}
.verdict.pass{background:#1f7a3a}.verdict.fail{background:#b3261e}
.totals span{margin-right:1.2rem}
table{border-collapse:collapse;width:100%;margin-top:1rem}
th,td{text-align:left;padding:.45rem .6rem;border-bottom:1px solid #dde2ea;vertical-align:top}
th{background:#f2f4f8;font-weight:600}
td.id{font-family:ui-monospace,monospace;white-space:nowrap}
td.sec{white-space:nowrap}
.st{font-weight:700;text-transform:uppercase;white-space:nowrap}
.st.pass{color:#1f7a3a}.st.fail{color:#b3261e}.st.warn{color:#a15c00}.st.skip{color:#5a6372}
tr.fail{background:#fdf1f0}tr.warn{background:#fff8ec}
.detail{color:#3b4350;font-size:.92em}
</style>
</head>
<body>
<h1>metertrust conformance: {{.R.Target}}</h1>
<div class="meta">{{.R.Name}} &middot; started {{.Started}} &middot; {{.Duration}}</div>
<div class="verdict {{if .R.Failed}}fail{{else}}pass{{end}}">{{if .R.Failed}}FAIL{{else}}PASS{{end}}</div>
<p class="totals"><span>{{len .R.Results}} cases</span><span>{{.Pass}} passed</span><span>{{.Fail}} failed</span><span>{{.Warn}} warnings</span><span>{{.Skip}} skipped</span></p>
<table>
<thead><tr><th>Case</th><th>Status</th><th>Section</th><th>Check</th><th>Severity</th><th>ms</th></tr></thead>
<tbody>
{{range .R.Results}}<tr class="{{.Status}}"><td class="id">{{.ID}}</td><td class="st {{.Status}}">{{.Status}}</td><td class="sec">{{.Section}}</td><td>{{.Title}}{{if .Detail}}<div class="detail">{{.Detail}}</div>{{end}}</td><td>{{.Severity}}</td><td>{{.Duration.Milliseconds}}</td></tr>
{{end}}</tbody>
</table>
<p class="meta">Cases and sections: docs/conformance.md. A failed case of severity warning is reported as a warning and does not fail the run.</p>
</body>
</html>
`))

// WriteHTML writes the report as one self-contained HTML page.
func (r *Report) WriteHTML(w io.Writer) error {
	return htmlReport.Execute(w, map[string]any{
		"R": r, "Started": r.Started.UTC().Format(time.RFC3339), "Duration": r.Duration.Round(time.Millisecond).String(),
		"Pass": r.Count(StatusPass), "Fail": r.Count(StatusFail), "Warn": r.Count(StatusWarn), "Skip": r.Count(StatusSkip),
	})
}
