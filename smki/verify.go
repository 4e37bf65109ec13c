package smki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/ocsp"
)

// Path validation errors. Every error Verify returns wraps one of them (or
// ErrDeviation in strict mode), so callers (the router's audit log, device
// credential checks) can tell failures apart with errors.Is.
var (
	ErrUnknownIssuer     = errors.New("smki: issuer not found among the given certificates")
	ErrUntrustedRoot     = errors.New("smki: path does not end at a trusted root")
	ErrSignature         = errors.New("smki: bad certificate signature")
	ErrName              = errors.New("smki: issuer name does not match the parent's subject")
	ErrKeyID             = errors.New("smki: authority key identifier does not match the parent's subject key identifier")
	ErrExpired           = errors.New("smki: certificate expired")
	ErrNotYetValid       = errors.New("smki: certificate not yet valid")
	ErrNotCA             = errors.New("smki: issuer is not a CA allowed to sign certificates")
	ErrPathLen           = errors.New("smki: path length constraint exceeded")
	ErrPathShape         = errors.New("smki: certificate kind cannot be issued by this issuer kind")
	ErrCriticalExtension = errors.New("smki: unhandled critical extension")
	// ErrPolicy is wrapped, with ErrDeviation, when strict mode refuses a
	// certificate without a policy; otherwise a missing policy is the
	// warning WarnMissingPolicies.
	ErrPolicy            = errors.New("smki: no certificate policy")
	ErrRevoked           = errors.New("smki: certificate revoked")
	ErrCRL               = errors.New("smki: unusable CRL")
	ErrOCSP              = errors.New("smki: unusable OCSP response")
	ErrRevocationUnknown = errors.New("smki: revocation status unknown")
	ErrVerifyOptions     = errors.New("smki: invalid verify options")
)

// OCSPSource returns the DER OCSP response at hand for cert, issued by
// issuer's key (or a responder it delegated to), or nil when there is none.
type OCSPSource func(cert, issuer *Certificate) ([]byte, error)

// VerifyOptions says what to trust and when.
type VerifyOptions struct {
	// Roots are the trusted SMKI root certificates.
	Roots []*Certificate
	// Intermediates are OCA and DCA certificates that may complete a path.
	Intermediates []*Certificate
	// At is the time to validate at; it is required (inject the clock).
	At time.Time
	// CRLs are revocation lists at hand; one whose issuer is a certificate's
	// issuer is checked (signature, thisUpdate <= At < nextUpdate) and used.
	CRLs []*x509.RevocationList
	// OCSP, when set, is asked for a response for each non-root certificate.
	OCSP OCSPSource
	// RequireRevocationInfo makes a certificate without a usable CRL or OCSP
	// response fail with ErrRevocationUnknown.
	RequireRevocationInfo bool
	// Strict refuses any certificate on the path that deviates from its
	// SMKI profile (has Warnings), with an error wrapping ErrDeviation and a
	// *ProfileError whose Code is the first warning's code. Without it the
	// deviations are reported in Validation.Warnings.
	Strict bool
}

// Validation is the result of VerifyPath.
type Validation struct {
	// Path is the validated path, leaf first, root last.
	Path []*Certificate
	// Warnings lists the deviations from the SMKI profiles of the
	// certificates on the path, leaf first.
	Warnings []PathWarning
}

// PathWarning is a deviation of one certificate on a validated path.
type PathWarning struct {
	// Index is the certificate's position on the path, 0 for the leaf.
	Index int `json:"index"`
	// Certificate describes it, e.g. `oca certificate "CN=..." (serial 12)`.
	Certificate string `json:"certificate"`
	Warning
}

// Verify is VerifyPath returning only the path, leaf first, root last.
func Verify(leaf *Certificate, opts VerifyOptions) ([]*Certificate, error) {
	v, err := VerifyPath(leaf, opts)
	if err != nil {
		return nil, err
	}
	return v.Path, nil
}

