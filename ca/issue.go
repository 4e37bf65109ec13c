package ca

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"errors"
	"fmt"
	"net"

	"github.com/metertrust/metertrust/custody"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// OrgRequest asks for an organisation certificate. The CSR proves
// possession of the key; the role, EUI, name and usage come from the
// registration (the DCC's SMKI registration authority), and a CSR subject,
// when present, must agree with them.
type OrgRequest struct {
	CSR   []byte // PKCS#10, DER or PEM
	Role  smki.Role
	EUI   smki.EUI
	Name  string // optional CN
	Usage Usage
}

// IssueOrg issues an organisation certificate from the OCA.
func (a *Authority) IssueOrg(ctx context.Context, req OrgRequest) (store.Certificate, error) {
	if _, err := ParseUsage(string(req.Usage)); err != nil {
		return store.Certificate{}, err
	}
	switch {
	case !req.Role.Valid() || req.Role == smki.RoleRoot || req.Role == smki.RoleIssuingAuthority:
		return store.Certificate{}, fmt.Errorf("%w: role %s is not an organisation role", ErrRequest, req.Role)
	case req.Usage == UsagePPKA && req.Role != smki.RoleSupplier:
		return store.Certificate{}, fmt.Errorf("%w: a prepayment top-up key-agreement certificate is for suppliers only", ErrRequest)
	case req.EUI.IsZero():
		return store.Certificate{}, fmt.Errorf("%w: organisation EUI-64 is required", ErrRequest)
	}
	der, err := DecodePEMOrDER(req.CSR, "CERTIFICATE REQUEST")
	if err != nil {
		return store.Certificate{}, fmt.Errorf("%w: %v", ErrCSR, err)
	}
	r, err := parseCSR(der)
	if err != nil {
		return store.Certificate{}, err
	}
	switch {
	case r.Kind != smki.KindOrganisation:
		return store.Certificate{}, fmt.Errorf("%w: not an organisation request (empty subject)", ErrCSR)
	case r.KeyUsage != req.Usage.keyUsage():
		return store.Certificate{}, fmt.Errorf("%w: request asks for %s, registration says %s", ErrCSR, smki.KeyUsageString(r.KeyUsage), req.Usage)
	case r.EUI != req.EUI:
		return store.Certificate{}, fmt.Errorf("%w: request subject EUI %s, registration says %s", ErrCSR, r.EUI, req.EUI)
	case r.Role != req.Role:
		return store.Certificate{}, fmt.Errorf("%w: request subject role %s (OU %s), registration says %s (OU %s)", ErrCSR, r.Role, r.Role.OU(), req.Role, req.Role.OU())
	case req.Name != "" && r.CommonName != "" && r.CommonName != req.Name:
		return store.Certificate{}, fmt.Errorf("%w: request subject CN %q, registration says %q", ErrCSR, r.CommonName, req.Name)
	}
	if req.Name == "" {
		req.Name = r.CommonName
	}
	rec, err := a.issue(ctx, "ca.issue.org", req.EUI.String(), map[string]any{"role": req.Role.OU(), "usage": string(req.Usage), "name": req.Name}, false,
		func() (*issuer, *template, error) {
			iss, err := a.onlineIssuer(ctx, NameOCA)
			if err != nil {
				return nil, nil, err
			}
			t, err := orgTemplate(r.PublicKey, req.Name, req.Role, req.EUI, req.Usage, a.now())
			return iss, t, err
		})
	return rec.Certificate, err
}

