package operator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/metertrust/metertrust/anomaly"
	"github.com/metertrust/metertrust/problem"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// MaxReason bounds the reason given for a release, a delete or a threshold
// deletion (anomaly's own bound).
const MaxReason = 1000

// refuse audits a refusal of an authenticated operator's request and
// returns it; for use where the detector has not audited it.
func (s *Server) refuse(c echo.Context, action, object string, err error) error {
	oe := s.errs.Classify(err)
	s.audit(c.Request().Context(), who(c).Name, action, clip(object), oe)
	return oe
}

// query parses the query string strictly: a malformed string, an unknown
// parameter or a repeated one is an error naming it.
func query(c echo.Context, allowed ...string) (url.Values, error) {
	q, err := url.ParseQuery(c.Request().URL.RawQuery)
	if err != nil {
		return nil, problem.New(ErrBadRequest, "query", "malformed query string")
	}
	for k, vs := range q {
		param := clip(k)
		if param == "" {
			param = "query"
		}
		switch {
		case len(allowed) == 0:
			return nil, problem.New(ErrBadRequest, param, "this route takes no query parameters")
		case !slices.Contains(allowed, k):
			return nil, problem.New(ErrBadRequest, param, "unknown query parameter (want %s)", strings.Join(allowed, ", "))
		case len(vs) > 1:
			return nil, problem.New(ErrBadRequest, param, "given %d times; give it once", len(vs))
		}
	}
	return q, nil
}

// userQuery reads a query string whose only parameter is the optional
// user (see userParam).
func userQuery(c echo.Context) (smki.EUI, error) {
	q, err := query(c, "user")
	if err != nil {
		return smki.EUI{}, err
	}
	return userParam(q)
}

// userParam reads the optional user query parameter.
func userParam(q url.Values) (smki.EUI, error) {
	v := q.Get("user")
	if v == "" {
		return smki.EUI{}, nil
	}
	u, err := smki.ParseEUI(v)
	if err != nil {
		return smki.EUI{}, problem.New(ErrBadRequest, "user", "%q is not an EUI-64 (want 16 hex digits)", clip(v))
	}
	return u, nil
}

// readJSON reads a JSON request body strictly into v: application/json
// only, within the body limit, one object, no unknown fields, no trailing
// data. Errors name the field at fault where there is one.
func (s *Server) readJSON(c echo.Context, v any) error {
	req := c.Request()
	mt, _, err := mime.ParseMediaType(req.Header.Get(echo.HeaderContentType))
	if err != nil || mt != echo.MIMEApplicationJSON {
		return problem.New(ErrUnsupportedMediaType, "Content-Type", "the body must be application/json")
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), req.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return problem.Wrap(ErrTooLarge, err, "", "request body exceeds %d bytes", mbe.Limit)
		}
		return problem.Wrap(ErrBadRequest, err, "body", "reading the body failed")
	}
	return decodeStrict(body, v)
}

// decodeStrict decodes exactly one JSON value into v, refusing unknown
// fields and trailing data; the error names the field at fault.
func decodeStrict(body []byte, v any) error {
	if len(strings.TrimSpace(string(body))) == 0 {
		return problem.New(ErrBadRequest, "body", "empty body; want a JSON object")
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return problem.New(ErrBadRequest, "body", "trailing data after the JSON object")
	}
	return nil
}

// jsonError turns a decoding error into a 400 naming the field.
func jsonError(err error) *Error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "body"
		}
		return problem.Wrap(ErrBadRequest, err, field, "want a JSON %s, got %s", te.Type.Kind(), te.Value)
	case errors.As(err, &se):
		return problem.Wrap(ErrBadRequest, err, "body", "malformed JSON at byte %d", se.Offset)
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		f = strings.TrimSuffix(strings.TrimPrefix(f, `"`), `"`)
		param := clip(f)
		if param == "" {
			param = "body"
		}
		return problem.Wrap(ErrBadRequest, err, param, "unknown field %q", clip(f))
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return problem.Wrap(ErrBadRequest, err, "body", "truncated JSON")
	}
	return problem.Wrap(ErrBadRequest, err, "body", "%s", clip(msg))
}

