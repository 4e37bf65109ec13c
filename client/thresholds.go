package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/metertrust/metertrust/anomaly"
)

// Thresholds returns the anomaly detection thresholds that apply to the
// user (GBCS section 10): its own, which it sets, and the DCC's, which its
// own must be stricter than. It is refused only as any call may be
// (ErrUnauthenticated, ErrUnavailable).
func (c *Client) Thresholds(ctx context.Context) (own, dcc []anomaly.Threshold, err error) {
	var out struct {
		Own []anomaly.Threshold `json:"own"`
		DCC []anomaly.Threshold `json:"dcc"`
	}
	if err := c.call(ctx, http.MethodGet, "/v1/thresholds", nil, "", nil, &out); err != nil {
		return nil, nil, err
	}
	return out.Own, out.DCC, nil
}

// SetThreshold creates or replaces the user's own threshold t.ID (scope
// user-srv, user-total or attribute; t.User may be left zero) and returns
// it as set. It must be stricter than the DCC's threshold for the same
// scope: ErrNotStricter otherwise; a threshold that is not valid (scope,
// window, limit) is ErrBadRequest, and one without an ID is refused by the
// client. Commands over it are quarantined (ErrQuarantined), as over the
// DCC's.
func (c *Client) SetThreshold(ctx context.Context, t anomaly.Threshold) (anomaly.Threshold, error) {
	if t.ID == "" {
		return anomaly.Threshold{}, errNoThresholdID
	}
	body, err := json.Marshal(t)
	if err != nil {
		return anomaly.Threshold{}, err
	}
	var out anomaly.Threshold
	err = c.call(ctx, http.MethodPut, "/v1/thresholds/"+url.PathEscape(t.ID), nil, "application/json", body, &out)
	return out, err
}

// DeleteThreshold deletes the user's own threshold id; reason, for the
// audit log, may be empty. A threshold the user does not have is
// ErrNotFound.
func (c *Client) DeleteThreshold(ctx context.Context, id, reason string) error {
	var q url.Values
	if reason != "" {
		q = url.Values{"reason": {reason}}
	}
	return c.call(ctx, http.MethodDelete, "/v1/thresholds/"+url.PathEscape(id), q, "", nil, nil)
}
