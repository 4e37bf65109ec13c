package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/metertrust/metertrust/smki"
)

// This file holds the router's change-of-supplier records (decision 014,
// gbcs-security.md section 9): the registration data naming, per device,
// the supplier that may take it over and from when, and the per-device
// ownership changes with their state machine (pending, unsettled,
// settled), whose open state rides along the registry row.

// SupplyRegistration is one registration data record: from EffectiveFrom
// on, IncomingSupplier is the supplier registered for Device.
type SupplyRegistration struct {
	Device           string // 16 upper-case hex digits
	IncomingSupplier string
	EffectiveFrom    time.Time
	CreatedBy        string
	CreatedAt        time.Time
}

// PutSupplyRegistration records r. A record for the same device and
// effective time gives ErrExists.
func (s *RouterStore) PutSupplyRegistration(ctx context.Context, r SupplyRegistration) error {
	switch {
	case !euiPattern.MatchString(r.Device):
		return fmt.Errorf("%w: supply registration: device EUI %q is not 16 upper-case hex digits", ErrInvalid, r.Device)
	case !euiPattern.MatchString(r.IncomingSupplier):
		return fmt.Errorf("%w: supply registration: supplier EUI %q is not 16 upper-case hex digits", ErrInvalid, r.IncomingSupplier)
	case r.EffectiveFrom.IsZero() || r.CreatedAt.IsZero() || r.CreatedBy == "":
		return fmt.Errorf("%w: supply registration of %s: effective time, creator and creation time are required", ErrInvalid, r.Device)
	}
	return s.db.inTx(ctx, func(tx dbtx) error {
		_, err := tx.exec(ctx, `INSERT INTO router_supply_registrations (device, incoming_supplier, effective_from, created_by, created_at)
			VALUES ($1, $2, $3, $4, $5)`, r.Device, r.IncomingSupplier, r.EffectiveFrom, r.CreatedBy, r.CreatedAt)
		if err != nil {
			if errors.Is(classify(err), errUnique) {
				return fmt.Errorf("supply registration of %s from %s: %w", r.Device, r.EffectiveFrom.UTC().Format(time.RFC3339), ErrExists)
			}
			return fmt.Errorf("store: putting supply registration of %s: %w", r.Device, err)
		}
		return nil
	})
}

// RegisteredSupplier returns the supplier the registration data names for
// the device at the given time (the record with the latest effective time
// not after it), or an error wrapping ErrNotFound.
func (s *RouterStore) RegisteredSupplier(ctx context.Context, device smki.EUI, at time.Time) (SupplyRegistration, error) {
	var r SupplyRegistration
	var from, created timeCol
	err := s.db.read().queryRow(ctx, `SELECT device, incoming_supplier, effective_from, created_by, created_at
		FROM router_supply_registrations WHERE device = $1 AND effective_from <= $2
		ORDER BY effective_from DESC LIMIT 1`, device.String(), at).Scan(&r.Device, &r.IncomingSupplier, &from, &r.CreatedBy, &created)
	if errors.Is(err, errNoRows) {
		return SupplyRegistration{}, fmt.Errorf("supply registration of %s at %s: %w", device, at.UTC().Format(time.RFC3339), ErrNotFound)
	}
	if err != nil {
		return SupplyRegistration{}, fmt.Errorf("store: reading supply registration of %s: %w", device, err)
	}
	r.EffectiveFrom, r.CreatedAt = from.t, created.t
	return r, nil
}

// The states of an ownership change (decision 014).
const (
	ChangePending   = "pending"
	ChangeUnsettled = "unsettled"
	ChangeSettled   = "settled"
)

// The outcomes of a settled ownership change (decision 014).
const (
	OutcomeApplied    = "applied"
	OutcomeRefusedCoS = "refused"
	OutcomeNotApplied = "not-applied"
	OutcomeDiverged   = "diverged"
)

