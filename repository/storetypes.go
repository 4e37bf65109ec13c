package repository

// TEMPORARY mirror of store types until store/ lands; replaced by aliases.

import (
	"crypto/x509"
	"errors"
	"time"
)

type CertQuery struct {
	EUI      string
	Role     *int
	Usage    string
	Kind     string
	CA       string
	UserRole string
	Serial   []byte
	AfterID  int64
	Limit    int
}

type Certificate struct {
	ID        int64
	CA        string
	Serial    []byte
	Kind      string
	EUI       string
	Role      int
	UserRole  string
	Usage     string
	NotBefore time.Time
	NotAfter  time.Time
	DER       []byte
	RevokedAt time.Time
	Reason    int
}

type CA struct {
	Name      string
	Kind      string
	Parent    string
	CertDER   []byte
	KeyURI    string
	Quota     int64
	Issued    int64
	State     string
	CreatedAt time.Time
	ClosedAt  time.Time
}

type CRL struct {
	CA         string
	Number     int64
	ThisUpdate time.Time
	NextUpdate time.Time
	DER        []byte
}

type AuditEvent struct {
	Time    time.Time
	Actor   string
	Action  string
	Object  string
	Outcome string
	Details string
}

var errStoreNotFound = errors.New("store: not found")
var errStoreDuplicate = errors.New("store: duplicate")

func revocationTime(c Certificate) (time.Time, bool) {
	return c.RevokedAt, !c.RevokedAt.IsZero()
}

func revocationReason(c Certificate) int { return c.Reason }

func caClosedAt(ca CA) (time.Time, bool) {
	return ca.ClosedAt, !ca.ClosedAt.IsZero()
}

func isStoreNotFound(err error) bool  { return errors.Is(err, errStoreNotFound) }
func isStoreDuplicate(err error) bool { return errors.Is(err, errStoreDuplicate) }

var errStoreConflict = errors.New("store: conflict")

func isStoreConflict(err error) bool { return errors.Is(err, errStoreConflict) }

func usageName(ku x509.KeyUsage) string {
	switch ku {
	case x509.KeyUsageDigitalSignature:
		return UsageDigitalSignature
	case x509.KeyUsageKeyAgreement:
		return UsageKeyAgreement
	}
	return "ca"
}
