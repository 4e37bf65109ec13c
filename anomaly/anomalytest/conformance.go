package anomalytest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/metertrust/metertrust/anomaly"
	"github.com/metertrust/metertrust/smki"
)

// TestExact checks that counting is exact across router instances: two
// Detectors, one on each of a and b (two handles on one database, standing
// for two router instances; or the same store twice), each fire a burst of
// 500 checks from 8 goroutines against one user's limit of 200 commands of
// one service reference per hour. Exactly 200 must pass and 800 be
// quarantined, and the store must hold exactly 200 counted events and 800
// quarantine records. The stores must hold no DCC thresholds.
func TestExact(t *testing.T, a, b anomaly.Store) {
	t.Helper()
	const (
		limit      = 200
		perBurst   = 500
		goroutines = 8
	)
	ctx := t.Context()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	seed := uint64(time.Now().UnixNano())
	var user smki.EUI
	for i := range user {
		user[i] = byte(seed >> (8 * i))
	}
	user[0] = 0x90
	at := time.Now().UTC().Truncate(time.Microsecond)
	now := func() time.Time { return at }
	var ds []*anomaly.Detector
	for i, s := range []anomaly.Store{a, b} {
		var key [32]byte
		key[0], key[1] = byte(i), byte(seed)
		d, err := anomaly.New(ctx, anomaly.Config{Store: s, Now: now, Rand: mrand.NewChaCha8(key), Logger: logger})
		if err != nil {
			t.Fatal(err)
		}
		ds = append(ds, d)
	}
	actor := anomaly.Actor{ID: user.String(), Roles: []anomaly.Role{anomaly.RoleUser}, User: user}
	th := anomaly.Threshold{Scope: anomaly.ScopeUserService, User: user, ServiceRef: "7.2", Limit: limit, Window: time.Hour}
	th, err := ds[0].SetThreshold(ctx, actor, th)
	if err != nil {
		t.Fatal(err)
	}
	if err := ds[1].Reload(ctx); err != nil {
		t.Fatal(err)
	}

	var passed, quarantined atomic.Int64
	var errs sync.Map
	var wg sync.WaitGroup
	start := make(chan struct{})
	for inst, d := range ds {
		for g := range goroutines {
			wg.Go(func() {
				<-start
				for i := g; i < perBurst; i += goroutines {
					r := anomaly.Request{ID: fmt.Sprintf("exact-%d-%d", inst, i), User: user, UserRole: smki.UserImportSupplier,
						ServiceRef: "7.2", Target: smki.EUI{0, 0xDB, 1, 2, 3, 4, byte(i >> 8), byte(i)}, Command: []byte{0xDD, byte(i)}}
					dec, err := d.Check(ctx, r)
					switch {
					case err != nil:
						errs.Store(r.ID, err)
					case dec.Pass():
						passed.Add(1)
					default:
						quarantined.Add(1)
					}
				}
			})
		}
	}
	close(start)
	wg.Wait()
	errs.Range(func(k, v any) bool {
		t.Errorf("check %v: %v", k, v)
		return true
	})
	if p, q := passed.Load(), quarantined.Load(); p != limit || q != 2*perBurst-limit {
		t.Fatalf("%d passed and %d quarantined; want exactly %d and %d", p, q, limit, 2*perBurst-limit)
	}
	counts, err := a.CountEvents(ctx, []anomaly.Counter{{Key: "us/" + user.String() + "/7.2", Since: at.Add(-time.Hour)}})
	if err != nil || len(counts) != 1 || counts[0] != limit {
		t.Errorf("store counts %v (%v), want [%d]", counts, err, limit)
	}
	qs, err := b.ListQuarantine(ctx, anomaly.Filter{User: user, State: anomaly.StateQuarantined, Limit: anomaly.MaxList})
	if err != nil || len(qs) != 2*perBurst-limit {
		t.Errorf("store lists %d quarantine records (%v), want %d", len(qs), err, 2*perBurst-limit)
	}
}