// readReason reads a DecisionRequest and checks its reason.
func (s *Server) readReason(c echo.Context) (string, error) {
	var r DecisionRequest
	if err := s.readJSON(c, &r); err != nil {
		return "", err
	}
	reason := strings.TrimSpace(r.Reason)
	switch {
	case reason == "":
		return "", problem.New(ErrBadRequest, "reason", "a reason is required")
	case len(reason) > MaxReason:
		return "", problem.New(ErrBadRequest, "reason", "reason of %d bytes exceeds %d", len(reason), MaxReason)
	}
	return reason, nil
}

// keyRE is the shape of a quarantine reference ("Q-20261123-3F7KQ2M4XJ")
// and of a threshold ID (anomaly's rule for IDs).
var keyRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// pathKey returns the path parameter name, checked against keyRE.
func pathKey(c echo.Context, name string) (string, error) {
	v := c.Param(name)
	if !keyRE.MatchString(v) {
		return v, problem.New(ErrBadRequest, name, "%q must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit", clip(v))
	}
	return v, nil
}

func unavailable(what string) *Error {
	return problem.New(ErrUnavailable, "", "this instance has no %s", what)
}

// listQuarantine answers GET /v1/quarantine: newest first, one page at a
// time; follow next for the following page.
func (s *Server) listQuarantine(c echo.Context) error {
	const action = "operator.quarantine.list"
	ctx := c.Request().Context()
	if s.deps.Quarantine == nil {
		return unavailable("anomaly detector")
	}
	q, err := query(c, "user", "state", "after", "limit")
	if err != nil {
		return s.refuse(c, action, c.Request().URL.Path, err)
	}
	var f anomaly.Filter
	if f.User, err = userParam(q); err != nil {
		return s.refuse(c, action, c.Request().URL.Path, err)
	}
	if v := q.Get("state"); v != "" {
		if f.State, err = anomaly.ParseState(v); err != nil {
			return s.refuse(c, action, c.Request().URL.Path, problem.New(ErrBadRequest, "state", "%q: want quarantined, released or deleted", clip(v)))
		}
	}
	f.Limit = anomaly.DefaultList
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > anomaly.MaxList {
			return s.refuse(c, action, c.Request().URL.Path, problem.New(ErrBadRequest, "limit", "%q: want a whole number from 1 to %d", clip(v), anomaly.MaxList))
		}
		f.Limit = n
	}
	actor := who(c).Actor
	if after := q.Get("after"); after != "" {
		last, err := s.deps.Quarantine.Get(ctx, after, actor)
		if err != nil {
			oe := fromAnomaly(err, "after")
			if oe.Kind == ErrNotFound || oe.Kind == ErrBadRequest {
				oe = problem.Wrap(ErrBadRequest, err, "after", "no quarantined command %q to list after", clip(after))
			}
			return s.refuse(c, action, c.Request().URL.Path, oe)
		}
		f.Before, f.BeforeRef = last.CreatedAt, last.Ref
	}
	qs, err := s.deps.Quarantine.List(ctx, actor, f)
	if err != nil {
		return s.refuse(c, action, c.Request().URL.Path, fromAnomaly(err, ""))
	}
	out := QuarantineList{Items: make([]QuarantineView, 0, len(qs))}
	for _, r := range qs {
		out.Items = append(out.Items, quarantineView(r, false))
	}
	if len(qs) == f.Limit {
		q.Set("after", qs[len(qs)-1].Ref)
		out.Next = "/v1/quarantine?" + q.Encode()
	}
	return c.JSON(http.StatusOK, out)
}

// getQuarantine answers GET /v1/quarantine/{ref}, with the command.
func (s *Server) getQuarantine(c echo.Context) error {
	const action = "operator.quarantine.get"
	ref, err := pathKey(c, "ref")
	if err != nil {
		return s.refuse(c, action, ref, err)
	}
	if s.deps.Quarantine == nil {
		return unavailable("anomaly detector")
	}
	if _, err := query(c); err != nil {
		return s.refuse(c, action, ref, err)
	}
	q, err := s.deps.Quarantine.Get(c.Request().Context(), ref, who(c).Actor)
	if err != nil {
		return s.refuse(c, action, ref, fromAnomaly(err, "ref"))
	}
	return c.JSON(http.StatusOK, quarantineView(q, true))
}

