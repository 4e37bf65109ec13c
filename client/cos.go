package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"time"

	"github.com/metertrust/metertrust/smki"
)

// ChangeOfSupplier is a change of supplier as its requester (the incoming
// supplier) sees it.
type ChangeOfSupplier struct {
	ID     string   `json:"id"`
	Target smki.EUI `json:"target"`
	// State is pending or unsettled while it runs; once settled its
	// outcome: applied (the meter now trusts the new supplier's keys and
	// the router names it the owner), refused (the meter refused; Detail
	// says how), not-applied or diverged (settled by reading the meter's
	// anchors).
	State    string   `json:"state"`
	OldOwner smki.EUI `json:"oldOwner"`
	NewOwner smki.EUI `json:"newOwner"`
	// CommandID is the CS02b the transitional change-of-supplier party
	// sent; its response is delivered to the requester.
	CommandID string `json:"commandId"`
	Detail    string `json:"detail,omitempty"`
	// Kind is the CS02b's mode (supplierByTransCoS, supplierBySupplier,
	// networkOperatorByNetworkOperator); DSKeyID the new digital-signing
	// key identifier (hex); ExecuteAt when a future-dated CS02b executes.
	Kind      string     `json:"kind,omitempty"`
	DSKeyID   string     `json:"dsKeyId,omitempty"`
	ExecuteAt *time.Time `json:"executeAt,omitempty"`
	Created   time.Time  `json:"created"`
	Updated   time.Time  `json:"updated"`
}

// Settled reports whether the change has its outcome.
func (c ChangeOfSupplier) Settled() bool { return c.State != "pending" && c.State != "unsettled" }

// ChangeSupplier is the incoming supplier's service request 6.23 for
// target: the router checks that the registration data name the caller for
// the meter and that its certificates (given by serial number, hex, as the
// repository lists them: digital signing, key agreement, prepayment
// key agreement) are its own and valid, then has the transitional
// change-of-supplier party replace the meter's supplier cells. Ownership
// moves only when the meter confirms; follow the change with
// ChangeOfSupplier. While it runs both suppliers' critical commands for the
// meter are refused (ErrOwnershipUnsettled).
//
// The router refuses, as an *Error: a caller the registration data do not
// name for the meter (ErrNotOwner), a role that may not ask
// (ErrNotEligible), a meter not in its registry (ErrUnknownDevice), a
// meter the caller already supplies (ErrConflict), a meter with a change
// already open (ErrChangePending), a serial that is not hex
// (ErrBadRequest), and a certificate not in the repository, revoked, of
// another organisation or role, or of the wrong key usage (ErrCertPath).
func (c *Client) ChangeSupplier(ctx context.Context, target smki.EUI, ds, ka, prepaymentKA string) (ChangeOfSupplier, error) {
	body, err := json.Marshal(map[string]string{"target": target.String(), "ds": ds, "ka": ka, "prepaymentKa": prepaymentKA})
	if err != nil {
		return ChangeOfSupplier{}, err
	}
	var out ChangeOfSupplier
	err = c.call(ctx, http.MethodPost, "/v1/changes-of-supplier", nil, "application/json", body, &out)
	return out, err
}

// ChangeOfSupplier returns one of the caller's changes of supplier;
// another's, or none, is ErrNotFound.
func (c *Client) ChangeOfSupplier(ctx context.Context, id string) (ChangeOfSupplier, error) {
	var out ChangeOfSupplier
	err := c.call(ctx, http.MethodGet, "/v1/changes-of-supplier/"+url.PathEscape(id), nil, "", nil, &out)
	return out, err
}

// WaitChange polls a change of supplier until it settles (Settled) or ctx
// ends, and returns it as last read; when ctx ends first the error is
// ctx's. A refusal of the polling is returned as it is.
func (c *Client) WaitChange(ctx context.Context, id string) (ChangeOfSupplier, error) {
	for {
		ch, err := c.ChangeOfSupplier(ctx, id)
		if err != nil || ch.Settled() {
			return ch, err
		}
		select {
		case <-ctx.Done():
			return ch, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
