package store

// This file is the router's admission: one transaction per group of
// commands decides their counters and anomaly counts, writes the accepted
// ones (each entering the outbox: state accepted) and the quarantined ones with their records,
// applies the forwarder's marks and completions, and appends every audit
// entry: one turn on the writer (one fsync on SQLite, one commit on
// PostgreSQL) for all of it.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/metertrust/metertrust/anomaly"
)

// Admission is one command offered to Admit.
type Admission struct {
	// Command is the command to record if it is admitted; its Message is
	// left empty and filled by AdmitGroup.Seal.
	Command RouterCommand
	// Audit, when not nil, is its "accepted" audit entry.
	Audit *AuditEvent
	// Screen is true when the command is decided against the anomaly
	// thresholds (Prepared); false for one released from quarantine.
	Screen   bool
	Prepared anomaly.Prepared
	// Handoff asks for the command, in the outbox, to be leased at once to the caller
	// (until Lease) when the command is the only one of its (originator,
	// target) pair in the outbox, so that the caller's forwarder can send
	// it without claiming it (AdmitResult.Handoff).
	Handoff bool
	Lease   time.Time
}

// AdmitResult is one admission's outcome.
type AdmitResult struct {
	// Err, when not nil, says why the command was not recorded: it wraps
	// ErrStaleCounter, ErrExists or ErrInvalid, or is Seal's error.
	Err error
	// Quarantined is set when a threshold was breached: the quarantine
	// record Quarantine and its Decision were stored, the command was not.
	Quarantined bool
	Quarantine  anomaly.Quarantine
	Decision    anomaly.Decision
	// Handoff is set when the admitted command is leased to
	// the caller (Admission.Handoff, and no earlier command of the pair is
	// in the outbox).
	Handoff bool
	// Message is the recorded message (from Seal).
	Message []byte

	quarantineAudit AuditEvent
}

// AdmitGroup is one group for Admit.
type AdmitGroup struct {
	Items []Admission
	// Forwarded are the forwarder's marks to apply in the same
	// transaction (as MarkForwardedAll).
	Forwarded []ForwardedCommand
	// Completed are commands the forwarder ends in the same transaction
	// (as CompleteCommand); each gets its own outcome: its Delivery with
	// its Seq, or its Err (wrapping ErrConflict for a command already
	// completed, ErrNotFound for an unknown one).
	Completed []*Completion
	// Seal returns the message to record for item i once it has passed
	// every check (the router's MAC: computed only for commands the
	// thresholds let through). It runs inside the transaction.
	Seal func(i int) ([]byte, error)
	// Breach returns the quarantine record, its audit entry and the
	// decision for item i, which breached a threshold (outcome out).
	Breach func(i int, out anomaly.Outcome) (anomaly.Quarantine, anomaly.AuditEntry, anomaly.Decision, error)
}

