package store

// This file is the persistence of package anomaly (threshold anomaly
// detection and quarantine, GBCS section 10): anomaly.Store on both
// backends, and anomaly.Notifier (LISTEN/NOTIFY) on PostgreSQL.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/metertrust/metertrust/anomaly"
	"github.com/metertrust/metertrust/internal/groupcommit"
	"github.com/metertrust/metertrust/smki"
)

// AnomalyStore keeps anomaly detection's counted events, thresholds and
// quarantine records in a DB. It implements anomaly.Store on SQLite and
// PostgreSQL, and anomaly.Notifier on PostgreSQL. Get one with DB.Anomaly.
//
// Check-and-record is atomic across every process sharing the database and
// group-committed within each: on SQLite the single writer connection runs
// a group in a BEGIN IMMEDIATE transaction; on PostgreSQL a group's
// transaction first takes the transaction advisory locks of all its keys,
// in ascending order.
type AnomalyStore struct {
	db *DB

	chanOnce sync.Once
	channel  string
	chanErr  error

	listening atomic.Int64

	// checks group-commits check-and-record: the first check to arrive
	// runs a transaction, and the checks that arrive while it commits queue
	// up and go together in its next one. Inside the transaction each check
	// counts and inserts in turn, so each sees the events of the checks
	// before it and counting stays exact; a caller learns its outcome only
	// once the transaction is durable. One commit (one fsync) then serves a
	// group instead of one check. Once queued, a check is decided even if
	// its caller's context ends, as the router's group ledger does: the
	// other checks of the group must not fail with it.
	checks groupcommit.Group[*pendingCheck]
}

// maxCheckGroup bounds the checks one transaction takes.
const maxCheckGroup = 256

// pendingCheck is one check-and-record of a group (decidePostgres,
// decideSQLite) and, once decided, its outcome.
type pendingCheck struct {
	ev       anomaly.Event
	counters []anomaly.Counter
	out      anomaly.Outcome
}

var (
	_ anomaly.Store    = (*AnomalyStore)(nil)
	_ anomaly.Notifier = (*AnomalyStore)(nil)
)

// Anomaly returns the anomaly detection store on db. Each call returns a
// new handle; they share the database.
func (db *DB) Anomaly() *AnomalyStore {
	s := &AnomalyStore{db: db}
	s.checks.Commit, s.checks.Max = s.decideGroup, maxCheckGroup
	s.checks.Observe = db.observeGroup(func(m *dbMetrics) (prometheus.Observer, prometheus.Observer) { return m.groupAnomaly, m.sizeAnomaly })
	return s
}

// Notifier returns s as an anomaly.Notifier on PostgreSQL, and nil on
// SQLite, whose single process needs none.
func (s *AnomalyStore) Notifier() anomaly.Notifier {
	if s.db.pool == nil {
		return nil
	}
	return s
}

// advisoryLockID maps a counter key to a PostgreSQL advisory lock ID. Two
// keys sharing an ID only serialise more than needed.
func advisoryLockID(key string) int64 {
	h := fnv.New64a()
	h.Write([]byte("metertrust.anomaly."))
	h.Write([]byte(key))
	return int64(h.Sum64())
}

