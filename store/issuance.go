package store

import (
	"context"
	"errors"
	"fmt"
	"maps"
)

// Issuance is one certificate issuance as the CA records it: the unit of
// quota it uses, the certificate, its first OCSP response, and its audit
// events, all written in the transaction of RecordIssuances. An issuance
// that failed before reaching the store (Cert.DER empty) records only its
// attempt and failure.
type Issuance struct {
	// Reserve, if not empty, names the batch Device CA one unit of whose
	// quota the certificate uses (as ReserveDevices(Reserve, 1)).
	Reserve string
	// Cert is the certificate; empty DER: nothing to store (see Failed).
	Cert Certificate
	// OCSP is the certificate's first OCSP response; empty DER: none.
	OCSP OCSPResponse
	// Attempt is the audit event written before the others. Its failure
	// twin (same actor, action, object and time, outcome failure, details
	// {"error": ...}) is written when the issuance fails.
	Attempt AuditEvent
	// Success is the audit event written after a stored certificate; when
	// Reserve is set, its details get "issued", the CA's new count.
	Success AuditEvent
	// Failed, if not nil, is why the issuance failed before the store: only
	// Attempt and its failure are written.
	Failed error
	// Rekey, if not nil, makes the issuance a device re-key: it is refused
	// (Err wrapping ErrRekeyRefused) unless, inside the transaction, the
	// device holds exactly one unrevoked device certificate of the usage
	// (decision 017).
	Rekey *RekeyGuard

	// Issued is set by RecordIssuances: the CA's issued count after the
	// reservation (0 without Reserve).
	Issued int64
	// Err is set by RecordIssuances: this issuance's own refusal, wrapping
	// ErrClosed or ErrQuotaExhausted (the reservation), ErrExists (the
	// serial is taken: sign again with a new one) or ErrInvalid; nothing
	// of it but its audit events is stored. It is Failed when that is set.
	Err error
}

// RekeyGuard names the device and usage of a re-key issuance.
type RekeyGuard struct {
	EUI   string // 16 upper-case hex digits
	Usage string // UsageDS or UsageKA
}

// ErrRekeyRefused is wrapped by the Err of an issuance whose RekeyGuard
// refused it: the device is not in the inventory (no unrevoked device
// certificate of the usage), or a re-key of that usage is already in
// flight (two: the installed one and one issued but not yet confirmed).
var ErrRekeyRefused = errors.New("store: device re-key refused")

// checkRekey is RekeyGuard's check inside tx. On PostgreSQL it first locks
// the device's unrevoked certificates of the usage, so that two re-keys of
// one device in concurrent transactions are serialised: the second waits
// for the first to commit, then counts its certificate (READ COMMITTED
// takes a new snapshot per statement). SQLite has one writer: its
// transactions are serial already. Two re-keys in one group transaction
// see each other's insert.
func checkRekey(ctx context.Context, tx dbtx, g *RekeyGuard) error {
	const where = ` FROM certificates WHERE eui = $1 AND kind = $2 AND key_usage = $3 AND revoked_at IS NULL`
	if _, ok := tx.(pgTx); ok {
		rs, err := tx.query(ctx, `SELECT id`+where+` FOR UPDATE`, g.EUI, KindDevice, g.Usage)
		if err != nil {
			return fmt.Errorf("locking the %s certificates of device %s: %w", g.Usage, g.EUI, err)
		}
		for rs.Next() {
		}
		err = rs.Err()
		rs.Close()
		if err != nil {
			return fmt.Errorf("locking the %s certificates of device %s: %w", g.Usage, g.EUI, err)
		}
	}
	var n int
	if err := tx.queryRow(ctx, `SELECT COUNT(*)`+where, g.EUI, KindDevice, g.Usage).Scan(&n); err != nil {
		return fmt.Errorf("counting the %s certificates of device %s: %w", g.Usage, g.EUI, err)
	}
	switch {
	case n == 0:
		return fmt.Errorf("%w: device %s holds no unrevoked %s device certificate: it is not in the inventory", ErrRekeyRefused, g.EUI, g.Usage)
	case n > 1:
		return fmt.Errorf("%w: device %s: a re-key of its %s key is already in flight (%d unrevoked %s certificates): install and confirm it, or confirm a read-back to abandon it, before another",
			ErrRekeyRefused, g.EUI, g.Usage, n, g.Usage)
	}
	return nil
}

// certInsertNew inserts a certificate unless its (CA, serial) is taken, so
// that a collision refuses one issuance, not its whole group.
const certInsertNew = certInsert + ` ON CONFLICT DO NOTHING`

