package ca

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// ErrRekey is wrapped by every refusal of a device re-key request that is a
// well-formed device CSR (IssueRekey): the device is not in the inventory,
// the request names another device, or it certifies a key the device
// already holds. It also matches ErrRequest.
var ErrRekey = fmt.Errorf("%w: device re-key refused", ErrRequest)

// IssueRekey issues the re-key certificate of device (GBCS CS02c, decision
// 017) from batch, a batch Device CA opened for PurposeRekey, for csr, the
// PKCS#10 request the device made: empty subject, critical keyUsage of
// exactly digitalSignature or keyAgreement, critical hardwareModuleName SAN
// whose hwSerialNum is device, a P-256 key whose self-signature verifies
// (proof of possession). The device must be in the inventory (it holds an
// unrevoked device certificate of the usage asked, issued before), and the
// key must differ from every key certified for it. The certificate the
// device holds now stays good: it is superseded once the meter installs
// the new one (CS02d), and revoked then by the supplier (decision 017).
func (a *Authority) IssueRekey(ctx context.Context, batch string, device smki.EUI, csr []byte) (store.Certificate, error) {
	der, err := DecodePEMOrDER(csr, "CERTIFICATE REQUEST")
	if err != nil {
		return store.Certificate{}, fmt.Errorf("%w: %v", ErrCSR, err)
	}
	r, err := parseCSR(der)
	if err != nil {
		return store.Certificate{}, err
	}
	if r.Kind != smki.KindDevice {
		return store.Certificate{}, fmt.Errorf("%w: not a device request (the subject must be empty)", ErrCSR)
	}
	if r.EUI != device {
		return store.Certificate{}, fmt.Errorf("%w: the request's hwSerialNum names device %s, not %s", ErrCSR, r.EUI, device)
	}
	u := usageOf(r.KeyUsage)
	if err := a.checkRekey(ctx, device, u, r.RawPublicKey); err != nil {
		return store.Certificate{}, err
	}
	// checkRekey reads outside the transaction that records the
	// certificate, for early and precise refusals; the guard checks again
	// inside it, so that two concurrent re-keys of the device cannot both
	// be issued (decision 017).
	guard := &store.RekeyGuard{EUI: device.String(), Usage: string(u)}
	rec, err := a.issueGuarded(ctx, "ca.issue.device-rekey", device.String(), map[string]any{"batch": batch, "usage": string(u)}, true, guard,
		func() (*issuer, *template, error) {
			iss, err := a.onlineIssuer(ctx, batch)
			if err != nil {
				return nil, nil, err
			}
			if iss.rec.Kind != store.CAKindDCA || iss.rec.Purpose != PurposeRekey {
				return nil, nil, fmt.Errorf("%w: %s is not a batch Device CA opened for re-keys (ca batch open --purpose rekey)", ErrRekey, batch)
			}
			t, err := deviceTemplate(r.PublicKey, r.HWType, r.EUI, u, a.now())
			return iss, t, err
		})
	a.metrics.issued("ca.issue.device-rekey", issueOutcome(err), 1)
	if err != nil {
		return store.Certificate{}, err
	}
	if rec.full {
		if err := a.CloseBatch(ctx, batch, "quota reached"); err != nil && !errors.Is(err, ErrBatchClosed) {
			return rec.Certificate, fmt.Errorf("ca: closing batch %s at its quota: %w", batch, err)
		}
	}
	return rec.Certificate, nil
}

// checkRekey refuses a re-key of device for usage u to the key raw (an
// uncompressed P-256 point) unless the device holds an unrevoked device
// certificate of that usage (it is in the inventory) and no certificate of
// the device, revoked or not, of either usage certifies raw. That a re-key
// of the usage is not already in flight is checked by the store, in the
// transaction that records the certificate (store.RekeyGuard), where two
// concurrent requests cannot both pass it; the refusal is audited with the
// issuance's attempt.
func (a *Authority) checkRekey(ctx context.Context, device smki.EUI, u Usage, raw []byte) error {
	have, err := a.st.FindCertificates(ctx, store.CertQuery{EUI: device.String(), Kind: store.KindDevice, IncludeRevoked: true})
	if err != nil {
		return fmt.Errorf("ca: looking up device %s in the inventory: %w", device, err)
	}
	current := 0
	for _, h := range have {
		c, err := smki.ParseCertificate(h.DER)
		if err != nil {
			return fmt.Errorf("ca: device %s: stored certificate %s/%X: %w", device, h.CA, h.Serial, err)
		}
		if pub, err := c.PublicKey.Bytes(); err == nil && bytes.Equal(pub, raw) {
			return fmt.Errorf("%w: device %s: the key is already certified (%s serial %X): a re-key needs a new key pair", ErrRekey, device, h.CA, h.Serial)
		}
		if h.Usage == string(u) && h.RevokedAt.IsZero() {
			current++
		}
	}
	if current == 0 {
		return fmt.Errorf("%w: device %s holds no %s device certificate: it is not in the inventory (a new device's certificate comes from its manufacturer)", ErrRekey, device, u)
	}
	return nil
}