// VerifyPath builds and checks the path from leaf to a trusted root: Root ->
// OCA -> organisation or Root -> DCA -> device (or a shorter path ending at
// a CA certificate). For each link it checks the issuer name byte-exact
// against the parent's subject, the authority key identifier against the
// parent's subject key identifier where both are present (without them the
// issuer is found by name and signature), the parent's CA flag, keyCertSign
// and path length, the kinds of issuer and subject, the signature, the
// validity at opts.At (device certificates with notAfter 99991231235959Z
// never expire), critical extensions (only the ones the profile knows), and
// revocation with the CRLs and OCSP responses at hand. A certificate of no
// SMKI profile (KindUnknown) cannot be placed in the hierarchy and fails
// with ErrPathShape unless it is itself a trusted root. Deviations from the
// profiles are returned as warnings, or refused when opts.Strict is set.
func VerifyPath(leaf *Certificate, opts VerifyOptions) (*Validation, error) {
	if leaf == nil {
		return nil, fmt.Errorf("%w: nil certificate", ErrVerifyOptions)
	}
	if opts.At.IsZero() {
		return nil, fmt.Errorf("%w: At is required", ErrVerifyOptions)
	}
	if len(opts.Roots) == 0 {
		return nil, fmt.Errorf("%w: no trusted roots", ErrVerifyOptions)
	}
	path := []*Certificate{leaf}
	cur := leaf
	for depth := 0; ; depth++ {
		if err := checkOne(cur, opts); err != nil {
			return nil, err
		}
		if root := findTrusted(cur, opts.Roots); root != nil {
			if cur != root && !bytes.Equal(cur.Raw, root.Raw) {
				return nil, fmt.Errorf("%w: %s", ErrUntrustedRoot, describe(cur))
			}
			v := &Validation{Path: path}
			for i, c := range path {
				for _, w := range c.Warnings {
					v.Warnings = append(v.Warnings, PathWarning{Index: i, Certificate: describe(c), Warning: w})
				}
			}
			return v, nil
		}
		if depth >= 2 {
			return nil, fmt.Errorf("%w: no trusted root within three certificates of %s", ErrUntrustedRoot, describe(leaf))
		}
		if cur.Kind == KindRoot || bytes.Equal(cur.RawIssuer, cur.RawSubject) {
			return nil, fmt.Errorf("%w: self-signed %s is not among the roots", ErrUntrustedRoot, describe(cur))
		}
		parent, err := findIssuer(cur, opts)
		if err != nil {
			return nil, err
		}
		if err := checkLink(cur, parent, depth); err != nil {
			return nil, err
		}
		if err := checkRevocation(cur, parent, opts); err != nil {
			return nil, err
		}
		path = append(path, parent)
		cur = parent
	}
}

func describe(c *Certificate) string {
	s := c.Subject.String()
	if s == "" {
		s = "device " + c.EUI.String()
	}
	return fmt.Sprintf("%s certificate %q (serial %X)", c.Kind, s, c.SerialNumber)
}

// findTrusted returns the root in roots c is, or nil. A self-signed
// certificate that is not a trusted root also returns nil.
func findTrusted(c *Certificate, roots []*Certificate) *Certificate {
	for _, r := range roots {
		if r != nil && bytes.Equal(r.Raw, c.Raw) {
			return r
		}
	}
	return nil
}

// findIssuer returns the certificate among the intermediates and roots
// whose subject is c's issuer name and, where c has an authority key
// identifier and the candidate a subject key identifier, whose key id
// matches. Without key ids to compare, several candidates of that name are
// told apart by which one's key signed c.
func findIssuer(c *Certificate, opts VerifyOptions) (*Certificate, error) {
	var byName []*Certificate
	var keyIDMismatch *Certificate
	for _, list := range [][]*Certificate{opts.Intermediates, opts.Roots} {
		for _, p := range list {
			if p == nil || p == c || bytes.Equal(p.Raw, c.Raw) || !bytes.Equal(p.RawSubject, c.RawIssuer) {
				continue
			}
			if len(c.AuthorityKeyID) > 0 && len(p.SubjectKeyID) > 0 {
				if bytes.Equal(p.SubjectKeyID, c.AuthorityKeyID) {
					return p, nil
				}
				keyIDMismatch = p
				continue
			}
			byName = append(byName, p)
		}
	}
	switch {
	case len(byName) == 1:
		return byName[0], nil
	case len(byName) > 1:
		for _, p := range byName {
			if c.CheckSignatureFrom(p) == nil {
				return p, nil
			}
		}
		return byName[0], nil // checkLink reports the bad signature
	case keyIDMismatch != nil:
		return nil, fmt.Errorf("%w: %s has authority key id %X, issuer %q has subject key id %X",
			ErrKeyID, describe(c), c.AuthorityKeyID, keyIDMismatch.Subject.String(), keyIDMismatch.SubjectKeyID)
	}
	return nil, fmt.Errorf("%w: no certificate with subject %q for %s", ErrUnknownIssuer, c.Issuer.String(), describe(c))
}

