package router

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/commands/dlms"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// cinStore is what the consent desk needs of *store.RouterStore.
type cinStore interface {
	registryStore
	PutCINChallenge(ctx context.Context, device, user smki.EUI, hash []byte, commandID string, at, expires time.Time) error
	ConsumeCINChallenge(ctx context.Context, device, user smki.EUI, match func(hash []byte, commandID string) bool, now time.Time) error
	Consent(ctx context.Context, id string) (store.Consent, error)
	Consents(ctx context.Context, f store.ConsentFilter) ([]store.Consent, error)
}

// Consent limits (our rules, spec section 11).
const (
	// CINValidity is how long a displayed CIN may be read back.
	CINValidity = 30 * time.Minute
	// MaxConsentDays bounds a consent's life.
	MaxConsentDays = 395
	// ConsentDataMonths is how far back a consented read may reach.
	ConsentDataMonths = 13
)

// ConsentDesk runs the customer identification number flow by which an
// other user (OU) obtains a consumer's consent (spec section 11): the router
// has the meter display a random CIN (SR 9.1, sent by the access control
// broker for the OU); the consumer reads the CIN to the OU, which presents
// it to get a consent record for the reads it asks. The OU never sees the
// CIN through the router.
//
// What the router keeps of the CIN (decision 015): the challenge holds its
// hash, bound to the command that displayed it, for CINValidity. The
// command itself carries the CIN in clear in its payload, and is stored
// whole (router_commands.message) only while it waits in the outbox: the
// transaction that records the transport took it, or its response or
// failure, cuts the stored message to its header (Forwarder.scrub). The
// response, the deliveries, the audit entries and the logs never carry
// it.
type ConsentDesk struct {
	router    *Router
	db        cinStore
	registrar *Registrar
	rand      io.Reader
}

// NewConsentDesk returns a desk over r and db; rnd draws CINs (nil for
// crypto/rand).
func NewConsentDesk(r *Router, db cinStore, rnd io.Reader) *ConsentDesk {
	if rnd == nil {
		rnd = rand.Reader
	}
	return &ConsentDesk{router: r, db: db, registrar: NewRegistrar(db, r.now), rand: rnd}
}