// release answers POST /v1/quarantine/{ref}/release: the detector releases
// the command (and audits it), which leaves its forwarding pending in the
// store. Beside the router, the Releaser then forwards it at once and the
// answer is 200 with the router's receipt; a forwarding failure is
// answered 502 with the record (whose forwarding says whether the router
// retries) and audited. Without the router (Deferred), or when a router's
// release sweeper took it first, the answer is 202 Accepted with the
// record, its forwarding pending: the sweeper forwards it and records the
// outcome.
func (s *Server) release(c echo.Context) error {
	const action = "anomaly.release"
	ctx := c.Request().Context()
	ref, err := pathKey(c, "ref")
	if err != nil {
		return s.refuse(c, action, ref, err)
	}
	if s.deps.Quarantine == nil || s.deps.Releaser == nil {
		return unavailable("anomaly detector or router to release commands to")
	}
	reason, err := s.readReason(c)
	if err == nil {
		_, err = query(c)
	}
	if err != nil {
		return s.refuse(c, action, ref, err)
	}
	p := who(c)
	res, err := s.releaseAs(ctx, p.Name, p.Actor, ref, reason)
	switch {
	case errors.Is(err, anomaly.ErrForwardPending):
		return c.JSON(http.StatusAccepted, res)
	case err != nil:
		return err
	}
	return c.JSON(http.StatusOK, res)
}

// Release releases the quarantined command ref as the operator id, with
// reason, and carries it on as the API's release does: the detector
// releases it (and audits that, or its refusal); the Releaser then
// forwards it, and the outcome is audited. The result is the record as it
// stands after. An error wrapping anomaly.ErrForwardPending comes with the
// result when the router's release sweeper forwards it instead (the API's
// 202); any other error is an *Error (the API's problem), the record in
// its Extension when the release was made but the router did not accept
// the command. For the dashboard, which authenticates operators itself.
func (s *Server) Release(ctx context.Context, id Identity, ref, reason string) (ReleaseResult, error) {
	if !keyRE.MatchString(ref) {
		return ReleaseResult{}, problem.New(ErrBadRequest, "ref", "%q is not a quarantine reference", clip(ref))
	}
	return s.releaseAs(ctx, id.Name, id.Actor(), ref, reason)
}

func (s *Server) releaseAs(ctx context.Context, name string, actor anomaly.Actor, ref, reason string) (ReleaseResult, error) {
	if s.deps.Quarantine == nil || s.deps.Releaser == nil {
		return ReleaseResult{}, unavailable("anomaly detector or router to release commands to")
	}
	q, err := s.deps.Quarantine.Release(ctx, ref, actor, reason)
	if err != nil {
		return ReleaseResult{}, fromAnomaly(err, "ref") // the detector audited its refusal
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Duration(s.cfg.ForwardTimeout))
	receipt, ferr := s.deps.Releaser.ForwardReleased(fctx, q)
	cancel()
	if errors.Is(ferr, anomaly.ErrForwardPending) {
		s.log.InfoContext(ctx, "released command left to the router's release sweeper", "ref", ref, "command", q.CommandID, "operator", name)
		return ReleaseResult{Quarantine: quarantineView(q, false)}, ferr
	}
	q = s.reread(ctx, q, actor)
	view := quarantineView(q, false)
	const fwd = "operator.quarantine.forward"
	if ferr != nil {
		oe := &Error{Kind: ErrForwardFailed, Err: ferr, Extension: &view,
			Detail: fmt.Sprintf("command %s was released by %s but the router did not accept it for forwarding: %s; nothing was forwarded and the record stays released (its forwarding says whether the router retries)",
				q.CommandID, name, clipLong(ferr.Error()))}
		s.log.ErrorContext(ctx, "released command not forwarded", "ref", ref, "command", q.CommandID, "operator", name, "err", ferr)
		s.audit(ctx, name, fwd, ref, oe)
		return ReleaseResult{Quarantine: view}, oe
	}
	s.appendAudit(ctx, name, fwd, ref, store.OutcomeSuccess, map[string]any{"command": q.CommandID, "user": q.User.String(), "serviceRef": q.ServiceRef})
	return ReleaseResult{Quarantine: view, Forwarded: receipt}, nil
}

// reread returns the record ref as stored now (with its forwarding's
// outcome), or q if it cannot be read.
func (s *Server) reread(ctx context.Context, q anomaly.Quarantine, actor anomaly.Actor) anomaly.Quarantine {
	cur, err := s.deps.Quarantine.Get(context.WithoutCancel(ctx), q.Ref, actor)
	if err != nil {
		s.log.WarnContext(ctx, "re-reading a released record", "ref", q.Ref, "err", err)
		return q
	}
	return cur
}

