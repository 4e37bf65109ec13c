package store

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/metertrust/metertrust/anomaly"
)

// TestAnomalyCheckGroupExact checks that SQLite's group-committed
// check-and-record stays exact when concurrent checks share groups: with a
// limit of L, exactly L of many concurrent checks pass, whatever the
// grouping, and a check after them sees the limit reached.
func TestAnomalyCheckGroupExact(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name            string
		limit, requests int
	}{
		{"limit below the requests", 17, 60},
		{"limit above the requests", 100, 40},
		{"limit one", 1, 30},
	} {
		t.Run(tt.name, func(t *testing.T) {
			db, err := OpenDataDir(ctx, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			s := db.Anomaly()
			now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
			key := "user-total|" + tt.name
			counters := []anomaly.Counter{{Key: key, Since: now.Add(-time.Hour), Limit: int64(tt.limit)}}
			var (
				wg     sync.WaitGroup
				mu     sync.Mutex
				passed int
				errs   []error
			)
			for i := range tt.requests {
				wg.Add(1)
				go func() {
					defer wg.Done()
					out, err := s.CheckAndRecord(ctx, anomaly.Event{RequestID: fmt.Sprintf("r%d", i), Keys: []string{key}, At: now}, counters)
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						errs = append(errs, err)
						return
					}
					if out.Passed() {
						passed++
					} else if out.Count != int64(tt.limit) {
						errs = append(errs, fmt.Errorf("r%d breached with count %d, want %d", i, out.Count, tt.limit))
					}
				}()
			}
			wg.Wait()
			for _, err := range errs {
				t.Error(err)
			}
			if want := min(tt.limit, tt.requests); passed != want {
				t.Errorf("%d checks passed, want %d", passed, want)
			}
			counts, err := s.CountEvents(ctx, counters)
			if err != nil {
				t.Fatal(err)
			}
			if counts[0] != int64(passed) {
				t.Errorf("%d events recorded for %d passed checks", counts[0], passed)
			}
		})
	}
}

// TestAnomalyCheckCancelled checks that a check whose context has already
// ended is refused, not recorded.
func TestAnomalyCheckCancelled(t *testing.T) {
	db, err := OpenDataDir(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s := db.Anomaly()
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	counters := []anomaly.Counter{{Key: "k", Since: now.Add(-time.Hour), Limit: 10}}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.CheckAndRecord(ctx, anomaly.Event{RequestID: "r", Keys: []string{"k"}, At: now}, counters); err == nil {
		t.Error("check with an ended context succeeded")
	}
	counts, err := s.CountEvents(context.Background(), counters)
	if err != nil {
		t.Fatal(err)
	}
	if counts[0] != 0 {
		t.Errorf("%d events recorded for a refused check", counts[0])
	}
}
