package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Audit outcomes: an action is logged as an attempt before it is tried and
// as a success or failure after; a refusal is a decision not to try.
const (
	OutcomeAttempt = "attempt"
	OutcomeSuccess = "success"
	OutcomeFailure = "failure"
	OutcomeRefused = "refused"
)

// auditHashDomain starts every hashed encoding, so that a chain hash can
// never be mistaken for the hash of anything else.
const auditHashDomain = "metertrust audit log v1\x00"

// genesisHash is the PrevHash of the first entry.
var genesisHash = make([]byte, sha256.Size)

// AuditEvent is one entry of the audit log.
type AuditEvent struct {
	Seq      int64          // assigned: 1, 2, 3...
	Time     time.Time      // set by the caller (injected clock); stored UTC, microsecond precision
	Actor    string         // who: an operator name, a user EUI, "system"
	Action   string         // e.g. "ca.batch.key-destroy"
	Object   string         // what: a CA name, a serial, a command id
	Outcome  string         // "attempt", "success", "failure", "refused"
	Details  map[string]any // stored as JSON; read back with numbers as json.Number
	PrevHash []byte         // Hash of the entry before; 32 zero bytes for the first
	Hash     []byte         // SHA-256 over the canonical encoding of the fields above
}

// AuditBreak describes where the audit chain first fails to verify. Errors
// from VerifyAudit wrap one (find it with errors.As) and ErrAuditBroken.
type AuditBreak struct {
	Seq    int64  // the first entry that is missing, altered or out of place
	Reason string // what is wrong with it
}

// Error reports the entry and what is wrong with it.
func (b *AuditBreak) Error() string {
	return fmt.Sprintf("audit entry %d: %s", b.Seq, b.Reason)
}

// Unwrap makes errors.Is(b, ErrAuditBroken) true.
func (b *AuditBreak) Unwrap() error { return ErrAuditBroken }

// auditHash computes an entry's hash: SHA-256 over the domain string, then
// Seq (8 bytes big-endian), Time as Unix microseconds (8 bytes, two's
// complement), and Actor, Action, Object, Outcome, the details JSON and
// PrevHash, each as a 4-byte big-endian length followed by its bytes. Every
// field has a fixed size or a length prefix, so no two different entries
// share an encoding.
func auditHash(seq int64, at time.Time, actor, action, object, outcome string, details, prev []byte) []byte {
	return sha256Sum(auditEncoding(seq, at, actor, action, object, outcome, details, prev))
}

func auditEncoding(seq int64, at time.Time, actor, action, object, outcome string, details, prev []byte) []byte {
	b := make([]byte, 0, len(auditHashDomain)+16+6*4+len(actor)+len(action)+len(object)+len(outcome)+len(details)+len(prev))
	b = append(b, auditHashDomain...)
	b = binary.BigEndian.AppendUint64(b, uint64(seq))
	b = binary.BigEndian.AppendUint64(b, uint64(at.UnixMicro()))
	for _, f := range [][]byte{[]byte(actor), []byte(action), []byte(object), []byte(outcome), details, prev} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
		b = append(b, f...)
	}
	return b
}

func sha256Sum(b []byte) []byte {
	h := sha256.Sum256(b)
	return h[:]
}

// maxAuditField bounds each text field, and maxAuditDetails the details JSON.
const (
	maxAuditField   = 1024
	maxAuditDetails = 64 << 10
)

func validOutcome(o string) bool {
	switch o {
	case OutcomeAttempt, OutcomeSuccess, OutcomeFailure, OutcomeRefused:
		return true
	}
	return false
}

