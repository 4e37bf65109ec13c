package store

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"
)

// CA kinds and states.
const (
	CAKindRoot      = "root"       // the SMKI Root CA, self-signed
	CAKindOCA       = "oca"        // the Organisation CA
	CAKindDCA       = "dca"        // a Device CA, typically a batch with a quota
	CAKindDCCKIRoot = "dccki-root" // the DCCKI root (TLS between users and the router)
	CAKindDCCKITLS  = "dccki-tls"  // the DCCKI issuing CA

	CAStateActive = "active"
	CAStateClosed = "closed"
)

// CA is a certificate authority run by metertrust: its certificate, the kms
// URI of its key, and for a batch Device CA the device quota (GBCS section 2,
// "batch device CAs", our rule).
type CA struct {
	Name      string    // unique: "root", "oca", "dccki-root", "dccki-tls", or a batch name like "E357"
	Kind      string    // "root", "oca", "dca", "dccki-root", "dccki-tls"
	Parent    string    // issuing CA's name; "" for a self-signed root
	CertDER   []byte    // the CA's own certificate
	KeyURI    string    // kms URI of its private key; "" once destroyed
	Quota     int64     // batch device CAs: devices allowed; 0 = no quota
	Issued    int64     // devices issued so far
	State     string    // "active" or "closed"; CreateCA takes "" as "active"
	CreatedAt time.Time // stored UTC, microsecond precision
	ClosedAt  time.Time // zero while active
	// Purpose is a batch Device CA's purpose: "" for new devices, or
	// CAPurposeRekey for the re-key certificates of devices already in the
	// inventory (decision 017).
	Purpose string
}

// CAPurposeRekey marks a batch Device CA opened for device re-keys.
const CAPurposeRekey = "rekey"

// token is the shape of kinds, usages and names: short, lower-case ASCII.
var token = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{0,31}$`)

// caName is the shape of a CA name: printable ASCII without spaces.
var caName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func (c *CA) validate() error {
	switch {
	case !caName.MatchString(c.Name):
		return fmt.Errorf("%w: CA name %q must be 1-64 letters, digits, '.', '_' or '-'", ErrInvalid, c.Name)
	case !token.MatchString(c.Kind):
		return fmt.Errorf("%w: CA %s: kind %q is not a lower-case token", ErrInvalid, c.Name, c.Kind)
	case c.Parent != "" && !caName.MatchString(c.Parent):
		return fmt.Errorf("%w: CA %s: parent name %q is malformed", ErrInvalid, c.Name, c.Parent)
	case len(c.CertDER) == 0:
		return fmt.Errorf("%w: CA %s: no certificate", ErrInvalid, c.Name)
	case c.Quota < 0:
		return fmt.Errorf("%w: CA %s: negative quota %d", ErrInvalid, c.Name, c.Quota)
	case c.Issued < 0:
		return fmt.Errorf("%w: CA %s: negative issued count %d", ErrInvalid, c.Name, c.Issued)
	case c.Quota > 0 && c.Issued > c.Quota:
		return fmt.Errorf("%w: CA %s: issued %d exceeds quota %d", ErrInvalid, c.Name, c.Issued, c.Quota)
	case c.State != CAStateActive && c.State != CAStateClosed:
		return fmt.Errorf("%w: CA %s: state %q must be %q or %q", ErrInvalid, c.Name, c.State, CAStateActive, CAStateClosed)
	case c.CreatedAt.IsZero():
		return fmt.Errorf("%w: CA %s: no creation time", ErrInvalid, c.Name)
	case c.State == CAStateClosed && c.ClosedAt.IsZero():
		return fmt.Errorf("%w: CA %s: closed without a closing time", ErrInvalid, c.Name)
	case c.Purpose != "" && (c.Purpose != CAPurposeRekey || c.Kind != CAKindDCA):
		return fmt.Errorf("%w: CA %s: purpose %q (only a %s CA may have purpose %q)", ErrInvalid, c.Name, c.Purpose, CAKindDCA, CAPurposeRekey)
	case c.State == CAStateActive && !c.ClosedAt.IsZero():
		return fmt.Errorf("%w: CA %s: active with a closing time", ErrInvalid, c.Name)
	}
	return nil
}

// CreateCA records a new CA. It returns an error wrapping ErrExists if a CA
// of that name is already stored.
func (s *SMKIStore) CreateCA(ctx context.Context, c CA) error {
	db := s.db
	if c.State == "" {
		c.State = CAStateActive
	}
	if err := c.validate(); err != nil {
		return err
	}
	_, err := db.write().exec(ctx, `INSERT INTO cas
		(name, kind, parent, cert_der, key_uri, quota, issued, state, created_at, closed_at, purpose)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		c.Name, c.Kind, c.Parent, c.CertDER, c.KeyURI, c.Quota, c.Issued, c.State, c.CreatedAt, c.ClosedAt, c.Purpose)
	if err = classify(err); errors.Is(err, errUnique) {
		return fmt.Errorf("creating CA %s: %w", c.Name, ErrExists)
	} else if err != nil {
		return fmt.Errorf("store: creating CA %s: %w", c.Name, err)
	}
	return nil
}

