package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/metertrust/metertrust/anomaly"
	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/operator"
	"github.com/metertrust/metertrust/problem"
	"github.com/metertrust/metertrust/proposal"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// The pages, each a template file defining "title" and "content", rendered
// inside layout.html; login and error stand alone.
var pageNames = []string{"overview", "quarantine", "quarantine_detail", "thresholds", "proposals", "audit", "login", "error", "pki"}

var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"ago": func(now, t time.Time) string {
		d := now.Sub(t).Round(time.Second)
		switch {
		case d < time.Minute:
			return fmt.Sprintf("%ds", int(d.Seconds()))
		case d < time.Hour:
			return fmt.Sprintf("%dm", int(d.Minutes()))
		case d < 48*time.Hour:
			return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
		}
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	},
	"duration": func(d time.Duration) string { return d.String() },
	"seconds":  func(d time.Duration) int64 { return int64(d / time.Second) },
	"json": func(v any) string {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err.Error()
		}
		return string(b)
	},
	"split": strings.Fields,
	"row":   func(v view, t anomaly.Threshold) thresholdRow { return thresholdRow{V: v, T: t} },
	"has":   func(o *session, role string) bool { return o != nil && o.id.Has(operator.Role(role)) },
	"pct": func(n, d int64) int64 {
		if d <= 0 {
			return 0
		}
		return min(100, n*100/d)
	},
}

func (s *Server) parseTemplates() error {
	s.pages = map[string]*template.Template{}
	for _, name := range pageNames {
		files := []string{"templates/layout.html", "templates/" + name + ".html"}
		if name == "overview" {
			files = append(files, "templates/live.html")
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, files...)
		if err != nil {
			return fmt.Errorf("web: parsing %s: %w", name, err)
		}
		s.pages[name] = t
	}
	live, err := template.New("live.html").Funcs(funcs).ParseFS(templateFS, "templates/live.html")
	if err != nil {
		return fmt.Errorf("web: parsing live: %w", err)
	}
	s.pages["live"] = live
	if _, err := fs.Stat(staticFS, "static/app.js"); err != nil {
		return fmt.Errorf("web: %w", err)
	}
	return nil
}

// thresholdRow is a row of the DCC's thresholds, with the page's view for
// its form.
type thresholdRow struct {
	V view
	T anomaly.Threshold
}

// view is what every template gets.
type view struct {
	Op   *session
	Page string
	Now  time.Time
	// Flash is a message about what the last form did.
	Flash string
	// Refresh is how often, in seconds, live parts refresh.
	Refresh int
	Data    any
}

// CSRF is the session's anti-forgery token, for the forms.
func (v view) CSRF() string {
	if v.Op == nil {
		return ""
	}
	return v.Op.csrf
}

// render writes page with status; the login and error pages, which may be
// rendered without a session, take data as it is.
func (s *Server) render(c echo.Context, status int, page string, data any) error {
	t, ok := s.pages[page]
	if !ok {
		return fmt.Errorf("web: no page %q", page)
	}
	v := view{Op: who(c), Page: page, Now: s.now(), Data: data, Flash: flashes[c.QueryParam("done")], Refresh: int(s.cfg.Refresh / time.Second)}
	name := "layout"
	if page == "live" {
		name = "live"
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, name, v); err != nil {
		return err
	}
	return c.HTMLBlob(status, buf.Bytes())
}

// flashes are the messages a redirect after a form may ask for: fixed
// texts, so that a link cannot put words on the page.
var flashes = map[string]string{
	"released":          "Released: the command goes on through the router.",
	"released-pending":  "Released: the router's release sweeper forwards it.",
	"deleted":           "Deleted: the command will not be sent.",
	"threshold-set":     "Threshold saved.",
	"threshold-deleted": "Threshold deleted.",
	"proposed":          "Proposed: a second operator with the same role must approve it before it expires.",
	"approved":          "Approved: the action has run; see its outcome below.",
	"rejected":          "Rejected: the action will not run.",
}

// overview is the home page: the quarantine queue by breach kind, live
// counts against the DCC's thresholds and the latest audit entries.
func (s *Server) overview(c echo.Context) error {
	live, err := s.liveData(c)
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, "overview", live)
}

// overviewLive is the overview's live part alone, which the page's script
// fetches every few seconds.
func (s *Server) overviewLive(c echo.Context) error {
	live, err := s.liveData(c)
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, "live", live)
}