// AppendAudit appends e to the audit log, chained to the entry before it,
// and returns it as stored (Seq, PrevHash and Hash filled in, Time in UTC
// at microsecond precision). Seq, PrevHash and Hash in e are ignored. Many
// goroutines and several processes sharing one PostgreSQL database may
// append at once: the one-row chain head is locked by the same transaction
// that appends. There is deliberately no way to change or delete an entry.
//
// Concurrent appends are group-committed: the events that arrive while a
// transaction commits go together in the next one (one commit, one fsync,
// for the group), and each caller returns once its event is durable.
func (db *DB) AppendAudit(ctx context.Context, e AuditEvent) (AuditEvent, error) {
	// Checked before queueing, so that no event fails its group.
	if _, err := checkAuditEvent(e); err != nil {
		return AuditEvent{}, err
	}
	p := &pendingAudit{ev: e}
	if err := db.audits.Do(ctx, p); err != nil {
		return AuditEvent{}, err
	}
	return p.ev, nil
}

// pendingAudit is one event of an audit group commit; once committed, ev
// is the event as stored.
type pendingAudit struct{ ev AuditEvent }

// maxAuditGroup bounds the events of one audit group commit.
const maxAuditGroup = 512

// appendAuditGroup is db.audits' Commit: the group's events appended in
// one transaction.
func (db *DB) appendAuditGroup(ctx context.Context, ps []*pendingAudit) error {
	es := make([]AuditEvent, len(ps))
	for i, p := range ps {
		es[i] = p.ev
	}
	return db.inTx(ctx, func(tx dbtx) error {
		out, err := appendAuditsIn(ctx, tx, es)
		if err != nil {
			return err
		}
		for i, p := range ps {
			p.ev = out[i]
		}
		return nil
	})
}

// appendAuditIn appends e inside the caller's transaction tx, so that a
// change and the audit entry recording it commit or roll back together.
func appendAuditIn(ctx context.Context, tx dbtx, e AuditEvent) (AuditEvent, error) {
	out, err := appendAuditsIn(ctx, tx, []AuditEvent{e})
	if err != nil {
		return AuditEvent{}, err
	}
	return out[0], nil
}

// auditRowsPerInsert bounds the rows of one multi-row audit insert (nine
// parameters each), well under both backends' parameter limits.
const auditRowsPerInsert = 500

// appendAuditsIn appends es, in order, inside the caller's transaction tx.
// Every append to the log goes through here. The head row is claimed once
// for the whole group, which locks it until commit: appenders queue there
// and each group sees its predecessor's hash. Callers append last in their
// transactions, so the head stays locked for as short a time as possible.
func appendAuditsIn(ctx context.Context, tx dbtx, es []AuditEvent) ([]AuditEvent, error) {
	if len(es) == 0 {
		return nil, nil
	}
	out, details, err := prepareAudits(es)
	if err != nil {
		return nil, err
	}
	var last int64
	var prev []byte
	if err := tx.queryRow(ctx, claimAuditHead, int64(len(es))).Scan(&last, &prev); err != nil {
		return nil, fmt.Errorf("store: appending audit event %s: claiming chain head: %w", es[0].Action, err)
	}
	return writeAudits(ctx, tx, out, details, last, prev)
}

// claimAuditHead advances the chain head by $1 entries, locking it until
// commit, and returns the new last sequence number and the hash before.
const claimAuditHead = `UPDATE audit_head SET seq = seq + $1 WHERE id = 1 RETURNING seq, hash`

// prepareAudits checks es and returns them with their times as stored and
// their details encoded.
func prepareAudits(es []AuditEvent) ([]AuditEvent, [][]byte, error) {
	out := make([]AuditEvent, len(es))
	details := make([][]byte, len(es))
	for i, e := range es {
		d, err := checkAuditEvent(e)
		if err != nil {
			return nil, nil, err
		}
		e.Time = dbTime(e.Time)
		out[i], details[i] = e, d
	}
	return out, details, nil
}

