package ca

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/metertrust/metertrust/custody"
	"github.com/metertrust/metertrust/internal/groupcommit"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// The names under which the fixed CAs are recorded in the store. Batch
// Device CAs are recorded under their batch name.
const (
	NameRoot      = "root"
	NameOCA       = "oca"
	NameDCCKIRoot = "dccki-root"
	NameDCCKITLS  = "dccki-tls"
)

// Store is what the CA needs from persistence (*store.SMKIStore satisfies it),
// declared here as the consumer's small interfaces: CA records with device
// quotas, certificates and revocation, CRLs, pre-signed OCSP responses, and
// the audit log.
type Store interface {
	CAStore
	CertStore
	CRLStore
	OCSPStore
	ResponderStore
	AuditLog
	IssuanceLog
}

// CAStore keeps CA records and batch quotas.
type CAStore interface {
	CreateCA(ctx context.Context, c store.CA) error
	CA(ctx context.Context, name string) (store.CA, error)
	CAs(ctx context.Context) ([]store.CA, error)
	ReserveDevices(ctx context.Context, name string, n int64) (int64, error)
	CloseCA(ctx context.Context, name string, at time.Time) error
}

// CertStore keeps issued certificates and their revocation state; a
// duplicate (CA, serial) is refused with store.ErrExists.
type CertStore interface {
	PutCertificates(ctx context.Context, certs ...store.Certificate) error
	FindCertificates(ctx context.Context, q store.CertQuery) ([]store.Certificate, error)
	Certificate(ctx context.Context, ca string, serial []byte) (store.Certificate, error)
	Revoke(ctx context.Context, ca string, serial []byte, reason int, at time.Time) error
	Revoked(ctx context.Context, ca string) ([]store.Certificate, error)
}

// CRLStore numbers and keeps CRLs.
type CRLStore interface {
	NextCRLNumber(ctx context.Context, ca string) (int64, error)
	PutCRL(ctx context.Context, c store.CRL) error
	LatestCRL(ctx context.Context, ca string) (store.CRL, error)
}

// OCSPStore keeps the pre-signed OCSP responses: one per certificate,
// replaced by a newer one, and listed by expiry for the refresher, which
// also asks for the certificates that have none.
type OCSPStore interface {
	PutOCSPResponses(ctx context.Context, rs ...store.OCSPResponse) error
	OCSPResponse(ctx context.Context, ca string, serial []byte) (store.OCSPResponse, error)
	OCSPResponsesDue(ctx context.Context, before time.Time, limit int) ([]store.OCSPResponse, error)
	CertificatesWithoutOCSP(ctx context.Context, at time.Time, limit int) ([]store.Certificate, error)
}

// ResponderStore keeps the delegated OCSP responders that batches certify
// as they close (decision record 013), at most one per batch.
type ResponderStore interface {
	PutOCSPResponder(ctx context.Context, r store.OCSPResponder) error
	OCSPResponder(ctx context.Context, ca string) (store.OCSPResponder, error)
	OCSPResponders(ctx context.Context) ([]store.OCSPResponder, error)
}

// IssuanceLog records issuances, each with its quota reservation, OCSP
// response and audit events, many in one transaction (see
// store.SMKIStore.RecordIssuances).
type IssuanceLog interface {
	RecordIssuances(ctx context.Context, is []*store.Issuance) error
}

// AuditLog appends audit events.
type AuditLog interface {
	AppendAudit(ctx context.Context, e store.AuditEvent) (store.AuditEvent, error)
}

// Keys is the key custody the CA uses; *custody.Custody implements it.
type Keys interface {
	CreateKey(ctx context.Context, label string) (string, crypto.Signer, error)
	Signer(ctx context.Context, keyURI string) (crypto.Signer, error)
	Destroy(ctx context.Context, keyURI string) error
}

// Config holds an Authority's dependencies. Store and Keys are required; the
// others have safe defaults.
type Config struct {
	Store Store
	Keys  Keys
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Rand supplies serial numbers, throwaway keys and other randomness
	// (default crypto/rand.Reader).
	Rand io.Reader
	// Logger receives operational logs (default slog.Default()); keys and
	// PINs are never logged.
	Logger *slog.Logger
	// Actor is the name recorded in audit events (default "ca").
	Actor string
	// Officers are the ceremony officers who each confirmed the ceremony
	// with their own credential (decision 023): recorded, with Actor, in
	// every audit event of this Authority. The caller confirms them
	// (operator.ConfirmOfficers) before building the Authority.
	Officers []string
	// DisableLint skips pre-issuance linting (for the benchmark
	// comparison only); read-back checks still run.
	DisableLint bool
	// CRLValidity is the nextUpdate - thisUpdate of CRLs (default 7 days).
	CRLValidity time.Duration
	// OCSPValidity is the nextUpdate - thisUpdate of OCSP responses
	// (default 1 day).
	OCSPValidity time.Duration
	// Metrics counts issuances and times signatures; nil records nothing.
	Metrics *Metrics
}