// TestStore checks that a Store implementation keeps the contract the
// Detector relies on. open must return an empty store each time it is
// called.
func TestStore(t *testing.T, open func(t *testing.T) anomaly.Store) {
	t0 := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	userA := smki.EUI{0x90, 0xB3, 0xD5, 0x1F, 0x30, 0x01, 0x00, 0x0A}
	userB := smki.EUI{0x90, 0xB3, 0xD5, 0x1F, 0x30, 0x01, 0x00, 0x0B}
	audit := func(action, object string) anomaly.AuditEntry {
		return anomaly.AuditEntry{Time: t0, Actor: "conformance", Action: action, Object: object, Outcome: "success",
			Details: map[string]string{"k": "v"}}
	}

	t.Run("CheckAndRecord", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		// k1: 2 in a sliding 10 s; k2: 3 in a sliding hour.
		c := func(at time.Time) []anomaly.Counter {
			return []anomaly.Counter{
				{Key: "k1", Since: at.Add(-10 * time.Second), Limit: 2},
				{Key: "k2", Since: at.Add(-time.Hour), Limit: 3},
			}
		}
		steps := []struct {
			at       time.Duration
			keys     []string
			breached int
			count    int64
		}{
			{0, []string{"k1", "k2"}, -1, 0},
			{time.Second, []string{"k1", "k2"}, -1, 0},
			{2 * time.Second, []string{"k1", "k2"}, 0, 2},
			{10*time.Second - time.Microsecond, []string{"k1", "k2"}, 0, 2},
			{10 * time.Second, []string{"k1", "k2"}, -1, 0}, // the first left k1's window
			{11 * time.Second, []string{"k1", "k2"}, 1, 3},  // k1 has room, k2 is full
			{12 * time.Second, []string{"k3"}, 1, 3},
		}
		for i, st := range steps {
			out, err := s.CheckAndRecord(ctx, anomaly.Event{RequestID: fmt.Sprint(i), Keys: st.keys, At: t0.Add(st.at)}, c(t0.Add(st.at)))
			if err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
			if out.Breached != st.breached || (st.breached >= 0 && out.Count != st.count) {
				t.Fatalf("step %d at +%s: %+v, want breached %d count %d", i, st.at, out, st.breached, st.count)
			}
		}
		// No counters: always recorded.
		if out, err := s.CheckAndRecord(ctx, anomaly.Event{RequestID: "x", Keys: []string{"k3"}, At: t0.Add(12 * time.Second)}, nil); err != nil || !out.Passed() {
			t.Fatalf("without counters: %+v, %v", out, err)
		}
		now := t0.Add(12 * time.Second)
		counts, err := s.CountEvents(ctx, []anomaly.Counter{
			{Key: "k1", Since: now.Add(-10 * time.Second)}, {Key: "k2", Since: now.Add(-time.Hour)},
			{Key: "k3", Since: now.Add(-time.Hour)}, {Key: "none", Since: now.Add(-time.Hour)},
			{Key: "k2", Since: t0.Add(time.Second)}, // strictly after: the event at +1s is out
		})
		if err != nil || fmt.Sprint(counts) != "[1 3 1 0 1]" {
			t.Fatalf("CountEvents = %v, %v; want [1 3 1 0 1]", counts, err)
		}
		n, err := s.PruneEvents(ctx, t0.Add(10*time.Second))
		if err != nil || n != 4 {
			t.Fatalf("PruneEvents = %d, %v; want 4", n, err)
		}
		counts, _ = s.CountEvents(ctx, []anomaly.Counter{{Key: "k2", Since: now.Add(-time.Hour)}})
		if fmt.Sprint(counts) != "[1]" {
			t.Fatalf("after pruning, CountEvents = %v, want [1]", counts)
		}
	})

	t.Run("Thresholds", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		ts := []anomaly.Threshold{
			{ID: "a", Scope: anomaly.ScopeUserService, ServiceRef: "7.2", Limit: 200, Window: 24 * time.Hour, SetBy: "ada", SetAt: t0},
			{ID: "b", Scope: anomaly.ScopeUserTotal, User: userA, Limit: 5, Window: time.Second, Fixed: true, SetBy: "user", SetAt: t0.Add(time.Microsecond)},
			{ID: "c", Scope: anomaly.ScopeAttribute, ServiceRef: "1.2.1", Attribute: "price", Min: -7, Max: 1 << 40, SetBy: "ada", SetAt: t0},
		}
		for _, th := range ts {
			if err := s.PutThreshold(ctx, th, audit("anomaly.threshold.set", th.ID)); err != nil {
				t.Fatal(err)
			}
		}
		ts[0].Limit = 100
		if err := s.PutThreshold(ctx, ts[0], audit("anomaly.threshold.set", "a")); err != nil {
			t.Fatalf("replacing: %v", err)
		}
		got, err := s.Thresholds(ctx)
		if err != nil || len(got) != 3 {
			t.Fatalf("Thresholds = %d, %v", len(got), err)
		}
		byID := map[string]anomaly.Threshold{}
		for _, th := range got {
			byID[th.ID] = th
		}
		for _, want := range ts {
			g := byID[want.ID]
			if !g.SetAt.Equal(want.SetAt) {
				t.Errorf("threshold %s SetAt %v, want %v", want.ID, g.SetAt, want.SetAt)
			}
			g.SetAt = want.SetAt
			if g != want {
				t.Errorf("threshold %s = %+v, want %+v", want.ID, g, want)
			}
		}
		if err := s.DeleteThreshold(ctx, "b", audit("anomaly.threshold.delete", "b")); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteThreshold(ctx, "b", audit("anomaly.threshold.delete", "b")); !errors.Is(err, anomaly.ErrNotFound) {
			t.Fatalf("deleting twice: %v, want ErrNotFound", err)
		}
		if got, _ := s.Thresholds(ctx); len(got) != 2 {
			t.Fatalf("%d thresholds after delete, want 2", len(got))
		}
	})

	t.Run("Quarantine", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		mk := func(i int, u smki.EUI) anomaly.Quarantine {
			return anomaly.Quarantine{Ref: fmt.Sprintf("Q-20261123-%010d", i), CommandID: fmt.Sprint("cmd-", i), User: u,
				UserRole: smki.UserGasSupplier, ServiceRef: "7.2", Target: smki.EUI{0, 0xDB, 0, 0, 0, 0, 0, byte(i)},
				Kind: anomaly.KindUserThreshold, ThresholdID: "t", Detail: "too many", Command: []byte{0xDD, 0, byte(i)},
				Attributes: map[string]int64{"price": int64(i) - 3}, At: t0.Add(time.Duration(i) * time.Second),
				State: anomaly.StateQuarantined, CreatedAt: t0.Add(time.Duration(i)*time.Second + time.Microsecond)}
		}
		var qs []anomaly.Quarantine
		for i := range 5 {
			q := mk(i, []smki.EUI{userA, userB}[i%2])
			if i == 4 {
				q.Attributes = nil
			}
			qs = append(qs, q)
			if err := s.AddQuarantine(ctx, q, audit("anomaly.quarantine", q.Ref)); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.AddQuarantine(ctx, qs[0], audit("anomaly.quarantine", qs[0].Ref)); err == nil {
			t.Error("a duplicate reference was stored")
		}
		got, err := s.Quarantine(ctx, qs[1].Ref)
		if err != nil {
			t.Fatal(err)
		}
		if !sameQuarantine(got, qs[1]) {
			t.Errorf("Quarantine = %+v\nwant %+v", got, qs[1])
		}
		if got, err := s.Quarantine(ctx, qs[4].Ref); err != nil || len(got.Attributes) != 0 {
			t.Errorf("record without attributes: %+v, %v", got, err)
		}
		if _, err := s.Quarantine(ctx, "Q-none"); !errors.Is(err, anomaly.ErrNotFound) {
			t.Errorf("unknown reference: %v, want ErrNotFound", err)
		}

		dec := anomaly.Decide{Ref: qs[2].Ref, To: anomaly.StateReleased, By: "otto", At: t0.Add(time.Minute), Reason: "ok",
			Record: &anomaly.Event{RequestID: qs[2].CommandID, Keys: []string{"rel"}, At: t0.Add(time.Minute)}}
		got, err = s.DecideQuarantine(ctx, dec, audit("anomaly.release", qs[2].Ref))
		if err != nil {
			t.Fatal(err)
		}
		if got.State != anomaly.StateReleased || got.DecidedBy != "otto" || got.Reason != "ok" || !got.DecidedAt.Equal(dec.At) ||
			!bytes.Equal(got.Command, qs[2].Command) {
			t.Errorf("released record %+v", got)
		}
		if f := got.Forwarding; f.State != anomaly.ForwardPending || !f.Next.Equal(dec.At) || f.Attempts != 0 {
			t.Errorf("released record's forwarding %+v, want pending and due at %v", f, dec.At)
		}
		if counts, _ := s.CountEvents(ctx, []anomaly.Counter{{Key: "rel", Since: t0}}); fmt.Sprint(counts) != "[1]" {
			t.Errorf("release did not record its event: %v", counts)
		}
		for _, to := range []anomaly.State{anomaly.StateReleased, anomaly.StateDeleted} {
			d := dec
			d.To, d.Record = to, nil
			if _, err := s.DecideQuarantine(ctx, d, audit("anomaly.x", d.Ref)); !errors.Is(err, anomaly.ErrConflict) {
				t.Errorf("deciding a released record (%s): %v, want ErrConflict", to, err)
			}
		}
		d := anomaly.Decide{Ref: qs[3].Ref, To: anomaly.StateDeleted, By: "otto", At: t0.Add(time.Minute), Reason: "bad"}
		if _, err := s.DecideQuarantine(ctx, d, audit("anomaly.delete", d.Ref)); err != nil {
			t.Fatal(err)
		}
		d.Ref = "Q-none"
		if _, err := s.DecideQuarantine(ctx, d, audit("anomaly.delete", d.Ref)); !errors.Is(err, anomaly.ErrNotFound) {
			t.Errorf("deciding an unknown reference: %v, want ErrNotFound", err)
		}

		lists := []struct {
			f    anomaly.Filter
			want []int
		}{
			{anomaly.Filter{Limit: 100}, []int{4, 3, 2, 1, 0}},
			{anomaly.Filter{User: userA, Limit: 100}, []int{4, 2, 0}},
			{anomaly.Filter{State: anomaly.StateQuarantined, Limit: 100}, []int{4, 1, 0}},
			{anomaly.Filter{User: userB, State: anomaly.StateDeleted, Limit: 100}, []int{3}},
			{anomaly.Filter{Limit: 2}, []int{4, 3}},
			{anomaly.Filter{Before: qs[3].CreatedAt, Limit: 2}, []int{2, 1}},
			{anomaly.Filter{Before: qs[3].CreatedAt, BeforeRef: qs[3].Ref, Limit: 2}, []int{2, 1}},
			{anomaly.Filter{Before: qs[3].CreatedAt, BeforeRef: "Q-99999999", Limit: 2}, []int{3, 2}},
		}
		for _, l := range lists {
			got, err := s.ListQuarantine(ctx, l.f)
			if err != nil {
				t.Fatal(err)
			}
			var idx []int
			for _, q := range got {
				for i := range qs {
					if qs[i].Ref == q.Ref {
						idx = append(idx, i)
					}
				}
			}
			if fmt.Sprint(idx) != fmt.Sprint(l.want) {
				t.Errorf("ListQuarantine(%+v) = %v, want %v", l.f, idx, l.want)
			}
		}
		if err := s.AppendAudit(ctx, audit("anomaly.release", "Q-none")); err != nil {
			t.Errorf("AppendAudit: %v", err)
		}
	})
}

func sameQuarantine(a, b anomaly.Quarantine) bool {
	if !a.At.Equal(b.At) || !a.CreatedAt.Equal(b.CreatedAt) || !a.DecidedAt.Equal(b.DecidedAt) ||
		!bytes.Equal(a.Command, b.Command) || !maps.Equal(a.Attributes, b.Attributes) {
		return false
	}
	a.At, a.CreatedAt, a.DecidedAt, a.Command, a.Attributes = b.At, b.CreatedAt, b.DecidedAt, nil, nil
	b.Command, b.Attributes = nil, nil
	return fmt.Sprint(a) == fmt.Sprint(b)
}