// writeAudits chains out after the head claimed (last, the new last
// sequence number; prev, the hash before), inserts the entries and moves
// the head's hash.
func writeAudits(ctx context.Context, tx dbtx, out []AuditEvent, details [][]byte, last int64, prev []byte) ([]AuditEvent, error) {
	for i := range out {
		e := &out[i]
		e.Seq, e.PrevHash = last-int64(len(out))+1+int64(i), prev
		e.Hash = auditHash(e.Seq, e.Time, e.Actor, e.Action, e.Object, e.Outcome, details[i], e.PrevHash)
		prev = e.Hash
	}
	_, pg := asPG(tx)
	for start := 0; start < len(out); start += auditRowsPerInsert {
		chunk := out[start:min(start+auditRowsPerInsert, len(out))]
		rows := make([][]any, len(chunk))
		for i, e := range chunk {
			rows[i] = []any{e.Seq, e.Time, e.Actor, e.Action, e.Object, e.Outcome, string(details[start+i]), e.PrevHash, e.Hash}
		}
		head, moved := `INSERT INTO audit_log (seq, at, actor, action, object, outcome, details, prev_hash, hash) VALUES `, false
		if pg && start+len(chunk) == len(out) {
			// On PostgreSQL the last chunk moves the head in the same
			// statement: one round trip less while the head is locked.
			head, moved = `WITH head AS (UPDATE audit_head SET hash = $1 WHERE id = 1) `+head, true
			rows[0] = append([]any{prev}, rows[0]...)
		}
		if err := insertAuditRows(ctx, tx, head, moved, rows); err != nil {
			return nil, fmt.Errorf("store: appending audit events %d-%d: %w", chunk[0].Seq, chunk[len(chunk)-1].Seq, err)
		}
		if moved {
			return out, nil
		}
	}
	if _, err := tx.exec(ctx, `UPDATE audit_head SET hash = $1 WHERE id = 1`, prev); err != nil {
		return nil, fmt.Errorf("store: appending audit events up to %d: moving chain head: %w", last, err)
	}
	return out, nil
}

// insertAuditRows inserts audit rows with head; when shifted, head uses $1
// itself and rows[0] carries that value first.
func insertAuditRows(ctx context.Context, tx dbtx, head string, shifted bool, rows [][]any) error {
	const row = `($1, $2, $3, $4, $5, $6, $7, $8, $9)`
	if !shifted {
		return insertRows(ctx, tx, head, row, ``, rows)
	}
	var sb strings.Builder
	sb.WriteString(head)
	args := []any{rows[0][0]}
	rows[0] = rows[0][1:]
	for i, r := range rows {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(renumber(row, len(args)))
		args = append(args, r...)
	}
	_, err := tx.exec(ctx, sb.String(), args...)
	return err
}

// checkAuditEvent checks e's fields and returns its details as JSON.
func checkAuditEvent(e AuditEvent) ([]byte, error) {
	switch {
	case e.Time.IsZero():
		return nil, fmt.Errorf("%w: audit event %s: no time", ErrInvalid, e.Action)
	case e.Actor == "" || len(e.Actor) > maxAuditField:
		return nil, fmt.Errorf("%w: audit event %s: actor must be 1-%d bytes", ErrInvalid, e.Action, maxAuditField)
	case e.Action == "" || len(e.Action) > maxAuditField:
		return nil, fmt.Errorf("%w: audit event: action must be 1-%d bytes", ErrInvalid, maxAuditField)
	case len(e.Object) > maxAuditField:
		return nil, fmt.Errorf("%w: audit event %s: object longer than %d bytes", ErrInvalid, e.Action, maxAuditField)
	case !validOutcome(e.Outcome):
		return nil, fmt.Errorf("%w: audit event %s: outcome %q must be attempt, success, failure or refused", ErrInvalid, e.Action, e.Outcome)
	}
	if e.Details == nil {
		return []byte("{}"), nil
	}
	details, err := json.Marshal(e.Details)
	if err != nil {
		return nil, fmt.Errorf("%w: audit event %s: details are not JSON: %v", ErrInvalid, e.Action, err)
	}
	if len(details) > maxAuditDetails {
		return nil, fmt.Errorf("%w: audit event %s: details JSON is %d bytes, over %d", ErrInvalid, e.Action, len(details), maxAuditDetails)
	}
	return details, nil
}