// Authority runs the ceremonies and issues certificates. It is safe for
// concurrent use.
type Authority struct {
	st    Store
	keys  Keys
	now   func() time.Time
	rand  io.Reader
	log   *slog.Logger
	actor string
	// officers are the confirmed ceremony officers, for the audit log.
	officers []string
	lint     *linter
	crlTTL   time.Duration
	ocspTT   time.Duration

	metrics *Metrics

	// slowSign makes sign build every certificate with crypto/x509 (the
	// fast path's tests compare the two).
	slowSign bool

	// lintKey is the throwaway key every prepared certificate is signed with
	// before linting (one per Authority, as Boulder keeps one per issuer).
	lintKey crypto.Signer

	mu         sync.Mutex
	issuers    map[string]*issuer     // online issuers (never the roots)
	responders map[string]*ocspSigner // delegated OCSP responders of closed batches

	// group commits concurrent issuances together (IssueDevice, IssueOrg).
	group groupcommit.Group[*store.Issuance]
}

// maxGroup bounds the issuances of one group commit.
const maxGroup = 512

// New returns an Authority.
func New(cfg Config) (*Authority, error) {
	if cfg.Store == nil || cfg.Keys == nil {
		return nil, fmt.Errorf("%w: Store and Keys are required", ErrRequest)
	}
	a := &Authority{st: cfg.Store, keys: cfg.Keys, now: cfg.Now, rand: cfg.Rand, log: cfg.Logger,
		metrics: cfg.Metrics, actor: cfg.Actor, officers: slices.Clone(cfg.Officers), crlTTL: cfg.CRLValidity, ocspTT: cfg.OCSPValidity, issuers: map[string]*issuer{},
		responders: map[string]*ocspSigner{}}
	if a.now == nil {
		a.now = time.Now
	}
	if a.rand == nil {
		a.rand = cryptoRand
	}
	if a.log == nil {
		a.log = slog.Default()
	}
	a.log = a.log.With("component", "ca")
	if a.actor == "" {
		a.actor = "ca"
	}
	if a.crlTTL <= 0 {
		a.crlTTL = 7 * 24 * time.Hour
	}
	if a.ocspTT <= 0 {
		a.ocspTT = 24 * time.Hour
	}
	if !cfg.DisableLint {
		l, err := newLinter()
		if err != nil {
			return nil, err
		}
		a.lint = l
	}
	k, err := custody.Generate(a.rand)
	if err != nil {
		return nil, fmt.Errorf("ca: throwaway lint key: %w", err)
	}
	a.lintKey = k
	a.group.Max = maxGroup
	a.group.Commit = func(ctx context.Context, is []*store.Issuance) error {
		return a.st.RecordIssuances(ctx, is)
	}
	return a, nil
}

// issuer is a CA loaded for signing.
type issuer struct {
	rec        store.CA
	cert       *x509.Certificate // CA certificates are read by crypto/x509
	smkiCert   *smki.Certificate // nil for the DCCKI hierarchy
	key        crypto.Signer
	lintParent *x509.Certificate // cert with the throwaway key as its public key

	// inflight is held for reading from quota reservation until the
	// certificate is stored, and for writing by CloseBatch before it
	// destroys the key, so a batch key is never destroyed under a signer
	// that reserved quota.
	inflight sync.RWMutex

	// goodOCSPLinted is set once a "good" OCSP response of this issuer
	// has been prepared and linted with the throwaway key (signOCSP).
	goodOCSPLinted atomic.Bool

	// tbs holds the TBSCertificate templates of the fast sign path
	// (tbs.go), by profile.
	tbs tbsCache
}

