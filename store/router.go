package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/metertrust/metertrust/smki"
)

// This file holds the router's persistence: the device registry, consent
// records, the per (originator, target) counters, accepted commands with
// their outbox, and the per-caller delivery queue of responses (GBCS
// sections 5, 7 and 11 as summarised in the project's GBCS notes).

// ErrStaleCounter means a command's originator counter is not above the last
// one recorded for its (originator, target) pair: a replay, or a race lost
// to a concurrent command with a higher or equal counter. Nothing is stored.
var ErrStaleCounter = errors.New("store: counter not above the last recorded")

// RouterDevice is one device in the router's registry.
type RouterDevice struct {
	EUI string // 16 upper-case hex digits
	// KAPublic is the device's key-agreement public key, an uncompressed
	// P-256 point (65 bytes).
	KAPublic []byte
	// DSPublic is the device's digital-signing public key, an uncompressed
	// P-256 point; nil when unknown.
	DSPublic []byte
	// Supplier and NetworkOperator are the EUIs of the organisations whose
	// trust anchors the device holds; "" when none.
	Supplier, NetworkOperator string
	UpdatedAt                 time.Time
	// ChangeState is the state of the device's open ownership change
	// (ChangePending or ChangeUnsettled), "" when none is open. Set only by
	// the ownership-change methods; PutRouterDevices leaves it as it is.
	ChangeState string
	// SupplierDSKeyID and NetworkOperatorDSKeyID are the subject key
	// identifiers (hex) of the digital-signing anchors the device holds for
	// its supplier and network operator, "" when unknown (decision 016).
	// PutRouterDevices keeps a known one when given "" for the same party.
	SupplierDSKeyID, NetworkOperatorDSKeyID string
}

func (d *RouterDevice) validate() error {
	switch {
	case !euiPattern.MatchString(d.EUI):
		return fmt.Errorf("%w: device EUI %q is not 16 upper-case hex digits", ErrInvalid, d.EUI)
	case len(d.KAPublic) != 65 || d.KAPublic[0] != 4:
		return fmt.Errorf("%w: device %s: key-agreement key must be a 65-byte uncompressed point", ErrInvalid, d.EUI)
	case d.DSPublic != nil && (len(d.DSPublic) != 65 || d.DSPublic[0] != 4):
		return fmt.Errorf("%w: device %s: digital-signing key must be a 65-byte uncompressed point", ErrInvalid, d.EUI)
	case d.Supplier != "" && !euiPattern.MatchString(d.Supplier):
		return fmt.Errorf("%w: device %s: supplier EUI %q is not 16 upper-case hex digits", ErrInvalid, d.EUI, d.Supplier)
	case d.NetworkOperator != "" && !euiPattern.MatchString(d.NetworkOperator):
		return fmt.Errorf("%w: device %s: network operator EUI %q is not 16 upper-case hex digits", ErrInvalid, d.EUI, d.NetworkOperator)
	case d.UpdatedAt.IsZero():
		return fmt.Errorf("%w: device %s: no update time", ErrInvalid, d.EUI)
	case !keyIDPattern.MatchString(d.SupplierDSKeyID) || !keyIDPattern.MatchString(d.NetworkOperatorDSKeyID):
		return fmt.Errorf("%w: device %s: anchor key identifiers must be upper-case hex", ErrInvalid, d.EUI)
	}
	return nil
}

// PutRouterDevices adds or replaces devices in the registry, in one
// transaction (a change of supplier replaces the row).
func (s *RouterStore) PutRouterDevices(ctx context.Context, devices ...RouterDevice) error {
	db := s.db
	for i := range devices {
		if err := devices[i].validate(); err != nil {
			return err
		}
	}
	return db.inTx(ctx, func(tx dbtx) error {
		for _, d := range devices {
			// A known anchor key id stays when the row is put again for the
			// same party without one.
			if _, err := tx.exec(ctx, `INSERT INTO router_devices (eui, ka_public, ds_public, supplier, network_operator, updated_at,
					supplier_ds_key_id, network_operator_ds_key_id)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
				ON CONFLICT (eui) DO UPDATE SET ka_public = excluded.ka_public, ds_public = excluded.ds_public,
					supplier_ds_key_id = CASE WHEN excluded.supplier_ds_key_id <> '' OR excluded.supplier <> router_devices.supplier
						THEN excluded.supplier_ds_key_id ELSE router_devices.supplier_ds_key_id END,
					network_operator_ds_key_id = CASE WHEN excluded.network_operator_ds_key_id <> ''
						OR excluded.network_operator <> router_devices.network_operator
						THEN excluded.network_operator_ds_key_id ELSE router_devices.network_operator_ds_key_id END,
					supplier = excluded.supplier, network_operator = excluded.network_operator, updated_at = excluded.updated_at,
					ka_pending = NULL`,
				d.EUI, d.KAPublic, d.DSPublic, d.Supplier, d.NetworkOperator, d.UpdatedAt, d.SupplierDSKeyID, d.NetworkOperatorDSKeyID); err != nil {
				return fmt.Errorf("store: putting device %s: %w", d.EUI, err)
			}
		}
		return nil
	})
}