// deleteQuarantine answers POST /v1/quarantine/{ref}/delete.
func (s *Server) deleteQuarantine(c echo.Context) error {
	const action = "anomaly.delete"
	ref, err := pathKey(c, "ref")
	if err != nil {
		return s.refuse(c, action, ref, err)
	}
	if s.deps.Quarantine == nil {
		return unavailable("anomaly detector")
	}
	reason, err := s.readReason(c)
	if err == nil {
		_, err = query(c)
	}
	if err != nil {
		return s.refuse(c, action, ref, err)
	}
	q, err := s.deps.Quarantine.Delete(c.Request().Context(), ref, who(c).Actor, reason)
	if err != nil {
		return fromAnomaly(err, "ref") // the detector audited its refusal
	}
	return c.JSON(http.StatusOK, quarantineView(q, false))
}

// Delete deletes the quarantined command ref as the operator id, with
// reason (the detector audits it, or its refusal), for the dashboard; an
// error is an *Error.
func (s *Server) Delete(ctx context.Context, id Identity, ref, reason string) (QuarantineView, error) {
	if !keyRE.MatchString(ref) {
		return QuarantineView{}, problem.New(ErrBadRequest, "ref", "%q is not a quarantine reference", clip(ref))
	}
	if s.deps.Quarantine == nil {
		return QuarantineView{}, unavailable("anomaly detector")
	}
	q, err := s.deps.Quarantine.Delete(ctx, ref, id.Actor(), reason)
	if err != nil {
		return QuarantineView{}, fromAnomaly(err, "ref")
	}
	return quarantineView(q, false), nil
}

// listThresholds answers GET /v1/thresholds.
func (s *Server) listThresholds(c echo.Context) error {
	const action = "operator.threshold.list"
	if s.deps.Thresholds == nil {
		return unavailable("anomaly detector")
	}
	if _, err := query(c); err != nil {
		return s.refuse(c, action, c.Request().URL.Path, err)
	}
	ts, err := s.deps.Thresholds.Thresholds(c.Request().Context(), who(c).Actor)
	if err != nil {
		return s.refuse(c, action, c.Request().URL.Path, fromAnomaly(err, ""))
	}
	if ts == nil {
		ts = []anomaly.Threshold{}
	}
	return c.JSON(http.StatusOK, ThresholdList{Items: ts})
}

// getThreshold answers GET /v1/thresholds/{id}.
func (s *Server) getThreshold(c echo.Context) error {
	const action = "operator.threshold.get"
	id, err := pathKey(c, "id")
	if err != nil {
		return s.refuse(c, action, id, err)
	}
	if s.deps.Thresholds == nil {
		return unavailable("anomaly detector")
	}
	if _, err := query(c); err != nil {
		return s.refuse(c, action, id, err)
	}
	ts, err := s.deps.Thresholds.Thresholds(c.Request().Context(), who(c).Actor)
	if err != nil {
		return s.refuse(c, action, id, fromAnomaly(err, ""))
	}
	for _, t := range ts {
		if t.ID == id {
			return c.JSON(http.StatusOK, t)
		}
	}
	return s.refuse(c, action, id, problem.New(ErrNotFound, "id", "no threshold %q", clip(id)))
}

// putThreshold answers PUT /v1/thresholds/{id}: it creates or replaces the
// threshold id. The body is the threshold's wire form; an id in it must
// equal the path's. Loosening a DCC threshold is not applied but proposed:
// 202 Accepted with the proposal (decision 023).
func (s *Server) putThreshold(c echo.Context) error {
	const action = "anomaly.threshold.set"
	id, err := pathKey(c, "id")
	if err != nil {
		return s.refuse(c, action, id, err)
	}
	if s.deps.Thresholds == nil {
		return unavailable("anomaly detector")
	}
	t, err := s.readThreshold(c, id)
	if err == nil {
		_, err = query(c)
	}
	if err != nil {
		return s.refuse(c, action, id, err)
	}
	out, p, err := s.SetThreshold(c.Request().Context(), identityOf(c), t)
	switch {
	case err != nil:
		return err // the detector or the desk audited its refusal
	case p != nil:
		return c.JSON(http.StatusAccepted, p) // loosening: a second operator approves
	}
	return c.JSON(http.StatusOK, out)
}

