package store

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"
)

// OperatorStore is the operator dashboard's part of the store: its login
// sessions (decision 020).
type OperatorStore struct{ db *DB }

// Operator returns the store's operator part.
func (db *DB) Operator() *OperatorStore { return &OperatorStore{db} }

// AppendAudit appends to the store's one audit chain (see DB.AppendAudit).
func (s *OperatorStore) AppendAudit(ctx context.Context, e AuditEvent) (AuditEvent, error) {
	return s.db.AppendAudit(ctx, e)
}

// Session is one logged-in dashboard session. IDSHA256 is the hex SHA-256
// of the session cookie's value (the cookie itself is never stored); CSRF
// the anti-forgery token its forms echo.
type Session struct {
	IDSHA256  string
	Operator  string
	CSRF      string
	CreatedAt time.Time
	LastSeen  time.Time
	ExpiresAt time.Time
}

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

func (s *Session) validate() error {
	switch {
	case !sha256Hex.MatchString(s.IDSHA256):
		return fmt.Errorf("%w: session id digest must be 64 lower-case hex digits", ErrInvalid)
	case s.Operator == "":
		return fmt.Errorf("%w: session without an operator", ErrInvalid)
	case len(s.CSRF) < 32:
		return fmt.Errorf("%w: session CSRF token shorter than 32 characters", ErrInvalid)
	case s.CreatedAt.IsZero() || s.LastSeen.IsZero() || !s.ExpiresAt.After(s.CreatedAt):
		return fmt.Errorf("%w: session times: created %s, last seen %s, expires %s", ErrInvalid, s.CreatedAt, s.LastSeen, s.ExpiresAt)
	}
	return nil
}

// CreateSession records a new session, in one transaction with the audit
// entries es (the login). A digest already recorded gives ErrExists.
func (s *OperatorStore) CreateSession(ctx context.Context, ss Session, es ...AuditEvent) error {
	if err := ss.validate(); err != nil {
		return err
	}
	return s.db.inTx(ctx, func(tx dbtx) error {
		_, err := tx.exec(ctx, `INSERT INTO operator_sessions (id_sha256, operator, csrf, created_at, last_seen, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6)`, ss.IDSHA256, ss.Operator, ss.CSRF, dbTime(ss.CreatedAt), dbTime(ss.LastSeen), dbTime(ss.ExpiresAt))
		if err = classify(err); errors.Is(err, errUnique) {
			return fmt.Errorf("recording session: %w", ErrExists)
		} else if err != nil {
			return fmt.Errorf("store: recording session of %s: %w", ss.Operator, err)
		}
		_, err = appendAuditsIn(ctx, tx, es)
		return err
	})
}

// Session returns the session whose digest is idSHA256 if it is live at
// now: before its expiry and seen within idle. An unknown, expired or idle
// session gives ErrNotFound.
func (s *OperatorStore) Session(ctx context.Context, idSHA256 string, now time.Time, idle time.Duration) (Session, error) {
	var ss Session
	var created, seen, expires timeCol
	err := s.db.read().queryRow(ctx, `SELECT id_sha256, operator, csrf, created_at, last_seen, expires_at
		FROM operator_sessions WHERE id_sha256 = $1`, idSHA256).Scan(&ss.IDSHA256, &ss.Operator, &ss.CSRF, &created, &seen, &expires)
	if errors.Is(err, errNoRows) {
		return Session{}, fmt.Errorf("session: %w", ErrNotFound)
	}
	if err != nil {
		return Session{}, fmt.Errorf("store: reading session: %w", err)
	}
	ss.CreatedAt, ss.LastSeen, ss.ExpiresAt = created.t, seen.t, expires.t
	if !now.Before(ss.ExpiresAt) || !now.Before(ss.LastSeen.Add(idle)) {
		return Session{}, fmt.Errorf("session of %s ended: %w", ss.Operator, ErrNotFound)
	}
	return ss, nil
}

// TouchSession records that the session was used at now.
func (s *OperatorStore) TouchSession(ctx context.Context, idSHA256 string, now time.Time) error {
	if _, err := s.db.write().exec(ctx, `UPDATE operator_sessions SET last_seen = $1 WHERE id_sha256 = $2 AND last_seen < $1`,
		dbTime(now), idSHA256); err != nil {
		return fmt.Errorf("store: touching session: %w", err)
	}
	return nil
}

// DeleteSession ends a session (logout), in one transaction with the audit
// entries es; an unknown one gives ErrNotFound and records nothing.
func (s *OperatorStore) DeleteSession(ctx context.Context, idSHA256 string, es ...AuditEvent) error {
	return s.db.inTx(ctx, func(tx dbtx) error {
		n, err := tx.exec(ctx, `DELETE FROM operator_sessions WHERE id_sha256 = $1`, idSHA256)
		if err != nil {
			return fmt.Errorf("store: deleting session: %w", err)
		}
		if n == 0 {
			return fmt.Errorf("session: %w", ErrNotFound)
		}
		_, err = appendAuditsIn(ctx, tx, es)
		return err
	})
}

// DeleteSessionsBefore deletes the sessions expired at now or idle since
// before now-idle, and returns how many.
func (s *OperatorStore) DeleteSessionsBefore(ctx context.Context, now time.Time, idle time.Duration) (int64, error) {
	n, err := s.db.write().exec(ctx, `DELETE FROM operator_sessions WHERE expires_at <= $1 OR last_seen <= $2`,
		dbTime(now), dbTime(now.Add(-idle)))
	if err != nil {
		return 0, fmt.Errorf("store: deleting ended sessions: %w", err)
	}
	return n, nil
}
