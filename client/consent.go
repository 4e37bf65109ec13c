package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/metertrust/metertrust/smki"
)

// This file holds an other user's (OU, a third party) consent calls (spec
// section 11): the customer identification number (CIN) flow that obtains
// a consumer's consent, and the consent records the user holds.

// RequestCIN has the router make device target display a fresh customer
// identification number for the user (SR 9.1, sent by the router's access
// control broker); fuel is "electricity" (or "") or "gas". The consumer
// reads the CIN to the user, which presents it with ClaimConsent. Wait on
// the receipt's ID for the meter's answer. Only an other user may ask
// (ErrNotEligible); a fuel other than those is ErrBadRequest; the command
// goes through the router's pipeline, whose refusals (ErrUnknownDevice,
// ErrQuarantined, ...) Submit lists.
func (c *Client) RequestCIN(ctx context.Context, target smki.EUI, fuel string) (Receipt, error) {
	in := map[string]string{"target": target.String()}
	if fuel != "" {
		in["fuel"] = fuel
	}
	body, err := json.Marshal(in)
	if err != nil {
		return Receipt{}, err
	}
	var r Receipt
	err = c.call(ctx, http.MethodPost, "/v1/cin", nil, "application/json", body, &r)
	return r, err
}

// Consent is a consent record: the consumer's agreement that the user may
// send the service requests in Scope to Device between NotBefore and
// Expires. Every read under it may also reach back at most 13 months from
// the time of the read (ErrConsentPeriod otherwise).
type Consent struct {
	ID     string   `json:"id"`
	Device smki.EUI `json:"device"`
	User   smki.EUI `json:"user"`
	Scope  []string `json:"scope"`
	// State is "live", "pending" (not started), "expired" or "revoked".
	State     string    `json:"state"`
	DataFrom  time.Time `json:"dataFrom,omitzero"`
	NotBefore time.Time `json:"notBefore"`
	Expires   time.Time `json:"expires"`
	Evidence  string    `json:"evidence"`
	Created   time.Time `json:"created"`
	// RevokedAt, RevokedBy and RevokeReason say when, by whom and why the
	// consent was revoked; zero while it is not.
	RevokedAt    time.Time `json:"revokedAt,omitzero"`
	RevokedBy    string    `json:"revokedBy,omitempty"`
	RevokeReason string    `json:"revokeReason,omitempty"`
}

// ClaimConsent presents the CIN the consumer read back (four digits) for
// device and gets a consent record for the service requests in scope
// (such as "4.8.1", "4.17") for days days (1 to 395). A wrong CIN is
// ErrNotOwner; each CIN allows a few attempts and lasts 30 minutes, and is
// good for one consent: with no live CIN challenge for the device (never
// asked, expired, used up or already claimed) the claim is ErrNotFound.
// Bad scope or days are ErrBadRequest.
func (c *Client) ClaimConsent(ctx context.Context, device smki.EUI, cin string, scope []string, days int) (Consent, error) {
	body, err := json.Marshal(map[string]any{"device": device.String(), "cin": cin, "scope": scope, "days": days})
	if err != nil {
		return Consent{}, err
	}
	var out Consent
	err = c.call(ctx, http.MethodPost, "/v1/consents", nil, "application/json", body, &out)
	return out, err
}

// ConsentQuery selects the user's consent records; the zero value selects
// up to 100 of them.
type ConsentQuery struct {
	// Device selects one device's.
	Device smki.EUI
	// Live selects only the records live now.
	Live bool
	// Limit bounds the records returned, 1 to 1000; zero means 100.
	Limit int
}

// Consents lists the consent records the user holds, oldest first. Only
// an other user holds consents: another role is ErrNotEligible.
func (c *Client) Consents(ctx context.Context, q ConsentQuery) ([]Consent, error) {
	v := url.Values{}
	if !q.Device.IsZero() {
		v.Set("device", q.Device.String())
	}
	if q.Live {
		v.Set("state", "live")
	}
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	var out struct {
		Consents []Consent `json:"consents"`
	}
	if err := c.call(ctx, http.MethodGet, "/v1/consents", v, "", nil, &out); err != nil {
		return nil, err
	}
	return out.Consents, nil
}

// Consent returns one of the user's consent records; another user's, or
// none, is ErrNotFound, and a caller that is not an other user
// ErrNotEligible.
func (c *Client) Consent(ctx context.Context, id string) (Consent, error) {
	var out Consent
	err := c.call(ctx, http.MethodGet, "/v1/consents/"+url.PathEscape(id), nil, "", nil, &out)
	return out, err
}

// RevokeConsent ends one of the user's consents now, for reason (required:
// the consumer withdrew, the service ended, ...), and returns the record
// as revoked. The router records the user and the reason in the record and
// in its audit log. A consumer who asks the DCC instead has an operator
// revoke it (metertrust router consent revoke). A consent already revoked
// is ErrConflict; another user's is ErrNotFound; an empty reason is refused
// by the client with a plain error.
func (c *Client) RevokeConsent(ctx context.Context, id, reason string) (Consent, error) {
	if reason == "" {
		return Consent{}, fmt.Errorf("client: revoking consent %s: a reason is required", id)
	}
	body, err := json.Marshal(map[string]string{"reason": reason})
	if err != nil {
		return Consent{}, err
	}
	var out Consent
	err = c.call(ctx, http.MethodPost, "/v1/consents/"+url.PathEscape(id)+"/revoke", nil, "application/json", body, &out)
	return out, err
}