const caColumns = `name, kind, parent, cert_der, key_uri, quota, issued, state, created_at, closed_at, purpose`

func scanCA(r interface{ Scan(...any) error }) (CA, error) {
	var c CA
	var created, closed timeCol
	err := r.Scan(&c.Name, &c.Kind, &c.Parent, &c.CertDER, &c.KeyURI, &c.Quota, &c.Issued, &c.State, &created, &closed, &c.Purpose)
	c.CreatedAt, c.ClosedAt = created.t, closed.t
	return c, err
}

// CA returns the CA named name, or an error wrapping ErrNotFound.
func (s *SMKIStore) CA(ctx context.Context, name string) (CA, error) {
	db := s.db
	return getCA(ctx, db.read(), name)
}

func getCA(ctx context.Context, q dbtx, name string) (CA, error) {
	c, err := scanCA(q.queryRow(ctx, `SELECT `+caColumns+` FROM cas WHERE name = $1`, name))
	if errors.Is(err, errNoRows) {
		return CA{}, fmt.Errorf("CA %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return CA{}, fmt.Errorf("store: reading CA %q: %w", name, err)
	}
	return c, nil
}

// CAs returns every CA in the order they were created.
func (s *SMKIStore) CAs(ctx context.Context) ([]CA, error) {
	db := s.db
	rs, err := db.read().query(ctx, `SELECT `+caColumns+` FROM cas ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("store: listing CAs: %w", err)
	}
	defer rs.Close()
	var out []CA
	for rs.Next() {
		c, err := scanCA(rs)
		if err != nil {
			return nil, fmt.Errorf("store: listing CAs: %w", err)
		}
		out = append(out, c)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("store: listing CAs: %w", err)
	}
	return out, nil
}

// MaxReserve is the most devices one ReserveDevices call may reserve.
const MaxReserve = 1 << 32

// ReserveDevices atomically adds n to the CA's Issued count if the CA is
// active and Issued+n stays within its Quota (a Quota of 0 is unlimited), and
// returns the new Issued. Otherwise nothing changes and the error wraps
// ErrClosed, ErrQuotaExhausted or ErrNotFound. Callers reserve before
// signing, so a crash between the two wastes quota but never exceeds it.
func (s *SMKIStore) ReserveDevices(ctx context.Context, name string, n int64) (int64, error) {
	db := s.db
	if n <= 0 || n > MaxReserve {
		return 0, fmt.Errorf("%w: reserving %d devices from CA %s: count must be 1-%d", ErrInvalid, n, name, int64(MaxReserve))
	}
	var issued int64
	err := db.inTx(ctx, func(tx dbtx) error {
		err := tx.queryRow(ctx, `UPDATE cas SET issued = issued + $2
			WHERE name = $1 AND state = 'active' AND (quota = 0 OR issued + $2 <= quota)
			RETURNING issued`, name, n).Scan(&issued)
		if err == nil {
			return nil
		}
		if !errors.Is(err, errNoRows) {
			return fmt.Errorf("store: reserving %d devices from CA %s: %w", n, name, err)
		}
		c, err := getCA(ctx, tx, name)
		switch {
		case err != nil:
			return fmt.Errorf("reserving devices: %w", err)
		case c.State != CAStateActive:
			return fmt.Errorf("reserving %d devices from CA %s: %w", n, name, ErrClosed)
		default:
			return fmt.Errorf("reserving %d devices from CA %s (issued %d of %d): %w", n, name, c.Issued, c.Quota, ErrQuotaExhausted)
		}
	})
	if err != nil {
		return 0, err
	}
	return issued, nil
}

// CloseCA marks the CA closed at the given time and forgets its key URI
// (the caller destroys the key in the key store first). The CA certificate
// stays, so certificates it issued keep validating. It returns an error
// wrapping ErrClosed if the CA is already closed, or ErrNotFound.
func (s *SMKIStore) CloseCA(ctx context.Context, name string, at time.Time) error {
	db := s.db
	if at.IsZero() {
		return fmt.Errorf("%w: closing CA %s: no closing time", ErrInvalid, name)
	}
	return db.inTx(ctx, func(tx dbtx) error {
		n, err := tx.exec(ctx, `UPDATE cas SET state = 'closed', key_uri = '', closed_at = $2
			WHERE name = $1 AND state = 'active'`, name, at)
		if err != nil {
			return fmt.Errorf("store: closing CA %s: %w", name, err)
		}
		if n == 1 {
			return nil
		}
		if _, err := getCA(ctx, tx, name); err != nil {
			return fmt.Errorf("closing CA: %w", err)
		}
		return fmt.Errorf("closing CA %s: %w", name, ErrClosed)
	})
}

// write returns the handle for single-statement writes outside an explicit
// transaction.
func (db *DB) write() dbtx {
	if db.pool != nil {
		return db.withTiming(pgTx{db.pool})
	}
	return db.withTiming(sqliteTx{db.writer})
}