// lockIDs returns the sorted, distinct lock IDs of the keys, so that every
// transaction takes its locks in the same order and none can deadlock.
func lockIDs(keys []string) []int64 {
	ids := make([]int64, 0, len(keys))
	for _, k := range keys {
		ids = append(ids, advisoryLockID(k))
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

func counterKeys(cs []anomaly.Counter) []string {
	keys := make([]string, len(cs))
	for i, c := range cs {
		keys[i] = c.Key
	}
	return keys
}

func validEvent(ev anomaly.Event) error {
	if ev.RequestID == "" || len(ev.Keys) == 0 || ev.At.IsZero() {
		return fmt.Errorf("%w: anomaly event needs a request ID, keys and a time", ErrInvalid)
	}
	return nil
}

// CheckAndRecord implements anomaly.Store.
func (s *AnomalyStore) CheckAndRecord(ctx context.Context, ev anomaly.Event, counters []anomaly.Counter) (anomaly.Outcome, error) {
	if err := validEvent(ev); err != nil {
		return anomaly.Outcome{}, err
	}
	if err := ctx.Err(); err != nil {
		return anomaly.Outcome{}, fmt.Errorf("store: anomaly check-and-record for %s: %w", ev.RequestID, err)
	}
	p := &pendingCheck{ev: ev, counters: counters}
	if err := s.checks.Do(ctx, p); err != nil {
		return anomaly.Outcome{}, fmt.Errorf("store: anomaly check-and-record for %s: %w", ev.RequestID, err)
	}
	return p.out, nil
}

// decideGroup decides a group of checks in one transaction, the checks.Commit
// of s. On PostgreSQL the transaction first takes the advisory locks of
// every counter and event key of the group, in one statement and in
// ascending order (so that no two routers' groups can deadlock), and counts
// after that: under READ COMMITTED each statement then sees every event
// committed by the previous holder of a lock, in any process.
func (s *AnomalyStore) decideGroup(ctx context.Context, batch []*pendingCheck) error {
	return s.db.inTx(ctx, func(tx dbtx) error {
		if ptx, ok := asPG(tx); ok {
			return decidePostgres(ctx, ptx, batch)
		}
		return decideSQLite(ctx, tx, batch)
	})
}

// outcome returns the first counter whose count reached its limit.
func outcome(counters []anomaly.Counter, counts []int64) anomaly.Outcome {
	for i, c := range counters {
		if counts[i] >= c.Limit {
			return anomaly.Outcome{Breached: i, Count: counts[i]}
		}
	}
	return anomaly.Outcome{Breached: -1}
}

// decidePostgres decides a group in tx in one round trip: a pgx batch of
// the advisory locks of all the group's keys, then one statement per check
// that counts its windows and, only if every count is below its limit,
// advances its keys' heads and inserts its event rows. The statements run in
// order in the one transaction, so each sees the events of the checks before
// it.
func decidePostgres(ctx context.Context, tx pgTx, batch []*pendingCheck) error {
	ptx, ok := tx.c.(pgx.Tx)
	if !ok {
		return errors.New("store: anomaly group check outside a transaction")
	}
	b := &pgx.Batch{}
	var keys []string
	for _, p := range batch {
		keys = append(keys, counterKeys(p.counters)...)
		keys = append(keys, p.ev.Keys...)
	}
	locks := lockIDs(keys)
	if len(locks) > 0 {
		q, args := lockStatement(locks)
		b.Queue(q, args...)
	}
	for _, p := range batch {
		q, args := checkStatement(p.ev, p.counters)
		b.Queue(q, args...)
	}
	br := ptx.SendBatch(ctx, b)
	err := func() error {
		if len(locks) > 0 {
			if _, err := br.Exec(); err != nil {
				return fmt.Errorf("taking counter locks: %w", err)
			}
		}
		for _, p := range batch {
			counts := make([]int64, len(p.counters))
			var inserted int64
			dest := []any{&inserted}
			for i := range counts {
				dest = append(dest, &counts[i])
			}
			if err := br.QueryRow().Scan(dest...); err != nil {
				return fmt.Errorf("counting for %s: %w", p.ev.RequestID, err)
			}
			p.out = outcome(p.counters, counts)
			if p.out.Passed() != (inserted > 0) {
				return fmt.Errorf("check %s: inserted %d rows for outcome %+v", p.ev.RequestID, inserted, p.out)
			}
		}
		return nil
	}()
	if cerr := br.Close(); err == nil && cerr != nil {
		err = cerr
	}
	return err
}

// checkStatement is one check-and-record on PostgreSQL as one statement:
// it counts every window and, only if every count is below its limit,
// advances the heads of the event's keys and inserts one numbered event row
// per key. It returns the number of rows inserted and each count.
func checkStatement(ev anomaly.Event, counters []anomaly.Counter) (string, []any) {
	var q strings.Builder
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	q.WriteString("WITH c AS (SELECT 0 AS none")
	for i, c := range counters {
		fmt.Fprintf(&q, ", %s AS c%d", countTerm(arg(c.Key)+"::text", arg(c.Since.UnixMicro())+"::bigint"), i)
	}
	fmt.Fprintf(&q, "), up AS (INSERT INTO anomaly_counters (counter_key, seq, last_at_us) SELECT k, 1, %s::bigint FROM unnest(%s::text[]) AS k, c WHERE true",
		arg(ev.At.UnixMicro()), arg(distinctKeys(ev.Keys)))
	for i, c := range counters {
		fmt.Fprintf(&q, " AND c.c%d < %s::bigint", i, arg(c.Limit))
	}
	fmt.Fprintf(&q, ` ON CONFLICT (counter_key) DO UPDATE SET seq = anomaly_counters.seq + 1,
		last_at_us = greatest(anomaly_counters.last_at_us, excluded.last_at_us)
		RETURNING counter_key, seq, last_at_us),
		ins AS (INSERT INTO anomaly_events (counter_key, seq, at_us, request_id) SELECT counter_key, seq, last_at_us, %s::text FROM up RETURNING 1)
		SELECT (SELECT count(*) FROM ins)`, arg(ev.RequestID))
	for i := range counters {
		fmt.Fprintf(&q, ", c%d", i)
	}
	q.WriteString(" FROM c")
	return q.String(), args
}

// lockStatement takes the PostgreSQL transaction advisory locks, in the
// order given, in one statement.
func lockStatement(locks []int64) (string, []any) {
	var q strings.Builder
	args := make([]any, len(locks))
	q.WriteString("SELECT ")
	for i, id := range locks {
		if i > 0 {
			q.WriteString(", ")
		}
		fmt.Fprintf(&q, "pg_advisory_xact_lock($%d)", i+1)
		args[i] = id
	}
	return q.String(), args
}

// lockCounters takes, in tx, the PostgreSQL transaction advisory locks of
// keys, in ascending order of lock ID, in one statement.
func lockCounters(ctx context.Context, tx dbtx, keys []string) error {
	locks := lockIDs(keys)
	if len(locks) == 0 {
		return nil
	}
	q, args := lockStatement(locks)
	if _, err := tx.exec(ctx, q, args...); err != nil {
		return fmt.Errorf("taking counter locks: %w", err)
	}
	return nil
}

// countTerm is the SQL expression for the number of events of key after
// since: the head's sequence number less that of the first event after
// since, plus one; zero when there is no such event. Two index seeks, see
// migration 0030.
func countTerm(key, since string) string {
	return "coalesce((SELECT h.seq FROM anomaly_counters h WHERE h.counter_key = " + key + ")" +
		" - (SELECT e.seq FROM anomaly_events e WHERE e.counter_key = " + key + " AND e.at_us > " + since +
		" ORDER BY e.at_us, e.seq LIMIT 1) + 1, 0)"
}

// countEvents counts the events in each counter's window, in one query.
// The count is exact and its cost does not depend on how many events the
// window holds.
func countEvents(ctx context.Context, q dbtx, counters []anomaly.Counter) ([]int64, error) {
	counts := make([]int64, len(counters))
	if len(counters) == 0 {
		return counts, nil
	}
	var sb strings.Builder
	var args []any
	dest := make([]any, len(counters))
	sb.WriteString("SELECT ")
	for i, c := range counters {
		if i > 0 {
			sb.WriteString(", ")
		}
		args = append(args, c.Key, c.Since.UnixMicro())
		sb.WriteString(countTerm(fmt.Sprintf("$%d", len(args)-1), fmt.Sprintf("$%d", len(args))))
		dest[i] = &counts[i]
	}
	if err := q.queryRow(ctx, sb.String(), args...).Scan(dest...); err != nil {
		return nil, fmt.Errorf("counting: %w", err)
	}
	return counts, nil
}

// distinctKeys returns keys without repeats, in their first order: an event
// counts once under each of its keys.
func distinctKeys(keys []string) []string {
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out
}

// bumpCounters is the upsert that advances the head of each key it is given
// and returns each key's new sequence number and recorded time: the later of
// the event's time ($1) and the key's latest, so that recorded times never go
// backwards within a key.
const bumpCounters = `INSERT INTO anomaly_counters (counter_key, seq, last_at_us) VALUES %s
	ON CONFLICT (counter_key) DO UPDATE SET seq = anomaly_counters.seq + 1,
	last_at_us = CASE WHEN excluded.last_at_us > anomaly_counters.last_at_us
		THEN excluded.last_at_us ELSE anomaly_counters.last_at_us END
	RETURNING counter_key, seq, last_at_us`

// insertEvents records ev under each of its keys: it advances the keys'
// heads and inserts one numbered event row per key. Callers hold whatever
// serialises check-and-record on their backend.
func insertEvents(ctx context.Context, q dbtx, ev anomaly.Event) error {
	keys := distinctKeys(ev.Keys)
	args := []any{ev.At.UnixMicro()}
	var vals strings.Builder
	for i, k := range keys {
		if i > 0 {
			vals.WriteString(", ")
		}
		args = append(args, k)
		fmt.Fprintf(&vals, "($%d, 1, $1)", len(args))
	}
	rs, err := q.query(ctx, fmt.Sprintf(bumpCounters, vals.String()), args...)
	if err != nil {
		return fmt.Errorf("recording event %s: advancing counters: %w", ev.RequestID, err)
	}
	defer rs.Close()
	ins := []any{ev.RequestID}
	var sb strings.Builder
	sb.WriteString(`INSERT INTO anomaly_events (counter_key, seq, at_us, request_id) VALUES `)
	for rs.Next() {
		var key string
		var seq, at int64
		if err := rs.Scan(&key, &seq, &at); err != nil {
			return fmt.Errorf("recording event %s: advancing counters: %w", ev.RequestID, err)
		}
		if len(ins) > 1 {
			sb.WriteString(", ")
		}
		ins = append(ins, key, seq, at)
		fmt.Fprintf(&sb, "($%d, $%d, $%d, $1)", len(ins)-2, len(ins)-1, len(ins))
	}
	if err := rs.Err(); err != nil {
		return fmt.Errorf("recording event %s: advancing counters: %w", ev.RequestID, err)
	}
	rs.Close()
	if len(ins)-1 != 3*len(keys) {
		return fmt.Errorf("recording event %s: %d counters advanced for %d keys", ev.RequestID, (len(ins)-1)/3, len(keys))
	}
	if _, err := q.exec(ctx, sb.String(), ins...); err != nil {
		return fmt.Errorf("recording event %s: %w", ev.RequestID, err)
	}
	return nil
}

// CountEvents implements anomaly.Store.
func (s *AnomalyStore) CountEvents(ctx context.Context, counters []anomaly.Counter) ([]int64, error) {
	counts, err := countEvents(ctx, s.db.read(), counters)
	if err != nil {
		return nil, fmt.Errorf("store: anomaly counts: %w", err)
	}
	return counts, nil
}

// PruneEvents implements anomaly.Store.
func (s *AnomalyStore) PruneEvents(ctx context.Context, before time.Time) (int64, error) {
	n, err := s.db.write().exec(ctx, `DELETE FROM anomaly_events WHERE at_us < $1`, before.UnixMicro())
	if err != nil {
		return 0, fmt.Errorf("store: pruning anomaly events: %w", err)
	}
	return n, nil
}

func euiText(e smki.EUI) string {
	if e.IsZero() {
		return ""
	}
	return e.String()
}

func parseEUIText(s string) (smki.EUI, error) {
	if s == "" {
		return smki.EUI{}, nil
	}
	return smki.ParseEUI(s)
}

// Thresholds implements anomaly.Store.
func (s *AnomalyStore) Thresholds(ctx context.Context) ([]anomaly.Threshold, error) {
	rs, err := s.db.read().query(ctx, `SELECT id, scope, user_eui, service_ref, limit_count, window_us, fixed, attribute,
		min_value, max_value, set_by, set_at FROM anomaly_thresholds ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("store: reading anomaly thresholds: %w", err)
	}
	defer rs.Close()
	var out []anomaly.Threshold
	for rs.Next() {
		var t anomaly.Threshold
		var scope, user string
		var window int64
		var setAt timeCol
		var fixed int64
		if err := rs.Scan(&t.ID, &scope, &user, &t.ServiceRef, &t.Limit, &window, &fixed, &t.Attribute, &t.Min, &t.Max, &t.SetBy, &setAt); err != nil {
			return nil, fmt.Errorf("store: reading anomaly thresholds: %w", err)
		}
		t.Scope, t.Window, t.Fixed, t.SetAt = anomaly.Scope(scope), time.Duration(window)*time.Microsecond, fixed != 0, setAt.t
		if t.User, err = parseEUIText(user); err != nil {
			return nil, fmt.Errorf("store: anomaly threshold %s: %w", t.ID, err)
		}
		out = append(out, t)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("store: reading anomaly thresholds: %w", err)
	}
	return out, nil
}

// PutThreshold implements anomaly.Store.
func (s *AnomalyStore) PutThreshold(ctx context.Context, t anomaly.Threshold, a anomaly.AuditEntry) error {
	if t.ID == "" || t.SetAt.IsZero() {
		return fmt.Errorf("%w: anomaly threshold needs an ID and a time set", ErrInvalid)
	}
	err := s.db.inTx(ctx, func(tx dbtx) error {
		var fixed int64
		if t.Fixed {
			fixed = 1
		}
		if _, err := tx.exec(ctx, `INSERT INTO anomaly_thresholds (id, scope, user_eui, service_ref, limit_count,
			window_us, attribute, min_value, max_value, set_by, set_at, fixed)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
			ON CONFLICT (id) DO UPDATE SET scope = excluded.scope, user_eui = excluded.user_eui,
			service_ref = excluded.service_ref, limit_count = excluded.limit_count, window_us = excluded.window_us,
			fixed = excluded.fixed,
			attribute = excluded.attribute, min_value = excluded.min_value, max_value = excluded.max_value,
			set_by = excluded.set_by, set_at = excluded.set_at`,
			t.ID, string(t.Scope), euiText(t.User), t.ServiceRef, t.Limit, t.Window.Microseconds(), t.Attribute,
			t.Min, t.Max, t.SetBy, t.SetAt, fixed); err != nil {
			return fmt.Errorf("writing: %w", err)
		}
		return appendAuditTx(ctx, tx, a)
	})
	if err != nil {
		return fmt.Errorf("store: putting anomaly threshold %s: %w", t.ID, err)
	}
	return nil
}

// DeleteThreshold implements anomaly.Store.
func (s *AnomalyStore) DeleteThreshold(ctx context.Context, id string, a anomaly.AuditEntry) error {
	err := s.db.inTx(ctx, func(tx dbtx) error {
		n, err := tx.exec(ctx, `DELETE FROM anomaly_thresholds WHERE id = $1`, id)
		if err != nil {
			return err
		}
		if n == 0 {
			return anomaly.ErrNotFound
		}
		return appendAuditTx(ctx, tx, a)
	})
	if err != nil {
		return fmt.Errorf("store: deleting anomaly threshold %s: %w", id, err)
	}
	return nil
}

// AddQuarantine implements anomaly.Store.
func (s *AnomalyStore) AddQuarantine(ctx context.Context, q anomaly.Quarantine, a anomaly.AuditEntry) error {
	err := s.db.inTx(ctx, func(tx dbtx) error {
		if err := insertQuarantine(ctx, tx, q); err != nil {
			return err
		}
		return appendAuditTx(ctx, tx, a)
	})
	if err != nil {
		return fmt.Errorf("store: adding quarantine %s: %w", q.Ref, err)
	}
	return nil
}

// insertQuarantine stores a new quarantine record in tx; a repeated
// reference gives anomaly.ErrConflict.
func insertQuarantine(ctx context.Context, tx dbtx, q anomaly.Quarantine) error {
	st, err := quarantineStatement(q)
	if err != nil {
		return err
	}
	if _, err := tx.exec(ctx, st.q, st.args...); err != nil {
		if errors.Is(classify(err), errUnique) {
			return anomaly.ErrConflict
		}
		return err
	}
	return nil
}

// quarantineStatement is the statement that stores q.
func quarantineStatement(q anomaly.Quarantine) (statement, error) {
	attrs, err := json.Marshal(q.Attributes)
	if err != nil {
		return statement{}, fmt.Errorf("%w: quarantine %s attributes: %v", ErrInvalid, q.Ref, err)
	}
	if q.Attributes == nil {
		attrs = []byte("{}")
	}
	return statement{`INSERT INTO anomaly_quarantine (ref, command_id, user_eui, user_role, service_ref,
		target, kind, threshold_id, detail, command, attributes, at, state, created_at, decided_by, decided_at, reason)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
		[]any{q.Ref, q.CommandID, euiText(q.User), string(q.UserRole), q.ServiceRef, euiText(q.Target), string(q.Kind),
			q.ThresholdID, q.Detail, q.Command, string(attrs), q.At, string(q.State), q.CreatedAt, q.DecidedBy,
			q.DecidedAt, q.Reason}}, nil
}

const quarantineColumns = `ref, command_id, user_eui, user_role, service_ref, target, kind, threshold_id, detail,
	command, attributes, at, state, created_at, decided_by, decided_at, reason,
	forward_state, forward_attempts, forward_next, forwarded_at, forward_error, forwarded_command`

func scanQuarantine(r interface{ Scan(...any) error }) (anomaly.Quarantine, error) {
	var q anomaly.Quarantine
	var user, role, target, kind, attrs, state, fstate string
	var at, created, decided, fnext, fat timeCol
	var attempts int64
	if err := r.Scan(&q.Ref, &q.CommandID, &user, &role, &q.ServiceRef, &target, &kind, &q.ThresholdID, &q.Detail,
		&q.Command, &attrs, &at, &state, &created, &q.DecidedBy, &decided, &q.Reason,
		&fstate, &attempts, &fnext, &fat, &q.Forwarding.Error, &q.Forwarding.CommandID); err != nil {
		return q, err
	}
	q.UserRole, q.Kind, q.State = smki.UserRole(role), anomaly.Kind(kind), anomaly.State(state)
	q.At, q.CreatedAt, q.DecidedAt = at.t, created.t, decided.t
	q.Forwarding.State, q.Forwarding.Attempts = anomaly.ForwardState(fstate), int(attempts)
	q.Forwarding.Next, q.Forwarding.At = fnext.t, fat.t
	var err error
	if q.User, err = parseEUIText(user); err != nil {
		return q, fmt.Errorf("quarantine %s user: %w", q.Ref, err)
	}
	if q.Target, err = parseEUIText(target); err != nil {
		return q, fmt.Errorf("quarantine %s target: %w", q.Ref, err)
	}
	if err := json.Unmarshal([]byte(attrs), &q.Attributes); err != nil {
		return q, fmt.Errorf("quarantine %s attributes: %w", q.Ref, err)
	}
	if len(q.Attributes) == 0 {
		q.Attributes = nil
	}
	return q, nil
}

// Quarantine implements anomaly.Store.
func (s *AnomalyStore) Quarantine(ctx context.Context, ref string) (anomaly.Quarantine, error) {
	return getQuarantine(ctx, s.db.read(), ref)
}

func getQuarantine(ctx context.Context, q dbtx, ref string) (anomaly.Quarantine, error) {
	rec, err := scanQuarantine(q.queryRow(ctx, `SELECT `+quarantineColumns+` FROM anomaly_quarantine WHERE ref = $1`, ref))
	if errors.Is(err, errNoRows) {
		return anomaly.Quarantine{}, fmt.Errorf("quarantine %s: %w", ref, anomaly.ErrNotFound)
	}
	if err != nil {
		return anomaly.Quarantine{}, fmt.Errorf("store: reading quarantine %s: %w", ref, err)
	}
	return rec, nil
}

// ListQuarantine implements anomaly.Store.
func (s *AnomalyStore) ListQuarantine(ctx context.Context, f anomaly.Filter) ([]anomaly.Quarantine, error) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if !f.User.IsZero() {
		add("user_eui = $%d", f.User.String())
	}
	if f.State != "" {
		add("state = $%d", string(f.State))
	}
	if !f.Before.IsZero() {
		args = append(args, f.Before, f.BeforeRef)
		where = append(where, fmt.Sprintf("(created_at < $%d OR (created_at = $%d AND ref < $%d))", len(args)-1, len(args)-1, len(args)))
	}
	limit := f.Limit
	if limit <= 0 || limit > anomaly.MaxList {
		limit = anomaly.DefaultList
	}
	q := `SELECT ` + quarantineColumns + ` FROM anomaly_quarantine`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	args = append(args, limit)
	q += fmt.Sprintf(` ORDER BY created_at DESC, ref DESC LIMIT $%d`, len(args))
	rs, err := s.db.read().query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: listing quarantine: %w", err)
	}
	defer rs.Close()
	var out []anomaly.Quarantine
	for rs.Next() {
		rec, err := scanQuarantine(rs)
		if err != nil {
			return nil, fmt.Errorf("store: listing quarantine: %w", err)
		}
		out = append(out, rec)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("store: listing quarantine: %w", err)
	}
	return out, nil
}

