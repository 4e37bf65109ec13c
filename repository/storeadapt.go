package repository

import (
	"crypto/x509"
	"errors"
	"time"

	"github.com/metertrust/metertrust/ca"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// revocationTime reports when c was revoked, if it was.
func revocationTime(c store.Certificate) (time.Time, bool) {
	return c.RevokedAt, !c.RevokedAt.IsZero()
}

// reasonName is the RFC 5280 name of a CRLReason code, as package ca
// names it.
func reasonName(code int) string { return ca.ReasonName(code) }

// caClosedAt reports when a batch CA was closed, if it was.
func caClosedAt(c store.CA) (time.Time, bool) {
	return c.ClosedAt, !c.ClosedAt.IsZero()
}

// isNotFound reports an unknown CA, certificate or CRL, from the store or
// the CA.
func isNotFound(err error) bool {
	return errors.Is(err, store.ErrNotFound) || errors.Is(err, ca.ErrNotFound)
}

// isDuplicate reports a certificate already stored.
func isDuplicate(err error) bool { return errors.Is(err, store.ErrExists) }

// isInvalid reports an argument the store refuses as malformed.
func isInvalid(err error) bool { return errors.Is(err, store.ErrInvalid) }

// storeKind is the store's certificate kind for an SMKI certificate kind.
func storeKind(k smki.Kind) string {
	switch k {
	case smki.KindOrganisation:
		return store.KindOrg
	case smki.KindDevice:
		return store.KindDevice
	}
	return store.KindCA
}

// storeUsage is the store's key usage token for an SMKI certificate:
// ds or ka for end-entity certificates, ca for CA certificates.
func storeUsage(sc *smki.Certificate) string {
	switch {
	case sc.IsCA:
		return store.UsageCA
	case sc.KeyUsage == x509.KeyUsageDigitalSignature:
		return store.UsageDS
	}
	return store.UsageKA
}

// storeRole is the Remote Party Role the store records: the subject role of
// organisation, root and OCA certificates, -1 for DCA and device
// certificates, as the CA records them.
func storeRole(sc *smki.Certificate) int {
	switch sc.Kind {
	case smki.KindOrganisation, smki.KindRoot, smki.KindOCA:
		return int(sc.Role)
	}
	return -1
}
