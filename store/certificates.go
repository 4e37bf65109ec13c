package store

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Certificate kinds, key usages and DCC user roles.
const (
	KindOrg       = "org"        // an SMKI organisation certificate
	KindDevice    = "device"     // an SMKI device certificate
	KindCA        = "ca"         // a CA certificate
	KindTLSClient = "tls-client" // a DCCKI client certificate
	KindTLSServer = "tls-server" // a DCCKI server certificate
	// KindOCSPResponder is a closed batch's delegated OCSP responder
	// certificate (RFC 6960 section 4.2.2.2): not an SMKI profile, so
	// smki.ParseCertificate reads it as KindUnknown; read it with
	// crypto/x509.
	KindOCSPResponder = "ocsp-responder"

	UsageDS   = "ds"    // digitalSignature
	UsageKA   = "ka"    // keyAgreement (management)
	UsagePPKA = "pp-ka" // keyAgreement for prepayment top-up
	UsageCA   = "ca"    // keyCertSign, cRLSign
	UsageTLS  = "tls"   // DCCKI TLS
	UsageOCSP = "ocsp"  // digitalSignature with id-kp-OCSPSigning: an OCSP responder
)

// userRoles are the DCC user roles of GBCS section 1.
var userRoles = map[string]bool{"IS": true, "ES": true, "GS": true, "ED": true, "GT": true, "OU": true, "RSA": true}

// euiPattern is the canonical form of an EUI-64: 16 upper-case hex digits.
var euiPattern = regexp.MustCompile(`^[0-9A-F]{16}$`)

// keyIDPattern matches a subject key identifier in upper-case hex, or "".
var keyIDPattern = regexp.MustCompile(`^([0-9A-F]{2}){0,20}$`)

// Certificate is one issued certificate with the attributes the repository
// is searched by.
type Certificate struct {
	ID        int64     // store-assigned, increasing; for paging
	CA        string    // issuing CA name
	Serial    []byte    // big-endian bytes as in the certificate
	Kind      string    // "org", "device", "ca", "tls-client", "tls-server", "ocsp-responder"
	EUI       string    // 16 upper-case hex digits, "" when none
	Role      int       // GBCS remote party role code, -1 when none
	UserRole  string    // DCC user role (IS, ES, GS, ED, GT, OU, RSA) for DCCKI client certificates, else ""
	Usage     string    // "ds", "ka", "pp-ka", "ca", "tls", "ocsp"
	NotBefore time.Time // stored UTC, microsecond precision
	NotAfter  time.Time
	DER       []byte
	RevokedAt time.Time // zero while good
	Reason    int       // CRL reason code (RFC 5280 section 5.3.1) when revoked
}

func (c *Certificate) validate() error {
	id := fmt.Sprintf("certificate %s/%X", c.CA, c.Serial)
	switch {
	case !caName.MatchString(c.CA):
		return fmt.Errorf("%w: %s: issuing CA name %q is malformed", ErrInvalid, id, c.CA)
	case len(c.Serial) == 0 || len(c.Serial) > 20:
		return fmt.Errorf("%w: %s: serial must be 1-20 bytes, got %d", ErrInvalid, id, len(c.Serial))
	case !token.MatchString(c.Kind):
		return fmt.Errorf("%w: %s: kind %q is not a lower-case token", ErrInvalid, id, c.Kind)
	case c.EUI != "" && !euiPattern.MatchString(c.EUI):
		return fmt.Errorf("%w: %s: EUI %q is not 16 upper-case hex digits", ErrInvalid, id, c.EUI)
	case c.Role < -1 || c.Role > 255:
		return fmt.Errorf("%w: %s: remote party role %d is outside -1..255", ErrInvalid, id, c.Role)
	case c.UserRole != "" && !userRoles[c.UserRole]:
		return fmt.Errorf("%w: %s: DCC user role %q is not one of IS, ES, GS, ED, GT, OU, RSA", ErrInvalid, id, c.UserRole)
	case !token.MatchString(c.Usage):
		return fmt.Errorf("%w: %s: usage %q is not a lower-case token", ErrInvalid, id, c.Usage)
	case c.NotBefore.IsZero() || c.NotAfter.IsZero():
		return fmt.Errorf("%w: %s: validity period missing", ErrInvalid, id)
	case c.NotAfter.Before(c.NotBefore):
		return fmt.Errorf("%w: %s: notAfter before notBefore", ErrInvalid, id)
	case len(c.DER) == 0:
		return fmt.Errorf("%w: %s: no DER", ErrInvalid, id)
	case c.RevokedAt.IsZero() && c.Reason != 0:
		return fmt.Errorf("%w: %s: revocation reason %d without a revocation time", ErrInvalid, id, c.Reason)
	case c.Reason < 0 || c.Reason > 10 || c.Reason == 7:
		return fmt.Errorf("%w: %s: CRL reason code %d is not defined by RFC 5280", ErrInvalid, id, c.Reason)
	}
	return nil
}

