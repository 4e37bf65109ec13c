package store

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

func testOrg(eui string, roles ...string) Organisation {
	return Organisation{EUI: eui, Name: "Org " + eui, Roles: roles, RegisteredBy: "olga", RegisteredAt: t0, UpdatedAt: t0}
}

func testRequest(id, org string, needed int) CertRequest {
	return CertRequest{ID: id, OrgEUI: org, Role: 2, Usage: UsageDS, CSR: []byte{0x30, 1, 2}, SubmittedBy: org + "/IS serial 01",
		SubmittedAt: t0, ApprovalsNeeded: needed}
}

// TestOrganisations checks recording, replacing and reading organisations.
func TestOrganisations(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		st := db.SMKI()
		o := testOrg("90B3D51F30010000", "networkOperator", "supplier")
		if err := st.PutOrganisation(ctx, o); err != nil {
			t.Fatal(err)
		}
		o2 := o
		o2.Roles, o2.Manufacturer, o2.RegisteredBy, o2.UpdatedAt = []string{"supplier"}, true, "mallory", t0.Add(time.Hour)
		if err := st.PutOrganisation(ctx, o2); err != nil {
			t.Fatal(err)
		}
		got, err := st.Organisation(ctx, o.EUI)
		if err != nil || got.RegisteredBy != "olga" || !got.Manufacturer || !slices.Equal(got.Roles, []string{"supplier"}) ||
			got.State != OrgActive || !got.UpdatedAt.Equal(dbTime(t0.Add(time.Hour))) || !got.RegisteredAt.Equal(dbTime(t0)) {
			t.Errorf("after replacing: %+v, %v", got, err)
		}
		if _, err := st.Organisation(ctx, "90B3D51F30019999"); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown organisation: %v", err)
		}
		for _, bad := range []Organisation{
			testOrg("90b3d51f30010000", "supplier"),
			testOrg("90B3D51F30010000"),
			testOrg("90B3D51F30010000", "supplier", "networkOperator"),
			testOrg("90B3D51F30010000", "supplier", "supplier"),
			func() Organisation { o := testOrg("90B3D51F30010000", "supplier"); o.Name = ""; return o }(),
		} {
			if err := st.PutOrganisation(ctx, bad); !errors.Is(err, ErrInvalid) {
				t.Errorf("PutOrganisation(%+v) = %v, want ErrInvalid", bad, err)
			}
		}
		all, err := st.Organisations(ctx)
		if err != nil || len(all) != 1 {
			t.Errorf("Organisations = %d, %v", len(all), err)
		}
	})
}

// TestRequestApprovals checks the request life: two approvals by different
// operators claim a DCC-role request for issuance exactly once, however
// many race; a second approval by the same operator and decisions on a
// decided request are conflicts.
func TestRequestApprovals(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		st := db.SMKI()
		if err := st.PutOrganisation(ctx, testOrg("90B3D51F30010000", "supplier")); err != nil {
			t.Fatal(err)
		}
		if err := st.CreateRequest(ctx, testRequest("req-00000001", "90B3D51F30019999", 1)); !errors.Is(err, ErrNotFound) {
			t.Errorf("request of an unknown organisation: %v", err)
		}
		for _, r := range []CertRequest{testRequest("req-00000001", "90B3D51F30010000", 2), testRequest("req-00000002", "90B3D51F30010000", 1),
			testRequest("req-00000003", "90B3D51F30010000", 2)} {
			if err := st.CreateRequest(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.CreateRequest(ctx, testRequest("req-00000001", "90B3D51F30010000", 1)); !errors.Is(err, ErrExists) {
			t.Errorf("duplicate ID: %v", err)
		}
		r, err := st.ApproveRequest(ctx, "req-00000001", "alice", t0)
		if err != nil || r.State != RequestPending || !slices.Equal(r.Approvals, []string{"alice"}) {
			t.Fatalf("first approval: %+v, %v", r, err)
		}
		if _, err := st.ApproveRequest(ctx, "req-00000001", "alice", t0); !errors.Is(err, ErrConflict) {
			t.Errorf("alice twice: %v", err)
		}
		r, err = st.ApproveRequest(ctx, "req-00000001", "bob", t0.Add(time.Minute))
		if err != nil || r.State != RequestIssuing || r.DecidedBy != "bob" || !r.DecidedAt.Equal(dbTime(t0.Add(time.Minute))) {
			t.Fatalf("second approval: %+v, %v", r, err)
		}
		if _, err := st.ApproveRequest(ctx, "req-00000001", "carol", t0); !errors.Is(err, ErrConflict) {
			t.Errorf("approving an issuing request: %v", err)
		}
		if _, err := st.RejectRequest(ctx, "req-00000001", "carol", "no", t0); !errors.Is(err, ErrConflict) {
			t.Errorf("rejecting an issuing request: %v", err)
		}
		r, err = st.FinishRequest(ctx, "req-00000001", "oca", []byte{1, 2}, "")
		if err != nil || r.State != RequestIssued || r.CertCA != "oca" || string(r.CertSerial) != "\x01\x02" {
			t.Errorf("finish: %+v, %v", r, err)
		}
		if _, err := st.FinishRequest(ctx, "req-00000001", "oca", []byte{1, 2}, ""); !errors.Is(err, ErrConflict) {
			t.Errorf("finishing twice: %v", err)
		}
		r, err = st.RejectRequest(ctx, "req-00000002", "carol", "wrong name", t0)
		if err != nil || r.State != RequestRejected || r.Reason != "wrong name" || r.DecidedBy != "carol" {
			t.Errorf("reject: %+v, %v", r, err)
		}

		// Ten operators race to approve a request needing two: one claim.
		if _, err := st.ApproveRequest(ctx, "req-00000003", "op0", t0); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		claims := 0
		for i := 1; i <= 10; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := st.ApproveRequest(ctx, "req-00000003", "op"+string(rune('0'+i%10))+string(rune('a'+i)), t0)
				if err == nil && r.State == RequestIssuing {
					mu.Lock()
					claims++
					mu.Unlock()
				} else if err != nil && !errors.Is(err, ErrConflict) {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if claims != 1 {
			t.Errorf("%d approvals claimed the request, want exactly 1", claims)
		}
		pending, err := st.Requests(ctx, RequestQuery{State: RequestPending})
		if err != nil || len(pending) != 0 {
			t.Errorf("pending = %d, %v", len(pending), err)
		}
		all, err := st.Requests(ctx, RequestQuery{OrgEUI: "90B3D51F30010000"})
		if err != nil || len(all) != 3 {
			t.Errorf("the organisation's requests = %d, %v", len(all), err)
		}
	})
}
