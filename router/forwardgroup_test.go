package router

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/metertrust/metertrust/store"
)

// slowRecorder is a ForwardRecorder that records the groups it is given,
// taking a moment over each so that concurrent callers queue up.
type slowRecorder struct {
	mu      sync.Mutex
	groups  [][]string
	missing map[string]bool // IDs whose own outcome is ErrNotFound
	fail    error           // the whole group's error
	short   bool            // return one result too few
}

func (r *slowRecorder) RecordForwarded(_ context.Context, fs []Forward) ([]error, error) {
	time.Sleep(2 * time.Millisecond)
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := make([]string, len(fs))
	errs := make([]error, len(fs))
	for i, f := range fs {
		ids[i] = f.ID
		if r.missing[f.ID] {
			errs[i] = fmt.Errorf("command %s: %w", f.ID, store.ErrNotFound)
		}
	}
	r.groups = append(r.groups, ids)
	if r.fail != nil {
		return nil, r.fail
	}
	if r.short {
		errs = errs[1:]
	}
	return errs, nil
}

func TestForwardGroup(t *testing.T) {
	errDown := errors.New("database down")
	tests := []struct {
		name      string
		rec       *slowRecorder
		wantOwn   func(id string) error
		wantGroup bool
	}{
		{"all recorded", &slowRecorder{}, func(string) error { return nil }, false},
		{"one row gone", &slowRecorder{missing: map[string]bool{"c7": true}},
			func(id string) error {
				if id == "c7" {
					return store.ErrNotFound
				}
				return nil
			}, false},
		{"group transaction fails", &slowRecorder{fail: errDown}, func(string) error { return nil }, true},
		{"outbox returns too few results", &slowRecorder{short: true}, func(string) error { return nil }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newForwardGroup(tt.rec)
			const n = 40
			var wg sync.WaitGroup
			type result struct{ own, group error }
			results := make([]result, n)
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					own, group := g.record(t.Context(), Forward{ID: fmt.Sprintf("c%d", i)})
					results[i] = result{own, group}
				}()
			}
			wg.Wait()
			seen := map[string]int{}
			for _, grp := range tt.rec.groups {
				for _, id := range grp {
					seen[id]++
				}
			}
			if len(seen) != n {
				t.Errorf("%d commands recorded, want %d", len(seen), n)
			}
			for id, c := range seen {
				if c != 1 {
					t.Errorf("%s recorded %d times", id, c)
				}
			}
			if len(tt.rec.groups) >= n {
				t.Errorf("%d groups for %d concurrent commands: nothing was grouped", len(tt.rec.groups), n)
			}
			groupErrs := 0
			for i, r := range results {
				id := fmt.Sprintf("c%d", i)
				if r.group != nil {
					groupErrs++
					if tt.rec.fail != nil && !errors.Is(r.group, tt.rec.fail) {
						t.Errorf("%s: group error %v, want %v", id, r.group, tt.rec.fail)
					}
					continue
				}
				if want := tt.wantOwn(id); !errors.Is(r.own, want) || (want == nil && r.own != nil) {
					t.Errorf("%s: own error %v, want %v", id, r.own, want)
				}
			}
			if tt.wantGroup && groupErrs == 0 {
				t.Error("no caller saw the group's error")
			}
			if !tt.wantGroup && groupErrs != 0 {
				t.Errorf("%d callers saw a group error", groupErrs)
			}
		})
	}
}

// TestRecordForwardedStore records forwarded commands through the real
// store: the audit entry and the mark commit together, and a command whose
// outbox row is gone keeps its audit entry and reports ErrNotFound.
func TestRecordForwardedStore(t *testing.T) {
	ctx := context.Background()
	e := newStoreEnv(t, nil)
	var ids []string
	for c := range uint64(3) {
		ids = append(ids, e.submit(t, c+1, codeDisable, true).ID)
	}
	before, err := e.db.AuditEvents(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	fs := []Forward{}
	for _, id := range append(ids, "no-such-command") {
		fs = append(fs, Forward{ID: id, At: e.now(), Audit: AuditEvent{Action: "command.forwarded", CommandID: id, At: e.now()}})
	}
	errs, err := e.st.RecordForwarded(ctx, fs)
	if err != nil {
		t.Fatalf("RecordForwarded: %v", err)
	}
	if len(errs) != len(fs) {
		t.Fatalf("%d results for %d commands", len(errs), len(fs))
	}
	for i, id := range ids {
		if errs[i] != nil {
			t.Errorf("%s: %v", id, errs[i])
		}
		c, err := e.st.Command(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if c.State != store.CommandForwarded {
			t.Errorf("%s: state %q, want %q", id, c.State, store.CommandForwarded)
		}
	}
	if !errors.Is(errs[3], store.ErrNotFound) {
		t.Errorf("missing command: %v, want ErrNotFound", errs[3])
	}
	after, err := e.db.AuditEvents(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(after) - len(before); got != len(fs) {
		t.Errorf("%d audit entries appended, want %d", got, len(fs))
	}
	for _, a := range after[len(before):] {
		if a.Action != "router.command.forwarded" {
			t.Errorf("audit entry %d: action %q", a.Seq, a.Action)
		}
	}
	if n, err := e.fwd.Drain(ctx); err != nil || n != 0 {
		t.Errorf("Drain after recording: %d, %v; want an empty outbox", n, err)
	}
	if _, err := e.db.VerifyAudit(ctx); err != nil {
		t.Errorf("VerifyAudit: %v", err)
	}
}