func (a *Authority) newIssuer(rec store.CA, key crypto.Signer) (*issuer, error) {
	c, err := x509.ParseCertificate(rec.CertDER)
	if err != nil {
		return nil, fmt.Errorf("ca: reading certificate of CA %s: %w", rec.Name, err)
	}
	if !publicKeysEqual(c.PublicKey, key.Public()) {
		return nil, fmt.Errorf("%w: key of CA %s does not match its certificate", ErrKey, rec.Name)
	}
	lp := *c
	lp.PublicKey = a.lintKey.Public()
	iss := &issuer{rec: rec, cert: c, key: key, lintParent: &lp}
	if isSMKI(rec.Kind) {
		sc, err := smki.ParseCertificate(rec.CertDER)
		if err != nil {
			return nil, fmt.Errorf("ca: reading certificate of CA %s with the SMKI reader: %w", rec.Name, err)
		}
		iss.smkiCert = sc
	}
	return iss, nil
}

func isSMKI(caKind string) bool {
	return caKind == store.CAKindRoot || caKind == store.CAKindOCA || caKind == store.CAKindDCA
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	x, ok := a.(*ecdsa.PublicKey)
	if !ok {
		return false
	}
	return x.Equal(b)
}

// onlineIssuer returns the loaded issuer for an online CA (OCA, DCA, DCCKI
// TLS CA), loading its key on first use. Roots are refused: they sign only
// in ceremonies.
func (a *Authority) onlineIssuer(ctx context.Context, name string) (*issuer, error) {
	a.mu.Lock()
	iss, ok := a.issuers[name]
	a.mu.Unlock()
	if ok {
		return iss, nil
	}
	rec, err := a.st.CA(ctx, name)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("%w: CA %q (run ca init / ca batch open first)", ErrNotFound, name)
		}
		return nil, fmt.Errorf("ca: loading CA %s: %w", name, err)
	}
	if rec.Kind == store.CAKindRoot || rec.Kind == store.CAKindDCCKIRoot {
		return nil, fmt.Errorf("%w: %s is a root; roots sign only in ceremonies", ErrRequest, name)
	}
	if rec.State != store.CAStateActive || rec.KeyURI == "" {
		if rec.Kind == store.CAKindDCA {
			return nil, fmt.Errorf("%w: %s (closed %s, key destroyed)", ErrBatchClosed, name, rec.ClosedAt.Format(time.RFC3339))
		}
		return nil, fmt.Errorf("%w: CA %s is closed", ErrRequest, name)
	}
	key, err := a.keys.Signer(ctx, rec.KeyURI)
	if err != nil {
		return nil, fmt.Errorf("ca: loading key of CA %s: %w", name, err)
	}
	iss, err = a.newIssuer(rec, key)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	a.issuers[name] = iss
	a.mu.Unlock()
	return iss, nil
}

// forget drops a loaded issuer and returns it (nil if none was loaded).
func (a *Authority) forget(name string) *issuer {
	a.mu.Lock()
	iss := a.issuers[name]
	delete(a.issuers, name)
	a.mu.Unlock()
	return iss
}

// audit appends an audit event; the audit log is part of the ceremony, so a
// failure to audit fails the operation.
func (a *Authority) audit(ctx context.Context, action, object, outcome string, details map[string]any) error {
	if len(a.officers) > 0 {
		d := make(map[string]any, len(details)+1)
		for k, v := range details {
			d[k] = v
		}
		d["officers"] = strings.Join(a.officers, ",")
		details = d
	}
	_, err := a.st.AppendAudit(ctx, store.AuditEvent{Time: a.now().UTC(), Actor: a.actor, Action: action,
		Object: object, Outcome: outcome, Details: details})
	if err != nil {
		return fmt.Errorf("ca: auditing %s %s %s: %w", action, object, outcome, err)
	}
	return nil
}

// step runs fn between an "attempt" and a "success" or "failure" audit
// event, as Boulder's ceremony tool logs before and after every step.
func (a *Authority) step(ctx context.Context, action, object string, details map[string]any, fn func() (map[string]any, error)) error {
	if err := a.audit(ctx, action, object, store.OutcomeAttempt, details); err != nil {
		return err
	}
	a.log.InfoContext(ctx, "attempt", "action", action, "object", object)
	more, err := fn()
	if err != nil {
		a.log.WarnContext(ctx, "failure", "action", action, "object", object, "err", err)
		fd := map[string]any{"error": err.Error()}
		if aerr := a.audit(context.WithoutCancel(ctx), action, object, store.OutcomeFailure, fd); aerr != nil {
			return errors.Join(err, aerr)
		}
		return err
	}
	a.log.InfoContext(ctx, "success", "action", action, "object", object)
	return a.audit(ctx, action, object, store.OutcomeSuccess, more)
}

