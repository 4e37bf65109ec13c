package router

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/metertrust/metertrust/anomaly"
)

// thresholdManager is what the user's threshold endpoints need of package
// anomaly's Detector.
type thresholdManager interface {
	Thresholds(ctx context.Context, actor anomaly.Actor) ([]anomaly.Threshold, error)
	SetThreshold(ctx context.Context, actor anomaly.Actor, t anomaly.Threshold) (anomaly.Threshold, error)
	DeleteThreshold(ctx context.Context, id string, actor anomaly.Actor, reason string) error
}

// thresholdErr maps the error of a threshold change: the detector audits
// the changes it refuses (invalid, not stricter than the DCC's, another
// user's threshold), so those are marked audited; a failure of its own is
// not. Another user's threshold is reported as absent.
func thresholdErr(err error) error {
	if errors.Is(err, anomaly.ErrNotStricter) {
		return audited(fmt.Errorf("%w: %w", ErrNotStricter, err))
	}
	return decisionErr(err)
}

// defaultDeleteReason is the reason recorded when a user deletes its own
// threshold without giving one.
const defaultDeleteReason = "deleted by its user through the router API"

// getThresholds: GET /v1/thresholds lists the anomaly thresholds that apply
// to the caller: its own, which it sets, and the DCC's, which its own must
// be stricter than.
func (s *Server) getThresholds(c echo.Context) error {
	caller := callerFrom(c)
	ts, err := s.cfg.Thresholds.Thresholds(c.Request().Context(), userActor(caller))
	if err != nil {
		return anomalyErr(err)
	}
	out := struct {
		Own []anomaly.Threshold `json:"own"`
		DCC []anomaly.Threshold `json:"dcc"`
	}{Own: []anomaly.Threshold{}, DCC: []anomaly.Threshold{}}
	for _, t := range ts {
		switch {
		case t.IsDCC():
			out.DCC = append(out.DCC, t)
		case t.User == caller.EUI:
			out.Own = append(out.Own, t)
		}
	}
	return c.JSON(http.StatusOK, out)
}

// putThreshold: PUT /v1/thresholds/{id} with a threshold (package
// anomaly's wire form: scope user-srv, user-total or attribute, with its
// serviceRef, limit and window, or attribute, min and max) sets the
// caller's own threshold id, creating or replacing it. It must be stricter
// than the DCC's for the same scope (not-stricter otherwise).
func (s *Server) putThreshold(c echo.Context) error {
	var t anomaly.Threshold
	if err := s.decodeJSON(c, &t); err != nil {
		return err
	}
	caller := callerFrom(c)
	id := c.Param("id")
	switch {
	case t.ID != "" && t.ID != id:
		return fmt.Errorf("%w: threshold id %q in the body is not %q of the path", ErrBadRequest, clip(t.ID, 64), clip(id, 64))
	case !t.User.IsZero() && t.User != caller.EUI:
		return fmt.Errorf("%w: a user sets only its own thresholds, not user %s's", ErrBadRequest, t.User)
	case t.SetBy != "" || !t.SetAt.IsZero():
		return fmt.Errorf("%w: setBy and setAt are the router's to fill", ErrBadRequest)
	}
	t.ID, t.User = id, caller.EUI
	out, err := s.cfg.Thresholds.SetThreshold(c.Request().Context(), userActor(caller), t)
	if err != nil {
		return thresholdErr(err)
	}
	return c.JSON(http.StatusOK, out)
}

// deleteThreshold: DELETE /v1/thresholds/{id}?reason=... deletes the
// caller's own threshold id.
func (s *Server) deleteThreshold(c echo.Context) error {
	reason := strings.TrimSpace(c.QueryParam("reason"))
	if reason == "" {
		reason = defaultDeleteReason
	}
	if err := s.cfg.Thresholds.DeleteThreshold(c.Request().Context(), c.Param("id"), userActor(callerFrom(c)), reason); err != nil {
		return thresholdErr(err)
	}
	return c.NoContent(http.StatusNoContent)
}
