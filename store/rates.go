package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Command outcomes of the rollup of the router's audit entries.
const (
	RateAccepted    = "accepted"
	RateRefused     = "refused"
	RateQuarantined = "quarantined"
)

// RateStageRequest is the stage of a refusal the router's pipeline did not
// decide: a request refused by the API layer before it became a command
// (not hex, too large, a wrong content type).
const RateStageRequest = "request"

// Rollup bounds: RollUpCommandRates reads at most rollupChunk audit
// entries per statement and rollupChunks statements per call (a dashboard
// far behind catches up over a few calls); it starts at most RateWindow back
// and keeps RateRetention of minutes.
const (
	rollupChunk   = 20000
	rollupChunks  = 10
	RateWindow    = time.Hour
	RateRetention = 24 * time.Hour
)

// rateActions are the audit actions counted, with their outcome.
var rateActions = map[string]string{
	"router.command.accepted":    RateAccepted,
	"router.command.refused":     RateRefused,
	"router.command.quarantined": RateQuarantined,
}

// CommandRate is how many commands had one outcome at one stage, for one
// reason, in one minute.
type CommandRate struct {
	Minute  time.Time // the start of the minute, UTC
	Outcome string    // RateAccepted, RateRefused or RateQuarantined
	Stage   string    // the pipeline stage that decided ("admit" for accepted and quarantined)
	Reason  string    // the refusal kind's code; "" when accepted
	Count   int64
}

type rateKey struct {
	minute                 int64 // Unix seconds
	outcome, stage, reason string
}

// RollUpCommandRates counts the router's audit entries (accepted, refused
// and quarantined commands) appended since the last call into per-minute
// rows, and deletes rows older than RateRetention before now. It reads the
// audit log by its primary key only, from the last entry counted (or, the
// first time and after a long pause, from the first entry of the last
// RateWindow, found by bisecting the sequence numbers): the router's
// appends pay for no index. Several dashboards may roll up at once: the
// cursor moves by compare-and-set, and a call that loses the race counts
// nothing. It returns the number of commands counted.
func (s *OperatorStore) RollUpCommandRates(ctx context.Context, now time.Time) (int64, error) {
	var total int64
	for range rollupChunks {
		n, more, err := s.rollUpChunk(ctx, now)
		total += n
		if err != nil || !more {
			return total, err
		}
	}
	return total, nil
}

// rollUpChunk counts up to rollupChunk entries after the cursor; more says
// whether entries are left.
func (s *OperatorStore) rollUpChunk(ctx context.Context, now time.Time) (counted int64, more bool, err error) {
	db := s.db
	var cur, head int64
	if err := db.read().queryRow(ctx, `SELECT seq FROM command_rates_cursor WHERE id = 1`).Scan(&cur); err != nil {
		return 0, false, fmt.Errorf("store: reading the command rates cursor: %w", err)
	}
	if err := db.read().queryRow(ctx, `SELECT seq FROM audit_head WHERE id = 1`).Scan(&head); err != nil {
		return 0, false, fmt.Errorf("store: reading the audit head: %w", err)
	}
	if head <= cur {
		return 0, false, nil
	}
	from := cur
	start := now.Add(-RateWindow)
	if at, err := s.auditTime(ctx, cur+1); err != nil {
		return 0, false, err
	} else if at.Before(start) {
		// Entries older than the window are skipped, not counted.
		first, err := s.firstAuditSince(ctx, cur+1, head, start)
		if err != nil {
			return 0, false, err
		}
		from = first - 1
	}
	hi := min(head, from+rollupChunk)
	counts := map[rateKey]int64{}
	rs, err := db.read().query(ctx, `SELECT at, action, details FROM audit_log WHERE seq > $1 AND seq <= $2
		AND action IN ('router.command.accepted', 'router.command.refused', 'router.command.quarantined')`, from, hi)
	if err != nil {
		return 0, false, fmt.Errorf("store: reading audit entries %d-%d: %w", from+1, hi, err)
	}
	for rs.Next() {
		var at timeCol
		var action, details string
		if err := rs.Scan(&at, &action, &details); err != nil {
			rs.Close()
			return 0, false, fmt.Errorf("store: reading audit entries %d-%d: %w", from+1, hi, err)
		}
		counts[rateKeyOf(at.t, action, details)]++
		counted++
	}
	rs.Close()
	if err := rs.Err(); err != nil {
		return 0, false, fmt.Errorf("store: reading audit entries %d-%d: %w", from+1, hi, err)
	}
	err = db.inTx(ctx, func(tx dbtx) error {
		n, err := tx.exec(ctx, `UPDATE command_rates_cursor SET seq = $1 WHERE id = 1 AND seq = $2`, hi, cur)
		if err != nil {
			return fmt.Errorf("store: moving the command rates cursor: %w", err)
		}
		if n != 1 {
			counted = 0 // another dashboard counted them
			return nil
		}
		rows := make([][]any, 0, len(counts))
		for k, n := range counts {
			rows = append(rows, []any{dbTime(time.Unix(k.minute, 0)), k.outcome, k.stage, k.reason, n})
		}
		if len(rows) > 0 {
			if err := insertRows(ctx, tx, `INSERT INTO command_rates (minute, outcome, stage, reason, n) VALUES `, `($1, $2, $3, $4, $5)`,
				` ON CONFLICT (minute, outcome, stage, reason) DO UPDATE SET n = command_rates.n + excluded.n`, rows); err != nil {
				return fmt.Errorf("store: recording command rates: %w", err)
			}
		}
		if _, err := tx.exec(ctx, `DELETE FROM command_rates WHERE minute < $1`, dbTime(now.Add(-RateRetention))); err != nil {
			return fmt.Errorf("store: deleting old command rates: %w", err)
		}
		return nil
	})
	if err != nil {
		return 0, false, err
	}
	return counted, hi < head, nil
}

