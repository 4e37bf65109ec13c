package router

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// registryStore is what Registrar needs of *store.RouterStore.
type registryStore interface {
	FindCertificates(ctx context.Context, q store.CertQuery) ([]store.Certificate, error)
	PutRouterDevices(ctx context.Context, devices ...store.RouterDevice) error
	PutSupplyRegistration(ctx context.Context, r store.SupplyRegistration) error
	PutConsent(ctx context.Context, c store.Consent) error
	RevokeConsent(ctx context.Context, id, by, reason string, at time.Time) error
	Consent(ctx context.Context, id string) (store.Consent, error)
	Consents(ctx context.Context, f store.ConsentFilter) ([]store.Consent, error)
	AppendAudit(ctx context.Context, e store.AuditEvent) (store.AuditEvent, error)
}

// Registrar maintains the router's device registry and consent records,
// auditing every change (spec section 11: "every consent change is
// audited").
type Registrar struct {
	db  registryStore
	now func() time.Time
}

// NewRegistrar returns a Registrar over db, normally a *store.RouterStore.
func NewRegistrar(db registryStore, now func() time.Time) *Registrar {
	if now == nil {
		now = time.Now
	}
	return &Registrar{db: db, now: now}
}

// ErrRegistry is wrapped by registrations the registrar refuses.
var ErrRegistry = errors.New("router: registry change refused")

// RegisterDevice records a device in the registry with the organisations
// holding its supplier and network operator trust anchors. Its keys come
// from its unrevoked SMKI device certificates in the repository (one
// key-agreement, one digital-signing), read and checked with package smki.
func (g *Registrar) RegisterDevice(ctx context.Context, actor string, eui, supplier, networkOperator smki.EUI) error {
	details := map[string]any{}
	if !supplier.IsZero() {
		details["supplier"] = supplier.String()
	}
	if !networkOperator.IsZero() {
		details["networkOperator"] = networkOperator.String()
	}
	return g.audited(ctx, actor, "router.device.register", eui.String(), details, func() error {
		if eui.IsZero() || (supplier.IsZero() && networkOperator.IsZero()) {
			return fmt.Errorf("%w: a device EUI and a supplier or network operator are required", ErrRegistry)
		}
		d := store.RouterDevice{EUI: eui.String(), UpdatedAt: g.now()}
		if !supplier.IsZero() {
			d.Supplier = supplier.String()
		}
		if !networkOperator.IsZero() {
			d.NetworkOperator = networkOperator.String()
		}
		certs, err := g.db.FindCertificates(ctx, store.CertQuery{EUI: eui.String(), Kind: store.KindDevice})
		if err != nil {
			return fmt.Errorf("looking up certificates of device %s: %w", eui, err)
		}
		for _, sc := range certs {
			c, err := smki.ParseCertificate(sc.DER)
			if err != nil {
				return fmt.Errorf("%w: device certificate %X: %w", ErrRegistry, sc.Serial, err)
			}
			if c.EUI != eui {
				continue
			}
			switch c.KeyUsage {
			case x509.KeyUsageKeyAgreement:
				d.KAPublic = c.RawPublicKey
			case x509.KeyUsageDigitalSignature:
				d.DSPublic = c.RawPublicKey
			}
		}
		if d.KAPublic == nil {
			return fmt.Errorf("%w: device %s has no unrevoked key-agreement certificate in the repository", ErrRegistry, eui)
		}
		// The device is installed with its parties' current anchors: the
		// key ids of their newest digital-signing certificates (decision
		// 016), so that a later rotation on other devices does not change
		// the key this one is checked with.
		if d.SupplierDSKeyID, err = g.currentKeyID(ctx, supplier, smki.RoleSupplier); err != nil {
			return err
		}
		if d.NetworkOperatorDSKeyID, err = g.currentKeyID(ctx, networkOperator, smki.RoleNetworkOperator); err != nil {
			return err
		}
		return g.db.PutRouterDevices(ctx, d)
	})
}

// currentKeyID returns the subject key identifier (hex) of the newest
// current unrevoked digital-signing certificate of eui in role, "" when it
// has none or eui is zero.
func (g *Registrar) currentKeyID(ctx context.Context, eui smki.EUI, role smki.Role) (string, error) {
	if eui.IsZero() {
		return "", nil
	}
	r := int(role)
	certs, err := g.db.FindCertificates(ctx, store.CertQuery{EUI: eui.String(), Role: &r, Usage: "ds", Kind: store.KindOrg})
	if err != nil {
		return "", fmt.Errorf("looking up the digital-signing certificates of %s: %w", eui, err)
	}
	now := g.now()
	var best *store.Certificate
	for i := range certs {
		c := &certs[i]
		if now.Before(c.NotBefore) || !now.Before(c.NotAfter) {
			continue
		}
		if best == nil || c.NotBefore.After(best.NotBefore) {
			best = c
		}
	}
	if best == nil {
		return "", nil
	}
	c, err := smki.ParseCertificate(best.DER)
	if err != nil {
		return "", fmt.Errorf("%w: certificate %X of %s: %w", ErrRegistry, best.Serial, eui, err)
	}
	return fmt.Sprintf("%X", c.SubjectKeyID), nil
}

