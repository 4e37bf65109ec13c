package store

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestOperatorSessions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *DB) {
		ctx := t.Context()
		ops := db.Operator()
		now := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
		sum := sha256.Sum256([]byte("cookie value"))
		id := hex.EncodeToString(sum[:])
		ss := Session{IDSHA256: id, Operator: "alice", CSRF: strings.Repeat("c", 43), CreatedAt: now, LastSeen: now, ExpiresAt: now.Add(12 * time.Hour)}
		login := AuditEvent{Time: now, Actor: "alice", Action: "operator.login", Object: "alice", Outcome: OutcomeSuccess}
		if err := ops.CreateSession(ctx, ss, login); err != nil {
			t.Fatal(err)
		}
		if err := ops.CreateSession(ctx, ss); !errors.Is(err, ErrExists) {
			t.Errorf("same session twice: %v, want ErrExists", err)
		}
		bad := ss
		bad.IDSHA256 = "cookie value"
		if err := ops.CreateSession(ctx, bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("a raw cookie as the id: %v, want ErrInvalid", err)
		}
		got, err := ops.Session(ctx, id, now.Add(time.Minute), 30*time.Minute)
		if err != nil || got.Operator != "alice" || got.CSRF != ss.CSRF || !got.ExpiresAt.Equal(ss.ExpiresAt) {
			t.Fatalf("Session = %+v, %v", got, err)
		}
		if _, err := ops.Session(ctx, id, now.Add(31*time.Minute), 30*time.Minute); !errors.Is(err, ErrNotFound) {
			t.Errorf("idle for 31 minutes of 30: %v, want ErrNotFound", err)
		}
		if err := ops.TouchSession(ctx, id, now.Add(20*time.Minute)); err != nil {
			t.Fatal(err)
		}
		if _, err := ops.Session(ctx, id, now.Add(31*time.Minute), 30*time.Minute); err != nil {
			t.Errorf("touched at 20 minutes, read at 31: %v", err)
		}
		if _, err := ops.Session(ctx, id, now.Add(12*time.Hour), 24*time.Hour); !errors.Is(err, ErrNotFound) {
			t.Errorf("at its expiry: %v, want ErrNotFound", err)
		}
		if n, err := ops.DeleteSessionsBefore(ctx, now.Add(40*time.Minute), 30*time.Minute); err != nil || n != 0 {
			t.Errorf("sweep with the session live: %d, %v", n, err)
		}
		logout := AuditEvent{Time: now, Actor: "alice", Action: "operator.logout", Object: "alice", Outcome: OutcomeSuccess}
		if err := ops.DeleteSession(ctx, id, logout); err != nil {
			t.Fatal(err)
		}
		if err := ops.DeleteSession(ctx, id, logout); !errors.Is(err, ErrNotFound) {
			t.Errorf("second logout: %v, want ErrNotFound", err)
		}
		if _, err := ops.Session(ctx, id, now, time.Hour); !errors.Is(err, ErrNotFound) {
			t.Errorf("after logout: %v", err)
		}
		ss.IDSHA256 = strings.Repeat("ab", 32)
		if err := ops.CreateSession(ctx, ss); err != nil {
			t.Fatal(err)
		}
		if n, err := ops.DeleteSessionsBefore(ctx, now.Add(13*time.Hour), time.Hour); err != nil || n != 1 {
			t.Errorf("sweep after expiry: %d, %v", n, err)
		}
	})
}

func TestSearchAudit(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *DB) {
		ctx := t.Context()
		t0 := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
		for i, e := range []struct{ actor, action, object string }{
			{"alice", "anomaly.release", "Q-1"}, {"bob", "anomaly.delete", "Q-2"}, {"alice", "anomaly.threshold.set", "t1"},
			{"alice (viewer)", "anomalyx.other", "Q-1"}, {"router", "command.accepted", "90B3D51F30010000"},
		} {
			if _, err := db.AppendAudit(ctx, AuditEvent{Time: t0.Add(time.Duration(i) * time.Minute), Actor: e.actor, Action: e.action,
				Object: e.object, Outcome: OutcomeSuccess}); err != nil {
				t.Fatal(err)
			}
		}
		seqs := func(q AuditQuery) []int64 {
			t.Helper()
			es, err := db.SearchAudit(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			var out []int64
			for _, e := range es {
				out = append(out, e.Seq)
			}
			return out
		}
		for _, c := range []struct {
			q    AuditQuery
			want []int64
		}{
			{AuditQuery{}, []int64{5, 4, 3, 2, 1}},
			{AuditQuery{Actor: "alice"}, []int64{4, 3, 1}},
			{AuditQuery{Actor: "alice (viewer)"}, []int64{4}},
			{AuditQuery{Actor: "ali"}, nil},
			{AuditQuery{Action: "anomaly"}, []int64{3, 2, 1}}, // not anomalyx.other
			{AuditQuery{Action: "anomaly.release"}, []int64{1}},
			{AuditQuery{Object: "Q-1", Actor: "alice"}, []int64{4, 1}},
			{AuditQuery{From: t0.Add(time.Minute), To: t0.Add(3 * time.Minute)}, []int64{3, 2}},
			{AuditQuery{Before: 4, Limit: 2}, []int64{3, 2}},
			{AuditQuery{Actor: "nobody"}, nil},
		} {
			if got := seqs(c.q); !slices.Equal(got, c.want) {
				t.Errorf("SearchAudit(%+v) = %v, want %v", c.q, got, c.want)
			}
		}
	})
}