// DecideQuarantine implements anomaly.Store. The conditional UPDATE locks
// the row; a concurrent decision waits for it and then finds the state
// changed, so exactly one decision wins.
func (s *AnomalyStore) DecideQuarantine(ctx context.Context, d anomaly.Decide, a anomaly.AuditEntry) (anomaly.Quarantine, error) {
	if d.To != anomaly.StateReleased && d.To != anomaly.StateDeleted {
		return anomaly.Quarantine{}, fmt.Errorf("%w: quarantine %s cannot move to state %q", ErrInvalid, d.Ref, d.To)
	}
	var rec anomaly.Quarantine
	err := s.db.inTx(ctx, func(tx dbtx) error {
		var fstate string
		var fnext time.Time
		if d.To == anomaly.StateReleased {
			fstate, fnext = string(anomaly.ForwardPending), d.At // due at once
		}
		n, err := tx.exec(ctx, `UPDATE anomaly_quarantine SET state = $2, decided_by = $3, decided_at = $4, reason = $5,
			forward_state = $6, forward_next = $7
			WHERE ref = $1 AND state = 'quarantined'`, d.Ref, string(d.To), d.By, d.At, d.Reason, fstate, dbTime(fnext))
		if err != nil {
			return err
		}
		if n == 0 {
			cur, err := getQuarantine(ctx, tx, d.Ref)
			if err != nil {
				return err
			}
			return fmt.Errorf("quarantine %s is already %s: %w", d.Ref, cur.State, anomaly.ErrConflict)
		}
		if d.Record != nil {
			if s.db.pool != nil {
				// Record under the same locks as check-and-record.
				if err := lockCounters(ctx, tx, d.Record.Keys); err != nil {
					return err
				}
			}
			if err := insertEvents(ctx, tx, *d.Record); err != nil {
				return err
			}
		}
		if err := appendAuditTx(ctx, tx, a); err != nil {
			return err
		}
		rec, err = getQuarantine(ctx, tx, d.Ref)
		return err
	})
	if err != nil {
		return anomaly.Quarantine{}, fmt.Errorf("store: deciding quarantine %s: %w", d.Ref, err)
	}
	return rec, nil
}

