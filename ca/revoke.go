package ca

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/metertrust/metertrust/internal/trunc"

	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3"
	"github.com/zmap/zlint/v3/lint"

	"github.com/metertrust/metertrust/store"
)

// reasonCodes are the CRLReason values of RFC 5280 section 5.3.1 by name.
var reasonCodes = map[string]int{
	"unspecified":          0,
	"keyCompromise":        1,
	"cACompromise":         2,
	"affiliationChanged":   3,
	"superseded":           4,
	"cessationOfOperation": 5,
	"certificateHold":      6,
	"removeFromCRL":        8,
	"privilegeWithdrawn":   9,
	"aACompromise":         10,
}

// ParseReason returns the RFC 5280 CRLReason code for its name (as in the
// RFC, case-insensitive) or its decimal code. certificateHold and
// removeFromCRL are refused (SMKI revocation is final, and removeFromCRL
// exists only in delta CRLs), and so is aACompromise (it concerns attribute
// certificates, which the SMKI does not issue).
func ParseReason(s string) (int, error) {
	code := -1
	if n, err := strconv.Atoi(s); err == nil && n >= 0 {
		for _, c := range reasonCodes {
			if c == n {
				code = n
			}
		}
	}
	for n, c := range reasonCodes {
		if strings.EqualFold(n, s) {
			code = c
		}
	}
	switch code {
	case -1:
		names := make([]string, 0, len(reasonCodes))
		for n, c := range reasonCodes {
			if revocable(c) {
				names = append(names, n)
			}
		}
		sort.Strings(names)
		return 0, fmt.Errorf("%w: unknown revocation reason %q (want one of %s, or its RFC 5280 code)", ErrRequest, clip(s), strings.Join(names, ", "))
	case 6, 8:
		return 0, fmt.Errorf("%w: reason %s: certificate holds are not supported, revocation is final", ErrRequest, ReasonName(code))
	case 10:
		return 0, fmt.Errorf("%w: reason aACompromise concerns attribute certificates, which the SMKI does not issue", ErrRequest)
	}
	return code, nil
}

// revocable reports whether a revocation may give reason code c.
func revocable(c int) bool { return c != 6 && c != 8 && c != 10 }

// clip shortens s for an error message.
func clip(s string) string { return trunc.String(s, 64) }

// ReasonName returns the RFC 5280 name of a CRLReason code.
func ReasonName(code int) string {
	for n, c := range reasonCodes {
		if c == code {
			return n
		}
	}
	return fmt.Sprintf("reason(%d)", code)
}