// signAndStore signs t with iss and its first OCSP response ("good"), and
// stores both, drawing a fresh serial if the store reports the serial taken
// (ErrExists). Both are signed before anything is stored, so a response
// that fails its lints fails the issuance.
func (a *Authority) signAndStore(ctx context.Context, iss *issuer, t *template) (store.Certificate, error) {
	for range 3 {
		is, err := a.sign(ctx, iss, nil, t)
		if err != nil {
			return store.Certificate{}, err
		}
		resp, err := a.signOCSP(iss.ocspSigner(), is.record)
		if err != nil {
			return store.Certificate{}, err
		}
		err = a.st.PutCertificates(ctx, is.record)
		if errors.Is(err, store.ErrExists) {
			continue
		}
		if err != nil {
			return store.Certificate{}, fmt.Errorf("ca: storing %s certificate: %w", t.kind, err)
		}
		if err := a.st.PutOCSPResponses(ctx, resp); err != nil {
			return store.Certificate{}, fmt.Errorf("ca: %s certificate %X stored, its OCSP response not: %w", t.kind, is.record.Serial, err)
		}
		return is.record, nil
	}
	return store.Certificate{}, fmt.Errorf("ca: storing %s certificate: serial collided three times: %w", t.kind, store.ErrExists)
}

// IssueDevice issues a device certificate from a batch Device CA for a GB
// device CSR (empty subject, critical keyUsage, critical hardwareModuleName
// SAN). Each certificate reserves one unit of the batch's quota before it
// is signed; the certificate that uses up the quota closes the batch, which
// destroys its key. A closed batch gives ErrBatchClosed.
func (a *Authority) IssueDevice(ctx context.Context, batch string, csr []byte) (store.Certificate, error) {
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
	u := usageOf(r.KeyUsage)
	rec, err := a.issue(ctx, "ca.issue.device", r.EUI.String(), map[string]any{"batch": batch, "usage": string(u)}, true,
		func() (*issuer, *template, error) {
			iss, err := a.onlineIssuer(ctx, batch)
			if err != nil {
				return nil, nil, err
			}
			if iss.rec.Kind != store.CAKindDCA {
				return nil, nil, fmt.Errorf("%w: %s is not a batch Device CA", ErrRequest, batch)
			}
			if iss.rec.Purpose != PurposeNew {
				return nil, nil, fmt.Errorf("%w: batch %s is opened for %s certificates, not new devices", ErrRequest, batch, iss.rec.Purpose)
			}
			t, err := deviceTemplate(r.PublicKey, r.HWType, r.EUI, u, a.now())
			return iss, t, err
		})
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

// recorded is a certificate issue stored, and whether it used up its
// batch's quota.
type recorded struct {
	store.Certificate
	full bool
}

// issue signs the certificate prepare describes, with the issuer it
// returns, and its first OCSP response ("good"), then records both, with a
// unit of the batch's quota if reserve and the audit events "attempt" and
// "success" (or "failure"), in one transaction shared with the other
// issuances arriving meanwhile (a.group: one commit, one fsync, per group).
// The caller gets success only once that transaction has committed. A
// serial the store reports taken is drawn again. Signing comes before the
// reservation, so a certificate signed for a batch that the same
// transaction finds closed or used up is discarded, never stored or
// returned; the batch key is not destroyed under a signer (iss.inflight).
func (a *Authority) issueUncounted(ctx context.Context, action, object string, details map[string]any, reserve bool, prepare func() (*issuer, *template, error)) (recorded, error) {
	return a.issueGuarded(ctx, action, object, details, reserve, nil, prepare)
}

// issueGuarded is issueUncounted with, for a device re-key, the guard the
// store checks in the recording transaction (store.RekeyGuard): refused,
// the issuance gives ErrRekey, its attempt and failure audited. It is not
// counted: its callers count it (issue, IssueRekey).
func (a *Authority) issueGuarded(ctx context.Context, action, object string, details map[string]any, reserve bool, guard *store.RekeyGuard, prepare func() (*issuer, *template, error)) (recorded, error) {
	attempt := store.AuditEvent{Time: a.now().UTC(), Actor: a.actor, Action: action, Object: object,
		Outcome: store.OutcomeAttempt, Details: details}
	a.log.InfoContext(ctx, "attempt", "action", action, "object", object)
	fail := func(err error) (recorded, error) {
		a.log.WarnContext(ctx, "failure", "action", action, "object", object, "err", err)
		if aerr := a.group.Do(ctx, &store.Issuance{Attempt: attempt, Failed: err}); aerr != nil {
			return recorded{}, errors.Join(err, fmt.Errorf("ca: auditing %s %s failure: %w", action, object, aerr))
		}
		return recorded{}, err
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	iss, t, err := prepare()
	if err != nil {
		return fail(err)
	}
	iss.inflight.RLock()
	defer iss.inflight.RUnlock()
	for range 3 {
		is, err := a.sign(ctx, iss, nil, t)
		if err != nil {
			return fail(err)
		}
		resp, err := a.signOCSP(iss.ocspSigner(), is.record)
		if err != nil {
			return fail(err)
		}
		it := &store.Issuance{Cert: is.record, OCSP: resp, Attempt: attempt, Rekey: guard,
			Success: store.AuditEvent{Time: a.now().UTC(), Actor: a.actor, Action: action, Object: object,
				Outcome: store.OutcomeSuccess, Details: map[string]any{"serial": fmt.Sprintf("%X", is.record.Serial)}}}
		if reserve {
			it.Reserve = iss.rec.Name
		}
		if err := a.group.Do(ctx, it); err != nil {
			return fail(fmt.Errorf("ca: recording %s certificate: %w", t.kind, err))
		}
		switch {
		case it.Err == nil:
			a.log.InfoContext(ctx, "success", "action", action, "object", object)
			return recorded{Certificate: is.record, full: reserve && it.Issued == iss.rec.Quota}, nil
		case errors.Is(it.Err, store.ErrExists):
			continue // its attempt and failure are audited; draw a new serial
		case errors.Is(it.Err, store.ErrRekeyRefused):
			a.log.WarnContext(ctx, "failure", "action", action, "object", object, "err", it.Err)
			return recorded{}, fmt.Errorf("%w: %v", ErrRekey, it.Err)
		case errors.Is(it.Err, store.ErrClosed):
			a.forget(iss.rec.Name)
			return recorded{}, fmt.Errorf("%w: %s: %v", ErrBatchClosed, iss.rec.Name, it.Err)
		case errors.Is(it.Err, store.ErrQuotaExhausted):
			return recorded{}, fmt.Errorf("%w: %s: quota of %d used up: %v", ErrBatchClosed, iss.rec.Name, iss.rec.Quota, it.Err)
		default:
			return recorded{}, fmt.Errorf("ca: storing %s certificate: %w", t.kind, it.Err)
		}
	}
	return fail(fmt.Errorf("ca: storing %s certificate: serial collided three times: %w", t.kind, store.ErrExists))
}

// reserve reserves n units of a batch's quota, mapping the store's closed
// and exhausted states to ErrBatchClosed.
func (a *Authority) reserve(ctx context.Context, iss *issuer, n int64) (int64, error) {
	got, err := a.st.ReserveDevices(ctx, iss.rec.Name, n)
	switch {
	case errors.Is(err, store.ErrClosed):
		a.forget(iss.rec.Name)
		return 0, fmt.Errorf("%w: %s: %v", ErrBatchClosed, iss.rec.Name, err)
	case errors.Is(err, store.ErrQuotaExhausted):
		return 0, fmt.Errorf("%w: %s: quota of %d used up: %v", ErrBatchClosed, iss.rec.Name, iss.rec.Quota, err)
	case err != nil:
		return 0, fmt.Errorf("ca: reserving quota of %s: %w", iss.rec.Name, err)
	}
	return got, nil
}

// TLSIssued is a DCCKI certificate with the private key the CA generated
// for it (PKCS#8 PEM); the caller writes the key to a 0600 file and drops
// it.
type TLSIssued struct {
	Record store.Certificate
	KeyPEM []byte
}

// IssueTLSClient issues a DCCKI client certificate for a DCC user, with a
// fresh P-256 key: subject O=metertrust DCCKI users, OU=<user role>,
// CN=<EUI>, and the URI SAN urn:metertrust:user:<EUI>:<role> (see TLSUser).
func (a *Authority) IssueTLSClient(ctx context.Context, eui smki.EUI, role smki.UserRole) (TLSIssued, error) {
	if eui.IsZero() {
		return TLSIssued{}, fmt.Errorf("%w: user EUI-64 is required", ErrRequest)
	}
	if _, err := smki.ParseUserRole(string(role)); err != nil {
		return TLSIssued{}, fmt.Errorf("%w: %v", ErrRequest, err)
	}
	return a.issueTLS(ctx, "ca.issue.tls-client", eui.String()+"/"+string(role), func(k crypto.Signer) (*template, error) {
		return tlsClientTemplate(k.Public(), eui, role, a.now())
	})
}

// IssueTLSClientCSR issues a DCCKI client certificate for a DCC user's own
// key, from its PKCS#10 request (DER or PEM; any subject, which the CA
// replaces with the user's: O=metertrust DCCKI users, OU=<user role>,
// CN=<EUI>, and the URI SAN urn:metertrust:user:<EUI>:<role>). The request's
// self-signature must verify and its key be ECDSA P-256: the private key
// never leaves the user.
func (a *Authority) IssueTLSClientCSR(ctx context.Context, csr []byte, eui smki.EUI, role smki.UserRole) (store.Certificate, error) {
	if eui.IsZero() {
		return store.Certificate{}, fmt.Errorf("%w: user EUI-64 is required", ErrRequest)
	}
	if _, err := smki.ParseUserRole(string(role)); err != nil {
		return store.Certificate{}, fmt.Errorf("%w: %v", ErrRequest, err)
	}
	der, err := DecodePEMOrDER(csr, "CERTIFICATE REQUEST")
	if err != nil {
		return store.Certificate{}, fmt.Errorf("%w: %v", ErrCSR, err)
	}
	r, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return store.Certificate{}, fmt.Errorf("%w: %v", ErrCSR, err)
	}
	if err := r.CheckSignature(); err != nil {
		return store.Certificate{}, fmt.Errorf("%w: self-signature: %v", ErrCSR, err)
	}
	if k, ok := r.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		return store.Certificate{}, fmt.Errorf("%w: the key is %T, want ECDSA P-256", ErrCSR, r.PublicKey)
	}
	var out store.Certificate
	err = a.step(ctx, "ca.issue.tls-client", eui.String()+"/"+string(role), map[string]any{"key": "user's own"}, func() (map[string]any, error) {
		iss, err := a.onlineIssuer(ctx, NameDCCKITLS)
		if err != nil {
			return nil, err
		}
		t, err := tlsClientTemplate(r.PublicKey, eui, role, a.now())
		if err != nil {
			return nil, err
		}
		if out, err = a.signAndStore(ctx, iss, t); err != nil {
			return nil, err
		}
		return map[string]any{"serial": fmt.Sprintf("%X", out.Serial)}, nil
	})
	return out, err
}

