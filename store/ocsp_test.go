package store

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"
)

func testOCSP(c Certificate, status int, thisUpdate time.Time, der string) OCSPResponse {
	return OCSPResponse{CA: c.CA, Serial: c.Serial, Status: status, ThisUpdate: thisUpdate,
		NextUpdate: thisUpdate.Add(24 * time.Hour), DER: []byte(der)}
}

// TestOCSPResponses covers storing, replacing, reading and the refresher's
// listing of pre-signed OCSP responses.
func TestOCSPResponses(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		st := db.SMKI()
		mustCreateCA(t, db, testCA("E8", CAKindDCA, 0), testCA("E9", CAKindDCA, 0))
		c1, c2, c3 := testCert("E8", 1, "", UsageDS), testCert("E8", 2, "", UsageKA), testCert("E9", 3, "", UsageKA)
		short := testCert("E8", 4, "", UsageDS)
		short.NotAfter = t0.Add(12 * time.Hour) // expires before its first response does
		if err := st.PutCertificates(ctx, c1, c2, c3, short); err != nil {
			t.Fatal(err)
		}
		if err := st.PutOCSPResponses(ctx, testOCSP(c1, OCSPGood, t0, "g1"), testOCSP(c2, OCSPGood, t0.Add(time.Hour), "g2"),
			testOCSP(c3, OCSPGood, t0, "g3"), testOCSP(short, OCSPGood, t0, "g4")); err != nil {
			t.Fatalf("PutOCSPResponses: %v", err)
		}

		tests := []struct {
			name    string
			put     OCSPResponse
			wantErr error
			wantDER string // c's stored DER afterwards
		}{
			{"newer replaces", testOCSP(c1, OCSPGood, t0.Add(time.Minute), "g1b"), nil, "g1b"},
			{"older is kept out", testOCSP(c1, OCSPGood, t0, "g1-old"), nil, "g1b"},
			{"revoked replaces", testOCSP(c1, OCSPRevoked, t0.Add(2*time.Minute), "r1"), nil, "r1"},
			{"good never replaces revoked", testOCSP(c1, OCSPGood, t0.Add(time.Hour), "g1c"), nil, "r1"},
			{"revoked refreshed", testOCSP(c1, OCSPRevoked, t0.Add(90*time.Minute), "r1b"), nil, "r1b"},
			{"no certificate", testOCSP(testCert("E8", 9, "", UsageDS), OCSPGood, t0, "x"), ErrNotFound, "r1b"},
			{"bad status", testOCSP(c1, 3, t0.Add(2*time.Hour), "x"), ErrInvalid, "r1b"},
			{"no DER", testOCSP(c1, OCSPGood, t0.Add(2*time.Hour), ""), ErrInvalid, "r1b"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if err := st.PutOCSPResponses(ctx, tt.put); !errors.Is(err, tt.wantErr) {
					t.Fatalf("PutOCSPResponses error = %v, want %v", err, tt.wantErr)
				}
				got, err := st.OCSPResponse(ctx, c1.CA, c1.Serial)
				if err != nil || string(got.DER) != tt.wantDER {
					t.Fatalf("OCSPResponse = %q, %v; want %q", got.DER, err, tt.wantDER)
				}
			})
		}
		if err := st.PutOCSPResponses(ctx, testOCSP(c2, OCSPGood, t0, "a"), testOCSP(c2, OCSPGood, t0, "b")); !errors.Is(err, ErrInvalid) {
			t.Errorf("repeated certificate: %v, want ErrInvalid", err)
		}
		got, err := st.OCSPResponse(ctx, c2.CA, c2.Serial)
		if err != nil || got.Status != OCSPGood || !got.ThisUpdate.Equal(dbTime(t0.Add(time.Hour))) ||
			!got.NextUpdate.Equal(dbTime(t0.Add(25*time.Hour))) || got.ThisUpdate.Location() != time.UTC {
			t.Errorf("OCSPResponse(c2) = %+v, %v", got, err)
		}
		if _, err := st.OCSPResponse(ctx, "E9", c1.Serial); !errors.Is(err, ErrNotFound) {
			t.Errorf("OCSPResponse(E9, c1) error = %v, want ErrNotFound", err)
		}

		// Due: c3 (E9) and c2 (E8) expire first; c1 later; short is covered
		// to its notAfter already.
		due, err := st.OCSPResponsesDue(ctx, t0.Add(25*time.Hour+15*time.Minute), 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(due) != 2 || !bytes.Equal(due[0].Serial, c3.Serial) || !bytes.Equal(due[1].Serial, c2.Serial) {
			t.Errorf("OCSPResponsesDue = %+v, want c3 then c2", due)
		}
		if due, err := st.OCSPResponsesDue(ctx, t0.Add(48*time.Hour), 1); err != nil || len(due) != 1 || !bytes.Equal(due[0].Serial, c3.Serial) {
			t.Errorf("OCSPResponsesDue limit 1 = %+v, %v; want c3", due, err)
		}
		if err := st.CloseCA(ctx, "E9", t0); err != nil {
			t.Fatal(err)
		}
		due, err = st.OCSPResponsesDue(ctx, t0.Add(48*time.Hour), 0)
		if err != nil || len(due) != 2 || !bytes.Equal(due[0].Serial, c2.Serial) || !bytes.Equal(due[1].Serial, c1.Serial) {
			t.Errorf("OCSPResponsesDue after closing E9 = %+v, %v; want c2 then c1", due, err)
		}
		// Certificates without a response: c5 of E8 (active), not c6 of the
		// closed E9 nor the expired one, nor a root's.
		c5, c6, expired := testCert("E8", 5, "", UsageDS), testCert("E9", 6, "", UsageDS), testCert("E8", 7, "", UsageDS)
		expired.NotAfter = t0.Add(time.Hour)
		mustCreateCA(t, db, testCA("R0", CAKindRoot, 0))
		c8 := testCert("R0", 8, "", UsageCA)
		if err := st.PutCertificates(ctx, c5, c6, expired, c8); err != nil {
			t.Fatal(err)
		}
		missing, err := st.CertificatesWithoutOCSP(ctx, t0.Add(2*time.Hour), 0)
		if err != nil || len(missing) != 1 || !bytes.Equal(missing[0].Serial, c5.Serial) || missing[0].CA != "E8" {
			t.Errorf("CertificatesWithoutOCSP = %+v, %v; want c5", missing, err)
		}
		if _, err := st.OCSPResponsesDue(ctx, t0, -1); !errors.Is(err, ErrInvalid) {
			t.Errorf("negative limit: %v, want ErrInvalid", err)
		}
	})
}
