package router

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/commands/asn"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// This file is the router's side of the device re-key (decision 017): the
// service requests 6.17 (CS02c), 6.15.2 (CS02d) and 6.24.2 (CS02e), the
// check that a CS02d carries a certificate the SMKI repository holds for
// its device, and the registry's switch to the new key once the meter
// confirms it.

// The message codes of the device re-key use cases.
const (
	codeCS02c commands.MessageCode = 0x000A
	codeCS02d commands.MessageCode = 0x000B
	codeCS02e commands.MessageCode = 0x000C
)

// The service references of the device re-key (decision 017).
const (
	refIssueCredentials  = "6.17"
	refUpdateDeviceCerts = "6.15.2"
	refRetrieveDevice    = "6.24.2"
)

// DeviceCertificates finds device certificates in the SMKI repository.
// StoreCertificates implements it.
type DeviceCertificates interface {
	// DeviceCertificate returns der read as a certificate when it is an
	// unrevoked device certificate the repository holds for device, and
	// an error otherwise.
	DeviceCertificate(ctx context.Context, device smki.EUI, der []byte) (*smki.Certificate, error)
	// NewestDeviceCertificate returns the newest (the last stored)
	// unrevoked device certificate of device with usage ("ds" or "ka"):
	// after a re-key, the one the SMKI issued for it.
	NewestDeviceCertificate(ctx context.Context, device smki.EUI, usage string) ([]byte, error)
}

// DeviceCertificate implements DeviceCertificates.
func (c *StoreCertificates) DeviceCertificate(ctx context.Context, device smki.EUI, der []byte) (*smki.Certificate, error) {
	certs, err := c.db.FindCertificates(ctx, store.CertQuery{EUI: device.String(), Kind: store.KindDevice})
	if err != nil {
		return nil, fmt.Errorf("%w: looking up device certificates: %w", ErrUnavailable, err)
	}
	for _, sc := range certs {
		if bytes.Equal(sc.DER, der) {
			return smki.ParseCertificate(der)
		}
	}
	return nil, fmt.Errorf("not an unrevoked device certificate of %s in the SMKI repository", device)
}

// NewestDeviceCertificate implements DeviceCertificates.
func (c *StoreCertificates) NewestDeviceCertificate(ctx context.Context, device smki.EUI, usage string) ([]byte, error) {
	certs, err := c.db.FindCertificates(ctx, store.CertQuery{EUI: device.String(), Kind: store.KindDevice, Usage: usage})
	if err != nil {
		return nil, fmt.Errorf("%w: looking up device certificates: %w", ErrUnavailable, err)
	}
	var best *store.Certificate
	for i := range certs {
		sc := &certs[i]
		if best == nil || sc.ID > best.ID { // the store's IDs rise with each certificate stored
			best = sc
		}
	}
	if best == nil {
		return nil, fmt.Errorf("no unrevoked %s device certificate of %s in the SMKI repository", usage, device)
	}
	return best.DER, nil
}

// keyUsageParams are the parameters of 6.17 and 6.24.2.
type keyUsageParams struct {
	// KeyUsage is "ds" (digitalSignature) or "ka" (keyAgreement).
	KeyUsage string `json:"keyUsage"`
}

func asnUsage(s string) (asn.KeyUsage, error) {
	switch s {
	case "ds":
		return asn.NewKeyUsage(asn.DigitalSignature), nil
	case "ka":
		return asn.NewKeyUsage(asn.KeyAgreement), nil
	}
	return asn.KeyUsage{}, fmt.Errorf("%w: parameters: keyUsage %q: want \"ds\" or \"ka\"", ErrBadRequest, s)
}

// issueCredentialsPayload builds CS02c (6.17) and CS02e (6.24.2):
// SEQUENCE { keyUsage } (gbcs-payloads.md 3.5).
func issueCredentialsPayload(c payloadContext, params json.RawMessage) ([]byte, error) {
	var p keyUsageParams
	if err := strictJSON(params, &p); err != nil {
		return nil, err
	}
	ku, err := asnUsage(p.KeyUsage)
	if err != nil {
		return nil, err
	}
	if c.code == uint16(codeCS02e) {
		return encoded((&asn.ProvideDeviceCertificateCommand{KeyUsage: ku}).Marshal())
	}
	return encoded((&asn.IssueSecurityCredentialsCommand{KeyUsage: ku}).Marshal())
}

