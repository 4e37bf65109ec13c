package store

// This file is the router's admission: one transaction per group of
// commands decides their counters and anomaly counts, writes the accepted
// ones with their outbox rows and the quarantined ones with their records,
// applies the forwarder's marks, and appends every audit entry: one turn on
// the writer (one fsync on SQLite, one commit on PostgreSQL) for all of it.

import (
	"context"
	"fmt"
	"strings"
	"time"

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
	// Handoff asks for the outbox row to be leased at once to the caller
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
	// Handoff is set when the admitted command's outbox row is leased to
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
// its outbox row, and its pair's counter advanced. A group must hold at most
// one command per pair (the caller defers the others to a later group). Each
// counts exactly, across processes on PostgreSQL: the group first takes the
// advisory locks of its pairs, then those of its counter keys, each set in
// ascending order. results[i] is Items[i]'s outcome, markErrs[i]
// Forwarded[i]'s; err, when not nil, means nothing was stored.
func (db *DB) Admit(ctx context.Context, g AdmitGroup) (results []AdmitResult, markErrs []error, err error) {
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
		if len(live) > 0 {
			if err := db.admit(ctx, tx, g, live, results); err != nil {
				return err
			}
		}
		var es []AuditEvent
		if len(g.Forwarded) > 0 {
			var err error
			if markErrs, err = markForwardedIn(ctx, tx, db.dialect, g.Forwarded); err != nil {
				return err
			}
			for _, f := range g.Forwarded {
				if f.Audit != nil {
					es = append(es, *f.Audit)
				}
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

// admit is Admit's work on the group's live items, inside tx.
func (db *DB) admit(ctx context.Context, tx dbtx, g AdmitGroup, live []int, results []AdmitResult) error {
	items := g.Items
	if db.dialect == DialectPostgres {
		keys := make([]string, len(live))
		for j, i := range live {
			keys[j] = "pair/" + items[i].Command.Originator + "/" + items[i].Command.Target
		}
		if err := lockCounters(ctx, tx, keys); err != nil {
			return fmt.Errorf("store: admitting commands: %w", err)
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
		UNION ALL SELECT 'busy', c.originator, c.target, 0 FROM router_outbox o JOIN router_commands c ON c.id = o.command_id
			WHERE o.target IN (`+targetList+`)`, args...)
	if err != nil {
		return fmt.Errorf("store: admitting commands: reading IDs, counters and outbox: %w", err)
	}
	stored, busy, last := map[string]bool{}, map[string]bool{}, map[string]int64{}
	for rs.Next() {
		var kind, a, b string
		var n int64
		if err := rs.Scan(&kind, &a, &b, &n); err != nil {
			rs.Close()
			return fmt.Errorf("store: admitting commands: reading IDs, counters and outbox: %w", err)
		}
		switch kind {
		case "id":
			stored[a] = true
		case "counter":
			last[a+"/"+b] = n
		case "busy":
			busy[a+"/"+b] = true
		}
	}
	rs.Close()
	if err := rs.Err(); err != nil {
		return fmt.Errorf("store: admitting commands: reading IDs, counters and outbox: %w", err)
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
				return err
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
		if ptx, ok := tx.(pgTx); ok {
			err = decidePostgres(ctx, ptx, checks)
		} else {
			err = decideSQLite(ctx, tx, checks)
		}
		if err != nil {
			return fmt.Errorf("store: admitting commands: %w", err)
		}
		for j, p := range checks {
			i := checked[j]
			if p.out.Passed() {
				passed = append(passed, i)
				continue
			}
			if err := results[i].breach(g, i, p.out); err != nil {
				return err
			}
		}
	}

	// Seal what passed, then write: quarantine records, counters, commands
	// and outbox rows.
	var cmdRows, boxRows, ctrRows [][]any
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
		cmdRows = append(cmdRows, []any{c.ID, c.Caller, c.CallerRole, c.Originator, c.Target, int64(c.Counter), int64(c.Code),
			c.ServiceRef, c.Critical, c.Message, CommandAccepted, c.AcceptedAt})
		var lease any
		if a.Handoff && !busy[c.Originator+"/"+c.Target] {
			lease, results[i].Handoff = a.Lease, true
		}
		boxRows = append(boxRows, []any{c.ID, c.Target, c.AcceptedAt, lease})
		ctrRows = append(ctrRows, []any{c.Originator, c.Target, int64(c.Counter)})
	}
	for _, i := range live {
		if r := &results[i]; r.Quarantined {
			if err := insertQuarantine(ctx, tx, r.Quarantine); err != nil {
				return fmt.Errorf("store: quarantining %s: %w", r.Quarantine.Ref, err)
			}
		}
	}
	if len(cmdRows) == 0 {
		return nil
	}
	// The pairs' locks (PostgreSQL) or the single writer (SQLite) make the
	// read counters current: each was checked above.
	if err := insertRows(ctx, tx, `INSERT INTO router_counters (originator, target, last) VALUES `, `($1, $2, $3)`,
		` ON CONFLICT (originator, target) DO UPDATE SET last = excluded.last`, ctrRows); err != nil {
		return fmt.Errorf("store: admitting %d commands: counters: %w", len(ctrRows), err)
	}
	if err := insertRows(ctx, tx, `INSERT INTO router_commands
		(id, caller, caller_role, originator, target, counter, code, service_ref, critical, message, state, accepted_at, updated_at)
		VALUES `, `($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)`, ``, cmdRows); err != nil {
		return fmt.Errorf("store: admitting %d commands: %w", len(cmdRows), err)
	}
	if err := insertRows(ctx, tx, `INSERT INTO router_outbox (command_id, target, attempts, next_attempt, lease_until) VALUES `,
		`($1, $2, 0, $3, $4)`, ``, boxRows); err != nil {
		return fmt.Errorf("store: admitting %d commands: outbox: %w", len(boxRows), err)
	}
	return nil
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