// rawAudit is an audit row as stored, details still as JSON text.
type rawAudit struct {
	AuditEvent
	details []byte
}

func rawAuditPage(ctx context.Context, q dbtx, afterSeq int64, limit int) ([]rawAudit, error) {
	return rawAuditQuery(ctx, q, `WHERE seq > $1 ORDER BY seq LIMIT $2`, afterSeq, limit)
}

// rawAuditQuery reads the audit rows that where (a WHERE, ORDER and LIMIT
// clause) selects.
func rawAuditQuery(ctx context.Context, q dbtx, where string, args ...any) ([]rawAudit, error) {
	rs, err := q.query(ctx, `SELECT seq, at, actor, action, object, outcome, details, prev_hash, hash FROM audit_log `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("store: reading audit log: %w", err)
	}
	defer rs.Close()
	var out []rawAudit
	for rs.Next() {
		var r rawAudit
		var at timeCol
		var details string
		if err := rs.Scan(&r.Seq, &at, &r.Actor, &r.Action, &r.Object, &r.Outcome, &details, &r.PrevHash, &r.Hash); err != nil {
			return nil, fmt.Errorf("store: reading audit log: %w", err)
		}
		r.Time, r.details = at.t, []byte(details)
		out = append(out, r)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("store: reading audit log: %w", err)
	}
	return out, nil
}

// AuditEvents returns up to limit entries with Seq greater than afterSeq,
// in order (limit 0 means DefaultLimit; at most MaxLimit). It does not
// verify the chain; VerifyAudit does.
func (db *DB) AuditEvents(ctx context.Context, afterSeq int64, limit int) ([]AuditEvent, error) {
	limit, err := pageLimit(limit)
	if err != nil {
		return nil, err
	}
	raw, err := rawAuditPage(ctx, db.read(), afterSeq, limit)
	if err != nil {
		return nil, err
	}
	return decodeAudit(raw)
}

// decodeAudit decodes the details of raw rows.
func decodeAudit(raw []rawAudit) ([]AuditEvent, error) {
	out := make([]AuditEvent, len(raw))
	for i, r := range raw {
		d := json.NewDecoder(bytes.NewReader(r.details))
		d.UseNumber()
		if err := d.Decode(&r.Details); err != nil {
			return nil, fmt.Errorf("reading audit entry %d: details are not a JSON object: %v: %w", r.Seq, err, ErrAuditBroken)
		}
		if r.Details == nil {
			r.Details = map[string]any{}
		}
		out[i] = r.AuditEvent
	}
	return out, nil
}

// AuditQuery selects audit entries for SearchAudit; its zero fields match
// everything.
type AuditQuery struct {
	// Actor matches an actor equal to it or beginning with it and " ("
	// ("olga" matches "olga (quarantine-officer)", as the anomaly
	// detector records operators); Object matches exactly; Action matches
	// an action equal to it or beginning with it and a dot ("anomaly"
	// matches "anomaly.release").
	Actor, Action, Object string
	// From and To bound the entries' time: From <= at < To.
	From, To time.Time
	// Before, when positive, keeps entries with Seq below it: the next
	// page after a result's last entry.
	Before int64
	// Limit bounds the result (0 means DefaultLimit; at most MaxLimit).
	Limit int
}