// RouterDevice returns the registry entry of the device, or an error
// wrapping ErrNotFound.
func (s *RouterStore) RouterDevice(ctx context.Context, device smki.EUI) (RouterDevice, error) {
	db, eui := s.db, device.String()
	var d RouterDevice
	var at timeCol
	err := db.read().queryRow(ctx, `SELECT eui, ka_public, ds_public, supplier, network_operator, updated_at, change_state,
		supplier_ds_key_id, network_operator_ds_key_id
		FROM router_devices WHERE eui = $1`, eui).Scan(&d.EUI, &d.KAPublic, &d.DSPublic, &d.Supplier, &d.NetworkOperator, &at, &d.ChangeState,
		&d.SupplierDSKeyID, &d.NetworkOperatorDSKeyID)
	if errors.Is(err, errNoRows) {
		return RouterDevice{}, fmt.Errorf("device %s: %w", eui, ErrNotFound)
	}
	if err != nil {
		return RouterDevice{}, fmt.Errorf("store: reading device %s: %w", eui, err)
	}
	d.UpdatedAt = at.t
	return d, nil
}

// Consent is a consent record: a consumer's agreement that an other user
// (OU) may send the listed service requests to the consumer's device
// (spec section 11).
type Consent struct {
	ID     string
	Device string // device EUI
	User   string // the other user's EUI
	// Scope lists the service reference variants consented to ("4.8.1").
	Scope []string
	// DataFrom is the oldest data the user may read; zero for no limit.
	DataFrom time.Time
	// NotBefore and ExpiresAt bound when the consent is live.
	NotBefore, ExpiresAt time.Time
	// Evidence describes how consent was given (for example "CIN read back
	// on 2026-11-23"); never a PIN or secret.
	Evidence  string
	CreatedBy string
	CreatedAt time.Time
	RevokedAt time.Time // zero while live
	// RevokedBy names who revoked the consent (the other user holding it,
	// or the operator acting on the consumer's request), RevokeReason why;
	// empty while live.
	RevokedBy, RevokeReason string
}

// Live reports whether c is live at: started, not expired, not revoked.
func (c *Consent) Live(at time.Time) bool {
	return c.RevokedAt.IsZero() && !at.Before(c.NotBefore) && at.Before(c.ExpiresAt)
}

func (c *Consent) validate() error {
	switch {
	case c.ID == "" || len(c.ID) > 64:
		return fmt.Errorf("%w: consent id must be 1-64 bytes", ErrInvalid)
	case !euiPattern.MatchString(c.Device):
		return fmt.Errorf("%w: consent %s: device EUI %q is not 16 upper-case hex digits", ErrInvalid, c.ID, c.Device)
	case !euiPattern.MatchString(c.User):
		return fmt.Errorf("%w: consent %s: user EUI %q is not 16 upper-case hex digits", ErrInvalid, c.ID, c.User)
	case len(c.Scope) == 0:
		return fmt.Errorf("%w: consent %s: empty scope", ErrInvalid, c.ID)
	case c.NotBefore.IsZero() || c.ExpiresAt.IsZero() || !c.ExpiresAt.After(c.NotBefore):
		return fmt.Errorf("%w: consent %s: expiry must follow the start", ErrInvalid, c.ID)
	case strings.TrimSpace(c.Evidence) == "":
		return fmt.Errorf("%w: consent %s: evidence is required", ErrInvalid, c.ID)
	case c.CreatedBy == "" || c.CreatedAt.IsZero():
		return fmt.Errorf("%w: consent %s: creator and creation time are required", ErrInvalid, c.ID)
	}
	for _, s := range c.Scope {
		if s == "" || strings.ContainsAny(s, " ,") {
			return fmt.Errorf("%w: consent %s: scope entry %q is not a service reference", ErrInvalid, c.ID, s)
		}
	}
	return nil
}

// PutConsent stores a new consent record; an existing ID gives ErrExists.
func (s *RouterStore) PutConsent(ctx context.Context, c Consent) error {
	db := s.db
	if err := c.validate(); err != nil {
		return err
	}
	_, err := db.write().exec(ctx, `INSERT INTO router_consents
		(id, device, user_eui, scope, data_from, not_before, expires_at, evidence, created_by, created_at, revoked_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL)`,
		c.ID, c.Device, c.User, strings.Join(c.Scope, " "), c.DataFrom, c.NotBefore, c.ExpiresAt, c.Evidence, c.CreatedBy, c.CreatedAt)
	if err = classify(err); errors.Is(err, errUnique) {
		return fmt.Errorf("consent %s: %w", c.ID, ErrExists)
	} else if err != nil {
		return fmt.Errorf("store: putting consent %s: %w", c.ID, err)
	}
	return nil
}

// MaxRevokeReason bounds the reason a consent is revoked for, in bytes.
const MaxRevokeReason = 1024