// updateDeviceCertsParams are the parameters of 6.15.2.
type updateDeviceCertsParams struct {
	// Certificate is the new device certificate, base64 DER.
	Certificate string `json:"certificate"`
}

// updateDeviceCertsPayload builds CS02d (6.15.2): the certificate.
func updateDeviceCertsPayload(_ payloadContext, params json.RawMessage) ([]byte, error) {
	var p updateDeviceCertsParams
	if err := strictJSON(params, &p); err != nil {
		return nil, err
	}
	der, err := base64.StdEncoding.DecodeString(p.Certificate)
	if err != nil || len(der) == 0 {
		return nil, fmt.Errorf("%w: parameters: certificate: want the device certificate as base64 DER", ErrBadRequest)
	}
	return encoded((&asn.UpdateDeviceCertificateCommand{Certificate: asn.Certificate{Raw: der}}).Marshal())
}

// checkDeviceCertificate refuses, before anything is recorded, a CS02d
// whose certificate is not one the SMKI repository holds, unrevoked, for
// its target device (ErrDeviceCertificate).
func (r *Router) checkDeviceCertificate(ctx context.Context, s *submission) error {
	if s.msg.Code != codeCS02d {
		return nil
	}
	p, err := asn.Parse[asn.UpdateDeviceCertificateCommand](s.msg.Payload)
	if err != nil {
		return fmt.Errorf("%w: CS02d payload: %w", ErrMalformed, err)
	}
	if r.cfg.DeviceCertificates == nil {
		return fmt.Errorf("%w: no SMKI repository to check the CS02d certificate against", ErrUnavailable)
	}
	c, err := r.cfg.DeviceCertificates.DeviceCertificate(ctx, s.msg.Recipient, p.Raw)
	if err != nil {
		if errors.Is(err, ErrUnavailable) {
			return err
		}
		return fmt.Errorf("%w: CS02d for %s: %w", ErrDeviceCertificate, s.msg.Recipient, err)
	}
	if c.Kind != smki.KindDevice || c.EUI != s.msg.Recipient {
		return fmt.Errorf("%w: CS02d for %s carries a %s certificate of %s", ErrDeviceCertificate, s.msg.Recipient, c.Kind, c.EUI)
	}
	return nil
}

// RekeyStore is what the RekeyDesk needs of *store.RouterStore.
type RekeyStore interface {
	RekeyRouterDevice(ctx context.Context, device smki.EUI, usage string, old, next []byte, at time.Time, es ...store.AuditEvent) (bool, error)
	SetRouterDeviceKAPending(ctx context.Context, device smki.EUI, key []byte, es ...store.AuditEvent) (bool, error)
	ClearRouterDeviceKAPending(ctx context.Context, device smki.EUI, key []byte, es ...store.AuditEvent) (bool, error)
	RouterDeviceKAPending(ctx context.Context, device smki.EUI) ([]byte, error)
}

// RekeyDesk switches the registry to a device's new key once the device
// confirms it (decision 017): a CS02d the device answered success (its
// response's signature checked by the Forwarder), or a CS02e read-back
// whose certificate, one the repository holds for the device, differs
// from the registry's (the settlement of a CS02d whose answer was lost).
// Each switch is one transaction with its audit entry.
//
// While a key-agreement re-key is unsettled (its CS02d sent, the meter's
// answer not seen), the desk keeps the CS02d's key on the device record as
// its pending key; when the meter refuses the MAC of a CS02e read-back
// under the registry's key, the forwarder sends it again MAC'd with the
// pending key (Reseal), and the meter's signed answer settles the
// registry (decision 017, "A lost answer").
type RekeyDesk struct {
	db    RekeyStore
	reg   Registry
	certs DeviceCertificates
	acb   KeyAgreement
	log   *slog.Logger
	now   func() time.Time
}

