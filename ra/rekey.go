package ra

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/metertrust/metertrust/ca"
	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/commands/asn"
	"github.com/metertrust/metertrust/problem"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// ActionRekey is the audit action of POST /v1/requests/device-rekey.
const ActionRekey = "ca-api.request.device-rekey"

// codeCS02c is the GBCS message code of Issue Security Credentials.
const codeCS02c = 0x000A

// rekeyRoles are the Remote Party Roles a registered organisation must hold
// to ask for a device re-key: a device's owner (decision 017).
var rekeyRoles = []smki.Role{smki.RoleSupplier, smki.RoleNetworkOperator}

// RekeyRequest is the body of POST /v1/requests/device-rekey.
type RekeyRequest struct {
	// Batch names the open device CA batch opened for re-keys.
	Batch string `json:"batch"`
	// Response is the device's signed CS02c (0x000A) response to the
	// requester's command, hex or base64: it carries the device's PKCS#10
	// request, and the device's signature on it, addressed to the
	// requester, is the evidence that the requester is the device's owner
	// (decision 017).
	Response string `json:"response"`
}

// submitRekey answers POST /v1/requests/device-rekey: a registered
// supplier or network operator, identified by its DCCKI client certificate,
// hands in the device's signed CS02c response to its own command; the
// device's request in it is issued at once from a batch opened for
// re-keys. Every refusal is audited.
func (s *Server) submitRekey(c echo.Context) error {
	who, err := s.client(c, ActionRekey)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	object := c.Request().URL.Path
	var r RekeyRequest
	if err := readJSON(c, &r, "{batch, response}"); err != nil {
		return s.refuse(ctx, who, ActionRekey, object, err)
	}
	if err := s.owner(ctx, who); err != nil {
		return s.refuse(ctx, who, ActionRekey, object, err)
	}
	if err := checkCAName("batch", r.Batch); err != nil {
		return s.refuse(ctx, who, ActionRekey, object, err)
	}
	device, csr, err := s.rekeyEvidence(ctx, who.eui, r.Response)
	if err != nil {
		return s.refuse(ctx, who, ActionRekey, object, err)
	}
	object = device.String()
	var out store.Certificate
	if err := s.do(ctx, who, ActionRekey, object, map[string]any{"batch": r.Batch}, func() error {
		var err error
		out, err = s.deps.Authority.IssueRekey(context.WithoutCancel(ctx), r.Batch, device, csr)
		if err != nil && len(out.DER) > 0 {
			s.log.WarnContext(ctx, "certificate issued, batch not closed at its quota", "batch", r.Batch, "err", err)
			return nil
		}
		return err
	}); err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, certView(out))
}

// owner checks that the caller is a registered, active organisation with
// a supplier or network operator role.
func (s *Server) owner(ctx context.Context, who caller) error {
	org, err := s.activeOrganisation(ctx, who)
	if err != nil {
		return err
	}
	for _, r := range rekeyRoles {
		if slices.Contains(org.Roles, r.String()) {
			return nil
		}
	}
	return problem.New(ErrForbidden, "", "organisation %s holds neither the supplier nor the network operator role", who.eui)
}

// rekeyEvidence reads the device's CS02c response: a GBCS response with
// message code 0x000A, signed (critical), addressed to requester, whose
// signature verifies with a digital-signing key the repository certifies
// for its originator (the device), carrying a certification request. It
// returns the device and the request.
func (s *Server) rekeyEvidence(ctx context.Context, requester smki.EUI, text string) (smki.EUI, []byte, error) {
	raw, err := hexOrBase64(text)
	if err != nil {
		return smki.EUI{}, nil, problem.Wrap(ErrBadRequest, err, "response", "%v", err)
	}
	m, err := commands.Parse(raw)
	if err != nil {
		return smki.EUI{}, nil, problem.Wrap(ErrBadRequest, err, "response", "not a GBCS message: %s", clip(err.Error()))
	}
	switch {
	case m.CRA != commands.Response:
		return smki.EUI{}, nil, problem.New(ErrBadRequest, "response", "CRA flag %s: want a device response", m.CRA)
	case m.Code != codeCS02c:
		return smki.EUI{}, nil, problem.New(ErrBadRequest, "response", "message code %s: want the CS02c response (0x000A)", m.Code)
	case !m.Signed():
		return smki.EUI{}, nil, problem.New(ErrBadRequest, "response", "the CS02c response is not signed")
	case m.Recipient != requester:
		return smki.EUI{}, nil, problem.New(ErrForbidden, "response", "the device answered %s, not the requester %s: only the device's owner's own command counts", m.Recipient, requester)
	}
	device := m.Originator
	if err := s.deviceSigned(ctx, device, m); err != nil {
		return smki.EUI{}, nil, err
	}
	p, err := asn.Parse[asn.IssueSecurityCredentialsResponse](m.Payload)
	if err != nil {
		return smki.EUI{}, nil, problem.Wrap(ErrBadRequest, err, "response", "CS02c payload: %s", clip(err.Error()))
	}
	if p.CertificationRequest == nil {
		code := int64(-1)
		if p.ResponseCode != nil {
			code = int64(*p.ResponseCode)
		}
		return smki.EUI{}, nil, problem.New(ErrBadRequest, "response", "the device made no certification request (response code %d)", code)
	}
	return device, p.CertificationRequest.Raw, nil
}