// OwnershipChange is one change of a device's supplier trust anchors.
type OwnershipChange struct {
	ID     string
	Device string
	// Kind is the CS02b replacement mode: "supplierByTransCoS",
	// "supplierBySupplier" or "networkOperatorByNetworkOperator".
	Kind string
	// AnchorRole is the role whose cells the change replaces: AnchorSupplier
	// (the default) or AnchorNetworkOperator. Settling sets that party and
	// its digital-signing key identifier on the device.
	AnchorRole string
	// DSKeyID is the target digital-signing certificate's subject key
	// identifier (upper-case hex), the device's anchor key once applied.
	DSKeyID string
	// ExecuteAt is when the meter is to execute a future-dated CS02b; zero
	// for one executed at once.
	ExecuteAt time.Time
	Requester string
	// OldOwner is the settled supplier when the change was recorded;
	// NewOwner the one the change hands the device to.
	OldOwner, NewOwner string
	State              string
	// Outcome is set once State is settled.
	Outcome string
	// CommandID and Counter name the CS02b: its router command and
	// originator counter (the transaction id its answer is matched by);
	// Sequence is its authorising sequence number.
	CommandID string
	Counter   uint64
	Sequence  int64
	// ReadCommandID names the latest CS02a read of the meter's anchors
	// for an unsettled change; Reads counts the reads and ReadAt is when
	// the latest was recorded.
	ReadCommandID string
	Reads         int
	ReadAt        time.Time
	// Detail says why the change settled as it did (the device's status
	// codes for a refusal).
	Detail               string
	CreatedAt, UpdatedAt time.Time
}

// The roles whose anchors an ownership change replaces.
const (
	AnchorSupplier        = "supplier"
	AnchorNetworkOperator = "networkOperator"
)

const ownershipChangeColumns = `id, device, kind, requester, old_owner, new_owner, state, outcome, command_id, counter, tcos_seq,
	read_command_id, reads, read_at, detail, created_at, updated_at, anchor_role, ds_key_id, execute_at`

func scanOwnershipChange(r interface{ Scan(dest ...any) error }) (OwnershipChange, error) {
	var c OwnershipChange
	var counter int64
	var created, updated, read, execute timeCol
	if err := r.Scan(&c.ID, &c.Device, &c.Kind, &c.Requester, &c.OldOwner, &c.NewOwner, &c.State, &c.Outcome, &c.CommandID,
		&counter, &c.Sequence, &c.ReadCommandID, &c.Reads, &read, &c.Detail, &created, &updated, &c.AnchorRole, &c.DSKeyID, &execute); err != nil {
		return OwnershipChange{}, err
	}
	c.Counter, c.CreatedAt, c.UpdatedAt, c.ReadAt, c.ExecuteAt = uint64(counter), created.t, updated.t, read.t, execute.t
	return c, nil
}