// NewRekeyDesk returns a RekeyDesk over db (the router's tables), reg (the
// registry as the Forwarder reads it), certs (the SMKI repository) and acb
// (the access control broker's key-agreement key, to MAC a read-back with
// a pending key; nil: no such retry).
func NewRekeyDesk(db RekeyStore, reg Registry, certs DeviceCertificates, acb KeyAgreement, log *slog.Logger, now func() time.Time) *RekeyDesk {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	return &RekeyDesk{db: db, reg: reg, certs: certs, acb: acb, log: log.With("component", "router.rekey"), now: now}
}

// observes reports whether rec's answer may re-key its device.
func (k *RekeyDesk) observes(rec Record) bool {
	return k != nil && (rec.Code == codeCS02d || rec.Code == codeCS02e)
}

// Answered takes the device's checked response to rec, a CS02d or CS02e,
// and switches the registry when it confirms a new key. Failures are
// logged: the next CS02e read-back settles what this one could not.
func (k *RekeyDesk) Answered(ctx context.Context, rec Record, resp []byte) {
	der, how, err := k.confirmed(ctx, rec, resp)
	if err != nil || der == nil {
		if err != nil {
			k.log.WarnContext(ctx, "re-key answer unreadable", "id", rec.ID, "device", rec.Target.String(), "err", err)
		}
		return
	}
	if err := k.switchTo(ctx, rec, der, how); err != nil {
		k.log.ErrorContext(ctx, "re-key not recorded", "id", rec.ID, "device", rec.Target.String(), "err", err)
	}
}

// confirmed returns the certificate rec's answer confirms the device holds:
// a CS02d's certificate when the answer is success (0), a CS02e's
// certificate; nil when the answer confirms none.
func (k *RekeyDesk) confirmed(ctx context.Context, rec Record, resp []byte) ([]byte, string, error) {
	m, err := commands.Parse(resp)
	if err != nil {
		return nil, "", err
	}
	switch rec.Code {
	case codeCS02d:
		code, err := asn.Parse[asn.UpdateDeviceCertificateResponse](m.Payload)
		if err != nil {
			return nil, "", err
		}
		cmd, err := commands.Parse(rec.Message)
		if err != nil {
			return nil, "", err
		}
		p, err := asn.Parse[asn.UpdateDeviceCertificateCommand](cmd.Payload)
		if err != nil {
			return nil, "", err
		}
		if *code != 0 {
			k.refused(ctx, rec, p.Raw, int64(*code))
			return nil, "", nil
		}
		return p.Raw, "CS02d answered success", nil
	case codeCS02e:
		p, err := asn.Parse[asn.ProvideDeviceCertificateResponse](m.Payload)
		if err != nil || p.Certificate == nil {
			return nil, "", err
		}
		return p.Certificate.Raw, "CS02e read-back", nil
	}
	return nil, "", nil
}

// switchTo makes the key of der, a certificate the repository holds for
// rec's device, the registry's key of its usage.
func (k *RekeyDesk) switchTo(ctx context.Context, rec Record, der []byte, how string) error {
	c, err := k.certs.DeviceCertificate(ctx, rec.Target, der)
	if err != nil {
		return err
	}
	if c.EUI != rec.Target {
		return fmt.Errorf("certificate of %s, not %s", c.EUI, rec.Target)
	}
	next, err := c.PublicKey.Bytes()
	if err != nil {
		return err
	}
	d, err := k.reg.Device(ctx, rec.Target)
	if err != nil {
		return err
	}
	var usage string
	var old []byte
	switch c.KeyUsage {
	case x509.KeyUsageDigitalSignature:
		usage = store.RekeyDS
		if d.Signing != nil {
			old, _ = d.Signing.Bytes()
		}
	case x509.KeyUsageKeyAgreement:
		usage = store.RekeyKA
		old = d.KeyAgreement.Bytes()
	default:
		return fmt.Errorf("certificate key usage %s", smki.KeyUsageString(c.KeyUsage))
	}
	at := k.now()
	e := AuditEvent{Action: "device.rekeyed", Caller: rec.Caller, Target: rec.Target, Counter: rec.Counter, Code: rec.Code,
		CommandID: rec.ID, Detail: fmt.Sprintf("%s: the registry's %s key of %s is now that of certificate %X (%s)", how, usage, rec.Target, c.SerialNumber, smki.KeyUsageString(c.KeyUsage)), At: at}
	changed, err := k.db.RekeyRouterDevice(ctx, rec.Target, usage, old, next, at, toStoreAudit(e))
	if err != nil {
		return err
	}
	if changed {
		k.log.InfoContext(ctx, "device re-keyed", "device", rec.Target.String(), "usage", usage, "id", rec.ID, "how", how)
	}
	return nil
}