// readThreshold reads and validates a threshold body for PUT
// /v1/thresholds/{id}.
func (s *Server) readThreshold(c echo.Context, id string) (anomaly.Threshold, error) {
	var raw json.RawMessage
	if err := s.readJSON(c, &raw); err != nil {
		return anomaly.Threshold{}, err
	}
	t, err := ParseThreshold(raw)
	if err != nil {
		return anomaly.Threshold{}, err
	}
	switch {
	case t.ID == "":
		t.ID = id
	case t.ID != id:
		return anomaly.Threshold{}, problem.New(ErrBadRequest, "id", "body id %q differs from the path's %q", clip(t.ID), clip(id))
	}
	if t.SetBy != "" || !t.SetAt.IsZero() {
		return anomaly.Threshold{}, problem.New(ErrBadRequest, "setBy", "setBy and setAt are filled by the server")
	}
	if err := t.Validate(); err != nil {
		return anomaly.Threshold{}, problem.Wrap(ErrBadRequest, err, thresholdParam(err.Error()), "%s", clipLong(err.Error()))
	}
	return t, nil
}

// ParseThreshold decodes a threshold from an API body, strictly (unknown
// fields, trailing data, a malformed user or window are errors), without
// validating it. Its error is an *Error (ErrBadRequest) naming the field.
func ParseThreshold(b []byte) (anomaly.Threshold, error) {
	var probe map[string]json.RawMessage
	if err := decodeStrict(b, &probe); err != nil {
		return anomaly.Threshold{}, err
	}
	var t anomaly.Threshold
	if err := t.UnmarshalJSON(b); err != nil {
		return anomaly.Threshold{}, problem.Wrap(ErrBadRequest, err, thresholdParam(err.Error()), "%s", clipLong(err.Error()))
	}
	return t, nil
}

// thresholdParam names the threshold field an anomaly error is about, from
// its text (anomaly's errors name the field in words).
func thresholdParam(msg string) string {
	for _, p := range []struct{ phrase, field string }{
		{`unknown field "`, ""},
		{"threshold ID", "id"},
		{"threshold user", "user"},
		{"takes no user", "user"},
		{"threshold window", "window"},
		{"window ", "window"},
		{"limit ", "limit"},
		{"takes no limit or window", "limit"},
		{"service reference", "serviceRef"},
		{"attribute name", "attribute"},
		{"minimum", "min"},
		{"takes no attribute", "attribute"},
		{"scope", "scope"},
	} {
		i := strings.Index(msg, p.phrase)
		if i < 0 {
			continue
		}
		if p.field == "" {
			rest := msg[i+len(p.phrase):]
			if j := strings.IndexByte(rest, '"'); j > 0 {
				return clip(rest[:j])
			}
			continue
		}
		return p.field
	}
	return "body"
}

// deleteThreshold answers DELETE /v1/thresholds/{id} with a reason: 204,
// or for a DCC threshold 202 Accepted with the proposal of its deletion.
func (s *Server) deleteThreshold(c echo.Context) error {
	const action = "anomaly.threshold.delete"
	id, err := pathKey(c, "id")
	if err != nil {
		return s.refuse(c, action, id, err)
	}
	if s.deps.Thresholds == nil {
		return unavailable("anomaly detector")
	}
	reason, err := s.readReason(c)
	if err == nil {
		_, err = query(c)
	}
	if err != nil {
		return s.refuse(c, action, id, err)
	}
	p, err := s.DeleteThreshold(c.Request().Context(), identityOf(c), id, reason)
	switch {
	case err != nil:
		return err // the detector or the desk audited its refusal
	case p != nil:
		return c.JSON(http.StatusAccepted, p) // a DCC threshold: a second operator approves
	}
	return c.NoContent(http.StatusNoContent)
}

// usage answers GET /v1/usage?user=: live counts against the thresholds of
// one user, or the DCC-wide ones without user.
func (s *Server) usage(c echo.Context) error {
	const action = "operator.usage"
	if s.deps.Usage == nil {
		return unavailable("anomaly detector")
	}
	u, err := userQuery(c)
	if err != nil {
		return s.refuse(c, action, c.Request().URL.Path, err)
	}
	us, err := s.deps.Usage.Usage(c.Request().Context(), who(c).Actor, u)
	if err != nil {
		return s.refuse(c, action, c.Request().URL.Path, fromAnomaly(err, "user"))
	}
	out := UsageList{Items: make([]UsageView, 0, len(us))}
	if !u.IsZero() {
		out.User = &u
	}
	for _, x := range us {
		out.Items = append(out.Items, UsageView{Threshold: x.Threshold, Count: x.Count})
	}
	return c.JSON(http.StatusOK, out)
}