// serial returns a fresh serial number: 16 random bytes with the top bit
// cleared (positive, at least 64 random bits; RFC 5280 4.1.2.2).
func (a *Authority) serial() (*big.Int, error) {
	var b [16]byte
	if _, err := io.ReadFull(a.rand, b[:]); err != nil {
		return nil, fmt.Errorf("ca: serial number: %w", err)
	}
	b[0] &= 0x7f
	if b[0] == 0 {
		b[0] = 0x40 // keep the serial 16 octets long, and >= 64 bits
	}
	return new(big.Int).SetBytes(b[:]), nil
}

// issued is one signed, read-back certificate ready for the store.
type issued struct {
	der    []byte
	cert   *x509.Certificate // nil for organisation certificates (crypto/x509 refuses them)
	record store.Certificate
}

// sign prepares, lints, signs and reads back one certificate from t, issued
// by iss (nil with selfKey for a self-signed root).
func (a *Authority) signUntimed(ctx context.Context, iss *issuer, selfKey crypto.Signer, t *template) (*issued, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sn, err := a.serial()
	if err != nil {
		return nil, err
	}
	now := a.now()
	if iss != nil && fastKind(t.kind) && !a.slowSign {
		tt, err := a.tbsFor(iss, t, sn, now)
		if err != nil {
			return nil, err
		}
		if tt != nil {
			return a.signFast(ctx, iss, t, tt, sn, now)
		}
	}
	tmpl := *t.cert
	tmpl.SerialNumber = sn
	tmpl.ExtraExtensions = t.extraExts
	parent, key, lintParent := &tmpl, selfKey, &tmpl
	if iss != nil {
		parent, key, lintParent = iss.cert, iss.key, iss.lintParent
	} else {
		lp := tmpl
		lp.PublicKey = a.lintKey.Public()
		lintParent = &lp
	}
	var lintTBS []byte
	if a.lint != nil {
		// Step 1: sign with the throwaway key and lint. zcrypto, the parser
		// zlint runs on, cannot read OIDs with arcs beyond 63 bits, such as
		// the metertrust policies under 2.25.<UUID>; the copy zlint sees
		// carries anyPolicy (2.5.29.32.0) in their place, with the same
		// criticality. Everything else is byte for byte what will be
		// signed.
		zt := tmpl
		zt.ExtraExtensions = standInPolicies(t.extraExts)
		pre, err := x509.CreateCertificate(a.rand, &zt, lintParent, tmpl.PublicKey, a.lintKey)
		if err != nil {
			return nil, fmt.Errorf("ca: preparing %s certificate: %w", t.kind, err)
		}
		if err := a.lint.check(pre, t, now); err != nil {
			return nil, fmt.Errorf("issuing %s certificate: %w", t.kind, err)
		}
		// The exact certificate, signed with the throwaway key, must pass
		// the SMKI reader and its profile check before the CA key signs it.
		exact, err := x509.CreateCertificate(a.rand, &tmpl, lintParent, tmpl.PublicKey, a.lintKey)
		if err != nil {
			return nil, fmt.Errorf("ca: preparing %s certificate: %w", t.kind, err)
		}
		if err := smkiLint(exact, t); err != nil {
			return nil, fmt.Errorf("issuing %s certificate: %w", t.kind, err)
		}
		if lintTBS, err = tbsOf(exact); err != nil {
			return nil, err
		}
	}
	// Step 2: sign for real, then read back.
	der, err := x509.CreateCertificate(a.rand, &tmpl, parent, tmpl.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("ca: signing %s certificate: %w", t.kind, err)
	}
	out := &issued{der: der}
	if err := a.readBack(iss, t, der, lintTBS, out); err != nil {
		return nil, err
	}
	issuerName := ""
	if iss != nil {
		issuerName = iss.rec.Name
	}
	rec := store.Certificate{CA: issuerName, Serial: sn.Bytes(), Kind: storeKind(t.kind), Role: t.role,
		UserRole: t.userRole, Usage: t.usage, NotBefore: tmpl.NotBefore, NotAfter: tmpl.NotAfter, DER: der}
	if t.hasEUI {
		rec.EUI = t.eui.String()
	}
	out.record = rec
	return out, nil
}

func storeKind(k Kind) string {
	switch k {
	case KindOrg:
		return store.KindOrg
	case KindDevice:
		return store.KindDevice
	case KindTLSClient:
		return store.KindTLSClient
	case KindTLSServer:
		return store.KindTLSServer
	case KindOCSPResponder:
		return store.KindOCSPResponder
	}
	return store.KindCA
}