// ClaimReleases claims, for one forwarding attempt each, up to limit
// released records whose forwarding is pending and due at now, oldest due
// first: each claimed record's Forwarding.Attempts goes up by one and its
// Forwarding.Next becomes until, the claim's lapse, after which another
// sweeper may claim it again. The claim is one conditional UPDATE; on
// PostgreSQL the rows are locked with SKIP LOCKED and the condition is
// re-checked after any wait, so two routers never claim the same attempt.
// The records are returned as claimed.
func (s *AnomalyStore) ClaimReleases(ctx context.Context, now, until time.Time, limit int) ([]anomaly.Quarantine, error) {
	if limit <= 0 || limit > anomaly.MaxList {
		limit = anomaly.DefaultList
	}
	lock := ""
	if s.db.pool != nil {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	rs, err := s.db.write().query(ctx, `UPDATE anomaly_quarantine
		SET forward_attempts = forward_attempts + 1, forward_next = $2
		WHERE forward_state = 'pending' AND forward_next <= $1 AND ref IN (
			SELECT ref FROM anomaly_quarantine WHERE forward_state = 'pending' AND forward_next <= $1
			ORDER BY forward_next, ref LIMIT $3`+lock+`)
		RETURNING `+quarantineColumns, dbTime(now), dbTime(until), limit)
	if err != nil {
		return nil, fmt.Errorf("store: claiming released commands: %w", err)
	}
	defer rs.Close()
	var out []anomaly.Quarantine
	for rs.Next() {
		q, err := scanQuarantine(rs)
		if err != nil {
			return nil, fmt.Errorf("store: claiming released commands: %w", err)
		}
		out = append(out, q)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("store: claiming released commands: %w", err)
	}
	slices.SortFunc(out, func(a, b anomaly.Quarantine) int {
		if c := a.DecidedAt.Compare(b.DecidedAt); c != 0 {
			return c
		}
		return strings.Compare(a.Ref, b.Ref)
	})
	return out, nil
}

// ClaimRelease claims the released record ref for one forwarding attempt,
// as ClaimReleases does, if its forwarding is pending and due at now. It
// fails with an error wrapping anomaly.ErrConflict when it is not (another
// sweeper holds it, or its outcome is recorded) and anomaly.ErrNotFound
// for an unknown reference.
func (s *AnomalyStore) ClaimRelease(ctx context.Context, ref string, now, until time.Time) (anomaly.Quarantine, error) {
	q, err := scanQuarantine(s.db.write().queryRow(ctx, `UPDATE anomaly_quarantine
		SET forward_attempts = forward_attempts + 1, forward_next = $3
		WHERE ref = $1 AND forward_state = 'pending' AND forward_next <= $2
		RETURNING `+quarantineColumns, ref, dbTime(now), dbTime(until)))
	if errors.Is(err, errNoRows) {
		cur, err := getQuarantine(ctx, s.db.read(), ref)
		if err != nil {
			return anomaly.Quarantine{}, err
		}
		return anomaly.Quarantine{}, fmt.Errorf("store: released command %s: forwarding %q, not claimable: %w",
			ref, cur.Forwarding.State, anomaly.ErrConflict)
	}
	if err != nil {
		return anomaly.Quarantine{}, fmt.Errorf("store: claiming released command %s: %w", ref, err)
	}
	return q, nil
}

// FinishRelease records the outcome f of forwarding attempt number attempt
// of the released record ref (f.State forwarded or failed, or pending with
// f.Next the retry's due time) and appends a to the audit log, in one
// transaction. It fails with an error wrapping anomaly.ErrConflict, changing
// nothing, when the record is no longer pending on that attempt (the claim
// lapsed and another sweeper took it).
func (s *AnomalyStore) FinishRelease(ctx context.Context, ref string, attempt int, f anomaly.Forwarding, a anomaly.AuditEntry) error {
	switch f.State {
	case anomaly.ForwardForwarded, anomaly.ForwardFailed, anomaly.ForwardPending:
	default:
		return fmt.Errorf("%w: released command %s cannot finish in forwarding state %q", ErrInvalid, ref, f.State)
	}
	err := s.db.inTx(ctx, func(tx dbtx) error {
		n, err := tx.exec(ctx, `UPDATE anomaly_quarantine SET forward_state = $3, forward_next = $4, forwarded_at = $5,
			forward_error = $6, forwarded_command = $7
			WHERE ref = $1 AND forward_state = 'pending' AND forward_attempts = $2`,
			ref, attempt, string(f.State), dbTime(f.Next), dbTime(f.At), f.Error, f.CommandID)
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("attempt %d no longer holds it: %w", attempt, anomaly.ErrConflict)
		}
		return appendAuditTx(ctx, tx, a)
	})
	if err != nil {
		return fmt.Errorf("store: recording the forwarding of released command %s: %w", ref, err)
	}
	return nil
}