// OpenOwnershipChange records c, pending, and marks its device's registry
// row pending, in one transaction with the audit entries es (the attempt,
// written before the CS02b is built). The update is conditional: a device
// with a change pending or unsettled gives ErrConflict, an unknown device
// ErrNotFound, and nothing is written.
func (s *RouterStore) OpenOwnershipChange(ctx context.Context, c OwnershipChange, es ...AuditEvent) error {
	switch {
	case c.ID == "" || c.CommandID == "" || c.Kind == "" || c.Requester == "":
		return fmt.Errorf("%w: ownership change: id, command id, kind and requester are required", ErrInvalid)
	case !euiPattern.MatchString(c.Device) || !euiPattern.MatchString(c.NewOwner):
		return fmt.Errorf("%w: ownership change %s: device and new owner must be EUIs", ErrInvalid, c.ID)
	case c.CreatedAt.IsZero():
		return fmt.Errorf("%w: ownership change %s: no creation time", ErrInvalid, c.ID)
	case !keyIDPattern.MatchString(c.DSKeyID):
		return fmt.Errorf("%w: ownership change %s: key identifier %q is not upper-case hex", ErrInvalid, c.ID, c.DSKeyID)
	}
	switch c.AnchorRole {
	case "":
		c.AnchorRole = AnchorSupplier
	case AnchorSupplier, AnchorNetworkOperator:
	default:
		return fmt.Errorf("%w: ownership change %s: anchor role %q", ErrInvalid, c.ID, c.AnchorRole)
	}
	var executeAt any
	if !c.ExecuteAt.IsZero() {
		executeAt = c.ExecuteAt
	}
	return s.db.inTx(ctx, func(tx dbtx) error {
		n, err := tx.exec(ctx, `UPDATE router_devices SET change_state = $1 WHERE eui = $2 AND change_state = ''`, ChangePending, c.Device)
		if err != nil {
			return fmt.Errorf("store: opening ownership change of %s: %w", c.Device, err)
		}
		if n == 0 {
			var state string
			err := tx.queryRow(ctx, `SELECT change_state FROM router_devices WHERE eui = $1`, c.Device).Scan(&state)
			if errors.Is(err, errNoRows) {
				return fmt.Errorf("device %s: %w", c.Device, ErrNotFound)
			}
			if err != nil {
				return fmt.Errorf("store: opening ownership change of %s: %w", c.Device, err)
			}
			return fmt.Errorf("device %s has a change %s: %w", c.Device, state, ErrConflict)
		}
		if _, err := tx.exec(ctx, `INSERT INTO router_ownership_changes (`+ownershipChangeColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, '', $8, $9, $10, '', 0, NULL, '', $11, $11, $12, $13, $14)`,
			c.ID, c.Device, c.Kind, c.Requester, c.OldOwner, c.NewOwner, ChangePending, c.CommandID, int64(c.Counter), c.Sequence,
			c.CreatedAt, c.AnchorRole, c.DSKeyID, executeAt); err != nil {
			if errors.Is(classify(err), errUnique) {
				return fmt.Errorf("ownership change of %s: %w", c.Device, ErrConflict)
			}
			return fmt.Errorf("store: recording ownership change of %s: %w", c.Device, err)
		}
		_, err = appendAuditsIn(ctx, tx, es)
		return err
	})
}

// OwnershipChange returns the change id, or an error wrapping ErrNotFound.
func (s *RouterStore) OwnershipChange(ctx context.Context, id string) (OwnershipChange, error) {
	return s.ownershipChangeWhere(ctx, "id", id)
}

// OwnershipChangeByCommand returns the change whose CS02b, or whose latest
// CS02a read, is the router command commandID, or an error wrapping
// ErrNotFound.
func (s *RouterStore) OwnershipChangeByCommand(ctx context.Context, commandID string) (OwnershipChange, error) {
	return s.ownershipChangeWhere(ctx, "command_id = $1 OR read_command_id", commandID)
}

func (s *RouterStore) ownershipChangeWhere(ctx context.Context, cond, v string) (OwnershipChange, error) {
	c, err := scanOwnershipChange(s.db.read().queryRow(ctx, `SELECT `+ownershipChangeColumns+` FROM router_ownership_changes WHERE `+cond+` = $1`, v))
	if errors.Is(err, errNoRows) {
		return OwnershipChange{}, fmt.Errorf("ownership change %s: %w", v, ErrNotFound)
	}
	if err != nil {
		return OwnershipChange{}, fmt.Errorf("store: reading ownership change %s: %w", v, err)
	}
	return c, nil
}

// OpenOwnershipChanges lists the changes pending or unsettled, oldest
// first: what a router starting up must settle.
func (s *RouterStore) OpenOwnershipChanges(ctx context.Context) ([]OwnershipChange, error) {
	rs, err := s.db.read().query(ctx, `SELECT `+ownershipChangeColumns+` FROM router_ownership_changes
		WHERE state IN ($1, $2) ORDER BY created_at, id`, ChangePending, ChangeUnsettled)
	if err != nil {
		return nil, fmt.Errorf("store: listing open ownership changes: %w", err)
	}
	defer rs.Close()
	var out []OwnershipChange
	for rs.Next() {
		c, err := scanOwnershipChange(rs)
		if err != nil {
			return nil, fmt.Errorf("store: listing open ownership changes: %w", err)
		}
		out = append(out, c)
	}
	return out, rs.Err()
}

// UnsettleOwnershipChange moves a pending change to unsettled (its
// outcome is unknown), with its device's registry row, in one transaction
// with the audit entries es. A change not pending gives ErrConflict.
func (s *RouterStore) UnsettleOwnershipChange(ctx context.Context, id, detail string, at time.Time, es ...AuditEvent) error {
	return s.db.inTx(ctx, func(tx dbtx) error {
		var device string
		err := tx.queryRow(ctx, `UPDATE router_ownership_changes SET state = $1, detail = $2, updated_at = $3
			WHERE id = $4 AND state = $5 RETURNING device`, ChangeUnsettled, truncate(detail, 1000), at, id, ChangePending).Scan(&device)
		if errors.Is(err, errNoRows) {
			return s.changeConflict(ctx, tx, id, "pending")
		}
		if err != nil {
			return fmt.Errorf("store: unsettling ownership change %s: %w", id, err)
		}
		if _, err := tx.exec(ctx, `UPDATE router_devices SET change_state = $1 WHERE eui = $2`, ChangeUnsettled, device); err != nil {
			return fmt.Errorf("store: unsettling ownership change %s: %w", id, err)
		}
		_, err = appendAuditsIn(ctx, tx, es)
		return err
	})
}

// RecordOwnershipRead records readCommandID as the latest CS02a read of
// the unsettled change id, before the read is sent: only its answer
// settles the change. A change not unsettled gives ErrConflict.
func (s *RouterStore) RecordOwnershipRead(ctx context.Context, id, readCommandID string, at time.Time) error {
	if readCommandID == "" {
		return fmt.Errorf("%w: ownership change %s: read command id required", ErrInvalid, id)
	}
	return s.db.inTx(ctx, func(tx dbtx) error {
		n, err := tx.exec(ctx, `UPDATE router_ownership_changes SET read_command_id = $1, reads = reads + 1, read_at = $2, updated_at = $2
			WHERE id = $3 AND state = $4`, readCommandID, at, id, ChangeUnsettled)
		if err != nil {
			return fmt.Errorf("store: recording read of ownership change %s: %w", id, err)
		}
		if n == 0 {
			return s.changeConflict(ctx, tx, id, "unsettled")
		}
		return nil
	})
}

// SettleOwnershipChange ends an open change with outcome, in one
// transaction with the audit entries es: the device's party of the
// change's anchor role (its supplier or network operator) becomes owner
// (the new one when applied, the old one otherwise, whoever the meter
// holds when diverged), and its registry row is no longer marked. The
// party's digital-signing anchor key identifier on the device becomes the
// change's target when applied, unknown when diverged, and stays as it was
// otherwise (decision 016). A change already settled gives ErrConflict,
// and nothing changes.
func (s *RouterStore) SettleOwnershipChange(ctx context.Context, id, outcome, owner, detail string, at time.Time, es ...AuditEvent) error {
	switch outcome {
	case OutcomeApplied, OutcomeRefusedCoS, OutcomeNotApplied, OutcomeDiverged:
	default:
		return fmt.Errorf("%w: ownership change %s: outcome %q", ErrInvalid, id, outcome)
	}
	if owner != "" && !euiPattern.MatchString(owner) {
		return fmt.Errorf("%w: ownership change %s: owner EUI %q", ErrInvalid, id, owner)
	}
	return s.db.inTx(ctx, func(tx dbtx) error {
		var device, role, keyID string
		err := tx.queryRow(ctx, `UPDATE router_ownership_changes SET state = $1, outcome = $2, detail = $3, updated_at = $4
			WHERE id = $5 AND state IN ($6, $7) RETURNING device, anchor_role, ds_key_id`, ChangeSettled, outcome, truncate(detail, 1000), at, id,
			ChangePending, ChangeUnsettled).Scan(&device, &role, &keyID)
		if errors.Is(err, errNoRows) {
			return s.changeConflict(ctx, tx, id, "open")
		}
		if err != nil {
			return fmt.Errorf("store: settling ownership change %s: %w", id, err)
		}
		party, keyCol := "supplier", "supplier_ds_key_id"
		if role == AnchorNetworkOperator {
			party, keyCol = "network_operator", "network_operator_ds_key_id"
		}
		set := keyCol + ` = ` + keyCol
		args := []any{owner, at, device}
		switch outcome {
		case OutcomeApplied:
			set, args = keyCol+` = $4`, append(args, keyID)
		case OutcomeDiverged:
			set = keyCol + ` = ''`
		}
		if _, err := tx.exec(ctx, `UPDATE router_devices SET change_state = '', `+party+` = $1, `+set+`, updated_at = $2 WHERE eui = $3`,
			args...); err != nil {
			return fmt.Errorf("store: settling ownership change %s: %w", id, err)
		}
		_, err = appendAuditsIn(ctx, tx, es)
		return err
	})
}

// changeConflict is the error for a conditional update of change id that
// matched nothing: ErrNotFound or ErrConflict.
func (s *RouterStore) changeConflict(ctx context.Context, tx dbtx, id, want string) error {
	var state string
	err := tx.queryRow(ctx, `SELECT state FROM router_ownership_changes WHERE id = $1`, id).Scan(&state)
	if errors.Is(err, errNoRows) {
		return fmt.Errorf("ownership change %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("store: reading ownership change %s: %w", id, err)
	}
	return fmt.Errorf("ownership change %s is %s, not %s: %w", id, state, want, ErrConflict)
}