// liveData is what the overview shows.
type liveData struct {
	Queue    []kindCount
	Waiting  int
	Oldest   time.Time
	Usage    []usageRow
	Charts   []chart
	Recent   []store.AuditEvent
	Problems []string
	// Rates are the commands per minute by stage and refusal reason; nil
	// when the instance has no rollup.
	Rates *rateData
}

type kindCount struct {
	Kind  anomaly.Kind
	Count int
	Chart template.HTML
}

type usageRow struct {
	Threshold anomaly.Threshold
	Count     int64
}

func (s *Server) liveData(c echo.Context) (liveData, error) {
	ctx := c.Request().Context()
	actor := who(c).id.Actor()
	var d liveData
	if s.deps.Quarantine != nil {
		qs, err := s.deps.Quarantine.List(ctx, actor, anomaly.Filter{State: anomaly.StateQuarantined, Limit: anomaly.MaxList})
		if err != nil {
			d.Problems = append(d.Problems, "quarantine: "+err.Error())
		}
		by := map[anomaly.Kind]int{}
		for _, q := range qs {
			by[q.Kind]++
			if d.Oldest.IsZero() || q.CreatedAt.Before(d.Oldest) {
				d.Oldest = q.CreatedAt
			}
		}
		d.Waiting = len(qs)
		for _, k := range []anomaly.Kind{anomaly.KindUserThreshold, anomaly.KindDCCThreshold, anomaly.KindAttributeLimits} {
			d.Queue = append(d.Queue, kindCount{Kind: k, Count: by[k]})
		}
		bars := make([]bar, len(d.Queue))
		for i, k := range d.Queue {
			bars[i] = bar{Label: string(k.Kind), Value: int64(k.Count)}
		}
		if len(d.Queue) > 0 {
			d.Queue[0].Chart = barChart("Quarantined commands by breach", bars, 0)
		}
	}
	if s.deps.Usage != nil {
		us, err := s.deps.Usage.Usage(ctx, actor, smki.EUI{})
		if err != nil {
			d.Problems = append(d.Problems, "usage: "+err.Error())
		}
		for _, u := range us {
			d.Usage = append(d.Usage, usageRow{Threshold: u.Threshold, Count: u.Count})
		}
	}
	d.Charts = s.hist.charts(12)
	if r, err := s.rates(ctx); err != nil {
		d.Problems = append(d.Problems, "command rates: "+err.Error())
	} else {
		d.Rates = r
	}
	if s.deps.Audit != nil {
		es, err := s.deps.Audit.SearchAudit(ctx, store.AuditQuery{Limit: 10})
		if err != nil {
			d.Problems = append(d.Problems, "audit: "+err.Error())
		}
		d.Recent = es
	}
	return d, nil
}

// quarantineFilter is the quarantine page's filter, from its query.
type quarantineFilter struct {
	User  string
	Kind  string
	State string
	// MinAge keeps records quarantined at least this long ago (a duration
	// such as 30m or 2h).
	MinAge string
}

// quarantineList lists quarantined commands, newest first, filtered by
// user, breach kind, state and age.
func (s *Server) quarantineList(c echo.Context) error {
	ctx := c.Request().Context()
	if s.deps.Quarantine == nil {
		return &pageError{status: http.StatusServiceUnavailable, msg: "This instance has no anomaly detector."}
	}
	f := quarantineFilter{User: strings.TrimSpace(c.QueryParam("user")), Kind: c.QueryParam("kind"),
		State: c.QueryParam("state"), MinAge: strings.TrimSpace(c.QueryParam("age"))}
	af := anomaly.Filter{Limit: anomaly.MaxList, State: anomaly.StateQuarantined}
	var problems []string
	if f.User != "" {
		u, err := smki.ParseEUI(f.User)
		if err != nil {
			problems = append(problems, fmt.Sprintf("user %q is not an EUI-64 (16 hex digits)", f.User))
		}
		af.User = u
	}
	switch f.State {
	case "", "quarantined":
		f.State = "quarantined"
	case "released", "deleted", "any":
		af.State = anomaly.State(f.State)
		if f.State == "any" {
			af.State = ""
		}
	default:
		problems = append(problems, fmt.Sprintf("state %q: want quarantined, released, deleted or any", f.State))
	}
	var minAge time.Duration
	if f.MinAge != "" {
		d, err := time.ParseDuration(f.MinAge)
		if err != nil || d < 0 {
			problems = append(problems, fmt.Sprintf("age %q: want a duration such as 30m or 2h", f.MinAge))
		}
		minAge = d
	}
	if f.Kind != "" && !slices.Contains([]string{string(anomaly.KindUserThreshold), string(anomaly.KindDCCThreshold), string(anomaly.KindAttributeLimits)}, f.Kind) {
		problems = append(problems, fmt.Sprintf("kind %q is not a breach kind", f.Kind))
	}
	var items []anomaly.Quarantine
	if len(problems) == 0 {
		qs, err := s.deps.Quarantine.List(ctx, who(c).id.Actor(), af)
		if err != nil {
			return fromOperator(err)
		}
		now := s.now()
		for _, q := range qs {
			if f.Kind != "" && string(q.Kind) != f.Kind || minAge > 0 && now.Sub(q.CreatedAt) < minAge {
				continue
			}
			items = append(items, q)
		}
	}
	status := http.StatusOK
	if len(problems) > 0 {
		status = http.StatusBadRequest
	}
	return s.render(c, status, "quarantine", map[string]any{"Filter": f, "Items": items, "Problems": problems, "Max": anomaly.MaxList})
}