// RevokeConsent ends a consent record at the given time, recording who
// revoked it (by) and why (reason, 1 to MaxRevokeReason bytes). An unknown
// ID gives ErrNotFound, an already revoked one ErrConflict.
func (s *RouterStore) RevokeConsent(ctx context.Context, id, by, reason string, at time.Time) error {
	db := s.db
	switch {
	case strings.TrimSpace(by) == "":
		return fmt.Errorf("%w: revoking consent %s: who revokes it is required", ErrInvalid, id)
	case strings.TrimSpace(reason) == "" || len(reason) > MaxRevokeReason:
		return fmt.Errorf("%w: revoking consent %s: a reason of 1-%d bytes is required", ErrInvalid, id, MaxRevokeReason)
	}
	return db.inTx(ctx, func(tx dbtx) error {
		var revoked timeCol
		err := tx.queryRow(ctx, `SELECT revoked_at FROM router_consents WHERE id = $1`, id).Scan(&revoked)
		if errors.Is(err, errNoRows) {
			return fmt.Errorf("consent %s: %w", id, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("store: revoking consent %s: %w", id, err)
		}
		if !revoked.t.IsZero() {
			return fmt.Errorf("consent %s already revoked: %w", id, ErrConflict)
		}
		if _, err := tx.exec(ctx, `UPDATE router_consents SET revoked_at = $1, revoked_by = $2, revoke_reason = $3 WHERE id = $4`,
			at, by, reason, id); err != nil {
			return fmt.Errorf("store: revoking consent %s: %w", id, err)
		}
		return nil
	})
}

// consentColumns are the columns scanConsent reads, in order.
const consentColumns = `id, device, user_eui, scope, data_from, not_before, expires_at, evidence, created_by, created_at,
	revoked_at, revoked_by, revoke_reason`

// scanConsent reads a row of consentColumns.
func scanConsent(r interface{ Scan(dest ...any) error }) (Consent, error) {
	var c Consent
	var scope string
	var from, nb, exp, created, revoked timeCol
	if err := r.Scan(&c.ID, &c.Device, &c.User, &scope, &from, &nb, &exp, &c.Evidence, &c.CreatedBy, &created,
		&revoked, &c.RevokedBy, &c.RevokeReason); err != nil {
		return Consent{}, err
	}
	c.Scope = strings.Fields(scope)
	c.DataFrom, c.NotBefore, c.ExpiresAt, c.CreatedAt, c.RevokedAt = from.t, nb.t, exp.t, created.t, revoked.t
	return c, nil
}

// Consent returns the consent record id, or an error wrapping ErrNotFound.
func (s *RouterStore) Consent(ctx context.Context, id string) (Consent, error) {
	c, err := scanConsent(s.db.read().queryRow(ctx, `SELECT `+consentColumns+` FROM router_consents WHERE id = $1`, id))
	if errors.Is(err, errNoRows) {
		return Consent{}, fmt.Errorf("consent %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Consent{}, fmt.Errorf("store: reading consent %s: %w", id, err)
	}
	return c, nil
}

// ConsentFilter selects consent records; zero fields select all.
type ConsentFilter struct {
	// User and Device select the records of one other user, one device.
	User, Device smki.EUI
	// LiveAt, when set, selects the records live then (started, not
	// expired, not revoked).
	LiveAt time.Time
	// Limit bounds the records returned, 1 to MaxLimit; zero means
	// DefaultLimit.
	Limit int
}

// Consents returns the consent records f selects, oldest first.
func (s *RouterStore) Consents(ctx context.Context, f ConsentFilter) ([]Consent, error) {
	limit := f.Limit
	switch {
	case limit == 0:
		limit = DefaultLimit
	case limit < 0 || limit > MaxLimit:
		return nil, fmt.Errorf("%w: consent list limit %d must be 1 to %d", ErrInvalid, limit, MaxLimit)
	}
	var where []string
	var args []any
	arg := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if !f.User.IsZero() {
		arg("user_eui = $%d", f.User.String())
	}
	if !f.Device.IsZero() {
		arg("device = $%d", f.Device.String())
	}
	if !f.LiveAt.IsZero() {
		where = append(where, "revoked_at IS NULL")
		arg("not_before <= $%d", f.LiveAt)
		arg("expires_at > $%d", f.LiveAt)
	}
	q := `SELECT ` + consentColumns + ` FROM router_consents`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	args = append(args, limit)
	q += fmt.Sprintf(` ORDER BY created_at, id LIMIT $%d`, len(args))
	rs, err := s.db.read().query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: listing consents: %w", err)
	}
	defer rs.Close()
	out := []Consent{}
	for rs.Next() {
		c, err := scanConsent(rs)
		if err != nil {
			return nil, fmt.Errorf("store: listing consents: %w", err)
		}
		out = append(out, c)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("store: listing consents: %w", err)
	}
	return out, nil
}

// LiveConsent returns a consent record for device and user that covers the
// service reference ref and is live at the given time.
func (s *RouterStore) LiveConsent(ctx context.Context, deviceEUI, userEUI smki.EUI, ref string, at time.Time) (Consent, bool, error) {
	db, device, user := s.db, deviceEUI.String(), userEUI.String()
	rs, err := db.read().query(ctx, `SELECT id, device, user_eui, scope, data_from, not_before, expires_at, evidence, created_by, created_at
		FROM router_consents WHERE device = $1 AND user_eui = $2 AND revoked_at IS NULL AND not_before <= $3 AND expires_at > $3
		ORDER BY created_at`, device, user, at)
	if err != nil {
		return Consent{}, false, fmt.Errorf("store: reading consent: %w", err)
	}
	defer rs.Close()
	for rs.Next() {
		var c Consent
		var scope string
		var from, nb, exp, created timeCol
		if err := rs.Scan(&c.ID, &c.Device, &c.User, &scope, &from, &nb, &exp, &c.Evidence, &c.CreatedBy, &created); err != nil {
			return Consent{}, false, fmt.Errorf("store: reading consent: %w", err)
		}
		c.Scope = strings.Fields(scope)
		c.DataFrom, c.NotBefore, c.ExpiresAt, c.CreatedAt = from.t, nb.t, exp.t, created.t
		if slices.Contains(c.Scope, ref) {
			return c, true, nil
		}
	}
	if err := rs.Err(); err != nil {
		return Consent{}, false, fmt.Errorf("store: reading consent: %w", err)
	}
	return Consent{}, false, nil
}

// LastCounter returns the last originator counter recorded for (originator,
// target), and false when none is.
func (s *RouterStore) LastCounter(ctx context.Context, originatorEUI, targetEUI smki.EUI) (uint64, bool, error) {
	db, originator, target := s.db, originatorEUI.String(), targetEUI.String()
	var last int64
	err := db.read().queryRow(ctx, `SELECT last FROM router_counters WHERE originator = $1 AND target = $2`, originator, target).Scan(&last)
	if errors.Is(err, errNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("store: reading counter %s/%s: %w", originator, target, err)
	}
	return uint64(last), true, nil
}

// Command states.
const (
	CommandAccepted  = "accepted"  // durable, in the outbox
	CommandForwarded = "forwarded" // handed to the transport, no response yet
	CommandResponded = "responded" // the device's response is stored
	CommandFailed    = "failed"    // forwarding gave up, or the response was refused
)

// RouterCommand is one accepted command.
type RouterCommand struct {
	ID                 string
	Caller, CallerRole string // the DCC user who submitted it
	Originator, Target string // business originator and target device EUIs
	Counter            uint64
	Code               uint16
	ServiceRef         string
	Critical           bool
	// Barrier orders the target's outbox (decision 014 step 2): the
	// command goes to the device only after every command for the target
	// admitted before it has left the outbox (forwarded, or failed for
	// good), and no command admitted after it goes before it has.
	Barrier    bool
	Message    []byte // as forwarded, MAC'd
	State      string
	AcceptedAt time.Time
	UpdatedAt  time.Time
	Response   []byte // the device's response, once received
	Error      string // why it failed, for CommandFailed
}

// RecordCommand stores an accepted command in the outbox (state accepted), advances the
// counter of (Originator, Target) to Counter and, when audit is not nil,
// appends that audit entry, all in one transaction (Admit of one command,
// unscreened). When the stored counter is not below Counter (a replay, or a
// concurrent command won), nothing is stored and the error wraps
// ErrStaleCounter. It is exact under concurrency, across processes on
// PostgreSQL.
func (s *RouterStore) RecordCommand(ctx context.Context, c RouterCommand, audit *AuditEvent) error {
	msg := c.Message
	c.Message = nil
	res, _, err := s.Admit(ctx, AdmitGroup{Items: []Admission{{Command: c, Audit: audit}},
		Seal: func(int) ([]byte, error) { return msg, nil }})
	if err != nil {
		return err
	}
	return res[0].Err
}

func validateRouterCommand(c *RouterCommand) error {
	switch {
	case c.ID == "" || len(c.ID) > 64:
		return fmt.Errorf("%w: command id must be 1-64 bytes", ErrInvalid)
	case !euiPattern.MatchString(c.Caller) || !euiPattern.MatchString(c.Originator) || !euiPattern.MatchString(c.Target):
		return fmt.Errorf("%w: command %s: caller, originator and target must be 16 upper-case hex digits", ErrInvalid, c.ID)
	case len(c.Message) == 0:
		return fmt.Errorf("%w: command %s: no message", ErrInvalid, c.ID)
	case c.AcceptedAt.IsZero():
		return fmt.Errorf("%w: command %s: no acceptance time", ErrInvalid, c.ID)
	}
	return nil
}

const routerCommandColumns = `id, caller, caller_role, originator, target, counter, code, service_ref, critical, message, state,
	accepted_at, updated_at, response, error, barrier`

func scanRouterCommand(r interface{ Scan(...any) error }, extra ...any) (RouterCommand, error) {
	var c RouterCommand
	var counter, code int64
	var acc, upd timeCol
	err := r.Scan(append([]any{&c.ID, &c.Caller, &c.CallerRole, &c.Originator, &c.Target, &counter, &code, &c.ServiceRef, &c.Critical,
		&c.Message, &c.State, &acc, &upd, &c.Response, &c.Error, &c.Barrier}, extra...)...)
	c.Counter, c.Code, c.AcceptedAt, c.UpdatedAt = uint64(counter), uint16(code), acc.t, upd.t
	return c, err
}

// RouterCommand returns the command with the given ID, or an error wrapping
// ErrNotFound.
func (s *RouterStore) RouterCommand(ctx context.Context, id string) (RouterCommand, error) {
	db := s.db
	c, err := scanRouterCommand(db.read().queryRow(ctx, `SELECT `+routerCommandColumns+` FROM router_commands WHERE id = $1`, id))
	if errors.Is(err, errNoRows) {
		return RouterCommand{}, fmt.Errorf("command %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return RouterCommand{}, fmt.Errorf("store: reading command %s: %w", id, err)
	}
	return c, nil
}

// OutboxItem is a command due for forwarding, leased to one worker.
type OutboxItem struct {
	Command  RouterCommand
	Attempts int // attempts made before this one
}

// ClaimOutbox leases up to limit commands due at now to the caller until
// now+lease: a worker that dies loses its lease and another picks the
// command up (at-least-once). Only the oldest undelivered command of each
// (originator, target) pair is ever claimed, so a device receives a pair's
// commands in counter order, and a later one never overtakes one in flight
// or waiting for a retry. A barrier (RouterCommand.Barrier) orders its
// target's commands across pairs: it is claimed only when no command for
// its target admitted before it is still in the outbox, and no command for
// its target admitted after it is claimed while it is in the outbox
// (decision 014 step 2). On PostgreSQL concurrent claimers skip each
// other's rows.
func (s *RouterStore) ClaimOutbox(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]OutboxItem, error) {
	return s.claimOutbox(ctx, now, lease, limit, barrierClause(s.db.dialect))
}

// claimOutbox is ClaimOutbox with the barrier condition given (its
// benchmark compares it with none).
func (s *RouterStore) claimOutbox(ctx context.Context, now time.Time, lease time.Duration, limit int, barriers string) ([]OutboxItem, error) {
	db := s.db
	if limit <= 0 || lease <= 0 {
		return nil, fmt.Errorf("%w: outbox claim needs a positive limit and lease", ErrInvalid)
	}
	skip := ""
	if db.dialect == DialectPostgres {
		skip = " FOR UPDATE OF c SKIP LOCKED"
	}
	var out []OutboxItem
	err := db.inTx(ctx, func(tx dbtx) error {
		// Only the head of each (originator, target) queue is due: a device
		// discards a counter not above the last it accepted from that
		// originator, so a pair's commands go one at a time, in counter
		// order, whatever the retries and however many workers. (Counters
		// compare as stored, signed: exact below 2^63, which clock-based
		// counters are.)
		// The outbox is the commands in state accepted ('accepted' is
		// spelled out so that SQLite uses the partial indexes).
		rs, err := tx.query(ctx, `SELECT `+routerCommandColumns+`, c.attempts FROM router_commands c
			WHERE c.state = 'accepted' AND c.next_attempt <= $1 AND (c.lease_until IS NULL OR c.lease_until <= $1)
			AND NOT EXISTS (SELECT 1 FROM router_commands c2 WHERE c2.state = 'accepted'
				AND c2.target = c.target AND c2.originator = c.originator AND c2.counter < c.counter)
			`+barriers+`
			ORDER BY c.next_attempt LIMIT $2`+skip, now, limit)
		if err != nil {
			return fmt.Errorf("store: claiming outbox: %w", err)
		}
		var ids []any
		for rs.Next() {
			var attempts int64
			cmd, err := scanRouterCommand(rs, &attempts)
			if err != nil {
				rs.Close()
				return fmt.Errorf("store: claiming outbox: %w", err)
			}
			out = append(out, OutboxItem{Command: cmd, Attempts: int(attempts)})
			ids = append(ids, cmd.ID)
		}
		rs.Close()
		if err := rs.Err(); err != nil {
			return fmt.Errorf("store: claiming outbox: %w", err)
		}
		if len(ids) == 0 {
			return nil
		}
		// One statement for the leases, whatever the number claimed.
		args := append([]any{now.Add(lease)}, ids...)
		if _, err := tx.exec(ctx, `UPDATE router_commands SET lease_until = $1 WHERE id IN (`+placeholders(2, len(ids))+`)`, args...); err != nil {
			return fmt.Errorf("store: leasing %d outbox commands: %w", len(ids), err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// barrierClause is ClaimOutbox's per-target barrier condition on the
// candidate c (decision 014 step 2): no barrier of c's target admitted
// before c is still in the outbox (one probe of the barriers' partial
// index, empty but for changes of supplier in flight), and, when c is a
// barrier, no command of its target admitted before it is. Admission order
// is SQLite's rowid (its one writer assigns it in commit order) and
// PostgreSQL's seq (drawn inside the admitting transaction).
func barrierClause(dialect string) string {
	seq, yes := "rowid", "1"
	if dialect == DialectPostgres {
		seq, yes = "seq", "TRUE"
	}
	return `AND (NOT EXISTS (SELECT 1 FROM router_commands x WHERE x.state = 'accepted' AND x.barrier = ` + yes + `)
			OR (NOT EXISTS (SELECT 1 FROM router_commands b WHERE b.state = 'accepted' AND b.barrier = ` + yes + `
				AND b.target = c.target AND b.` + seq + ` < c.` + seq + `)
			AND (c.barrier <> ` + yes + ` OR NOT EXISTS (SELECT 1 FROM router_commands e WHERE e.state = 'accepted'
				AND e.target = c.target AND e.` + seq + ` < c.` + seq + `))))`
}

// placeholders returns "$first, $first+1, ..." for n parameters.
func placeholders(first, n int) string {
	var sb strings.Builder
	for i := range n {
		if i > 0 {
			sb.WriteString(", ")
		}
		fmt.Fprintf(&sb, "$%d", first+i)
	}
	return sb.String()
}

// MarkForwarded records that the transport took the command and a response
// is awaited: the command leaves the outbox, its state becoming forwarded.
// It returns ErrNotFound when the row is gone (another worker finished it).
func (s *RouterStore) MarkForwarded(ctx context.Context, id string, at time.Time) error {
	db := s.db
	return db.inTx(ctx, func(tx dbtx) error {
		n, err := tx.exec(ctx, `UPDATE router_commands SET state = $1, updated_at = $2, lease_until = NULL
			WHERE id = $3 AND state = 'accepted'`, CommandForwarded, at, id)
		if err != nil {
			return fmt.Errorf("store: marking %s forwarded: %w", id, err)
		}
		if n == 0 {
			return fmt.Errorf("command %s in the outbox: %w", id, ErrNotFound)
		}
		return nil
	})
}

// ForwardedCommand is one command for MarkForwardedAll: the transport took
// it at At, and Audit, when not nil, is its audit entry.
type ForwardedCommand struct {
	ID    string
	At    time.Time
	Audit *AuditEvent
	// Scrub, when not nil, replaces the command's stored message in the
	// same transaction (see Completion.Scrub).
	Scrub []byte
}

// MarkForwardedAll records, in one transaction, that the transport took
// each command: its audit entry is appended and, as MarkForwarded does, its
// command leaves the outbox, its state becoming forwarded. One commit serves the
// whole group (one fsync on SQLite). errs[i] is fs[i]'s own outcome: it
// wraps ErrNotFound when the command is no longer in the outbox (another worker
// finished the command), and the audit entry is appended all the same,
// since the transport did take the command. err, when not nil, means
// nothing was recorded.
func (s *RouterStore) MarkForwardedAll(ctx context.Context, fs []ForwardedCommand) (errs []error, err error) {
	db := s.db
	err = db.inTx(ctx, func(tx dbtx) error {
		var err error
		if errs, err = markForwardedIn(ctx, tx, db.dialect, fs); err != nil {
			return err
		}
		if err := scrubForwardedIn(ctx, tx, fs); err != nil {
			return err
		}
		var es []AuditEvent
		for _, f := range fs {
			if f.Audit != nil {
				es = append(es, *f.Audit)
			}
		}
		// Audit entries last, so the chain head is locked for as short a
		// time as possible.
		_, err = appendAuditsIn(ctx, tx, es)
		return err
	})
	if err != nil {
		return nil, err
	}
	return errs, nil
}

// scrubForwardedIn replaces the stored message of each command of fs that
// carries a Scrub, inside tx.
func scrubForwardedIn(ctx context.Context, tx dbtx, fs []ForwardedCommand) error {
	for _, f := range fs {
		if f.Scrub == nil {
			continue
		}
		if err := scrubIn(ctx, tx, f.ID, f.Scrub); err != nil {
			return err
		}
	}
	return nil
}

// scrubIn replaces command id's stored message by keep (its header alone)
// and marks it scrubbed (decision 015).
func scrubIn(ctx context.Context, tx dbtx, id string, keep []byte) error {
	if _, err := tx.exec(ctx, `UPDATE router_commands SET message = $1, message_scrubbed = 1 WHERE id = $2`, keep, id); err != nil {
		return fmt.Errorf("store: scrubbing the message of command %s: %w", id, err)
	}
	return nil
}

// markForwardedIn marks the commands of fs forwarded (out of the outbox),
// inside tx; it does not append their audit entries. errs[i] wraps
// ErrNotFound when fs[i] had already left the outbox.
func markForwardedIn(ctx context.Context, tx dbtx, dialect string, fs []ForwardedCommand) ([]error, error) {
	if dialect == DialectPostgres {
		q, args := markForwardedPG(fs)
		present, err := queryStrings(ctx, tx, q, args...)
		if err != nil {
			return nil, fmt.Errorf("store: marking %d commands forwarded: %w", len(fs), err)
		}
		return markErrors(fs, present), nil
	}
	// One cached statement per command (SQLite has no round trip to
	// save); a command no longer in the outbox changes no row.
	present := make(map[string]bool, len(fs))
	for _, f := range fs {
		n, err := tx.exec(ctx, `UPDATE router_commands SET state = $1, updated_at = $2, lease_until = NULL
			WHERE id = $3 AND state = 'accepted'`, CommandForwarded, f.At, f.ID)
		if err != nil {
			return nil, fmt.Errorf("store: marking %s forwarded: %w", f.ID, err)
		}
		present[f.ID] = n > 0
	}
	return markErrors(fs, present), nil
}

// markErrors gives each mark whose command was not in the outbox an error
// wrapping ErrNotFound.
func markErrors(fs []ForwardedCommand, present map[string]bool) []error {
	errs := make([]error, len(fs))
	for i, f := range fs {
		if !present[f.ID] {
			errs[i] = fmt.Errorf("command %s in the outbox: %w", f.ID, ErrNotFound)
		}
	}
	return errs
}

// markForwardedPG is markForwardedIn on PostgreSQL as one statement: it
// marks those of the commands still in the outbox forwarded, each with its
// own time, and returns their IDs.
func markForwardedPG(fs []ForwardedCommand) (string, []any) {
	args := []any{CommandForwarded}
	var vals []string
	for _, f := range fs {
		args = append(args, f.ID, f.At)
		vals = append(vals, fmt.Sprintf("($%d, CAST($%d AS timestamptz))", len(args)-1, len(args)))
	}
	return `UPDATE router_commands c SET state = $1, updated_at = v.at, lease_until = NULL
		FROM (VALUES ` + strings.Join(vals, ", ") + `) AS v (id, at)
		WHERE c.id = v.id AND c.state = 'accepted' RETURNING c.id`, args
}

// RetryOutbox releases the lease after a failed attempt and schedules the
// next one, recording why the attempt failed.
func (s *RouterStore) RetryOutbox(ctx context.Context, id string, next time.Time, reason string) error {
	db := s.db
	n, err := db.write().exec(ctx, `UPDATE router_commands SET attempts = attempts + 1, next_attempt = $1, lease_until = NULL,
		last_error = $2 WHERE id = $3 AND state = 'accepted'`, next, truncate(reason, 1000), id)
	if err != nil {
		return fmt.Errorf("store: rescheduling %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("command %s in the outbox: %w", id, ErrNotFound)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// OutboxDepth counts commands not yet handed to a transport.
func (s *RouterStore) OutboxDepth(ctx context.Context) (int64, error) {
	db := s.db
	var n int64
	if err := db.read().queryRow(ctx, `SELECT COUNT(*) FROM router_commands WHERE state = 'accepted'`).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: counting outbox: %w", err)
	}
	return n, nil
}

// Delivery kinds.
const (
	DeliveryResponse = "response" // a device's response to the caller's command
	DeliveryFailure  = "failure"  // the command could not be delivered or its response was refused
	DeliveryAlert    = "alert"    // a device or anomaly alert for the caller
)

// Delivery is one item queued for a caller: a response, a failure or an
// alert. Seq numbers a caller's deliveries 1, 2, 3... in commit order.
type Delivery struct {
	Caller    string
	Seq       int64
	CommandID string
	Kind      string
	Body      []byte
	Detail    string
	At        time.Time
}

// CompleteCommand ends a command: its state becomes state (responded or
// failed) with the response or error text (leaving the outbox if still in it),
// d is queued for the caller and the audit entries appended, all in one
// transaction. The delivery with
// its assigned Seq is returned. A command already responded or failed gives
// ErrConflict and changes nothing, so a duplicate response is delivered once.
func (s *RouterStore) CompleteCommand(ctx context.Context, id, state string, response []byte, errText string, d Delivery, audits ...AuditEvent) (Delivery, error) {
	c := Completion{ID: id, State: state, Response: response, Error: errText, Delivery: d, Audits: audits}
	err := s.Complete(ctx, &c)
	return c.Delivery, err
}

// Complete ends c.ID as CompleteCommand does, scrubbing its stored message
// when c.Scrub is set, in one transaction with c's delivery and audit
// entries; c.Delivery gets its Seq. The error is also set in c.Err.
func (s *RouterStore) Complete(ctx context.Context, c *Completion) error {
	c.Err = s.db.inTx(ctx, func(tx dbtx) error {
		if err := completeIn(ctx, tx, c); err != nil {
			return err
		}
		_, err := appendAuditsIn(ctx, tx, c.Audits)
		return err
	})
	return c.Err
}

// Completion is one command's end for CompleteCommand or AdmitGroup: its
// final state (responded or failed) with the response or error text, the
// delivery queued for its caller (returned with its Seq) and the audit
// entries appended with it.
type Completion struct {
	ID       string
	State    string
	Response []byte
	Error    string
	Delivery Delivery
	Audits   []AuditEvent
	// Scrub, when not nil, replaces the command's stored message in the
	// same transaction and marks it scrubbed: the router's own SR 9.1
	// command, whose payload is a consumer's CIN, keeps its header alone
	// once its outcome is known (decision 015).
	Scrub []byte
	// Err is the completion's own outcome in an AdmitGroup.
	Err error
}

// completeIn ends c.ID in tx and queues c.Delivery, setting its Seq; it
// appends no audit entry. A command already completed gives ErrConflict,
// an unknown one ErrNotFound, and changes nothing.
func completeIn(ctx context.Context, tx dbtx, c *Completion) error {
	if c.State != CommandResponded && c.State != CommandFailed {
		return fmt.Errorf("%w: command %s: final state %q", ErrInvalid, c.ID, c.State)
	}
	n, err := tx.exec(ctx, `UPDATE router_commands SET state = $1, response = $2, error = $3, updated_at = $4, lease_until = NULL
		WHERE id = $5 AND state IN ($6, $7)`, c.State, c.Response, truncate(c.Error, 1000), c.Delivery.At, c.ID, CommandAccepted, CommandForwarded)
	if err != nil {
		return fmt.Errorf("store: completing command %s: %w", c.ID, err)
	}
	if n == 0 {
		if _, err := getRouterCommandState(ctx, tx, c.ID); err != nil {
			return err
		}
		return fmt.Errorf("command %s already completed: %w", c.ID, ErrConflict)
	}
	if c.Scrub != nil {
		if err := scrubIn(ctx, tx, c.ID, c.Scrub); err != nil {
			return err
		}
	}
	c.Delivery.CommandID = c.ID
	c.Delivery, err = addDelivery(ctx, tx, c.Delivery)
	return err
}

func getRouterCommandState(ctx context.Context, tx dbtx, id string) (string, error) {
	var s string
	err := tx.queryRow(ctx, `SELECT state FROM router_commands WHERE id = $1`, id).Scan(&s)
	if errors.Is(err, errNoRows) {
		return "", fmt.Errorf("command %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("store: reading command %s: %w", id, err)
	}
	return s, nil
}

// AddDelivery queues d (an alert, typically) for its caller and returns it
// with its Seq.
func (s *RouterStore) AddDelivery(ctx context.Context, d Delivery) (Delivery, error) {
	db := s.db
	err := db.inTx(ctx, func(tx dbtx) error {
		var err error
		d, err = addDelivery(ctx, tx, d)
		return err
	})
	return d, err
}

func addDelivery(ctx context.Context, tx dbtx, d Delivery) (Delivery, error) {
	switch {
	case !euiPattern.MatchString(d.Caller):
		return Delivery{}, fmt.Errorf("%w: delivery caller %q is not 16 upper-case hex digits", ErrInvalid, d.Caller)
	case d.Kind != DeliveryResponse && d.Kind != DeliveryFailure && d.Kind != DeliveryAlert:
		return Delivery{}, fmt.Errorf("%w: delivery kind %q", ErrInvalid, d.Kind)
	case d.At.IsZero():
		return Delivery{}, fmt.Errorf("%w: delivery without a time", ErrInvalid)
	}
	// The head row, locked until commit, numbers the caller's deliveries in
	// commit order.
	if err := tx.queryRow(ctx, `INSERT INTO router_delivery_heads (caller, seq) VALUES ($1, 1)
		ON CONFLICT (caller) DO UPDATE SET seq = router_delivery_heads.seq + 1 RETURNING seq`, d.Caller).Scan(&d.Seq); err != nil {
		return Delivery{}, fmt.Errorf("store: numbering delivery for %s: %w", d.Caller, err)
	}
	d.At = dbTime(d.At)
	if _, err := tx.exec(ctx, `INSERT INTO router_deliveries (caller, seq, command_id, kind, body, detail, at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, d.Caller, d.Seq, d.CommandID, d.Kind, d.Body, truncate(d.Detail, 1000), d.At); err != nil {
		return Delivery{}, fmt.Errorf("store: queueing delivery for %s: %w", d.Caller, err)
	}
	return d, nil
}

// Deliveries returns the caller's deliveries with Seq above after, oldest
// first, at most limit (0 for DefaultLimit).
func (s *RouterStore) Deliveries(ctx context.Context, callerEUI smki.EUI, after int64, limit int) ([]Delivery, error) {
	db, caller := s.db, callerEUI.String()
	limit, err := pageLimit(limit)
	if err != nil {
		return nil, err
	}
	rs, err := db.read().query(ctx, `SELECT caller, seq, command_id, kind, body, detail, at FROM router_deliveries
		WHERE caller = $1 AND seq > $2 ORDER BY seq LIMIT $3`, caller, after, limit)
	if err != nil {
		return nil, fmt.Errorf("store: reading deliveries for %s: %w", caller, err)
	}
	defer rs.Close()
	var out []Delivery
	for rs.Next() {
		var d Delivery
		var at timeCol
		if err := rs.Scan(&d.Caller, &d.Seq, &d.CommandID, &d.Kind, &d.Body, &d.Detail, &at); err != nil {
			return nil, fmt.Errorf("store: reading deliveries for %s: %w", caller, err)
		}
		d.At = at.t
		out = append(out, d)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("store: reading deliveries for %s: %w", caller, err)
	}
	return out, nil
}

// FindForwardedCommand finds the command a response answers: the one to
// target from originator with the given counter (the response repeats the
// command's counter, GBCS section 3). It returns ErrNotFound if none.
func (s *RouterStore) FindForwardedCommand(ctx context.Context, targetEUI, originatorEUI smki.EUI, counter uint64) (RouterCommand, error) {
	db, target, originator := s.db, targetEUI.String(), originatorEUI.String()
	c, err := scanRouterCommand(db.read().queryRow(ctx, `SELECT `+routerCommandColumns+` FROM router_commands
		WHERE target = $1 AND originator = $2 AND counter = $3`, target, originator, int64(counter)))
	if errors.Is(err, errNoRows) {
		return RouterCommand{}, fmt.Errorf("command from %s to %s with counter %d: %w", originator, target, counter, ErrNotFound)
	}
	if err != nil {
		return RouterCommand{}, fmt.Errorf("store: correlating response: %w", err)
	}
	return c, nil
}

// ErrCINMismatch means a customer identification number read back does not
// match the one the device displayed; the error says how many attempts
// remain.
var ErrCINMismatch = errors.New("store: customer identification number does not match")

// MaxCINAttempts bounds the guesses at one CIN challenge.
const MaxCINAttempts = 5

// PutCINChallenge records the hash of the CIN device displays for user,
// replacing any earlier challenge of the pair.
func (s *RouterStore) PutCINChallenge(ctx context.Context, deviceEUI, userEUI smki.EUI, hash []byte, commandID string, at, expires time.Time) error {
	db, device, user := s.db, deviceEUI.String(), userEUI.String()
	if len(hash) == 0 || !expires.After(at) {
		return fmt.Errorf("%w: CIN challenge for %s: a hash and a future expiry are required", ErrInvalid, device)
	}
	if _, err := db.write().exec(ctx, `INSERT INTO router_cin_challenges (device, user_eui, cin_hash, command_id, attempts, created_at, expires_at)
		VALUES ($1, $2, $3, $4, 0, $5, $6)
		ON CONFLICT (device, user_eui) DO UPDATE SET cin_hash = excluded.cin_hash, command_id = excluded.command_id,
			attempts = 0, created_at = excluded.created_at, expires_at = excluded.expires_at`,
		device, user, hash, commandID, at, expires); err != nil {
		return fmt.Errorf("store: recording CIN challenge for %s: %w", device, err)
	}
	return nil
}

// ConsumeCINChallenge checks a CIN read back: match reports whether it
// fits the challenge's hash (bound by the caller to the command that
// displayed the CIN, whose ID is passed too). A match consumes the challenge; a mismatch counts an
// attempt (ErrCINMismatch), and the last allowed attempt or expiry removes
// it (ErrNotFound afterwards).
func (s *RouterStore) ConsumeCINChallenge(ctx context.Context, deviceEUI, userEUI smki.EUI, match func(hash []byte, commandID string) bool, now time.Time) error {
	db, device, user := s.db, deviceEUI.String(), userEUI.String()
	// The outcome is decided inside the transaction but returned after it
	// commits, so that a counted attempt or a removal is kept.
	var outcome error
	err := db.inTx(ctx, func(tx dbtx) error {
		var hash []byte
		var commandID string
		var attempts int64
		var exp timeCol
		err := tx.queryRow(ctx, `SELECT cin_hash, command_id, attempts, expires_at FROM router_cin_challenges WHERE device = $1 AND user_eui = $2`,
			device, user).Scan(&hash, &commandID, &attempts, &exp)
		if errors.Is(err, errNoRows) {
			outcome = fmt.Errorf("no CIN challenge for %s and %s: %w", device, user, ErrNotFound)
			return nil
		}
		if err != nil {
			return fmt.Errorf("store: reading CIN challenge: %w", err)
		}
		del := func() error {
			if _, err := tx.exec(ctx, `DELETE FROM router_cin_challenges WHERE device = $1 AND user_eui = $2`, device, user); err != nil {
				return fmt.Errorf("store: removing CIN challenge: %w", err)
			}
			return nil
		}
		switch {
		case !now.Before(exp.t):
			outcome = fmt.Errorf("CIN challenge for %s expired: %w", device, ErrNotFound)
			return del()
		case match(hash, commandID):
			return del()
		}
		attempts++
		if attempts >= MaxCINAttempts {
			outcome = fmt.Errorf("%w: no attempts left; request a new CIN", ErrCINMismatch)
			return del()
		}
		outcome = fmt.Errorf("%w: %d attempts left", ErrCINMismatch, MaxCINAttempts-attempts)
		if _, err := tx.exec(ctx, `UPDATE router_cin_challenges SET attempts = $1 WHERE device = $2 AND user_eui = $3`,
			attempts, device, user); err != nil {
			return fmt.Errorf("store: counting CIN attempt: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return outcome
}