// checkOne checks what concerns one certificate alone.
func checkOne(c *Certificate, opts VerifyOptions) error {
	at := opts.At
	if at.Before(c.NotBefore) {
		return fmt.Errorf("%w: %s valid from %s, checked at %s", ErrNotYetValid, describe(c), c.NotBefore.Format(time.RFC3339), at.UTC().Format(time.RFC3339))
	}
	if !c.NotAfter.Equal(NeverExpires) && at.After(c.NotAfter) {
		return fmt.Errorf("%w: %s expired at %s, checked at %s", ErrExpired, describe(c), c.NotAfter.Format(time.RFC3339), at.UTC().Format(time.RFC3339))
	}
	p := Profiles[c.Profile]
	if p == nil {
		p = anyProfile
	}
	known := map[string]bool{}
	for _, r := range p.Extensions {
		if r.Presence != Forbidden {
			known[r.OID] = true
		}
	}
	for _, e := range c.Extensions {
		if e.Critical && !known[string(e.oid)] {
			return fmt.Errorf("%w: %s in %s", ErrCriticalExtension, e.ID, describe(c))
		}
	}
	if opts.Strict {
		if len(c.Policies) == 0 {
			w := Warning{Code: WarnMissingPolicies, Message: "no certificate policy"}
			return fmt.Errorf("%w: %s: %w", ErrPolicy, describe(c), w.profileError(c.Profile))
		}
		if len(c.Warnings) > 0 {
			return fmt.Errorf("%s: %w", describe(c), c.Warnings[0].profileError(c.Profile))
		}
	}
	return nil
}

// allowedParent says which kind may issue which.
var allowedParent = map[Kind]Kind{
	KindOCA:          KindRoot,
	KindDCA:          KindRoot,
	KindOrganisation: KindOCA,
	KindDevice:       KindDCA,
}

func checkLink(c, parent *Certificate, depth int) error {
	if !bytes.Equal(c.RawIssuer, parent.RawSubject) {
		return fmt.Errorf("%w: %s", ErrName, describe(c))
	}
	if len(c.AuthorityKeyID) > 0 && len(parent.SubjectKeyID) > 0 && !bytes.Equal(c.AuthorityKeyID, parent.SubjectKeyID) {
		return fmt.Errorf("%w: %s has %X, parent has %X", ErrKeyID, describe(c), c.AuthorityKeyID, parent.SubjectKeyID)
	}
	if !parent.BasicConstraintsValid || !parent.IsCA || parent.KeyUsage&x509.KeyUsageCertSign == 0 {
		return fmt.Errorf("%w: %s", ErrNotCA, describe(parent))
	}
	if parent.MaxPathLen >= 0 && depth > parent.MaxPathLen {
		return fmt.Errorf("%w: %s allows %d CA certificates below it", ErrPathLen, describe(parent), parent.MaxPathLen)
	}
	if want, ok := allowedParent[c.Kind]; !ok || parent.Kind != want {
		return fmt.Errorf("%w: %s under %s", ErrPathShape, describe(c), describe(parent))
	}
	return c.CheckSignatureFrom(parent)
}

func checkRevocation(c, issuer *Certificate, opts VerifyOptions) error {
	known := false
	for _, rl := range opts.CRLs {
		if rl == nil || !bytes.Equal(rl.RawIssuer, issuer.RawSubject) {
			continue
		}
		if err := checkCRL(rl, issuer, opts.At); err != nil {
			return err
		}
		known = true
		for _, e := range rl.RevokedCertificateEntries {
			if e.SerialNumber != nil && e.SerialNumber.Cmp(c.SerialNumber) == 0 && !e.RevocationTime.After(opts.At) {
				return fmt.Errorf("%w: %s at %s (CRL number %v, reason %d)", ErrRevoked, describe(c),
					e.RevocationTime.UTC().Format(time.RFC3339), rl.Number, e.ReasonCode)
			}
		}
	}
	if opts.OCSP != nil {
		raw, err := opts.OCSP(c, issuer)
		if err != nil {
			return fmt.Errorf("%w: fetching for %s: %w", ErrOCSP, describe(c), err)
		}
		if raw != nil {
			if err := checkOCSP(raw, c, issuer, opts.At); err != nil {
				return err
			}
			known = true
		}
	}
	if !known && opts.RequireRevocationInfo {
		return fmt.Errorf("%w: no CRL or OCSP response for %s", ErrRevocationUnknown, describe(c))
	}
	return nil
}