// Revoke revokes the certificate with the given serial number. ca names
// the issuing CA and may be empty when the serial is unique across CAs (it
// is, with 128-bit random serials, unless someone forged a collision). A
// certificate of a closed batch is revoked by OCSP alone: the batch's
// delegated responder signs the "revoked" response, and the batch's final
// CRL does not change (OCSP is authoritative for closed batches, decision
// record 013). A batch closed without a responder refuses with
// ErrBatchClosed; an OCSP responder's own certificate is refused with
// ErrRequest (its status is never checked: revoke the batch's certificate
// at the root).
func (a *Authority) Revoke(ctx context.Context, ca string, serial []byte, reason int) (store.Certificate, error) {
	if len(serial) == 0 {
		return store.Certificate{}, fmt.Errorf("%w: serial number is required", ErrRequest)
	}
	serial = new(big.Int).SetBytes(serial).Bytes() // canonical: no leading zeros
	found, err := a.st.FindCertificates(ctx, store.CertQuery{Serial: serial, CA: ca, IncludeRevoked: true, Limit: 2})
	if err != nil {
		return store.Certificate{}, fmt.Errorf("ca: finding certificate %X: %w", serial, err)
	}
	switch len(found) {
	case 0:
		return store.Certificate{}, fmt.Errorf("%w: certificate with serial %X", ErrNotFound, serial)
	case 1:
	default:
		return store.Certificate{}, fmt.Errorf("%w: serial %X is used by more than one CA; name the CA", ErrRequest, serial)
	}
	c := found[0]
	if c.Kind == store.KindOCSPResponder {
		return store.Certificate{}, fmt.Errorf("%w: %X is the OCSP responder of %s, whose status relying parties never check "+
			"(id-pkix-ocsp-nocheck); to withdraw it, revoke the batch's own certificate at the root (ca revoke --ca %s --serial <DCA serial>)",
			ErrRequest, serial, c.CA, NameRoot)
	}
	if rec, err := a.st.CA(ctx, c.CA); err == nil && rec.Kind == store.CAKindDCA && rec.State != store.CAStateActive {
		if _, err := a.responder(ctx, c.CA); err != nil {
			return store.Certificate{}, err
		}
	}
	at := a.now().UTC()
	err = a.step(ctx, "ca.revoke", fmt.Sprintf("%s/%X", c.CA, serial), map[string]any{"reason": ReasonName(reason), "eui": c.EUI, "kind": c.Kind}, func() (map[string]any, error) {
		if !c.RevokedAt.IsZero() {
			return nil, fmt.Errorf("%w: %w: certificate %X", ErrRequest, ErrRevoked, serial)
		}
		// The "revoked" OCSP response is signed before the revocation is
		// stored, so that a CA that cannot sign it refuses the revocation
		// rather than leave a stale "good" served. Certificates issued by a
		// root have no OCSP response (their status is in its CRL).
		var resp *store.OCSPResponse
		if rec, err := a.st.CA(ctx, c.CA); err != nil {
			return nil, fmt.Errorf("ca: revoking %X: %w", serial, err)
		} else if rec.Kind != store.CAKindRoot && rec.Kind != store.CAKindDCCKIRoot {
			s, err := a.ocspSignerFor(ctx, c.CA)
			if err != nil {
				return nil, err
			}
			rc := c
			rc.RevokedAt, rc.Reason = at, reason
			r, err := a.signOCSP(s, rc)
			if err != nil {
				return nil, err
			}
			resp = &r
		}
		if err := a.st.Revoke(ctx, c.CA, serial, reason, at); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return nil, fmt.Errorf("%w: %w: certificate %X", ErrRequest, ErrRevoked, serial)
			}
			return nil, fmt.Errorf("ca: revoking %X: %w", serial, err)
		}
		if resp != nil {
			if err := a.st.PutOCSPResponses(ctx, *resp); err != nil {
				return nil, fmt.Errorf("ca: certificate %X revoked, its OCSP response not stored (the next refresh signs it): %w", serial, err)
			}
		}
		return nil, nil
	})
	if err != nil {
		return store.Certificate{}, err
	}
	c.RevokedAt, c.Reason = at, reason
	return c, nil
}

// CRL signs, stores and returns a new CRL for the named CA, numbered from
// the store, listing every certificate it revoked, with nextUpdate after the
// configured validity. A root's CRL is a ceremony (its key is loaded for this
// only); a closed batch cannot sign one any more (ErrBatchClosed).
func (a *Authority) CRL(ctx context.Context, caName string) (store.CRL, error) {
	rec, err := a.st.CA(ctx, caName)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return store.CRL{}, fmt.Errorf("%w: CA %q", ErrNotFound, caName)
		}
		return store.CRL{}, fmt.Errorf("ca: CRL of %s: %w", caName, err)
	}
	var out store.CRL
	err = a.step(ctx, "ca.crl", caName, nil, func() (map[string]any, error) {
		var iss *issuer
		ttl := a.crlTTL
		if rec.Kind == store.CAKindRoot || rec.Kind == store.CAKindDCCKIRoot {
			key, err := a.keys.Signer(ctx, rec.KeyURI)
			if err != nil {
				return nil, fmt.Errorf("ca: loading root key of %s for its CRL: %w", caName, err)
			}
			if iss, err = a.newIssuer(rec, key); err != nil {
				return nil, err
			}
			ttl = rootCRLValidity
		} else if iss, err = a.onlineIssuer(ctx, caName); err != nil {
			return nil, err
		}
		out, err = a.signCRL(ctx, iss, ttl)
		if err != nil {
			return nil, err
		}
		return map[string]any{"number": out.Number, "next_update": out.NextUpdate.Format(time.RFC3339)}, nil
	})
	return out, err
}