// RequestCIN has target display a fresh CIN for the calling other user:
// the command goes through the whole pipeline (eligibility for 9.1 is the
// OU's alone; no consent is needed for this one request) and the CIN's hash
// is kept for CINValidity; the command's stored copy loses its payload
// once the transport has taken it.
func (d *ConsentDesk) RequestCIN(ctx context.Context, caller Caller, target smki.EUI, fuel string) (Receipt, error) {
	if caller.Role != smki.UserOther {
		return Receipt{}, fmt.Errorf("%w: only other users (OU) request a CIN", ErrNotEligible)
	}
	var code uint16 = codeECS50
	switch fuel {
	case "", "electricity":
	case "gas":
		code = codeGCS36
	default:
		return Receipt{}, fmt.Errorf("%w: fuel %q (want electricity or gas)", ErrBadRequest, fuel)
	}
	n, err := rand.Int(d.rand, big.NewInt(MaxCIN+1))
	if err != nil {
		return Receipt{}, fmt.Errorf("%w: drawing a CIN: %w", ErrUnavailable, err)
	}
	cin := uint32(n.Int64())
	r := d.router
	last, known, err := r.cfg.Ledger.LastCounter(ctx, r.cfg.ACB, target)
	if err != nil {
		return Receipt{}, fmt.Errorf("%w: reading counter: %w", ErrUnavailable, err)
	}
	counter := pickCounter(last, known, r.now())
	payload, err := cinPayload(payloadContext{code: code, counter: counter, user: caller.EUI, target: target, now: r.now()}, cin)
	if err != nil {
		return Receipt{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	m := &commands.Message{CRA: commands.Command, Counter: counter, Originator: r.cfg.ACB, Recipient: target,
		Code: commands.MessageCode(code), Payload: payload,
		URP: &commands.UnknownRemoteParty{EUI: caller.EUI, Counter: counter}}
	raw, err := m.Marshal()
	if err != nil {
		return Receipt{}, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	rc, err := r.run(ctx, &submission{caller: caller, raw: raw, cinRequest: true})
	if err != nil {
		return Receipt{}, audited(err) // the pipeline audited its refusal
	}
	now := r.now()
	if err := d.db.PutCINChallenge(ctx, target, caller.EUI, cinHash(rc.ID, cinText(cin)), rc.ID, now, now.Add(CINValidity)); err != nil {
		return Receipt{}, fmt.Errorf("%w: recording the CIN challenge: %w", ErrUnavailable, err)
	}
	return rc, nil
}

// MaxCIN is the largest customer identification number: GB meters show a
// CIN of four decimal digits (the DCC's reference test data sends ECS50 with
// four ASCII digits). Guessing is bounded by store.MaxCINAttempts per
// challenge, each challenge audited.
const MaxCIN = 9999

// cinText is the CIN as the meter displays it: four ASCII digits.
func cinText(cin uint32) []byte { return fmt.Appendf(nil, "%04d", cin) }

// validCIN reports whether s has the form of a displayed CIN.
func validCIN(s string) bool {
	if len(s) != 4 {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// cinPayload builds the command that has the meter display cin: ECS50, a
// SET of the CIN object 0-3:96.13.1.255 (spec gbcs-payloads.md 4.5), or,
// on a gas meter, GCS36 in the layout of our own package gbz defines.
func cinPayload(c payloadContext, cin uint32) ([]byte, error) {
	if c.code == codeECS50 {
		return encoded(dlms.CINRequest(c.invokeID(), cinText(cin)).MarshalBinary())
	}
	return gasCINPayload(c, cinText(cin))
}

// cinHash binds a CIN, as displayed, to the command that displayed it.
func cinHash(commandID string, cin []byte) []byte {
	h := sha256.New()
	h.Write([]byte("metertrust CIN v2\x00"))
	h.Write([]byte(commandID))
	h.Write([]byte{0})
	h.Write(cin)
	return h.Sum(nil)
}

// ConsentRequest is an other user's claim of consent: the CIN the consumer
// read back, the reads it wants and for how long.
type ConsentRequest struct {
	Device smki.EUI `json:"device"`
	// CIN is the number as the meter displays it: four decimal digits.
	CIN   string   `json:"cin"`
	Scope []string `json:"scope"`
	Days  int      `json:"days"`
}

// ConfirmCIN checks the CIN read back and, when it matches, records the
// consent (audited). Each wrong CIN spends one of MaxCINAttempts.
func (d *ConsentDesk) ConfirmCIN(ctx context.Context, caller Caller, in ConsentRequest) (store.Consent, error) {
	if caller.Role != smki.UserOther {
		return store.Consent{}, fmt.Errorf("%w: only other users (OU) hold consents", ErrNotEligible)
	}
	if in.Days < 1 || in.Days > MaxConsentDays {
		return store.Consent{}, fmt.Errorf("%w: days must be 1 to %d", ErrBadRequest, MaxConsentDays)
	}
	if len(in.Scope) == 0 {
		return store.Consent{}, fmt.Errorf("%w: scope lists no service request", ErrBadRequest)
	}
	if !validCIN(in.CIN) {
		return store.Consent{}, fmt.Errorf("%w: cin must be the four digits the meter displays", ErrBadRequest)
	}
	for _, ref := range in.Scope {
		sr, ok := commands.LookupServiceRequest(ref)
		if !ok || !sr.Eligible(smki.UserOther) || ref == "9.1" {
			return store.Consent{}, fmt.Errorf("%w: scope %q is not a service request an other user may send", ErrBadRequest, ref)
		}
	}
	now := d.router.now()
	err := d.db.ConsumeCINChallenge(ctx, in.Device, caller.EUI, func(h []byte, commandID string) bool {
		return subtle.ConstantTimeCompare(h, cinHash(commandID, []byte(in.CIN))) == 1
	}, now)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.Consent{}, fmt.Errorf("%w: no live CIN challenge for device %s: request a CIN first", ErrNotFound, in.Device)
	case errors.Is(err, store.ErrCINMismatch):
		d.router.audit(ctx, AuditEvent{Action: "consent.refused", Caller: caller, Target: in.Device, Kind: ErrNotOwner.Code(),
			Detail: "wrong CIN read back: " + err.Error(), At: now})
		return store.Consent{}, audited(fmt.Errorf("%w: %w", ErrNotOwner, err))
	case err != nil:
		return store.Consent{}, fmt.Errorf("%w: checking the CIN: %w", ErrUnavailable, err)
	}
	id := make([]byte, 12)
	if _, err := io.ReadFull(d.rand, id); err != nil {
		return store.Consent{}, fmt.Errorf("%w: consent id: %w", ErrUnavailable, err)
	}
	c := store.Consent{ID: "C-" + hex.EncodeToString(id), Device: in.Device.String(), User: caller.EUI.String(), Scope: slices.Clone(in.Scope),
		DataFrom: now.AddDate(0, -ConsentDataMonths, 0), NotBefore: now, ExpiresAt: now.AddDate(0, 0, in.Days),
		Evidence: "customer identification number displayed on the device at the router's request and read back"}
	if err := d.registrar.GrantConsent(ctx, caller.String(), c); err != nil {
		return store.Consent{}, fmt.Errorf("%w: recording consent: %w", ErrUnavailable, err)
	}
	c.CreatedBy, c.CreatedAt = caller.String(), now
	return c, nil
}

// The states of a consent record as the API shows them.
const (
	ConsentLive    = "live"    // started, not expired, not revoked
	ConsentPending = "pending" // not started yet
	ConsentExpired = "expired"
	ConsentRevoked = "revoked"
)

// consentState returns c's state at now.
func consentState(c store.Consent, now time.Time) string {
	switch {
	case !c.RevokedAt.IsZero():
		return ConsentRevoked
	case !now.Before(c.ExpiresAt):
		return ConsentExpired
	case now.Before(c.NotBefore):
		return ConsentPending
	}
	return ConsentLive
}

// consentView is a consent record as the API shows it.
type consentView struct {
	ID     string   `json:"id"`
	Device string   `json:"device"`
	User   string   `json:"user"`
	Scope  []string `json:"scope"`
	State  string   `json:"state"`
	// DataFrom is the oldest data the record itself allows; every read is
	// also bounded by DataPeriodStart (13 months back from the read).
	DataFrom     time.Time `json:"dataFrom,omitzero"`
	NotBefore    time.Time `json:"notBefore"`
	Expires      time.Time `json:"expires"`
	Evidence     string    `json:"evidence"`
	Created      time.Time `json:"created"`
	RevokedAt    time.Time `json:"revokedAt,omitzero"`
	RevokedBy    string    `json:"revokedBy,omitempty"`
	RevokeReason string    `json:"revokeReason,omitempty"`
}

func consentViewOf(c store.Consent, now time.Time) consentView {
	return consentView{ID: c.ID, Device: c.Device, User: c.User, Scope: c.Scope, State: consentState(c, now), DataFrom: c.DataFrom,
		NotBefore: c.NotBefore, Expires: c.ExpiresAt, Evidence: c.Evidence, Created: c.CreatedAt, RevokedAt: c.RevokedAt,
		RevokedBy: c.RevokedBy, RevokeReason: c.RevokeReason}
}

// Consents lists the consent records the calling other user holds (f's
// User is the caller's, whatever f says), oldest first. Only other users
// hold consents; an operator lists anyone's through Registrar.Consents.
func (d *ConsentDesk) Consents(ctx context.Context, caller Caller, f store.ConsentFilter) ([]store.Consent, error) {
	if caller.Role != smki.UserOther {
		return nil, fmt.Errorf("%w: only other users (OU) hold consents", ErrNotEligible)
	}
	f.User = caller.EUI
	cs, err := d.db.Consents(ctx, f)
	if errors.Is(err, store.ErrInvalid) {
		return nil, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: listing consents: %w", ErrUnavailable, err)
	}
	return cs, nil
}

// Consent returns the consent record id if the calling other user holds
// it; another user's is reported as absent.
func (d *ConsentDesk) Consent(ctx context.Context, caller Caller, id string) (store.Consent, error) {
	if caller.Role != smki.UserOther {
		return store.Consent{}, fmt.Errorf("%w: only other users (OU) hold consents", ErrNotEligible)
	}
	c, err := d.db.Consent(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && c.User != caller.EUI.String()) {
		return store.Consent{}, fmt.Errorf("%w: no consent %q of yours", ErrNotFound, clip(id, 64))
	}
	if err != nil {
		return store.Consent{}, fmt.Errorf("%w: reading consent: %w", ErrUnavailable, err)
	}
	return c, nil
}

// RevokeConsent ends the consent id that the calling other user holds, now,
// for reason (required): the third party giving up a consent, or passing
// on the consumer's withdrawal. The revocation is audited with the caller
// and the reason, and recorded in the consent record; a refused one
// (already revoked) is audited by the registrar.
func (d *ConsentDesk) RevokeConsent(ctx context.Context, caller Caller, id, reason string) (store.Consent, error) {
	if strings.TrimSpace(reason) == "" || len(reason) > store.MaxRevokeReason {
		return store.Consent{}, fmt.Errorf("%w: a reason of 1-%d bytes is required", ErrBadRequest, store.MaxRevokeReason)
	}
	c, err := d.Consent(ctx, caller, id)
	if err != nil {
		return store.Consent{}, err
	}
	err = d.registrar.RevokeConsent(ctx, caller.String(), id, reason)
	switch {
	case errors.Is(err, store.ErrConflict):
		return store.Consent{}, audited(fmt.Errorf("%w: consent %s is already revoked", ErrConflict, id))
	case errors.Is(err, store.ErrNotFound):
		return store.Consent{}, audited(fmt.Errorf("%w: no consent %q of yours", ErrNotFound, id))
	case errors.Is(err, store.ErrInvalid):
		return store.Consent{}, audited(fmt.Errorf("%w: %w", ErrBadRequest, err))
	case err != nil:
		return store.Consent{}, fmt.Errorf("%w: revoking consent: %w", ErrUnavailable, err)
	}
	c.RevokedAt, c.RevokedBy, c.RevokeReason = d.router.now().UTC().Truncate(time.Microsecond), caller.String(), reason
	return c, nil
}

// getConsents: GET /v1/consents?device=EUI&state=live&limit=N lists the
// calling other user's consents, oldest first.
func (s *Server) getConsents(c echo.Context) error {
	f := store.ConsentFilter{Limit: 100}
	if d := c.QueryParam("device"); d != "" {
		eui, err := smki.ParseEUI(d)
		if err != nil {
			return fmt.Errorf("%w: device: %w", ErrBadRequest, err)
		}
		f.Device = eui
		c.Set(targetKey, eui)
	}
	now := s.cfg.Router.now()
	switch st := c.QueryParam("state"); st {
	case "", "all":
	case ConsentLive:
		f.LiveAt = now
	default:
		return fmt.Errorf("%w: state %q (want live or all)", ErrBadRequest, clip(st, 32))
	}
	if l := c.QueryParam("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			return fmt.Errorf("%w: limit %q must be 1 to 1000", ErrBadRequest, clip(l, 32))
		}
		f.Limit = n
	}
	cs, err := s.cfg.Consents.Consents(c.Request().Context(), callerFrom(c), f)
	if err != nil {
		return err
	}
	out := struct {
		Consents []consentView `json:"consents"`
	}{Consents: []consentView{}}
	for _, cs := range cs {
		out.Consents = append(out.Consents, consentViewOf(cs, now))
	}
	return c.JSON(http.StatusOK, out)
}

// getConsent: GET /v1/consents/{id} shows one of the caller's consents.
func (s *Server) getConsent(c echo.Context) error {
	cs, err := s.cfg.Consents.Consent(c.Request().Context(), callerFrom(c), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, consentViewOf(cs, s.cfg.Router.now()))
}

// revokeConsent: POST /v1/consents/{id}/revoke {"reason": "..."} ends one
// of the caller's consents now.
func (s *Server) revokeConsent(c echo.Context) error {
	var in struct {
		Reason string `json:"reason"`
	}
	if err := s.decodeJSON(c, &in); err != nil {
		return err
	}
	cs, err := s.cfg.Consents.RevokeConsent(c.Request().Context(), callerFrom(c), c.Param("id"), in.Reason)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, consentViewOf(cs, s.cfg.Router.now()))
}

// postCIN: POST /v1/cin {"target": EUI, "fuel": ...} has the meter display
// a CIN for the calling other user.
func (s *Server) postCIN(c echo.Context) error {
	var in struct {
		Target smki.EUI `json:"target"`
		Fuel   string   `json:"fuel,omitempty"`
	}
	if err := s.decodeJSON(c, &in); err != nil {
		return err
	}
	if in.Target.IsZero() {
		return fmt.Errorf("%w: target device is required", ErrBadRequest)
	}
	rc, err := s.cfg.Consents.RequestCIN(c.Request().Context(), callerFrom(c), in.Target, in.Fuel)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Location", "/v1/commands/"+rc.ID)
	return c.JSON(http.StatusAccepted, rc)
}

// postConsent: POST /v1/consents {"device", "cin", "scope", "days"} turns a
// CIN read back into a consent record.
func (s *Server) postConsent(c echo.Context) error {
	var in ConsentRequest
	if err := s.decodeJSON(c, &in); err != nil {
		return err
	}
	cs, err := s.cfg.Consents.ConfirmCIN(c.Request().Context(), callerFrom(c), in)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Location", "/v1/consents/"+cs.ID)
	return c.JSON(http.StatusCreated, consentViewOf(cs, s.cfg.Router.now()))
}