// RegisterSupply records the registration data of a change of supplier:
// from effective on, supplier is the supplier registered for the device,
// the only one whose change of supplier (service request 6.23) the router
// accepts for it (decision 014). Operators set it (metertrust router
// supply-register), audited as router.supply.register.
func (g *Registrar) RegisterSupply(ctx context.Context, actor string, device, supplier smki.EUI, effective time.Time) error {
	return g.audited(ctx, actor, "router.supply.register", device.String(), map[string]any{
		"supplier": supplier.String(), "effectiveFrom": effective.UTC(),
	}, func() error {
		if device.IsZero() || supplier.IsZero() || effective.IsZero() {
			return fmt.Errorf("%w: a device, a supplier and an effective time are required", ErrRegistry)
		}
		return g.db.PutSupplyRegistration(ctx, store.SupplyRegistration{Device: device.String(), IncomingSupplier: supplier.String(),
			EffectiveFrom: effective, CreatedBy: actor, CreatedAt: g.now()})
	})
}

// GrantConsent records a consent: an other user may send the service
// requests in scope to the device between notBefore and expires.
func (g *Registrar) GrantConsent(ctx context.Context, actor string, c store.Consent) error {
	c.CreatedBy, c.CreatedAt = actor, g.now()
	return g.audited(ctx, actor, "router.consent.grant", c.ID, map[string]any{
		"device": c.Device, "user": c.User, "scope": c.Scope, "expires": c.ExpiresAt, "evidence": c.Evidence,
	}, func() error { return g.db.PutConsent(ctx, c) })
}

// RevokeConsent ends a consent now, recording actor and reason in the
// record and in the audit log: the other user holding it (through the
// router's API), or an operator acting on the consumer's request (through
// metertrust router consent revoke). A reason is required.
func (g *Registrar) RevokeConsent(ctx context.Context, actor, id, reason string) error {
	return g.audited(ctx, actor, "router.consent.revoke", id, map[string]any{"reason": reason},
		func() error { return g.db.RevokeConsent(ctx, id, actor, reason, g.now()) })
}

// Consents lists the consent records f selects for an operator (metertrust
// router consent list), auditing the reading: consent records are the
// consumers' personal data.
func (g *Registrar) Consents(ctx context.Context, actor string, f store.ConsentFilter) ([]store.Consent, error) {
	details := map[string]any{}
	if !f.User.IsZero() {
		details["user"] = f.User.String()
	}
	if !f.Device.IsZero() {
		details["device"] = f.Device.String()
	}
	if !f.LiveAt.IsZero() {
		details["liveAt"] = f.LiveAt
	}
	var out []store.Consent
	err := g.audited(ctx, actor, "router.consent.list", "", details, func() (err error) {
		out, err = g.db.Consents(ctx, f)
		return err
	})
	return out, err
}

// Consent returns the consent record id for an operator (metertrust router
// consent show), auditing the reading.
func (g *Registrar) Consent(ctx context.Context, actor, id string) (store.Consent, error) {
	var c store.Consent
	err := g.audited(ctx, actor, "router.consent.show", id, nil, func() (err error) {
		c, err = g.db.Consent(ctx, id)
		return err
	})
	return c, err
}

// audited writes an attempt entry, runs fn, and writes its outcome.
func (g *Registrar) audited(ctx context.Context, actor, action, object string, details map[string]any, fn func() error) error {
	if _, err := g.db.AppendAudit(ctx, store.AuditEvent{Time: g.now(), Actor: actor, Action: action, Object: object,
		Outcome: store.OutcomeAttempt, Details: details}); err != nil {
		return fmt.Errorf("auditing %s: %w", action, err)
	}
	err := fn()
	outcome, d := store.OutcomeSuccess, map[string]any{}
	switch {
	case errors.Is(err, ErrRegistry) || errors.Is(err, store.ErrInvalid) || errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrExists) || errors.Is(err, store.ErrNotFound):
		outcome, d["error"] = store.OutcomeRefused, err.Error()
	case err != nil:
		outcome, d["error"] = store.OutcomeFailure, err.Error()
	}
	if _, aerr := g.db.AppendAudit(ctx, store.AuditEvent{Time: g.now(), Actor: actor, Action: action, Object: object,
		Outcome: outcome, Details: d}); aerr != nil {
		return errors.Join(err, fmt.Errorf("auditing %s: %w", action, aerr))
	}
	return err
}