// rateKeyOf is the rollup row an audit entry counts in.
func rateKeyOf(at time.Time, action, details string) rateKey {
	k := rateKey{minute: at.Truncate(time.Minute).Unix(), outcome: rateActions[action]}
	var d struct {
		Kind  string `json:"kind"`
		Stage string `json:"stage"`
	}
	_ = json.Unmarshal([]byte(details), &d) // written by the router: a malformed one counts under no stage
	switch k.outcome {
	case RateAccepted:
		k.stage = "admit"
	case RateQuarantined:
		k.stage, k.reason = "admit", d.Kind
	default:
		k.stage, k.reason = d.Stage, d.Kind
		if k.stage == "" {
			k.stage = RateStageRequest
		}
	}
	return k
}

// auditTime returns the time of audit entry seq.
func (s *OperatorStore) auditTime(ctx context.Context, seq int64) (time.Time, error) {
	var at timeCol
	if err := s.db.read().queryRow(ctx, `SELECT at FROM audit_log WHERE seq = $1`, seq).Scan(&at); err != nil {
		return time.Time{}, fmt.Errorf("store: reading the time of audit entry %d: %w", seq, err)
	}
	return at.t, nil
}

// firstAuditSince returns the first sequence number in [lo, hi] whose
// entry is not before t (hi+1 when none), bisecting: entries are appended
// in time order, give or take the clocks of the processes appending,
// which moves the answer by a few entries at most.
func (s *OperatorStore) firstAuditSince(ctx context.Context, lo, hi int64, t time.Time) (int64, error) {
	hi++
	for lo < hi {
		mid := lo + (hi-lo)/2
		at, err := s.auditTime(ctx, mid)
		if err != nil {
			return 0, err
		}
		if at.Before(t) {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo, nil
}

// CommandRates returns the rolled-up counts of the minutes from since on,
// oldest first.
func (s *OperatorStore) CommandRates(ctx context.Context, since time.Time) ([]CommandRate, error) {
	rs, err := s.db.read().query(ctx, `SELECT minute, outcome, stage, reason, n FROM command_rates WHERE minute >= $1
		ORDER BY minute, outcome, stage, reason`, dbTime(since.Truncate(time.Minute)))
	if err != nil {
		return nil, fmt.Errorf("store: reading command rates: %w", err)
	}
	defer rs.Close()
	var out []CommandRate
	for rs.Next() {
		var r CommandRate
		var m timeCol
		if err := rs.Scan(&m, &r.Outcome, &r.Stage, &r.Reason, &r.Count); err != nil {
			return nil, fmt.Errorf("store: reading command rates: %w", err)
		}
		r.Minute = m.t
		out = append(out, r)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("store: reading command rates: %w", err)
	}
	return out, nil
}
