package store

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"
)

// TestOCSPResponders covers recording and reading the delegated OCSP
// responders of batches, and that a closed batch with one stays in the
// refresher's listings (its responses due, its certificates without one)
// while a batch closed without one does not.
func TestOCSPResponders(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		st := db.SMKI()
		mustCreateCA(t, db, testCA("D1", CAKindDCA, 0), testCA("D2", CAKindDCA, 0))
		dev1, dev2 := testCert("D1", 1, "", UsageDS), testCert("D2", 2, "", UsageDS)
		resp := testCert("D1", 3, "", UsageOCSP)
		resp.Kind = KindOCSPResponder
		if err := st.PutCertificates(ctx, dev1, dev2, resp); err != nil {
			t.Fatal(err)
		}
		good := OCSPResponder{CA: "D1", KeyURI: "softkms:path=/keys/D1-ocsp-responder.key", Serial: resp.Serial,
			CertDER: resp.DER, CreatedAt: t0}
		tests := []struct {
			name    string
			mod     func(*OCSPResponder)
			wantErr error
		}{
			{"recorded", func(*OCSPResponder) {}, nil},
			{"second for the same CA", func(*OCSPResponder) {}, ErrExists},
			{"certificate not stored", func(r *OCSPResponder) { r.CA, r.Serial = "D2", []byte{9} }, ErrNotFound},
			{"no key", func(r *OCSPResponder) { r.CA, r.KeyURI = "D2", "" }, ErrInvalid},
			{"no certificate", func(r *OCSPResponder) { r.CA, r.CertDER = "D2", nil }, ErrInvalid},
			{"no time", func(r *OCSPResponder) { r.CA, r.CreatedAt = "D2", time.Time{} }, ErrInvalid},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := good
				tt.mod(&r)
				if err := st.PutOCSPResponder(ctx, r); !errors.Is(err, tt.wantErr) {
					t.Errorf("PutOCSPResponder = %v, want %v", err, tt.wantErr)
				}
			})
		}
		got, err := st.OCSPResponder(ctx, "D1")
		if err != nil || got.KeyURI != good.KeyURI || !bytes.Equal(got.Serial, resp.Serial) || !bytes.Equal(got.CertDER, resp.DER) ||
			!got.CreatedAt.Equal(dbTime(t0)) {
			t.Errorf("OCSPResponder(D1) = %+v, %v", got, err)
		}
		if _, err := st.OCSPResponder(ctx, "D2"); !errors.Is(err, ErrNotFound) {
			t.Errorf("OCSPResponder(D2) = %v, want ErrNotFound", err)
		}
		all, err := st.OCSPResponders(ctx)
		if err != nil || len(all) != 1 || all[0].CA != "D1" {
			t.Errorf("OCSPResponders = %+v, %v; want D1's", all, err)
		}

		// Both batches close; only D1 has a responder.
		if err := st.PutOCSPResponses(ctx, testOCSP(dev1, OCSPGood, t0, "g1"), testOCSP(dev2, OCSPGood, t0, "g2")); err != nil {
			t.Fatal(err)
		}
		for _, n := range []string{"D1", "D2"} {
			if err := st.CloseCA(ctx, n, t0); err != nil {
				t.Fatal(err)
			}
		}
		due, err := st.OCSPResponsesDue(ctx, t0.Add(48*time.Hour), 0)
		if err != nil || len(due) != 1 || due[0].CA != "D1" || !bytes.Equal(due[0].Serial, dev1.Serial) {
			t.Errorf("OCSPResponsesDue = %+v, %v; want dev1 of D1 only", due, err)
		}
		dev3, dev4 := testCert("D1", 4, "", UsageKA), testCert("D2", 5, "", UsageKA)
		if err := st.PutCertificates(ctx, dev3, dev4); err != nil {
			t.Fatal(err)
		}
		missing, err := st.CertificatesWithoutOCSP(ctx, t0, 0)
		if err != nil || len(missing) != 1 || !bytes.Equal(missing[0].Serial, dev3.Serial) {
			t.Errorf("CertificatesWithoutOCSP = %+v, %v; want dev3 (not the responder's own certificate, nor D2's)", missing, err)
		}
	})
}