// deviceSigned checks m's signature against the digital-signing keys of the
// device's unrevoked device certificates in the repository.
func (s *Server) deviceSigned(ctx context.Context, device smki.EUI, m *commands.Message) error {
	have, err := s.deps.Store.FindCertificates(ctx, store.CertQuery{EUI: device.String(), Kind: store.KindDevice, Usage: string(ca.UsageDS)})
	if err != nil {
		return problem.Wrap(ErrInternal, err, "", "reading the device's certificates")
	}
	if len(have) == 0 {
		return problem.New(ErrForbidden, "response", "device %s holds no digital-signing certificate in the repository: it is not in the inventory", device)
	}
	for _, h := range have {
		c, err := smki.ParseCertificate(h.DER)
		if err != nil {
			continue
		}
		if pub, ok := any(c.PublicKey).(*ecdsa.PublicKey); ok && commands.VerifySignature(pub, m) == nil {
			return nil
		}
	}
	return problem.New(ErrForbidden, "response", "the CS02c response's signature does not verify with device %s's digital-signing certificate", device)
}

// hexOrBase64 decodes a GBCS message given as hex or standard base64.
func hexOrBase64(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("missing: give the device's signed CS02c response as hex or base64")
	}
	if b, err := hex.DecodeString(s); err == nil {
		return b, nil
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) == 0 {
		return nil, fmt.Errorf("neither hex nor base64")
	}
	return b, nil
}

// ActionRekeyConfirm is the audit action of POST
// /v1/requests/device-rekey/confirm.
const ActionRekeyConfirm = "ca-api.request.device-rekey.confirm"

// codeCS02e is the GBCS message code of Provide Device Certificates from
// Device.
const codeCS02e = 0x000C

// reasonSuperseded is the CRLReason of a device certificate a re-key
// replaced (RFC 5280 5.3.1).
const reasonSuperseded = 4

// RekeyConfirmation is the body of POST /v1/requests/device-rekey/confirm.
type RekeyConfirmation struct {
	// Response is the device's signed CS02e (0x000C) response to the
	// requester's command, hex or base64: the device certificate the
	// device holds now.
	Response string `json:"response"`
}

// RekeyConfirmed is the answer of POST /v1/requests/device-rekey/confirm.
type RekeyConfirmed struct {
	// Certificate is the certificate the device confirmed it holds.
	Certificate CertificateView `json:"certificate"`
	// Superseded are the device's certificates of the same usage revoked
	// (reason superseded) because of it.
	Superseded []CertificateView `json:"superseded"`
}

// confirmRekey answers POST /v1/requests/device-rekey/confirm: the device's
// owner hands in the device's signed CS02e response, which reads back the
// device certificate of one usage the meter holds now; when it is one the
// repository holds for the device, every other unrevoked device
// certificate of that usage of the device is revoked as superseded, so
// that relying parties find one current key per usage (decision 017).
func (s *Server) confirmRekey(c echo.Context) error {
	who, err := s.client(c, ActionRekeyConfirm)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	object := c.Request().URL.Path
	var r RekeyConfirmation
	if err := readJSON(c, &r, "{response}"); err != nil {
		return s.refuse(ctx, who, ActionRekeyConfirm, object, err)
	}
	if err := s.owner(ctx, who); err != nil {
		return s.refuse(ctx, who, ActionRekeyConfirm, object, err)
	}
	held, supersede, err := s.readBack(ctx, who.eui, r.Response)
	if err != nil {
		return s.refuse(ctx, who, ActionRekeyConfirm, object, err)
	}
	out := RekeyConfirmed{Certificate: certView(held), Superseded: []CertificateView{}}
	for _, old := range supersede {
		var rev store.Certificate
		if err := s.do(ctx, who, ActionRekeyConfirm, fmt.Sprintf("%s/%X", old.CA, old.Serial),
			map[string]any{"device": held.EUI, "superseded_by": fmt.Sprintf("%s/%X", held.CA, held.Serial)}, func() error {
				var err error
				rev, err = s.deps.Authority.Revoke(context.WithoutCancel(ctx), old.CA, old.Serial, reasonSuperseded)
				return err
			}); err != nil {
			return err
		}
		out.Superseded = append(out.Superseded, certView(rev))
	}
	return c.JSON(http.StatusOK, out)
}