const certInsert = `INSERT INTO certificates
	(ca, serial, kind, eui, role, user_role, key_usage, not_before, not_after, der, revoked_at, reason)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`

func certArgs(c *Certificate) []any {
	return []any{c.CA, c.Serial, c.Kind, c.EUI, c.Role, c.UserRole, c.Usage, c.NotBefore, c.NotAfter, c.DER, c.RevokedAt, c.Reason}
}

// PutCertificates stores the certificates in one transaction. If any
// (CA, Serial) is already stored, or repeated in the call, nothing is written
// and the error wraps ErrExists and names it; an unknown issuing CA gives
// ErrNotFound. ID is assigned by the store (the argument's is ignored).
// Batches of about a thousand suit bulk issuance.
func (s *SMKIStore) PutCertificates(ctx context.Context, certs ...Certificate) error {
	db := s.db
	if len(certs) == 0 {
		return nil
	}
	for i := range certs {
		if err := certs[i].validate(); err != nil {
			return err
		}
	}
	if db.pool != nil {
		return db.putCertificatesPG(ctx, certs)
	}
	failed := func(c *Certificate, err error) error {
		err = classify(err)
		switch {
		case errors.Is(err, errUnique):
			return fmt.Errorf("storing certificate %s/%X: %w", c.CA, c.Serial, ErrExists)
		case errors.Is(err, errForeignKey):
			return fmt.Errorf("storing certificate %s/%X: CA %q: %w", c.CA, c.Serial, c.CA, ErrNotFound)
		}
		return fmt.Errorf("store: storing certificate %s/%X: %w", c.CA, c.Serial, err)
	}
	tx, err := db.writer.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: beginning transaction: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	stmt, err := tx.PrepareContext(ctx, certInsert)
	if err != nil {
		return fmt.Errorf("store: preparing certificate insert: %w", err)
	}
	defer stmt.Close()
	for i := range certs {
		if _, err := stmt.ExecContext(ctx, sqliteArgs(certArgs(&certs[i]))...); err != nil {
			return failed(&certs[i], err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: committing certificates: %w", err)
	}
	return nil
}

// certInsertPG inserts a whole batch in one statement from column arrays,
// about ten times faster than row-by-row inserts, pipelined or not.
const certInsertPG = `INSERT INTO certificates
	(ca, serial, kind, eui, role, user_role, key_usage, not_before, not_after, der, revoked_at, reason)
	SELECT * FROM unnest($1::text[], $2::bytea[], $3::text[], $4::text[], $5::int4[], $6::text[], $7::text[],
		$8::timestamptz[], $9::timestamptz[], $10::bytea[], $11::timestamptz[], $12::int4[])`

// putCertificatesPG inserts the batch with one statement. PostgreSQL checks
// every row, so a constraint violation names the offending key in its
// detail, which the error carries.
func (db *DB) putCertificatesPG(ctx context.Context, certs []Certificate) error {
	n := len(certs)
	var (
		cas, kinds, euis, userRoles, usages = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		serials, ders                       = make([][]byte, n), make([][]byte, n)
		roles, reasons                      = make([]int32, n), make([]int32, n)
		notBefore, notAfter                 = make([]time.Time, n), make([]time.Time, n)
		revokedAt                           = make([]*time.Time, n)
	)
	for i := range certs {
		c := &certs[i]
		cas[i], serials[i], kinds[i], euis[i], roles[i] = c.CA, c.Serial, c.Kind, c.EUI, int32(c.Role)
		userRoles[i], usages[i], ders[i], reasons[i] = c.UserRole, c.Usage, c.DER, int32(c.Reason)
		notBefore[i], notAfter[i] = dbTime(c.NotBefore), dbTime(c.NotAfter)
		if !c.RevokedAt.IsZero() {
			t := dbTime(c.RevokedAt)
			revokedAt[i] = &t
		}
	}
	_, err := db.pool.Exec(ctx, certInsertPG, cas, serials, kinds, euis, roles, userRoles, usages, notBefore, notAfter, ders, revokedAt, reasons)
	if err == nil {
		return nil
	}
	detail := ""
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Detail != "" {
		detail = " (" + pe.Detail + ")"
	}
	switch err = classify(err); {
	case errors.Is(err, errUnique):
		return fmt.Errorf("storing %d certificates%s: %w", n, detail, ErrExists)
	case errors.Is(err, errForeignKey):
		return fmt.Errorf("storing %d certificates: issuing CA%s: %w", n, detail, ErrNotFound)
	}
	return fmt.Errorf("store: storing %d certificates: %w", n, err)
}

const certColumns = `id, ca, serial, kind, eui, role, user_role, key_usage, not_before, not_after, der, revoked_at, reason`

func scanCert(r interface{ Scan(...any) error }) (Certificate, error) {
	var c Certificate
	var nb, na, rv timeCol
	var role, reason int64
	err := r.Scan(&c.ID, &c.CA, &c.Serial, &c.Kind, &c.EUI, &role, &c.UserRole, &c.Usage, &nb, &na, &c.DER, &rv, &reason)
	c.Role, c.Reason = int(role), int(reason)
	c.NotBefore, c.NotAfter, c.RevokedAt = nb.t, na.t, rv.t
	return c, err
}

// Certificate returns the certificate the CA issued with this serial, or an
// error wrapping ErrNotFound.
func (s *SMKIStore) Certificate(ctx context.Context, ca string, serial []byte) (Certificate, error) {
	db := s.db
	return getCert(ctx, db.read(), ca, serial)
}

func getCert(ctx context.Context, q dbtx, ca string, serial []byte) (Certificate, error) {
	c, err := scanCert(q.queryRow(ctx, `SELECT `+certColumns+` FROM certificates WHERE ca = $1 AND serial = $2`, ca, serial))
	if errors.Is(err, errNoRows) {
		return Certificate{}, fmt.Errorf("certificate %s/%X: %w", ca, serial, ErrNotFound)
	}
	if err != nil {
		return Certificate{}, fmt.Errorf("store: reading certificate %s/%X: %w", ca, serial, err)
	}
	return c, nil
}

// CertQuery selects certificates. Empty fields (and a nil Role or Serial)
// match anything; the others must all match.
type CertQuery struct {
	EUI      string // 16 hex digits; dashes and lower case are accepted
	Role     *int   // GBCS remote party role
	Usage    string
	Kind     string
	CA       string
	UserRole string
	Serial   []byte
	// IncludeRevoked includes revoked certificates. The zero value returns
	// only certificates not revoked, which is what a look-up for a key to
	// trust wants; set it for history, audit and CRL work. Expiry is not
	// filtered: the store has no clock.
	IncludeRevoked bool
	AfterID        int64 // return only IDs greater than this, for paging
	Limit          int   // at most this many; 0 means DefaultLimit, capped at MaxLimit
}

// Paging limits for FindCertificates and AuditEvents.
const (
	DefaultLimit = 1000
	MaxLimit     = 10000
)

func pageLimit(limit int) (int, error) {
	switch {
	case limit < 0:
		return 0, fmt.Errorf("%w: negative limit %d", ErrInvalid, limit)
	case limit == 0:
		return DefaultLimit, nil
	}
	return min(limit, MaxLimit), nil
}

// NormalizeEUI returns the canonical form of an EUI-64 written as 16 hex
// digits, optionally grouped with dashes (GBCS section 1), or an error.
func NormalizeEUI(s string) (string, error) {
	c := strings.ToUpper(strings.ReplaceAll(s, "-", ""))
	if !euiPattern.MatchString(c) {
		return "", fmt.Errorf("%w: EUI %q is not 16 hex digits", ErrInvalid, s)
	}
	return c, nil
}

// FindCertificates returns the certificates matching q in ID order, at most
// q.Limit of them. To page, pass the last ID returned as the next AfterID.
// On PostgreSQL an ID committed late by a concurrent writer may be lower than
// one already returned.
func (s *SMKIStore) FindCertificates(ctx context.Context, q CertQuery) ([]Certificate, error) {
	db := s.db
	limit, err := pageLimit(q.Limit)
	if err != nil {
		return nil, err
	}
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if q.EUI != "" {
		eui, err := NormalizeEUI(q.EUI)
		if err != nil {
			return nil, err
		}
		add("eui = $%d", eui)
		// Lets both backends use the partial index certificates_eui
		// (WHERE eui <> ''), which a bound value alone does not.
		where = append(where, "eui <> ''")
	}
	if q.Role != nil {
		add("role = $%d", *q.Role)
	}
	if q.Usage != "" {
		add("key_usage = $%d", q.Usage)
	}
	if q.Kind != "" {
		add("kind = $%d", q.Kind)
	}
	if q.CA != "" {
		add("ca = $%d", q.CA)
	}
	if q.UserRole != "" {
		add("user_role = $%d", q.UserRole)
	}
	if q.Serial != nil {
		add("serial = $%d", q.Serial)
	}
	if !q.IncludeRevoked {
		where = append(where, "revoked_at IS NULL")
	}
	if q.AfterID < 0 {
		return nil, fmt.Errorf("%w: negative AfterID %d", ErrInvalid, q.AfterID)
	}
	add("id > $%d", q.AfterID)
	args = append(args, limit)
	query := fmt.Sprintf(`SELECT %s FROM certificates WHERE %s ORDER BY id LIMIT $%d`,
		certColumns, strings.Join(where, " AND "), len(args))
	return db.listCerts(ctx, db.read(), query, args...)
}

func (db *DB) listCerts(ctx context.Context, q dbtx, query string, args ...any) ([]Certificate, error) {
	rs, err := q.query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("store: finding certificates: %w", err)
	}
	defer rs.Close()
	var out []Certificate
	for rs.Next() {
		c, err := scanCert(rs)
		if err != nil {
			return nil, fmt.Errorf("store: finding certificates: %w", err)
		}
		out = append(out, c)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("store: finding certificates: %w", err)
	}
	return out, nil
}

// Revoke marks the certificate revoked with the CRL reason code at the given
// time. It returns an error wrapping ErrNotFound if there is no such
// certificate and ErrConflict if it is already revoked.
func (s *SMKIStore) Revoke(ctx context.Context, ca string, serial []byte, reason int, at time.Time) error {
	db := s.db
	switch {
	case at.IsZero():
		return fmt.Errorf("%w: revoking %s/%X: no revocation time", ErrInvalid, ca, serial)
	case reason < 0 || reason > 10 || reason == 7:
		return fmt.Errorf("%w: revoking %s/%X: CRL reason code %d is not defined by RFC 5280", ErrInvalid, ca, serial, reason)
	}
	return db.inTx(ctx, func(tx dbtx) error {
		n, err := tx.exec(ctx, `UPDATE certificates SET revoked_at = $3, reason = $4
			WHERE ca = $1 AND serial = $2 AND revoked_at IS NULL`, ca, serial, at, reason)
		if err != nil {
			return fmt.Errorf("store: revoking %s/%X: %w", ca, serial, err)
		}
		if n == 1 {
			return nil
		}
		c, err := getCert(ctx, tx, ca, serial)
		if err != nil {
			return fmt.Errorf("revoking: %w", err)
		}
		return fmt.Errorf("revoking %s/%X: already revoked at %s: %w", ca, serial, c.RevokedAt.Format(time.RFC3339), ErrConflict)
	})
}

// Revoked returns every revoked certificate the CA issued, in ID order, for
// building its CRL. An unknown CA gives ErrNotFound.
func (s *SMKIStore) Revoked(ctx context.Context, ca string) ([]Certificate, error) {
	db := s.db
	q := db.read()
	if _, err := getCA(ctx, q, ca); err != nil {
		return nil, fmt.Errorf("listing revoked certificates: %w", err)
	}
	return db.listCerts(ctx, q, `SELECT `+certColumns+` FROM certificates
		WHERE ca = $1 AND revoked_at IS NOT NULL ORDER BY id`, ca)
}

// CRL is a certificate revocation list a CA published (RFC 5280 section 5).
type CRL struct {
	CA         string
	Number     int64 // the cRLNumber extension
	ThisUpdate time.Time
	NextUpdate time.Time // zero if absent
	DER        []byte
}

// NextCRLNumber atomically allocates the CA's next CRL number: 1, 2, 3...
// A number is never handed out twice, even if its CRL is never stored.
func (s *SMKIStore) NextCRLNumber(ctx context.Context, ca string) (int64, error) {
	db := s.db
	var n int64
	err := db.inTx(ctx, func(tx dbtx) error {
		err := tx.queryRow(ctx, `UPDATE cas SET crl_number = crl_number + 1 WHERE name = $1 RETURNING crl_number`, ca).Scan(&n)
		if errors.Is(err, errNoRows) {
			return fmt.Errorf("allocating CRL number: CA %q: %w", ca, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("store: allocating CRL number for CA %s: %w", ca, err)
		}
		return nil
	})
	return n, err
}

// PutCRL stores a CRL. It returns an error wrapping ErrExists if the CA
// already has a CRL with that number, ErrNotFound for an unknown CA.
func (s *SMKIStore) PutCRL(ctx context.Context, c CRL) error {
	db := s.db
	switch {
	case c.Number <= 0:
		return fmt.Errorf("%w: CRL of %s: number %d must be positive", ErrInvalid, c.CA, c.Number)
	case c.ThisUpdate.IsZero():
		return fmt.Errorf("%w: CRL %d of %s: no thisUpdate", ErrInvalid, c.Number, c.CA)
	case !c.NextUpdate.IsZero() && c.NextUpdate.Before(c.ThisUpdate):
		return fmt.Errorf("%w: CRL %d of %s: nextUpdate before thisUpdate", ErrInvalid, c.Number, c.CA)
	case len(c.DER) == 0:
		return fmt.Errorf("%w: CRL %d of %s: no DER", ErrInvalid, c.Number, c.CA)
	}
	_, err := db.write().exec(ctx, `INSERT INTO crls (ca, number, this_update, next_update, der) VALUES ($1, $2, $3, $4, $5)`,
		c.CA, c.Number, c.ThisUpdate, c.NextUpdate, c.DER)
	switch err = classify(err); {
	case errors.Is(err, errUnique):
		return fmt.Errorf("storing CRL %d of %s: %w", c.Number, c.CA, ErrExists)
	case errors.Is(err, errForeignKey):
		return fmt.Errorf("storing CRL %d: CA %q: %w", c.Number, c.CA, ErrNotFound)
	case err != nil:
		return fmt.Errorf("store: storing CRL %d of %s: %w", c.Number, c.CA, err)
	}
	return nil
}

// LatestCRL returns the CA's CRL with the highest number, or an error
// wrapping ErrNotFound if it has none.
func (s *SMKIStore) LatestCRL(ctx context.Context, ca string) (CRL, error) {
	db := s.db
	var c CRL
	var tu, nu timeCol
	err := db.read().queryRow(ctx, `SELECT ca, number, this_update, next_update, der FROM crls
		WHERE ca = $1 ORDER BY number DESC LIMIT 1`, ca).Scan(&c.CA, &c.Number, &tu, &nu, &c.DER)
	if errors.Is(err, errNoRows) {
		return CRL{}, fmt.Errorf("latest CRL of %q: %w", ca, ErrNotFound)
	}
	if err != nil {
		return CRL{}, fmt.Errorf("store: reading latest CRL of %s: %w", ca, err)
	}
	c.ThisUpdate, c.NextUpdate = tu.t, nu.t
	return c, nil
}