// RecordIssuances records the issuances, in order, in one transaction (one
// commit, one fsync, for every caller of a group commit): for each, the
// quota reservation, the certificate and its OCSP response, then all their
// audit events appended to the chain together. An issuance refused on its
// own (see Issuance.Err) leaves its audit events only; the others are
// stored. The error, if not nil, is the transaction's, and nothing was
// written.
func (s *SMKIStore) RecordIssuances(ctx context.Context, is []*Issuance) error {
	if len(is) == 0 {
		return nil
	}
	for _, it := range is {
		it.Issued, it.Err = 0, it.Failed
		if it.Err != nil {
			continue
		}
		if len(it.Cert.DER) == 0 {
			it.Err = fmt.Errorf("%w: issuance of %s has no certificate", ErrInvalid, it.Attempt.Object)
		} else if err := it.Cert.validate(); err != nil {
			it.Err = err
		} else if len(it.OCSP.DER) > 0 {
			it.Err = it.OCSP.validate()
		}
	}
	err := s.db.inTx(ctx, func(tx dbtx) error {
		events := make([]AuditEvent, 0, 2*len(is))
		for _, it := range is {
			if it.Err == nil {
				err := recordIssuance(ctx, tx, it)
				if err != nil {
					return err
				}
			}
			events = append(events, it.Attempt)
			if it.Err != nil {
				f := it.Attempt
				f.Outcome, f.Details = OutcomeFailure, map[string]any{"error": it.Err.Error()}
				events = append(events, f)
				continue
			}
			e := it.Success
			if it.Reserve != "" {
				e.Details = maps.Clone(e.Details)
				if e.Details == nil {
					e.Details = map[string]any{}
				}
				e.Details["issued"] = it.Issued
			}
			events = append(events, e)
		}
		_, err := appendAuditsIn(ctx, tx, events)
		return err
	})
	if err != nil {
		for _, it := range is {
			it.Issued, it.Err = 0, nil
		}
		return fmt.Errorf("store: recording %d issuances: %w", len(is), err)
	}
	return nil
}

// recordIssuance writes one issuance in tx; a refusal of its own goes to
// it.Err (and undoes its reservation), a returned error fails the group.
func recordIssuance(ctx context.Context, tx dbtx, it *Issuance) error {
	c := &it.Cert
	if it.Rekey != nil {
		if err := checkRekey(ctx, tx, it.Rekey); err != nil {
			if !errors.Is(err, ErrRekeyRefused) {
				return err
			}
			it.Err = err
			return nil
		}
	}
	if it.Reserve != "" {
		err := tx.queryRow(ctx, `UPDATE cas SET issued = issued + 1
			WHERE name = $1 AND state = 'active' AND (quota = 0 OR issued + 1 <= quota)
			RETURNING issued`, it.Reserve).Scan(&it.Issued)
		if errors.Is(err, errNoRows) {
			ca, gerr := getCA(ctx, tx, it.Reserve)
			switch {
			case errors.Is(gerr, ErrNotFound):
				it.Err = fmt.Errorf("reserving a device: %w", gerr)
			case gerr != nil:
				return fmt.Errorf("reserving a device: %w", gerr)
			case ca.State != CAStateActive:
				it.Err = fmt.Errorf("reserving a device from CA %s: %w", it.Reserve, ErrClosed)
			default:
				it.Err = fmt.Errorf("reserving a device from CA %s (issued %d of %d): %w", it.Reserve, ca.Issued, ca.Quota, ErrQuotaExhausted)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("reserving a device from CA %s: %w", it.Reserve, err)
		}
	}
	n, err := tx.exec(ctx, certInsertNew, certArgs(c)...)
	if err != nil {
		if err = classify(err); errors.Is(err, errForeignKey) {
			return fmt.Errorf("storing certificate %s/%X: CA %q: %w", c.CA, c.Serial, c.CA, ErrNotFound)
		}
		return fmt.Errorf("storing certificate %s/%X: %w", c.CA, c.Serial, err)
	}
	if n == 0 {
		it.Err = fmt.Errorf("storing certificate %s/%X: %w", c.CA, c.Serial, ErrExists)
		if it.Reserve != "" {
			if _, err := tx.exec(ctx, `UPDATE cas SET issued = issued - 1 WHERE name = $1`, it.Reserve); err != nil {
				return fmt.Errorf("returning the reservation of CA %s: %w", it.Reserve, err)
			}
		}
		it.Issued = 0
		return nil
	}
	if r := &it.OCSP; len(r.DER) > 0 {
		if _, err := tx.exec(ctx, ocspUpsert, r.CA, r.Serial, r.Status, r.ThisUpdate, r.NextUpdate, r.DER); err != nil {
			if err = classify(err); errors.Is(err, errForeignKey) {
				return fmt.Errorf("storing the OCSP response of %s/%X: %w", r.CA, r.Serial, ErrNotFound)
			}
			return fmt.Errorf("storing the OCSP response of %s/%X: %w", r.CA, r.Serial, err)
		}
	}
	return nil
}