// readBackKey returns the digital-signing key of the certificate a CS02e
// response carries, when it is the newest digital-signing certificate the
// repository holds for the device: the key a device re-keyed by a CS02d
// whose answer was lost signs with (decision 017). Only the newest: an
// older certificate still unrevoked (before the re-key is confirmed) would
// let whoever holds the old key answer a read-back and switch the registry
// back to it.
func (k *RekeyDesk) readBackKey(ctx context.Context, rec Record, m *commands.Message) *ecdsa.PublicKey {
	if k == nil || rec.Code != codeCS02e {
		return nil
	}
	p, err := asn.Parse[asn.ProvideDeviceCertificateResponse](m.Payload)
	if err != nil || p.Certificate == nil {
		return nil
	}
	c, err := k.certs.DeviceCertificate(ctx, rec.Target, p.Certificate.Raw)
	if err != nil || c.EUI != rec.Target || c.KeyUsage != x509.KeyUsageDigitalSignature {
		return nil
	}
	if newest, err := k.certs.NewestDeviceCertificate(ctx, rec.Target, "ds"); err != nil || !bytes.Equal(newest, p.Certificate.Raw) {
		k.log.WarnContext(ctx, "read-back of a digital-signing certificate that is not the device's newest: not taken as its key",
			"id", rec.ID, "device", rec.Target.String(), "err", err)
		return nil
	}
	return c.PublicKey
}

// kaCertificate returns the key-agreement key of der when it is a
// key-agreement device certificate the repository holds for rec's device,
// with the certificate; nil otherwise.
func (k *RekeyDesk) kaCertificate(ctx context.Context, rec Record, der []byte) ([]byte, *smki.Certificate) {
	c, err := k.certs.DeviceCertificate(ctx, rec.Target, der)
	if err != nil || c.EUI != rec.Target || c.KeyUsage != x509.KeyUsageKeyAgreement {
		return nil, nil
	}
	pub, err := c.PublicKey.ECDH()
	if err != nil {
		return nil, nil
	}
	return pub.Bytes(), c
}

// Installing is told of a CS02d about to be sent (each attempt): when it
// carries a key-agreement certificate whose key the registry does not
// hold, that key becomes the device's pending key, audited
// (router.device.rekey-pending), until the meter's answer or a read-back
// settles it. Failures are logged: the CS02d goes all the same, and its
// success answer switches the registry without the pending key.
func (k *RekeyDesk) Installing(ctx context.Context, rec Record) {
	if k == nil || rec.Code != codeCS02d {
		return
	}
	cmd, err := commands.Parse(rec.Message)
	if err != nil {
		return
	}
	p, err := asn.Parse[asn.UpdateDeviceCertificateCommand](cmd.Payload)
	if err != nil {
		return
	}
	key, c := k.kaCertificate(ctx, rec, p.Raw)
	if key == nil {
		return
	}
	if d, err := k.reg.Device(ctx, rec.Target); err == nil && d.KeyAgreement != nil && bytes.Equal(d.KeyAgreement.Bytes(), key) {
		return
	}
	e := AuditEvent{Action: "device.rekey-pending", Caller: rec.Caller, Target: rec.Target, Counter: rec.Counter, Code: rec.Code,
		CommandID: rec.ID, At: k.now(), Detail: fmt.Sprintf("CS02d installs key-agreement certificate %X on %s: its key is pending until the meter's signed answer or a CS02e read-back settles which key the meter holds",
			c.SerialNumber, rec.Target)}
	if _, err := k.db.SetRouterDeviceKAPending(ctx, rec.Target, key, toStoreAudit(e)); err != nil {
		k.log.ErrorContext(ctx, "pending key-agreement key not recorded", "id", rec.ID, "device", rec.Target.String(), "err", err)
	}
}