// LatestCRL returns the most recent CRL the named CA published (DER), for
// the repository service. It does not sign anything.
func (a *Authority) LatestCRL(ctx context.Context, caName string) (store.CRL, error) {
	c, err := a.st.LatestCRL(ctx, caName)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return store.CRL{}, fmt.Errorf("%w: CRL of %q", ErrNotFound, caName)
		}
		return store.CRL{}, fmt.Errorf("ca: latest CRL of %s: %w", caName, err)
	}
	return c, nil
}

// finalCRL asks signCRL for a batch's last CRL, signed as its key is
// destroyed: nextUpdate 99991231235959Z, since the CA will never sign
// another (our rule, borrowing RFC 5280 4.1.2.5's "no well-defined" date).
const finalCRL time.Duration = -1

// signCRL builds, lints (throwaway key first), signs, reads back and stores
// the issuer's next CRL.
func (a *Authority) signCRLUntimed(ctx context.Context, iss *issuer, ttl time.Duration) (store.CRL, error) {
	name := iss.rec.Name
	revoked, err := a.st.Revoked(ctx, name)
	if err != nil {
		return store.CRL{}, fmt.Errorf("ca: revoked certificates of %s: %w", name, err)
	}
	num, err := a.st.NextCRLNumber(ctx, name)
	if err != nil {
		return store.CRL{}, fmt.Errorf("ca: CRL number of %s: %w", name, err)
	}
	now := a.now().UTC().Truncate(time.Second)
	tmpl := &x509.RevocationList{
		SignatureAlgorithm: x509.ECDSAWithSHA256,
		Number:             big.NewInt(num),
		ThisUpdate:         now,
		NextUpdate:         now.Add(ttl),
	}
	if ttl == finalCRL {
		tmpl.NextUpdate = deviceNotAfter
	}
	for _, c := range revoked {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{
			SerialNumber:   new(big.Int).SetBytes(c.Serial),
			RevocationTime: c.RevokedAt.UTC().Truncate(time.Second),
			ReasonCode:     c.Reason,
		})
	}
	if a.lint != nil {
		pre, err := x509.CreateRevocationList(a.rand, tmpl, iss.lintParent, a.lintKey)
		if err != nil {
			return store.CRL{}, fmt.Errorf("ca: preparing CRL of %s: %w", name, err)
		}
		if err := a.lint.checkCRL(pre); err != nil {
			return store.CRL{}, fmt.Errorf("CRL %d of %s: %w", num, name, err)
		}
	}
	der, err := x509.CreateRevocationList(a.rand, tmpl, iss.cert, iss.key)
	if err != nil {
		return store.CRL{}, fmt.Errorf("ca: signing CRL of %s: %w", name, err)
	}
	back, err := x509.ParseRevocationList(der)
	if err != nil {
		return store.CRL{}, fmt.Errorf("%w: CRL of %s: %v", ErrReadBack, name, err)
	}
	if err := back.CheckSignatureFrom(iss.cert); err != nil {
		return store.CRL{}, fmt.Errorf("%w: CRL of %s signature: %v", ErrReadBack, name, err)
	}
	if back.Number.Int64() != num || len(back.RevokedCertificateEntries) != len(revoked) {
		return store.CRL{}, fmt.Errorf("%w: CRL of %s reads back with number %v and %d entries", ErrReadBack, name, back.Number, len(back.RevokedCertificateEntries))
	}
	crl := store.CRL{CA: name, Number: num, ThisUpdate: now, NextUpdate: tmpl.NextUpdate, DER: der}
	if err := a.st.PutCRL(ctx, crl); err != nil {
		return store.CRL{}, fmt.Errorf("ca: storing CRL %d of %s: %w", num, name, err)
	}
	return crl, nil
}

// checkCRL lints a CRL signed with the throwaway key with zlint's RFC 5280
// CRL lints.
func (l *linter) checkCRL(der []byte) error {
	rl, err := zx509.ParseRevocationList(der)
	if err != nil {
		return fmt.Errorf("%w: zcrypto cannot parse the prepared CRL: %v", ErrLint, err)
	}
	var failed []string
	for name, r := range zlint.LintRevocationListEx(rl, l.reg).Results {
		if r.Status >= lint.Warn {
			failed = append(failed, name+" ("+r.Details+")")
		}
	}
	if len(failed) > 0 {
		sort.Strings(failed)
		return fmt.Errorf("%w: %s", ErrLint, strings.Join(failed, "; "))
	}
	return nil
}