func auditEvent(a anomaly.AuditEntry) AuditEvent {
	e := AuditEvent{Time: a.Time, Actor: a.Actor, Action: a.Action, Object: a.Object, Outcome: a.Outcome}
	if a.Details != nil {
		e.Details = make(map[string]any, len(a.Details))
		for k, v := range a.Details {
			e.Details[k] = v
		}
	}
	return e
}

// AppendAudit implements anomaly.Store with DB.AppendAudit.
func (s *AnomalyStore) AppendAudit(ctx context.Context, a anomaly.AuditEntry) error {
	if _, err := s.db.AppendAudit(ctx, auditEvent(a)); err != nil {
		return err
	}
	return nil
}

// appendAuditTx appends a to the audit log inside tx through appendAuditIn,
// the one definition of the chain, so that a change and its audit entry commit
// together.
func appendAuditTx(ctx context.Context, tx dbtx, a anomaly.AuditEntry) error {
	_, err := appendAuditIn(ctx, tx, auditEvent(a))
	return err
}

// notifyChannel returns the NOTIFY channel of this database schema:
// "metertrust_anomaly_" and a hash of current_schema(), so that stores in
// different schemas of one database do not hear each other.
func (s *AnomalyStore) notifyChannel(ctx context.Context) (string, error) {
	s.chanOnce.Do(func() {
		var schema string
		if err := s.db.pool.QueryRow(ctx, `SELECT coalesce(current_schema(), '')`).Scan(&schema); err != nil {
			s.chanErr = fmt.Errorf("store: reading the current schema: %w", err)
			return
		}
		h := sha256.Sum256([]byte(schema))
		s.channel = "metertrust_anomaly_" + hex.EncodeToString(h[:8])
	})
	return s.channel, s.chanErr
}