// quarantineDetail shows one quarantined command: the record, the decoded
// GBCS header and payload, the signature; never a key.
func (s *Server) quarantineDetail(c echo.Context) error {
	if s.deps.Quarantine == nil {
		return &pageError{status: http.StatusServiceUnavailable, msg: "This instance has no anomaly detector."}
	}
	q, err := s.deps.Quarantine.Get(c.Request().Context(), c.Param("ref"), who(c).id.Actor())
	if err != nil {
		return fromOperator(err)
	}
	return s.render(c, http.StatusOK, "quarantine_detail", s.detail(q, "", ""))
}

func (s *Server) detail(q anomaly.Quarantine, reason, problem string) map[string]any {
	d := map[string]any{"Q": q, "Reason": reason, "Problem": problem}
	if m, err := commands.Parse(q.Command); err != nil {
		d["ParseError"] = err.Error()
	} else {
		d["Summary"] = commands.Summarize(m)
	}
	return d
}

// quarantineDecide releases or deletes one command, with a reason, through
// the operator API's logic (the detector checks the role and audits).
func (s *Server) quarantineDecide(c echo.Context) error {
	ctx := c.Request().Context()
	ref := c.Param("ref")
	release := strings.HasSuffix(c.Path(), "/release")
	reason := strings.TrimSpace(c.FormValue("reason"))
	if s.deps.Decider == nil || s.deps.Quarantine == nil {
		return &pageError{status: http.StatusServiceUnavailable, msg: "This instance cannot release or delete commands."}
	}
	o := who(c)
	again := func(status int, msg string) error {
		q, err := s.deps.Quarantine.Get(ctx, ref, o.id.Actor())
		if err != nil {
			return fromOperator(err)
		}
		return s.render(c, status, "quarantine_detail", s.detail(q, reason, msg))
	}
	if reason == "" || len(reason) > operator.MaxReason {
		return again(http.StatusUnprocessableEntity, fmt.Sprintf("Give a reason (1 to %d characters): it goes in the audit log.", operator.MaxReason))
	}
	var err error
	done := "deleted"
	if release {
		_, err = s.deps.Decider.Release(ctx, o.id, ref, reason)
		done = "released"
		if errors.Is(err, anomaly.ErrForwardPending) {
			err, done = nil, "released-pending"
		}
	} else {
		_, err = s.deps.Decider.Delete(ctx, o.id, ref, reason)
	}
	if err != nil {
		var pe *problem.Error
		if errors.As(err, &pe) {
			return again(pe.Kind.Status(), pe.Detail)
		}
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/quarantine/"+url.PathEscape(ref)+"?done="+done)
}

// quarantineBulk proposes releasing or deleting the commands ticked on
// the quarantine list: a second quarantine officer approves it on the
// proposals page (decision 023).
func (s *Server) quarantineBulk(c echo.Context) error {
	if s.deps.Decider == nil {
		return &pageError{status: http.StatusServiceUnavailable, msg: "This instance cannot release or delete commands."}
	}
	form, err := c.FormParams()
	if err != nil {
		return &pageError{status: http.StatusBadRequest, msg: "The form does not parse."}
	}
	to := anomaly.StateReleased
	switch form.Get("action") {
	case "release":
	case "delete":
		to = anomaly.StateDeleted
	default:
		return &pageError{status: http.StatusBadRequest, msg: "Choose release or delete."}
	}
	reason := strings.TrimSpace(form.Get("reason"))
	if reason == "" || len(reason) > operator.MaxReason {
		return &pageError{status: http.StatusUnprocessableEntity, msg: fmt.Sprintf("Give a reason (1 to %d characters): it goes in the audit log.", operator.MaxReason)}
	}
	if _, err := s.deps.Decider.ProposeBulk(c.Request().Context(), who(c).id, to, form["ref"], reason); err != nil {
		return fromOperator(err)
	}
	return c.Redirect(http.StatusSeeOther, "/proposals?done=proposed")
}

// proposalRow is a proposal on the proposals page, with whether the
// operator may decide it.
type proposalRow struct {
	P proposal.Proposal
	// Role is the role its kind needs; CanApprove and CanReject say what
	// the operator may do.
	Role                  string
	CanApprove, CanReject bool
}

// proposalList shows the pending proposals, with approve and reject
// forms, and the history.
func (s *Server) proposalList(c echo.Context) error {
	if s.deps.Decider == nil {
		return &pageError{status: http.StatusServiceUnavailable, msg: "This instance has no proposals."}
	}
	return s.renderProposals(c, http.StatusOK, "")
}

func (s *Server) renderProposals(c echo.Context, status int, problem string) error {
	ctx := c.Request().Context()
	pending, err := s.deps.Decider.Proposals(ctx, proposal.Filter{State: proposal.StatePending})
	if err != nil {
		return fromOperator(err)
	}
	all, err := s.deps.Decider.Proposals(ctx, proposal.Filter{Limit: 100})
	if err != nil {
		return fromOperator(err)
	}
	o := who(c)
	row := func(p proposal.Proposal) proposalRow {
		r := proposalRow{P: p}
		if role, ok := s.deps.Decider.ProposalRole(p.Kind); ok {
			r.Role = string(role)
			has := o.id.Has(role)
			r.CanApprove = has && p.Proposer != o.id.Name
			r.CanReject = has
		}
		return r
	}
	var open, history []proposalRow
	for _, p := range pending {
		open = append(open, row(p))
	}
	for _, p := range all {
		if p.State != proposal.StatePending {
			history = append(history, row(p))
		}
	}
	return s.render(c, status, "proposals", map[string]any{"Pending": open, "History": history, "Problem": problem})
}

// proposalDecide approves or rejects a proposal, with a reason; approval
// runs the action as this operator.
func (s *Server) proposalDecide(c echo.Context) error {
	if s.deps.Decider == nil {
		return &pageError{status: http.StatusServiceUnavailable, msg: "This instance has no proposals."}
	}
	ctx := c.Request().Context()
	approve := strings.HasSuffix(c.Path(), "/approve")
	reason := strings.TrimSpace(c.FormValue("reason"))
	if reason == "" || len(reason) > operator.MaxReason {
		return s.renderProposals(c, http.StatusUnprocessableEntity, fmt.Sprintf("Give a reason (1 to %d characters): it goes in the audit log.", operator.MaxReason))
	}
	var err error
	done := "rejected"
	if approve {
		_, err = s.deps.Decider.ApproveProposal(ctx, who(c).id, c.Param("id"), reason)
		done = "approved"
	} else {
		_, err = s.deps.Decider.RejectProposal(ctx, who(c).id, c.Param("id"), reason)
	}
	if err != nil {
		if pe := fromOperator(err); pe.cause == nil {
			return s.renderProposals(c, pe.status, pe.msg)
		}
		return fromOperator(err)
	}
	return c.Redirect(http.StatusSeeOther, "/proposals?done="+done)
}

// thresholdList shows the DCC's thresholds and the users' own, with the
// form to set one.
func (s *Server) thresholdList(c echo.Context) error {
	return s.renderThresholds(c, http.StatusOK, thresholdForm{Scope: string(anomaly.ScopeUserService), Window: "24h"}, "")
}

// thresholdForm is the threshold form as typed.
type thresholdForm struct {
	ID, Scope, User, ServiceRef, Limit, Window, Attribute, Min, Max string
	Fixed                                                           bool
}

func (s *Server) renderThresholds(c echo.Context, status int, form thresholdForm, problem string) error {
	if s.deps.Thresholds == nil {
		return &pageError{status: http.StatusServiceUnavailable, msg: "This instance has no anomaly detector."}
	}
	ts, err := s.deps.Thresholds.Thresholds(c.Request().Context(), who(c).id.Actor())
	if err != nil {
		return fromOperator(err)
	}
	var dcc, users []anomaly.Threshold
	for _, t := range ts {
		if t.User.IsZero() {
			dcc = append(dcc, t)
		} else {
			users = append(users, t)
		}
	}
	return s.render(c, status, "thresholds", map[string]any{"DCC": dcc, "Users": users, "Form": form, "Problem": problem,
		"Scopes": []anomaly.Scope{anomaly.ScopeUserService, anomaly.ScopeUserTotal, anomaly.ScopeDCCService, anomaly.ScopeAttribute}})
}

// thresholdSet creates or replaces a threshold from the form; the detector
// validates it, checks the role and audits the change.
func (s *Server) thresholdSet(c echo.Context) error {
	f := thresholdForm{ID: strings.TrimSpace(c.FormValue("id")), Scope: c.FormValue("scope"), User: strings.TrimSpace(c.FormValue("user")),
		ServiceRef: strings.TrimSpace(c.FormValue("serviceRef")), Limit: strings.TrimSpace(c.FormValue("limit")),
		Window: strings.TrimSpace(c.FormValue("window")), Fixed: c.FormValue("fixed") == "on",
		Attribute: strings.TrimSpace(c.FormValue("attribute")), Min: strings.TrimSpace(c.FormValue("min")), Max: strings.TrimSpace(c.FormValue("max"))}
	t, err := f.threshold()
	if err != nil {
		return s.renderThresholds(c, http.StatusUnprocessableEntity, f, err.Error())
	}
	if s.deps.Thresholds == nil {
		return &pageError{status: http.StatusServiceUnavailable, msg: "This instance has no anomaly detector."}
	}
	if s.deps.Decider == nil {
		return &pageError{status: http.StatusServiceUnavailable, msg: "This instance cannot change thresholds."}
	}
	_, p, err := s.deps.Decider.SetThreshold(c.Request().Context(), who(c).id, t)
	if err != nil {
		if pe := fromOperator(err); pe.cause == nil {
			return s.renderThresholds(c, pe.status, f, pe.msg)
		}
		return fromOperator(err)
	}
	if p != nil { // loosening a DCC threshold: a second admin approves
		return c.Redirect(http.StatusSeeOther, "/proposals?done=proposed")
	}
	return c.Redirect(http.StatusSeeOther, "/thresholds?done=threshold-set")
}

// threshold reads the form, naming the field at fault.
func (f thresholdForm) threshold() (anomaly.Threshold, error) {
	scope, err := anomaly.ParseScope(f.Scope)
	if err != nil {
		return anomaly.Threshold{}, fmt.Errorf("scope: %w", err)
	}
	t := anomaly.Threshold{ID: f.ID, Scope: scope, ServiceRef: f.ServiceRef, Fixed: f.Fixed, Attribute: f.Attribute}
	if f.User != "" {
		if t.User, err = smki.ParseEUI(f.User); err != nil {
			return anomaly.Threshold{}, fmt.Errorf("user %q is not an EUI-64 (16 hex digits)", f.User)
		}
	}
	num := func(name, v string) (int64, error) {
		if v == "" {
			return 0, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s %q is not a whole number", name, v)
		}
		return n, nil
	}
	if scope == anomaly.ScopeAttribute {
		if t.Min, err = num("min", f.Min); err != nil {
			return anomaly.Threshold{}, err
		}
		if t.Max, err = num("max", f.Max); err != nil {
			return anomaly.Threshold{}, err
		}
		return t, nil
	}
	if t.Limit, err = num("limit", f.Limit); err != nil {
		return anomaly.Threshold{}, err
	}
	if t.Window, err = time.ParseDuration(f.Window); err != nil {
		return anomaly.Threshold{}, fmt.Errorf("window %q: want a duration such as 15m or 24h", f.Window)
	}
	return t, nil
}

// thresholdDelete deletes a threshold, with a reason.
func (s *Server) thresholdDelete(c echo.Context) error {
	reason := strings.TrimSpace(c.FormValue("reason"))
	form := thresholdForm{Scope: string(anomaly.ScopeUserService), Window: "24h"}
	if reason == "" || len(reason) > operator.MaxReason {
		return s.renderThresholds(c, http.StatusUnprocessableEntity, form, "Deleting a threshold needs a reason: it goes in the audit log.")
	}
	if s.deps.Thresholds == nil {
		return &pageError{status: http.StatusServiceUnavailable, msg: "This instance has no anomaly detector."}
	}
	if s.deps.Decider == nil {
		return &pageError{status: http.StatusServiceUnavailable, msg: "This instance cannot change thresholds."}
	}
	p, err := s.deps.Decider.DeleteThreshold(c.Request().Context(), who(c).id, c.Param("id"), reason)
	if err != nil {
		if pe := fromOperator(err); pe.cause == nil {
			return s.renderThresholds(c, pe.status, form, pe.msg)
		}
		return fromOperator(err)
	}
	if p != nil { // a DCC threshold: a second admin approves
		return c.Redirect(http.StatusSeeOther, "/proposals?done=proposed")
	}
	return c.Redirect(http.StatusSeeOther, "/thresholds?done=threshold-deleted")
}

// auditQuery is the audit page's search, as typed.
type auditQuery struct {
	Actor, Action, Object, From, To string
	Before                          int64
}

// auditSearch searches the audit log by actor, action, object and time,
// newest first, and shows the result of checking the whole hash chain.
func (s *Server) auditSearch(c echo.Context) error {
	if s.deps.Audit == nil {
		return &pageError{status: http.StatusServiceUnavailable, msg: "This instance has no audit log."}
	}
	ctx := c.Request().Context()
	aq := auditQuery{Actor: strings.TrimSpace(c.QueryParam("actor")), Action: strings.TrimSpace(c.QueryParam("action")),
		Object: strings.TrimSpace(c.QueryParam("object")), From: strings.TrimSpace(c.QueryParam("from")), To: strings.TrimSpace(c.QueryParam("to"))}
	q := store.AuditQuery{Actor: aq.Actor, Action: aq.Action, Object: aq.Object, Limit: 100}
	var problems []string
	parseTime := func(name, v string) time.Time {
		if v == "" {
			return time.Time{}
		}
		for _, layout := range []string{time.RFC3339, "2006-01-02T15:04", "2006-01-02"} {
			if t, err := time.Parse(layout, v); err == nil {
				return t
			}
		}
		problems = append(problems, fmt.Sprintf("%s %q: want a date (2026-12-05) or time (2026-12-05T10:00)", name, v))
		return time.Time{}
	}
	q.From, q.To = parseTime("from", aq.From), parseTime("to", aq.To)
	if v := c.QueryParam("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			problems = append(problems, fmt.Sprintf("before %q is not an entry number", v))
		}
		q.Before, aq.Before = n, n
	}
	var entries []store.AuditEvent
	if len(problems) == 0 {
		var err error
		if entries, err = s.deps.Audit.SearchAudit(ctx, q); err != nil {
			return err
		}
	}
	checked, at, verr := s.chain(ctx)
	chain := fmt.Sprintf("The hash chain of all %d entries verifies (checked at %s).", checked, at.UTC().Format("15:04:05Z"))
	if verr != nil {
		chain = fmt.Sprintf("The hash chain is BROKEN after %d good entries (checked at %s): %v", checked, at.UTC().Format("15:04:05Z"), verr)
		s.log.ErrorContext(ctx, "audit chain broken", "checked", checked, "err", verr)
	}
	next := ""
	if len(entries) == q.Limit {
		v := url.Values{"actor": {aq.Actor}, "action": {aq.Action}, "object": {aq.Object}, "from": {aq.From}, "to": {aq.To},
			"before": {strconv.FormatInt(entries[len(entries)-1].Seq, 10)}}
		next = "/audit?" + v.Encode()
	}
	status := http.StatusOK
	if len(problems) > 0 {
		status = http.StatusBadRequest
	}
	return s.render(c, status, "audit", map[string]any{"Query": aq, "Entries": entries, "Problems": problems,
		"Chain": chain, "ChainOK": verr == nil, "Next": next})
}

// fromOperator turns an error of the detector or the operator API into a
// page error with the right status and the error's own words.
func fromOperator(err error) *pageError {
	var pe *problem.Error
	if errors.As(err, &pe) {
		return &pageError{status: pe.Kind.Status(), msg: pe.Detail}
	}
	switch {
	case errors.Is(err, anomaly.ErrInvalid):
		return &pageError{status: http.StatusUnprocessableEntity, msg: err.Error()}
	case errors.Is(err, anomaly.ErrForbidden):
		return &pageError{status: http.StatusForbidden, msg: err.Error()}
	case errors.Is(err, anomaly.ErrNotFound):
		return &pageError{status: http.StatusNotFound, msg: err.Error()}
	case errors.Is(err, anomaly.ErrConflict), errors.Is(err, anomaly.ErrNotStricter):
		return &pageError{status: http.StatusConflict, msg: err.Error()}
	}
	return &pageError{status: http.StatusInternalServerError, msg: "Something went wrong; it has been logged.", cause: err}
}