// readBack reads the device's CS02e response: a signed response with
// message code 0x000C addressed to requester, carrying a device
// certificate the repository holds, unrevoked, for its originator, with a
// signature that verifies with a digital-signing key the repository
// certifies for the device. It returns that certificate and the device's
// other unrevoked certificates of its usage.
func (s *Server) readBack(ctx context.Context, requester smki.EUI, text string) (store.Certificate, []store.Certificate, error) {
	raw, err := hexOrBase64(text)
	if err != nil {
		return store.Certificate{}, nil, problem.Wrap(ErrBadRequest, err, "response", "%v", err)
	}
	m, err := commands.Parse(raw)
	if err != nil {
		return store.Certificate{}, nil, problem.Wrap(ErrBadRequest, err, "response", "not a GBCS message: %s", clip(err.Error()))
	}
	switch {
	case m.CRA != commands.Response:
		return store.Certificate{}, nil, problem.New(ErrBadRequest, "response", "CRA flag %s: want a device response", m.CRA)
	case m.Code != codeCS02e:
		return store.Certificate{}, nil, problem.New(ErrBadRequest, "response", "message code %s: want the CS02e response (0x000C)", m.Code)
	case !m.Signed():
		return store.Certificate{}, nil, problem.New(ErrBadRequest, "response", "the CS02e response is not signed")
	case m.Recipient != requester:
		return store.Certificate{}, nil, problem.New(ErrForbidden, "response", "the device answered %s, not the requester %s", m.Recipient, requester)
	}
	device := m.Originator
	if err := s.deviceSigned(ctx, device, m); err != nil {
		return store.Certificate{}, nil, err
	}
	p, err := asn.Parse[asn.ProvideDeviceCertificateResponse](m.Payload)
	if err != nil {
		return store.Certificate{}, nil, problem.Wrap(ErrBadRequest, err, "response", "CS02e payload: %s", clip(err.Error()))
	}
	if p.Certificate == nil {
		return store.Certificate{}, nil, problem.New(ErrBadRequest, "response", "the device returned no certificate")
	}
	have, err := s.deps.Store.FindCertificates(ctx, store.CertQuery{EUI: device.String(), Kind: store.KindDevice})
	if err != nil {
		return store.Certificate{}, nil, problem.Wrap(ErrInternal, err, "", "reading the device's certificates")
	}
	i := slices.IndexFunc(have, func(h store.Certificate) bool { return bytes.Equal(h.DER, p.Certificate.Raw) })
	if i < 0 {
		return store.Certificate{}, nil, problem.New(ErrConflict, "response", "the certificate device %s holds is not an unrevoked certificate of it in the repository", device)
	}
	held := have[i]
	var others []store.Certificate
	newest := held
	for _, h := range have {
		if h.Usage == held.Usage && !bytes.Equal(h.DER, held.DER) {
			others = append(others, h)
			if h.ID > newest.ID { // the store's IDs rise with each certificate stored
				newest = h
			}
		}
	}
	// A read-back showing an older certificate than the newest would revoke
	// the newest (a re-key the meter never installed): it must then be
	// fresh, its command sent after the newest was issued. Command counters
	// are the sender's clock in milliseconds (GBCS section 7, the router's
	// pickCounter), so a response replayed from before the re-key, the old
	// certificate in it, cannot undo the re-key.
	if !bytes.Equal(newest.DER, held.DER) && m.Counter < uint64(max(newest.NotBefore.UnixMilli(), 0)) {
		return store.Certificate{}, nil, problem.New(ErrConflict, "response",
			"the read-back (counter %d) is older than device %s's newest %s certificate %X (issued %s): read the device again",
			m.Counter, device, held.Usage, newest.Serial, newest.NotBefore.UTC().Format(time.RFC3339))
	}
	return held, others, nil
}

// SubmitRekey has the device's re-key certificate issued from batch (an
// organisation's call: the device's owner, by its client certificate),
// with the device's signed CS02c response, raw.
func (c *Client) SubmitRekey(ctx context.Context, batch string, response []byte) (CertificateView, error) {
	var out CertificateView
	err := c.do(ctx, http.MethodPost, "/v1/requests/device-rekey", RekeyRequest{Batch: batch, Response: hex.EncodeToString(response)}, &out)
	return out, err
}

// ConfirmRekey hands in the device's signed CS02e response, raw, to have
// its superseded certificates revoked.
func (c *Client) ConfirmRekey(ctx context.Context, response []byte) (RekeyConfirmed, error) {
	var out RekeyConfirmed
	err := c.do(ctx, http.MethodPost, "/v1/requests/device-rekey/confirm", RekeyConfirmation{Response: hex.EncodeToString(response)}, &out)
	return out, err
}