// IssueTLSServer issues a DCCKI server certificate for a service with the
// given DNS names and IP addresses, with a fresh P-256 key.
func (a *Authority) IssueTLSServer(ctx context.Context, dns []string, ips []net.IP) (TLSIssued, error) {
	obj := fmt.Sprint(dns, ips)
	return a.issueTLS(ctx, "ca.issue.tls-server", obj, func(k crypto.Signer) (*template, error) {
		return tlsServerTemplate(k.Public(), dns, ips, a.now())
	})
}

func (a *Authority) issueTLS(ctx context.Context, action, object string, mk func(crypto.Signer) (*template, error)) (TLSIssued, error) {
	var out TLSIssued
	err := a.step(ctx, action, object, nil, func() (map[string]any, error) {
		iss, err := a.onlineIssuer(ctx, NameDCCKITLS)
		if err != nil {
			return nil, err
		}
		k, err := custody.Generate(a.rand)
		if err != nil {
			return nil, fmt.Errorf("ca: generating TLS key: %w", err)
		}
		t, err := mk(k)
		if err != nil {
			return nil, err
		}
		out.Record, err = a.signAndStore(ctx, iss, t)
		if err != nil {
			return nil, err
		}
		if out.KeyPEM, err = k.MarshalPEM(); err != nil {
			return nil, fmt.Errorf("ca: encoding TLS key: %w", err)
		}
		return map[string]any{"serial": fmt.Sprintf("%X", out.Record.Serial)}, nil
	})
	return out, err
}