func checkCRL(rl *x509.RevocationList, issuer *Certificate, at time.Time) error {
	if rl.SignatureAlgorithm != x509.ECDSAWithSHA256 {
		return fmt.Errorf("%w: issued by %q with %s, want ECDSA-SHA256", ErrCRL, issuer.Subject.String(), rl.SignatureAlgorithm)
	}
	h := sha256.Sum256(rl.RawTBSRevocationList)
	if issuer.PublicKey == nil || !ecdsa.VerifyASN1(issuer.PublicKey, h[:], rl.Signature) {
		return fmt.Errorf("%w: bad signature on the CRL of %q", ErrCRL, issuer.Subject.String())
	}
	if len(rl.AuthorityKeyId) > 0 && !bytes.Equal(rl.AuthorityKeyId, issuer.SubjectKeyID) {
		return fmt.Errorf("%w: CRL authority key id %X, issuer has %X", ErrCRL, rl.AuthorityKeyId, issuer.SubjectKeyID)
	}
	if issuer.KeyUsage&x509.KeyUsageCRLSign == 0 {
		return fmt.Errorf("%w: %q may not sign CRLs", ErrCRL, issuer.Subject.String())
	}
	if at.Before(rl.ThisUpdate) || rl.NextUpdate.IsZero() || !at.Before(rl.NextUpdate) {
		return fmt.Errorf("%w: CRL of %q current from %s to %s, checked at %s", ErrCRL, issuer.Subject.String(),
			rl.ThisUpdate.UTC().Format(time.RFC3339), rl.NextUpdate.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339))
	}
	return nil
}

func checkOCSP(raw []byte, c, issuer *Certificate, at time.Time) error {
	ix, err := x509.ParseCertificate(issuer.Raw)
	if err != nil {
		return fmt.Errorf("%w: issuer %q unreadable by crypto/x509: %v", ErrOCSP, issuer.Subject.String(), err)
	}
	resp, err := ocsp.ParseResponseForCert(raw, &x509.Certificate{SerialNumber: c.SerialNumber}, ix)
	if err != nil {
		return fmt.Errorf("%w: for %s: %w", ErrOCSP, describe(c), err)
	}
	if rc := resp.Certificate; rc != nil && !bytes.Equal(rc.Raw, issuer.Raw) {
		delegated := false
		for _, u := range rc.ExtKeyUsage {
			delegated = delegated || u == x509.ExtKeyUsageOCSPSigning
		}
		if !delegated || at.Before(rc.NotBefore) || at.After(rc.NotAfter) {
			return fmt.Errorf("%w: responder %q for %s is not a current delegated OCSP signer (RFC 6960 4.2.2.2)", ErrOCSP, rc.Subject, describe(c))
		}
	}
	if at.Before(resp.ThisUpdate) || (!resp.NextUpdate.IsZero() && !at.Before(resp.NextUpdate)) {
		return fmt.Errorf("%w: response for %s current from %s to %s, checked at %s", ErrOCSP, describe(c),
			resp.ThisUpdate.UTC().Format(time.RFC3339), resp.NextUpdate.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339))
	}
	switch resp.Status {
	case ocsp.Good:
		return nil
	case ocsp.Revoked:
		if !resp.RevokedAt.After(at) {
			return fmt.Errorf("%w: %s at %s (OCSP, reason %d)", ErrRevoked, describe(c), resp.RevokedAt.UTC().Format(time.RFC3339), resp.RevocationReason)
		}
		return nil
	default:
		return fmt.Errorf("%w: OCSP status unknown for %s", ErrRevocationUnknown, describe(c))
	}
}