// readBack checks a freshly signed certificate: its TBS must equal the one
// that was linted; SMKI certificates must read through smki.ParseCertificate
// (which applies the profile check), match the intended profile and verify
// under the issuer's key; DCCKI and OCSP responder certificates (of no SMKI
// profile) must read through crypto/x509 and verify likewise.
func (a *Authority) readBack(iss *issuer, t *template, der, lintTBS []byte, out *issued) error {
	tbs, err := tbsOf(der)
	if err != nil {
		return err
	}
	if lintTBS != nil && string(tbs) != string(lintTBS) {
		return fmt.Errorf("%w: %s certificate differs from the one linted", ErrReadBack, t.kind)
	}
	switch t.kind {
	case KindTLSRoot, KindTLSCA, KindTLSClient, KindTLSServer, KindOCSPResponder:
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return fmt.Errorf("%w: %s certificate: %v", ErrReadBack, t.kind, err)
		}
		parent := c
		if iss != nil {
			parent = iss.cert
		}
		if err := c.CheckSignatureFrom(parent); err != nil {
			return fmt.Errorf("%w: %s certificate signature: %v", ErrReadBack, t.kind, err)
		}
		out.cert = c
		return nil
	}
	sc, err := smki.ParseCertificateStrict(der)
	if err != nil {
		return fmt.Errorf("%w: %s certificate: %v", ErrReadBack, t.kind, err)
	}
	want := wantProfile(t)
	if sc.Profile != want {
		// A prepayment KA certificate matches org-ka by shape; check it
		// against its own profile explicitly.
		p := smki.Profiles[want]
		if p == nil || p.Check(sc) != nil || want != smki.ProfileOrgPrepaymentKA || sc.Profile != smki.ProfileOrgKA {
			return fmt.Errorf("%w: %s certificate read back as profile %s, want %s", ErrReadBack, t.kind, sc.Profile, want)
		}
	}
	parent := sc
	if iss != nil {
		parent = iss.smkiCert
	}
	if err := sc.CheckSignatureFrom(parent); err != nil {
		return fmt.Errorf("%w: %s certificate signature: %v", ErrReadBack, t.kind, err)
	}
	if t.hasEUI && sc.EUI != t.eui {
		return fmt.Errorf("%w: %s certificate EUI %s, want %s", ErrReadBack, t.kind, sc.EUI, t.eui)
	}
	if t.cert.IsCA {
		// Ceremonies report on CA certificates, which crypto/x509 reads.
		if out.cert, err = x509.ParseCertificate(der); err != nil {
			return fmt.Errorf("%w: %s certificate: %v", ErrReadBack, t.kind, err)
		}
	}
	return nil
}

func wantProfile(t *template) smki.ProfileID {
	switch t.kind {
	case KindRoot:
		return smki.ProfileRoot
	case KindOCA:
		return smki.ProfileOCA
	case KindDCA:
		return smki.ProfileDCA
	case KindOrg:
		switch Usage(t.usage) {
		case UsageDS:
			return smki.ProfileOrgDS
		case UsagePPKA:
			return smki.ProfileOrgPrepaymentKA
		}
		return smki.ProfileOrgKA
	}
	if Usage(t.usage) == UsageDS {
		return smki.ProfileDeviceDS
	}
	return smki.ProfileDeviceKA
}

// ResolveCA returns the store name of the CA called name: its store name
// ("root", "oca", "dccki-tls", a batch id) or the CN of its certificate
// ("ZA", "Z1"), as operators know it from the ceremony. A CN shared by two
// CAs is refused as ambiguous.
func (a *Authority) ResolveCA(ctx context.Context, name string) (string, error) {
	if _, err := a.st.CA(ctx, name); err == nil {
		return name, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return "", fmt.Errorf("ca: looking up CA %q: %w", name, err)
	}
	cas, err := a.st.CAs(ctx)
	if err != nil {
		return "", fmt.Errorf("ca: listing CAs: %w", err)
	}
	var found []string
	for _, c := range cas {
		cert, err := x509.ParseCertificate(c.CertDER)
		if err == nil && cert.Subject.CommonName == name {
			found = append(found, c.Name)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("%w: CA %q (neither a CA name nor a CA's common name)", ErrNotFound, name)
	case 1:
		return found[0], nil
	default:
		return "", fmt.Errorf("%w: CA common name %q is shared by %v: use the CA name", ErrRequest, name, found)
	}
}
