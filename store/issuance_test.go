package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
)

func testIssuance(c Certificate, reserve string) *Issuance {
	ev := func(outcome string) AuditEvent {
		return AuditEvent{Time: t0, Actor: "ca", Action: "ca.issue.device", Object: fmt.Sprintf("%X", c.Serial), Outcome: outcome}
	}
	return &Issuance{Reserve: reserve, Cert: c, OCSP: testOCSP(c, OCSPGood, t0, "ocsp"),
		Attempt: ev(OutcomeAttempt), Success: ev(OutcomeSuccess)}
}

// TestRecordIssuances records a group in one transaction: the stored ones
// with their reservation, OCSP response and audit events, the refused ones
// (quota, taken serial, invalid, failed before the store) with their audit
// events only; the audit chain stays valid.
func TestRecordIssuances(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		st := db.SMKI()
		mustCreateCA(t, db, testCA("G1", CAKindDCA, 3), testCA("G2", CAKindDCA, 0))
		taken := testCert("G1", 100, "", UsageDS)
		if err := st.PutCertificates(ctx, taken); err != nil {
			t.Fatal(err)
		}
		before, err := db.VerifyAudit(ctx)
		if err != nil {
			t.Fatal(err)
		}
		bad := testCert("G2", 7, "", UsageDS)
		bad.DER = nil
		is := []*Issuance{
			testIssuance(testCert("G1", 1, "", UsageDS), "G1"),
			testIssuance(testCert("G1", 100, "", UsageKA), "G1"), // serial taken
			testIssuance(testCert("G1", 2, "", UsageKA), "G1"),
			testIssuance(testCert("G1", 3, "", UsageKA), "G1"),
			testIssuance(testCert("G1", 4, "", UsageKA), "G1"), // over quota
			testIssuance(testCert("G2", 5, "", UsageKA), ""),
			testIssuance(bad, "G2"),
			{Attempt: AuditEvent{Time: t0, Actor: "ca", Action: "ca.issue.org", Outcome: OutcomeAttempt}, Failed: errors.New("lint failed")},
		}
		if err := st.RecordIssuances(ctx, is); err != nil {
			t.Fatalf("RecordIssuances: %v", err)
		}
		wantErr := []error{nil, ErrExists, nil, nil, ErrQuotaExhausted, nil, ErrInvalid}
		wantIssued := []int64{1, 0, 2, 3, 0, 0, 0}
		for i, it := range is[:7] {
			if !errors.Is(it.Err, wantErr[i]) || wantErr[i] == nil && it.Err != nil || it.Issued != wantIssued[i] {
				t.Errorf("issuance %d: Err %v, Issued %d; want %v, %d", i, it.Err, it.Issued, wantErr[i], wantIssued[i])
			}
		}
		if is[7].Err == nil {
			t.Error("failed issuance: no Err")
		}
		for _, i := range []int{0, 2, 3, 5} {
			c := is[i].Cert
			if _, err := st.Certificate(ctx, c.CA, c.Serial); err != nil {
				t.Errorf("certificate %d: %v", i, err)
			}
			if r, err := st.OCSPResponse(ctx, c.CA, c.Serial); err != nil || string(r.DER) != "ocsp" {
				t.Errorf("OCSP response %d: %v", i, err)
			}
		}
		if c, err := st.Certificate(ctx, "G1", taken.Serial); err != nil || c.Usage != UsageDS {
			t.Errorf("taken certificate replaced: %+v, %v", c, err)
		}
		if _, err := st.Certificate(ctx, "G1", testCert("G1", 4, "", UsageKA).Serial); !errors.Is(err, ErrNotFound) {
			t.Errorf("certificate over quota stored: %v", err)
		}
		ca, err := st.CA(ctx, "G1")
		if err != nil || ca.Issued != 3 {
			t.Errorf("G1 issued %d, %v; want 3", ca.Issued, err)
		}
		n, err := db.VerifyAudit(ctx)
		if err != nil || n != before+int64(2*len(is)) {
			t.Fatalf("VerifyAudit = %d, %v; want %d entries", n, err, before+int64(2*len(is)))
		}
		evs, err := db.AuditEvents(ctx, before, 100)
		if err != nil {
			t.Fatal(err)
		}
		wantOutcomes := []string{OutcomeAttempt, OutcomeSuccess, OutcomeAttempt, OutcomeFailure}
		for i, w := range wantOutcomes {
			if evs[i].Outcome != w {
				t.Errorf("audit entry %d outcome %s, want %s", i, evs[i].Outcome, w)
			}
		}
		if evs[1].Details["issued"] == nil {
			t.Errorf("success details %v lack issued", evs[1].Details)
		}
	})
}

// TestRecordIssuancesConcurrent records from many goroutines at once (as
// several group-commit leaders, or processes, would) and checks the audit
// chain.
func TestRecordIssuancesConcurrent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		st := db.SMKI()
		mustCreateCA(t, db, testCA("G3", CAKindDCA, 0))
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range 5 {
					is := []*Issuance{
						testIssuance(testCert("G3", uint32(1000*g+10*j+1), "", UsageDS), "G3"),
						testIssuance(testCert("G3", uint32(1000*g+10*j+2), "", UsageKA), "G3"),
					}
					if err := st.RecordIssuances(ctx, is); err != nil || is[0].Err != nil || is[1].Err != nil {
						t.Errorf("RecordIssuances: %v, %v, %v", err, is[0].Err, is[1].Err)
					}
				}
			}()
		}
		wg.Wait()
		if _, err := db.VerifyAudit(ctx); err != nil {
			t.Fatal(err)
		}
		if ca, err := st.CA(ctx, "G3"); err != nil || ca.Issued != 40 {
			t.Fatalf("issued %d, %v; want 40", ca.Issued, err)
		}
	})
}