var errNoNotify = fmt.Errorf("%w: anomaly notifications need PostgreSQL", ErrInvalid)

// Notify implements anomaly.Notifier with pg_notify: every process
// listening on this database schema receives payload once committed.
func (s *AnomalyStore) Notify(ctx context.Context, payload []byte) error {
	if s.db.pool == nil {
		return errNoNotify
	}
	if len(payload) > anomaly.MaxNotifyPayload {
		return fmt.Errorf("%w: notification of %d bytes exceeds %d", ErrInvalid, len(payload), anomaly.MaxNotifyPayload)
	}
	ch, err := s.notifyChannel(ctx)
	if err != nil {
		return err
	}
	if _, err := s.db.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, ch, string(payload)); err != nil {
		return fmt.Errorf("store: notifying anomaly alert: %w", err)
	}
	return nil
}

// Listen implements anomaly.Notifier on a dedicated connection (outside the
// pool) with LISTEN and pgx's WaitForNotification. It returns when ctx is
// done or the connection fails.
func (s *AnomalyStore) Listen(ctx context.Context, fn func(payload []byte)) error {
	if s.db.pool == nil {
		return errNoNotify
	}
	ch, err := s.notifyChannel(ctx)
	if err != nil {
		return err
	}
	conn, err := pgx.ConnectConfig(ctx, s.db.pool.Config().ConnConfig.Copy())
	if err != nil {
		return fmt.Errorf("store: connecting to listen for anomaly alerts: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
		return fmt.Errorf("store: listening for anomaly alerts: %w", err)
	}
	s.listening.Add(1)
	defer s.listening.Add(-1)
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("store: waiting for anomaly alerts: %w", err)
		}
		fn([]byte(n.Payload))
	}
}

// Listening returns the number of Listen calls currently listening, so that
// tests can wait until notifications will be heard.
func (s *AnomalyStore) Listening() int { return int(s.listening.Load()) }
