package store

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/metertrust/metertrust/anomaly"
	"github.com/metertrust/metertrust/smki"
)

// releasedRecord adds a quarantine record and releases it at at.
func releasedRecord(t *testing.T, s *AnomalyStore, ref string, at time.Time) anomaly.Quarantine {
	t.Helper()
	ctx := context.Background()
	q := anomaly.Quarantine{Ref: ref, CommandID: "cmd-" + ref, User: smki.EUI{0, 1}, ServiceRef: "1.1",
		Target: smki.EUI{0, 2}, Kind: anomaly.KindUserThreshold, Command: []byte{1, 2, 3}, At: at.Add(-time.Hour),
		State: anomaly.StateQuarantined, CreatedAt: at.Add(-time.Hour)}
	a := anomaly.AuditEntry{Time: at, Actor: "test", Action: "anomaly.quarantine", Object: ref, Outcome: anomaly.OutcomeSuccess}
	if err := s.AddQuarantine(ctx, q, a); err != nil {
		t.Fatal(err)
	}
	a.Action = "anomaly.release"
	got, err := s.DecideQuarantine(ctx, anomaly.Decide{Ref: ref, To: anomaly.StateReleased, By: "otto", At: at, Reason: "ok"}, a)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestReleaseForwarding(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		s := db.Anomaly()
		t0 := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
		a := releasedRecord(t, s, "Q-a", t0)
		if a.Forwarding.State != anomaly.ForwardPending || !a.Forwarding.Next.Equal(t0) {
			t.Fatalf("released record's forwarding %+v, want pending, due at %v", a.Forwarding, t0)
		}
		releasedRecord(t, s, "Q-b", t0.Add(time.Second))
		// A deleted record is never claimed.
		q := anomaly.Quarantine{Ref: "Q-c", CommandID: "cmd-c", User: smki.EUI{0, 1}, ServiceRef: "1.1", Target: smki.EUI{0, 2},
			Kind: anomaly.KindUserThreshold, Command: []byte{1}, At: t0, State: anomaly.StateQuarantined, CreatedAt: t0}
		audit := anomaly.AuditEntry{Time: t0, Actor: "test", Action: "x", Object: "Q-c", Outcome: anomaly.OutcomeSuccess}
		if err := s.AddQuarantine(ctx, q, audit); err != nil {
			t.Fatal(err)
		}
		if _, err := s.DecideQuarantine(ctx, anomaly.Decide{Ref: "Q-c", To: anomaly.StateDeleted, By: "otto", At: t0, Reason: "no"}, audit); err != nil {
			t.Fatal(err)
		}

		// Only what is due is claimed.
		lease := t0.Add(time.Minute)
		got, err := s.ClaimReleases(ctx, t0, lease, 10)
		if err != nil || len(got) != 1 || got[0].Ref != "Q-a" || got[0].Forwarding.Attempts != 1 || !got[0].Forwarding.Next.Equal(lease) {
			t.Fatalf("ClaimReleases at t0 = %+v, %v; want Q-a, attempt 1, leased", got, err)
		}
		// A claimed record is not claimed again until its lease lapses.
		got, err = s.ClaimReleases(ctx, t0.Add(2*time.Second), lease, 10)
		if err != nil || len(got) != 1 || got[0].Ref != "Q-b" {
			t.Fatalf("second sweep = %+v, %v; want Q-b only", got, err)
		}
		if _, err := s.ClaimRelease(ctx, "Q-a", t0.Add(2*time.Second), lease); !errors.Is(err, anomaly.ErrConflict) {
			t.Errorf("ClaimRelease of a leased record: %v, want ErrConflict", err)
		}
		if _, err := s.ClaimRelease(ctx, "Q-none", t0, lease); !errors.Is(err, anomaly.ErrNotFound) {
			t.Errorf("ClaimRelease of an unknown record: %v, want ErrNotFound", err)
		}

		// A retry: pending again, due later; a stale attempt cannot finish.
		retry := anomaly.Forwarding{State: anomaly.ForwardPending, Next: t0.Add(10 * time.Second), Error: "unavailable"}
		fin := anomaly.AuditEntry{Time: t0, Actor: "router", Action: "router.release.forward", Object: "Q-a", Outcome: "failure"}
		if err := s.FinishRelease(ctx, "Q-a", 1, retry, fin); err != nil {
			t.Fatal(err)
		}
		if err := s.FinishRelease(ctx, "Q-a", 7, retry, fin); !errors.Is(err, anomaly.ErrConflict) {
			t.Errorf("FinishRelease of a stale attempt: %v, want ErrConflict", err)
		}
		if got, _ := s.ClaimReleases(ctx, t0.Add(5*time.Second), lease, 10); len(got) != 0 {
			t.Errorf("claimed before the retry was due: %+v", got)
		}
		c, err := s.ClaimRelease(ctx, "Q-a", t0.Add(10*time.Second), lease)
		if err != nil || c.Forwarding.Attempts != 2 {
			t.Fatalf("ClaimRelease when due = %+v, %v; want attempt 2", c.Forwarding, err)
		}
		done := anomaly.Forwarding{State: anomaly.ForwardForwarded, At: t0.Add(11 * time.Second), CommandID: "C-1"}
		if err := s.FinishRelease(ctx, "Q-a", 2, done, fin); err != nil {
			t.Fatal(err)
		}
		r, err := s.Quarantine(ctx, "Q-a")
		if err != nil {
			t.Fatal(err)
		}
		if f := r.Forwarding; f.State != anomaly.ForwardForwarded || f.CommandID != "C-1" || f.Attempts != 2 || !f.At.Equal(done.At) || f.Error != "" {
			t.Errorf("forwarded record %+v", f)
		}
		if _, err := s.ClaimRelease(ctx, "Q-a", t0.Add(time.Hour), lease.Add(time.Hour)); !errors.Is(err, anomaly.ErrConflict) {
			t.Errorf("ClaimRelease of a forwarded record: %v, want ErrConflict", err)
		}
		if err := s.FinishRelease(ctx, "Q-b", 1, anomaly.Forwarding{State: anomaly.ForwardNone}, fin); !errors.Is(err, ErrInvalid) {
			t.Errorf("FinishRelease to no state: %v, want ErrInvalid", err)
		}
	})
}

// TestReleaseClaimExactlyOnce has many sweepers, on handles of their own,
// race for the same due records: each record is claimed exactly once.
func TestReleaseClaimExactlyOnce(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			open := b.newOpener(t)
			s := open(t).Anomaly()
			t0 := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
			const records = 20
			for i := range records {
				releasedRecord(t, s, "Q-"+string(rune('a'+i)), t0)
			}
			const sweepers = 4
			claims := make(chan string, records*sweepers)
			var wg sync.WaitGroup
			for range sweepers {
				h := open(t).Anomaly()
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range 10 {
						qs, err := h.ClaimReleases(context.Background(), t0, t0.Add(time.Hour), 3)
						if err != nil {
							t.Error(err)
							return
						}
						for _, q := range qs {
							claims <- q.Ref
						}
					}
				}()
			}
			wg.Wait()
			close(claims)
			seen := map[string]int{}
			for ref := range claims {
				seen[ref]++
			}
			if len(seen) != records {
				t.Errorf("%d records claimed, want %d", len(seen), records)
			}
			for ref, n := range seen {
				if n != 1 {
					t.Errorf("%s claimed %d times", ref, n)
				}
			}
		})
	}
}