// refused forgets the pending key of a CS02d the meter answered with a
// failure code: the meter kept its key.
func (k *RekeyDesk) refused(ctx context.Context, rec Record, der []byte, code int64) {
	key, c := k.kaCertificate(ctx, rec, der)
	if key == nil {
		return
	}
	e := AuditEvent{Action: "device.rekey-pending", Caller: rec.Caller, Target: rec.Target, Counter: rec.Counter, Code: rec.Code,
		CommandID: rec.ID, At: k.now(), Detail: fmt.Sprintf("CS02d answered %d: the meter keeps its key-agreement key; certificate %X's key is no longer pending", code, c.SerialNumber)}
	if _, err := k.db.ClearRouterDeviceKAPending(ctx, rec.Target, key, toStoreAudit(e)); err != nil {
		k.log.ErrorContext(ctx, "pending key-agreement key not cleared", "id", rec.ID, "device", rec.Target.String(), "err", err)
	}
}

// Reseal returns rec, a CS02e read-back the device discarded for a bad MAC,
// MAC'd instead with its pending key-agreement key, and that key; nil when
// rec is no CS02e, the device has no pending key, or the MAC cannot be
// computed. Only the read-back is sent so: its answer, signed by the
// device and carrying the certificate it holds, is what settles the
// registry (decision 017).
func (k *RekeyDesk) Reseal(ctx context.Context, rec Record) ([]byte, *ecdh.PublicKey) {
	if k == nil || k.acb == nil || rec.Code != codeCS02e {
		return nil, nil
	}
	raw, err := k.db.RouterDeviceKAPending(ctx, rec.Target)
	if err != nil || raw == nil {
		return nil, nil
	}
	pending, err := ecdh.P256().NewPublicKey(raw)
	if err != nil {
		return nil, nil
	}
	m, err := commands.Parse(rec.Message)
	if err != nil || m.MAC == nil {
		return nil, nil
	}
	z, err := k.acb.ECDH(ctx, pending)
	if err != nil {
		k.log.ErrorContext(ctx, "key agreement with a pending key", "id", rec.ID, "device", rec.Target.String(), "err", err)
		return nil, nil
	}
	defer clear(z)
	if m.MAC, err = acbMAC(m, z); err != nil {
		return nil, nil
	}
	out, err := m.Marshal()
	if err != nil {
		return nil, nil
	}
	return out, pending
}

// SettlePending switches the registry's key-agreement key to pending, the
// key rec (a CS02e resealed by Reseal) was MAC'd with: the device executed
// it and answered, its signature checked, which it does only when that MAC
// verifies under the key it holds.
func (k *RekeyDesk) SettlePending(ctx context.Context, rec Record, pending *ecdh.PublicKey) {
	d, err := k.reg.Device(ctx, rec.Target)
	if err != nil || d.KeyAgreement == nil {
		k.log.ErrorContext(ctx, "re-key not recorded", "id", rec.ID, "device", rec.Target.String(), "err", err)
		return
	}
	at := k.now()
	e := AuditEvent{Action: "device.rekeyed", Caller: rec.Caller, Target: rec.Target, Counter: rec.Counter, Code: rec.Code,
		CommandID: rec.ID, At: at, Detail: fmt.Sprintf("CS02e read-back answered under the pending key-agreement key's MAC: the registry's ka key of %s is now the pending key", rec.Target)}
	changed, err := k.db.RekeyRouterDevice(ctx, rec.Target, store.RekeyKA, d.KeyAgreement.Bytes(), pending.Bytes(), at, toStoreAudit(e))
	if err != nil {
		k.log.ErrorContext(ctx, "re-key not recorded", "id", rec.ID, "device", rec.Target.String(), "err", err)
		return
	}
	if changed {
		k.log.InfoContext(ctx, "device re-keyed", "device", rec.Target.String(), "usage", store.RekeyKA, "id", rec.ID, "how", "pending key")
	}
}