// Admit decides and records a group in one transaction. Within it, each
// command in turn: its ID must be new and its counter greater than the last
// recorded for its (originator, target) pair (else its Err wraps ErrExists
// or ErrStaleCounter, and it is not counted); if screened, its window counts
// must be under their limits (else it is quarantined, not counted, its
// counter not advanced); only then is it sealed, counted and recorded with
// in the outbox (state accepted), and its pair's counter advanced. A group must hold at most
// one command per pair (the caller defers the others to a later group). Each
// counts exactly, across processes on PostgreSQL: the group first takes the
// advisory locks of its pairs, then those of its counter keys, each set in
// ascending order. results[i] is Items[i]'s outcome, markErrs[i]
// Forwarded[i]'s, and each completion's is in it; err, when not nil, means
// nothing was stored.
func (s *RouterStore) Admit(ctx context.Context, g AdmitGroup) (results []AdmitResult, markErrs []error, err error) {
	db := s.db
	results = make([]AdmitResult, len(g.Items))
	type pair struct{ o, t string }
	seen := map[pair]bool{}
	for i := range g.Items {
		c := &g.Items[i].Command
		p := pair{c.Originator, c.Target}
		if seen[p] {
			return nil, nil, fmt.Errorf("%w: two commands for %s/%s in one admission group", ErrInvalid, c.Originator, c.Target)
		}
		seen[p] = true
		c.Message = []byte{0} // checked for real after sealing
		results[i].Err = validateRouterCommand(c)
		c.Message = nil
	}
	err = db.inTx(ctx, func(tx dbtx) error {
		for i := range results {
			results[i] = AdmitResult{Err: results[i].Err}
		}
		var live []int
		for i := range g.Items {
			if results[i].Err == nil {
				live = append(live, i)
			}
		}
		var writes []statement
		if len(live) > 0 {
			var err error
			if writes, err = db.admit(ctx, tx, g, live, results); err != nil {
				return err
			}
		}
		var es []AuditEvent
		for _, f := range g.Forwarded {
			if f.Audit != nil {
				es = append(es, *f.Audit)
			}
		}
		for _, i := range live {
			r := &results[i]
			switch {
			case r.Quarantined:
				es = append(es, r.quarantineAudit)
			case r.Err == nil && g.Items[i].Audit != nil:
				es = append(es, *g.Items[i].Audit)
			}
		}
		for _, c := range g.Completed {
			c.Err = completeIn(ctx, tx, c)
			switch {
			case c.Err == nil:
				es = append(es, c.Audits...)
			case !errors.Is(c.Err, ErrConflict) && !errors.Is(c.Err, ErrNotFound) && !errors.Is(c.Err, ErrInvalid):
				return c.Err
			}
		}
		if err := scrubForwardedIn(ctx, tx, g.Forwarded); err != nil {
			return err
		}
		if ptx, ok := asPG(tx); ok {
			var err error
			markErrs, err = writePostgres(ctx, ptx, writes, g.Forwarded, es)
			return err
		}
		if err := execAll(ctx, tx, writes); err != nil {
			return fmt.Errorf("store: admitting commands: %w", err)
		}
		if len(g.Forwarded) > 0 {
			var err error
			if markErrs, err = markForwardedIn(ctx, tx, db.dialect, g.Forwarded); err != nil {
				return err
			}
		}
		// Audit entries last, so the chain head is locked for as short a
		// time as possible.
		_, err := appendAuditsIn(ctx, tx, es)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return results, markErrs, nil
}

// admit is Admit's work on the group's live items, inside tx: it decides
// each and returns the statements that write the outcome (quarantine
// records, counters, commands), for the caller to run.
func (db *DB) admit(ctx context.Context, tx dbtx, g AdmitGroup, live []int, results []AdmitResult) ([]statement, error) {
	items := g.Items
	if db.dialect == DialectPostgres {
		keys := make([]string, len(live))
		for j, i := range live {
			keys[j] = "pair/" + items[i].Command.Originator + "/" + items[i].Command.Target
		}
		if err := lockCounters(ctx, tx, keys); err != nil {
			return nil, fmt.Errorf("store: admitting commands: %w", err)
		}
	}
	// IDs already stored, the pairs' last counters, and the pairs with a
	// command in the outbox already: one statement for the group (one
	// round trip on PostgreSQL), its IN lists padded to a power of two for
	// SQLite's statement cache.
	ids := make([]any, len(live))
	targets := make([]any, len(live))
	var pairArgs []any
	for j, i := range live {
		c := &items[i].Command
		ids[j], targets[j] = c.ID, c.Target
		pairArgs = append(pairArgs, c.Originator, c.Target)
	}
	idList, ids := inList(1, ids)
	args := ids
	var pairRows []string
	for len(pairRows) < len(ids) {
		k := 2 * min(len(pairRows), len(live)-1)
		args = append(args, pairArgs[k], pairArgs[k+1])
		pairRows = append(pairRows, fmt.Sprintf("($%d, $%d)", len(args)-1, len(args)))
	}
	targetList, targets := inList(len(args)+1, targets)
	args = append(args, targets...)
	rs, err := tx.query(ctx, `SELECT 'id', id, '', 0 FROM router_commands WHERE id IN (`+idList+`)
		UNION ALL SELECT 'counter', originator, target, last FROM router_counters WHERE (originator, target) IN (`+strings.Join(pairRows, ", ")+`)
		UNION ALL SELECT 'busy', originator, target, CAST(barrier AS INTEGER) FROM router_commands
			WHERE target IN (`+targetList+`) AND state = 'accepted'`, args...)
	if err != nil {
		return nil, fmt.Errorf("store: admitting commands: reading IDs, counters and outbox: %w", err)
	}
	stored, busy, last := map[string]bool{}, map[string]bool{}, map[string]int64{}
	// The targets with a command, and those with a barrier, in the outbox:
	// a command is handed off only where ClaimOutbox would claim it
	// (barrierClause).
	targetBusy, targetBarrier := map[string]bool{}, map[string]bool{}
	for rs.Next() {
		var kind, a, b string
		var n int64
		if err := rs.Scan(&kind, &a, &b, &n); err != nil {
			rs.Close()
			return nil, fmt.Errorf("store: admitting commands: reading IDs, counters and outbox: %w", err)
		}
		switch kind {
		case "id":
			stored[a] = true
		case "counter":
			last[a+"/"+b] = n
		case "busy":
			busy[a+"/"+b], targetBusy[b] = true, true
			if n != 0 {
				targetBarrier[b] = true
			}
		}
	}
	rs.Close()
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("store: admitting commands: reading IDs, counters and outbox: %w", err)
	}

	// Counters and IDs, then the thresholds for those still in.
	var checks []*pendingCheck
	var checked []int
	var passed []int
	for _, i := range live {
		c := &items[i].Command
		if stored[c.ID] {
			results[i].Err = fmt.Errorf("command %s: %w", c.ID, ErrExists)
			continue
		}
		if l, ok := last[c.Originator+"/"+c.Target]; ok && !unsignedLess(l, int64(c.Counter)) {
			results[i].Err = fmt.Errorf("command %s: counter %d, last recorded %d: %w", c.ID, c.Counter, uint64(l), ErrStaleCounter)
			continue
		}
		a := &items[i]
		switch {
		case !a.Screen:
			passed = append(passed, i)
		case a.Prepared.AttributeBreach():
			if err := results[i].breach(g, i, anomaly.Outcome{Breached: -1}); err != nil {
				return nil, err
			}
		default:
			if err := validEvent(a.Prepared.Event); err != nil {
				results[i].Err = err
				continue
			}
			checks = append(checks, &pendingCheck{ev: a.Prepared.Event, counters: a.Prepared.Counters})
			checked = append(checked, i)
		}
	}
	if len(checks) > 0 {
		if ptx, ok := asPG(tx); ok {
			err = decidePostgres(ctx, ptx, checks)
		} else {
			err = decideSQLite(ctx, tx, checks)
		}
		if err != nil {
			return nil, fmt.Errorf("store: admitting commands: %w", err)
		}
		for j, p := range checks {
			i := checked[j]
			if p.out.Passed() {
				passed = append(passed, i)
				continue
			}
			if err := results[i].breach(g, i, p.out); err != nil {
				return nil, err
			}
		}
	}

	// Seal what passed, then write: quarantine records, counters, commands
	// (each in the outbox as it is recorded).
	var cmdRows, ctrRows [][]any
	for _, i := range passed {
		a := &items[i]
		c := &a.Command
		msg, err := g.Seal(i)
		if err == nil {
			c.Message = msg
			err = validateRouterCommand(c)
		}
		if err != nil {
			results[i].Err = err
			continue
		}
		results[i].Message = msg
		var lease any
		free := !busy[c.Originator+"/"+c.Target] && !targetBarrier[c.Target]
		if c.Barrier {
			free = !targetBusy[c.Target]
		}
		if a.Handoff && free {
			lease, results[i].Handoff = a.Lease, true
		}
		// Later commands of the group queue behind this one as behind one
		// already in the outbox.
		targetBusy[c.Target] = true
		if c.Barrier {
			targetBarrier[c.Target] = true
		}
		cmdRows = append(cmdRows, []any{c.ID, c.Caller, c.CallerRole, c.Originator, c.Target, int64(c.Counter), int64(c.Code),
			c.ServiceRef, c.Critical, c.Message, CommandAccepted, c.AcceptedAt, lease, c.Barrier})
		ctrRows = append(ctrRows, []any{c.Originator, c.Target, int64(c.Counter)})
	}
	var ss []statement
	for _, i := range live {
		if r := &results[i]; r.Quarantined {
			st, err := quarantineStatement(r.Quarantine)
			if err != nil {
				return nil, err
			}
			ss = append(ss, st)
		}
	}
	// The pairs' locks (PostgreSQL) or the single writer (SQLite) make the
	// read counters current: each was checked above.
	_, pg := asPG(tx)
	if ss, err = rowStatements(ss, pg, `INSERT INTO router_counters (originator, target, last) VALUES `, `($1, $2, $3)`,
		` ON CONFLICT (originator, target) DO UPDATE SET last = excluded.last`, ctrRows); err != nil {
		return nil, err
	}
	// A command enters the outbox as it is recorded: state accepted, due
	// at once, leased when handed to this process's forwarder.
	return rowStatements(ss, pg, `INSERT INTO router_commands
		(id, caller, caller_role, originator, target, counter, code, service_ref, critical, message, state, accepted_at, updated_at,
		next_attempt, lease_until, barrier)
		VALUES `, `($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $12, $13, $14)`, ``, cmdRows)
}

// breach fills r from g.Breach for item i.
func (r *AdmitResult) breach(g AdmitGroup, i int, out anomaly.Outcome) error {
	q, entry, dec, err := g.Breach(i, out)
	if err != nil {
		return fmt.Errorf("store: admitting commands: %w", err)
	}
	r.Quarantined, r.Quarantine, r.Decision, r.quarantineAudit = true, q, dec, auditEvent(entry)
	return nil
}

// writePostgres runs a group's writes, the forwarder's marks and the claim
// of the audit chain's head in one round trip (a pgx batch), then appends
// the audit entries es (one more, with the head's move), and returns the
// marks' outcomes.
func writePostgres(ctx context.Context, tx pgTx, writes []statement, marks []ForwardedCommand, es []AuditEvent) ([]error, error) {
	ptx, ok := tx.c.(pgx.Tx)
	if !ok {
		return nil, errors.New("store: admission outside a transaction")
	}
	out, details, err := prepareAudits(es)
	if err != nil {
		return nil, err
	}
	b := &pgx.Batch{}
	for _, st := range writes {
		b.Queue(st.q, pgArgs(st.args)...)
	}
	if len(marks) > 0 {
		q, args := markForwardedPG(marks)
		b.Queue(q, pgArgs(args)...)
	}
	if len(es) > 0 {
		b.Queue(claimAuditHead, int64(len(es)))
	}
	if b.Len() == 0 {
		return nil, nil
	}
	var markErrs []error
	var last int64
	var prev []byte
	br := ptx.SendBatch(ctx, b)
	err = func() error {
		for range writes {
			if _, err := br.Exec(); err != nil {
				return fmt.Errorf("store: admitting commands: %w", classify(err))
			}
		}
		if len(marks) > 0 {
			rs, err := br.Query()
			if err != nil {
				return fmt.Errorf("store: marking %d commands forwarded: %w", len(marks), err)
			}
			present := map[string]bool{}
			for rs.Next() {
				var id string
				if err := rs.Scan(&id); err != nil {
					rs.Close()
					return fmt.Errorf("store: marking %d commands forwarded: %w", len(marks), err)
				}
				present[id] = true
			}
			rs.Close()
			if err := rs.Err(); err != nil {
				return fmt.Errorf("store: marking %d commands forwarded: %w", len(marks), err)
			}
			markErrs = markErrors(marks, present)
		}
		if len(es) > 0 {
			if err := br.QueryRow().Scan(&last, &prev); err != nil {
				return fmt.Errorf("store: appending audit event %s: claiming chain head: %w", es[0].Action, err)
			}
		}
		return nil
	}()
	if cerr := br.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	if len(es) > 0 {
		if _, err := writeAudits(ctx, tx, out, details, last, prev); err != nil {
			return nil, err
		}
	}
	return markErrs, nil
}

// unsignedLess reports a < b for GBCS counters stored as the two's
// complement int64 of their uint64.
func unsignedLess(a, b int64) bool { return uint64(a) < uint64(b) }

// decideSQLite counts and records each check in turn on the single writer,
// each seeing the events of those before it.
func decideSQLite(ctx context.Context, tx dbtx, batch []*pendingCheck) error {
	for _, p := range batch {
		counts, err := countEvents(ctx, tx, p.counters)
		if err != nil {
			return err
		}
		p.out = outcome(p.counters, counts)
		if !p.out.Passed() {
			continue
		}
		if err := insertEvents(ctx, tx, p.ev); err != nil {
			return err
		}
	}
	return nil
}

// queryStrings returns the set of the single string column q selects.
func queryStrings(ctx context.Context, tx dbtx, q string, args ...any) (map[string]bool, error) {
	rs, err := tx.query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	out := map[string]bool{}
	for rs.Next() {
		var s string
		if err := rs.Scan(&s); err != nil {
			return nil, err
		}
		out[s] = true
	}
	return out, rs.Err()
}
