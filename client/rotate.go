package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/commands/asn"
	"github.com/metertrust/metertrust/smki"
)

// RotateRequest names the new organisation certificates an owner puts on
// a meter in place of its current ones, by serial number (hex, as the
// repository lists them).
type RotateRequest struct {
	// DS and KA are the digital-signing and key-agreement certificates;
	// PrepaymentKA the prepayment top-up key-agreement certificate (a
	// supplier's only).
	DS, KA, PrepaymentKA string
	// ExecuteAt, when not zero, dates the CS02b: the meter replaces the
	// keys then (at most 24 hours ahead) and the change stays pending
	// until it does.
	ExecuteAt time.Time
}

// RotateKeys is the owner's service request 6.15.1 for target: the router
// builds the CS02b (supplierBySupplier for a supplier,
// networkOperatorByNetworkOperator for a network operator), the client
// checks it replaces the caller's own cells with exactly the certificates
// asked for and signs it with Config.Signer (the key the meter holds now),
// and the router records the change before it sends it. Follow it with
// Rotation or WaitRotation; the rotation's ID is the CS02b's command id.
// While it runs the owner's critical commands to the meter are refused
// (ErrOwnershipUnsettled); once applied, sign with the new key.
func (c *Client) RotateKeys(ctx context.Context, target smki.EUI, r RotateRequest) (ChangeOfSupplier, error) {
	in := map[string]any{"target": target.String(), "ds": r.DS, "ka": r.KA}
	if r.PrepaymentKA != "" {
		in["prepaymentKa"] = r.PrepaymentKA
	}
	if !r.ExecuteAt.IsZero() {
		in["executeAt"] = r.ExecuteAt.UTC().Format(time.RFC3339)
	}
	body, err := json.Marshal(in)
	if err != nil {
		return ChangeOfSupplier{}, err
	}
	var pc struct {
		Message string `json:"message"`
		Counter uint64 `json:"counter"`
	}
	if err := c.call(ctx, http.MethodPost, "/v1/key-rotations", nil, "application/json", body, &pc); err != nil {
		return ChangeOfSupplier{}, err
	}
	raw, err := hex.DecodeString(pc.Message)
	if err != nil {
		return ChangeOfSupplier{}, fmt.Errorf("client: rotation: the router's message is not hex: %w", err)
	}
	signed, err := c.signRotation(raw, target, r)
	if err != nil {
		return ChangeOfSupplier{}, err
	}
	rc, err := c.Submit(ctx, signed)
	if err != nil {
		return ChangeOfSupplier{}, err
	}
	return c.Rotation(ctx, rc.ID)
}

// signRotation checks the router's CS02b against what the user asked for
// and signs it: from the user to target, a rotation of its own cells, each
// replacement certificate the user's with one of the serials asked.
func (c *Client) signRotation(raw []byte, target smki.EUI, r RotateRequest) ([]byte, error) {
	if c.cfg.Signer == nil {
		return nil, errors.New("client: no Config.Signer: a rotation is signed with the user's current digital-signing key (--signer)")
	}
	m, err := commands.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("client: reading the rotation: %w", err)
	}
	if m.Originator != c.eui || m.Recipient != target || (m.Code != 0x0102 && m.Code != 0x0103) {
		return nil, fmt.Errorf("client: the router's command is %s from %s to %s, not the user's rotation to %s: not signed", m.Code, m.Originator, m.Recipient, target)
	}
	cmd, err := asn.Parse[asn.UpdateSecurityCredentialsCommand](m.Payload)
	if err != nil {
		return nil, fmt.Errorf("client: reading the rotation's CS02b: %w", err)
	}
	if err := cmd.CheckOwnRotation(); err != nil {
		return nil, fmt.Errorf("client: the router's CS02b is more than a rotation: %w: not signed", err)
	}
	switch at := cmd.ExecutionDateTime; {
	case at == nil && !r.ExecuteAt.IsZero(), at != nil && !at.Time().Equal(r.ExecuteAt.UTC().Truncate(time.Second)):
		return nil, fmt.Errorf("client: the router's CS02b executes at %v, not at the time asked (%v): not signed", at, r.ExecuteAt)
	}
	// Each certificate asked, by serial (read as the router reads it), goes
	// to its own cell.
	role := asn.RoleSupplier
	if m.Code == 0x0103 {
		role = asn.RoleNetworkOperator
	}
	want := map[string]asn.TrustAnchorCellIdentifier{}
	for _, a := range []struct {
		serial string
		cell   asn.TrustAnchorCellIdentifier
	}{{r.DS, asn.Cell(role, asn.DigitalSignature, asn.CellManagement)}, {r.KA, asn.Cell(role, asn.KeyAgreement, asn.CellManagement)},
		{r.PrepaymentKA, asn.Cell(role, asn.KeyAgreement, asn.CellPrePaymentTopUp)}} {
		if a.serial == "" {
			continue
		}
		b, err := smki.ParseSerial(a.serial)
		if err != nil {
			return nil, fmt.Errorf("client: rotation: %w", err)
		}
		want[string(b)] = a.cell
	}
	if len(cmd.Replacements) != len(want) {
		return nil, fmt.Errorf("client: the router's CS02b replaces %d cells, %d certificates asked: not signed", len(cmd.Replacements), len(want))
	}
	for _, rep := range cmd.Replacements {
		cert, err := smki.ParseCertificate(rep.ReplacementCertificate.Raw)
		if err != nil {
			return nil, fmt.Errorf("client: the rotation's certificate: %w", err)
		}
		cell, ok := want[string(cert.SerialNumber.Bytes())]
		switch {
		case cert.EUI != c.eui || !ok:
			return nil, fmt.Errorf("client: the router's CS02b installs certificate %X of %s, not one asked for: not signed", cert.SerialNumber.Bytes(), cert.EUI)
		case !rep.TargetTrustAnchorCell.Same(cell):
			return nil, fmt.Errorf("client: the router's CS02b puts certificate %X in cell %s, not %s: not signed", cert.SerialNumber.Bytes(), rep.TargetTrustAnchorCell, cell)
		}
	}
	if err := commands.SignPreCommand(rand.Reader, c.cfg.Signer, m); err != nil {
		return nil, fmt.Errorf("client: signing: %w", err)
	}
	return m.Marshal()
}

// Rotation returns the caller's rotation whose CS02b is command id.
func (c *Client) Rotation(ctx context.Context, id string) (ChangeOfSupplier, error) {
	var out ChangeOfSupplier
	err := c.call(ctx, http.MethodGet, "/v1/key-rotations/"+url.PathEscape(id), nil, "", nil, &out)
	return out, err
}

// WaitRotation polls a rotation until it settles or ctx ends.
func (c *Client) WaitRotation(ctx context.Context, id string) (ChangeOfSupplier, error) {
	for {
		ch, err := c.Rotation(ctx, id)
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
