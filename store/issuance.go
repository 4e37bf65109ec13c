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

	// Issued is set by RecordIssuances: the CA's issued count after the
	// reservation (0 without Reserve).
	Issued int64
	// Err is set by RecordIssuances: this issuance's own refusal, wrapping
	// ErrClosed or ErrQuotaExhausted (the reservation), ErrExists (the
	// serial is taken: sign again with a new one) or ErrInvalid; nothing
	// of it but its audit events is stored. It is Failed when that is set.
	Err error
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