// SearchAudit returns the entries q selects, newest first. It does not
// verify the chain (VerifyAudit does). The audit log has no index but its
// sequence: a search reads back from the newest entry (or from Before)
// until it has Limit entries, which is quick for what operators look for
// (recent entries, or a From bound) and a scan of the log otherwise.
func (db *DB) SearchAudit(ctx context.Context, q AuditQuery) ([]AuditEvent, error) {
	limit, err := pageLimit(q.Limit)
	if err != nil {
		return nil, err
	}
	where, args := []string{"1 = 1"}, []any{}
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "?", fmt.Sprintf("$%d", len(args))))
	}
	if q.Actor != "" {
		// An operator's actions are recorded under "name (roles)" by the
		// detector and "name" by the services: either matches the name.
		add("(actor = ?", q.Actor)
		add("substr(actor, 1, "+strconv.Itoa(len(q.Actor)+2)+") = ?)", q.Actor+" (")
		where[len(where)-2] += " OR " + where[len(where)-1]
		where = where[:len(where)-1]
	}
	if q.Action != "" {
		add("(action = ?", q.Action)
		// A prefix match without LIKE's wildcards: substr is in both
		// dialects, and the prefix is compared as given.
		add("substr(action, 1, "+strconv.Itoa(len(q.Action)+1)+") = ?)", q.Action+".")
		where[len(where)-2] += " OR " + where[len(where)-1]
		where = where[:len(where)-1]
	}
	if q.Object != "" {
		add("object = ?", q.Object)
	}
	if !q.From.IsZero() {
		add("at >= ?", dbTime(q.From))
	}
	if !q.To.IsZero() {
		add("at < ?", dbTime(q.To))
	}
	if q.Before > 0 {
		add("seq < ?", q.Before)
	}
	args = append(args, limit)
	raw, err := rawAuditQuery(ctx, db.read(), "WHERE "+strings.Join(where, " AND ")+fmt.Sprintf(" ORDER BY seq DESC LIMIT $%d", len(args)), args...)
	if err != nil {
		return nil, err
	}
	return decodeAudit(raw)
}

// VerifyAudit recomputes the whole hash chain, in one consistent snapshot,
// and checks it against the chain head. It returns the number of entries
// checked; if the chain is broken the error wraps ErrAuditBroken and an
// *AuditBreak naming the first entry that is missing, altered or out of
// place.
func (db *DB) VerifyAudit(ctx context.Context) (int64, error) {
	var checked int64
	err := db.inSnapshot(ctx, func(tx dbtx) error {
		var err error
		checked, err = verifyAudit(ctx, tx)
		return err
	})
	return checked, err
}

// verifyPage is how many entries VerifyAudit reads at a time.
var verifyPage = MaxLimit

func verifyAudit(ctx context.Context, tx dbtx) (int64, error) {
	broken := func(seq int64, reason string, args ...any) error {
		return fmt.Errorf("verifying audit log: %w", &AuditBreak{Seq: seq, Reason: fmt.Sprintf(reason, args...)})
	}
	var checked int64
	prev := genesisHash
	for {
		page, err := rawAuditPage(ctx, tx, checked, verifyPage)
		if err != nil {
			return checked, err
		}
		for _, r := range page {
			want := checked + 1
			switch {
			case r.Seq != want:
				return checked, broken(want, "missing (the next stored entry is %d)", r.Seq)
			case !bytes.Equal(r.PrevHash, prev):
				return checked, broken(r.Seq, "its previous-hash link does not match the entry before it")
			case !bytes.Equal(auditHash(r.Seq, r.Time, r.Actor, r.Action, r.Object, r.Outcome, r.details, r.PrevHash), r.Hash):
				return checked, broken(r.Seq, "its contents do not match its hash (altered)")
			}
			prev = r.Hash
			checked++
		}
		if len(page) < verifyPage {
			break
		}
	}
	var headSeq int64
	var headHash []byte
	if err := tx.queryRow(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`).Scan(&headSeq, &headHash); err != nil {
		if errors.Is(err, errNoRows) {
			return checked, broken(checked+1, "the chain head row is missing")
		}
		return checked, fmt.Errorf("store: reading audit chain head: %w", err)
	}
	switch {
	case headSeq > checked:
		return checked, broken(checked+1, "missing (the chain head says the log ends at %d)", headSeq)
	case headSeq < checked:
		return checked, broken(headSeq+1, "beyond the chain head at %d (written outside the store)", headSeq)
	case !bytes.Equal(headHash, prev):
		return checked, broken(checked, "its hash does not match the chain head")
	}
	return checked, nil
}
