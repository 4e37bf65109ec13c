package router

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/metertrust/metertrust/anomaly"
	"github.com/metertrust/metertrust/smki"
)

// quarantineManager is what the user's quarantine endpoints need of
// package anomaly's Detector.
type quarantineManager interface {
	List(ctx context.Context, actor anomaly.Actor, f anomaly.Filter) ([]anomaly.Quarantine, error)
	Release(ctx context.Context, ref string, actor anomaly.Actor, reason string) (anomaly.Quarantine, error)
	Delete(ctx context.Context, ref string, actor anomaly.Actor, reason string) (anomaly.Quarantine, error)
}

// quarantineView is a quarantine record as its user sees it.
type quarantineView struct {
	Ref        string    `json:"ref"`
	CommandID  string    `json:"commandId"`
	ServiceRef string    `json:"serviceReference"`
	Target     smki.EUI  `json:"target"`
	Kind       string    `json:"kind"`
	Detail     string    `json:"detail"`
	State      string    `json:"state"`
	At         time.Time `json:"at"`
	DecidedBy  string    `json:"decidedBy,omitempty"`
	Reason     string    `json:"reason,omitempty"`
	// Receipt is set when a release put the command through: it is then
	// accepted, as from POST /v1/commands.
	Receipt *Receipt `json:"receipt,omitempty"`
}

func quarantineViewOf(q anomaly.Quarantine) quarantineView {
	return quarantineView{Ref: q.Ref, CommandID: q.CommandID, ServiceRef: q.ServiceRef, Target: q.Target, Kind: string(q.Kind),
		Detail: q.Detail, State: string(q.State), At: q.CreatedAt, DecidedBy: q.DecidedBy, Reason: q.Reason}
}

// userActor is the caller acting on its own quarantine records.
func userActor(c Caller) anomaly.Actor {
	return anomaly.Actor{ID: c.String(), Roles: []anomaly.Role{anomaly.RoleUser}, User: c.EUI}
}

// anomalyErr maps package anomaly's errors to the router's kinds.
func anomalyErr(err error) error {
	switch {
	case errors.Is(err, anomaly.ErrNotFound), errors.Is(err, anomaly.ErrForbidden):
		// Another user's record is reported as absent.
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	case errors.Is(err, anomaly.ErrConflict):
		return fmt.Errorf("%w: %w", ErrConflict, err)
	case errors.Is(err, anomaly.ErrInvalid):
		return fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	return fmt.Errorf("%w: quarantine: %w", ErrUnavailable, err)
}

// decisionErr maps the error of a release or delete: the detector audits
// the decisions it refuses (not found, not the user's, already decided, no
// reason), so those are marked audited; a failure of its own is not.
func decisionErr(err error) error {
	err = anomalyErr(err)
	if KindOf(err) != ErrUnavailable {
		return audited(err)
	}
	return err
}

// getQuarantine: GET /v1/quarantine?state=quarantined lists the caller's
// quarantined commands, newest first.
func (s *Server) getQuarantine(c echo.Context) error {
	f := anomaly.Filter{Limit: anomaly.DefaultList}
	if st := c.QueryParam("state"); st != "" {
		state, err := anomaly.ParseState(st)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrBadRequest, err)
		}
		f.State = state
	}
	caller := callerFrom(c)
	f.User = caller.EUI
	qs, err := s.cfg.Quarantine.List(c.Request().Context(), userActor(caller), f)
	if err != nil {
		return anomalyErr(err)
	}
	out := struct {
		Quarantine []quarantineView `json:"quarantine"`
	}{Quarantine: []quarantineView{}}
	for _, q := range qs {
		out.Quarantine = append(out.Quarantine, quarantineViewOf(q))
	}
	return c.JSON(http.StatusOK, out)
}

// decideQuarantine: POST /v1/quarantine/{ref}/release or /delete, with
// {"reason": "..."}. A released command goes through every remaining check,
// the MAC and forwarding at once.
func (s *Server) decideQuarantine(release bool) echo.HandlerFunc {
	return func(c echo.Context) error {
		var in struct {
			Reason string `json:"reason"`
		}
		if err := s.decodeJSON(c, &in); err != nil {
			return err
		}
		if strings.TrimSpace(in.Reason) == "" {
			return fmt.Errorf("%w: a reason is required", ErrBadRequest)
		}
		ctx := c.Request().Context()
		caller := callerFrom(c)
		ref := c.Param("ref")
		if !release {
			q, err := s.cfg.Quarantine.Delete(ctx, ref, userActor(caller), in.Reason)
			if err != nil {
				return decisionErr(err)
			}
			return c.JSON(http.StatusOK, quarantineViewOf(q))
		}
		q, err := s.cfg.Quarantine.Release(ctx, ref, userActor(caller), in.Reason)
		if err != nil {
			return decisionErr(err)
		}
		release := s.cfg.Release
		if release == nil {
			release = s.cfg.Router.ForwardReleased
		}
		rc, err := release(ctx, q)
		if errors.Is(err, anomaly.ErrForwardPending) {
			// Another router instance's sweeper holds it: it forwards it.
			return c.JSON(http.StatusAccepted, quarantineViewOf(q))
		}
		if err != nil {
			// Released, but refused by a later check (a counter overtaken
			// while it was held, a certificate revoked since): the refusal
			// is the answer, and it is audited.
			return err
		}
		v := quarantineViewOf(q)
		v.Receipt = &rc
		return c.JSON(http.StatusOK, v)
	}
}
