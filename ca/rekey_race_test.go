package ca

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/metertrust/metertrust/custody"
	"github.com/metertrust/metertrust/store"
	"github.com/metertrust/metertrust/store/storetest"
)

// TestIssueRekeyRace races re-key requests for one device and usage, each
// with its own new key, on both stores: one certificate is issued, every
// other request is refused ErrRekey naming the re-key in flight, its
// attempt and failure audited, nothing of it stored or reserved. Every
// request passes the inventory check made before signing; the refusal
// comes from the check the store makes in the recording transaction
// (store.RekeyGuard). Once the re-key is settled (the old certificate
// revoked, as the confirmation does), the next one is issued.
func TestIssueRekeyRace(t *testing.T) {
	const racers = 4
	for _, dialect := range storetest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			ctx := context.Background()
			db, err := store.Open(ctx, storetest.DSN(t, dialect))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			dir := t.TempDir()
			keys, err := custody.Open(ctx, "", dir, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { keys.Close() })
			e := newEnvWith(t, db, keys, dir)
			e.init(t)
			if _, err := e.a.OpenBatch(ctx, "NEW", 10); err != nil {
				t.Fatal(err)
			}
			if _, err := e.a.OpenBatchFor(ctx, "RK", 10, PurposeRekey); err != nil {
				t.Fatal(err)
			}
			old, err := e.a.IssueDevice(ctx, "NEW", deviceCSR(t, newKey(t), deviceEUI, x509.KeyUsageDigitalSignature))
			if err != nil {
				t.Fatal(err)
			}
			evs, err := db.AuditEvents(ctx, 0, store.MaxLimit)
			if err != nil {
				t.Fatal(err)
			}
			seq := evs[len(evs)-1].Seq

			csrs := make([][]byte, racers)
			for i := range csrs {
				csrs[i] = deviceCSR(t, newKey(t), deviceEUI, x509.KeyUsageDigitalSignature)
			}
			start := make(chan struct{})
			errs := make([]error, racers)
			var wg sync.WaitGroup
			for i := range racers {
				wg.Go(func() {
					<-start
					_, errs[i] = e.a.IssueRekey(ctx, "RK", deviceEUI, csrs[i])
				})
			}
			close(start)
			wg.Wait()
			issued := 0
			for i, err := range errs {
				switch {
				case err == nil:
					issued++
				case !errors.Is(err, ErrRekey) || !strings.Contains(err.Error(), "already in flight"):
					t.Errorf("racer %d: %v, want ErrRekey naming the re-key in flight", i, err)
				}
			}
			if issued != 1 {
				t.Fatalf("%d re-key certificates issued by %d concurrent requests, want 1: %v", issued, racers, errs)
			}
			good, err := db.SMKI().FindCertificates(ctx, store.CertQuery{EUI: deviceEUI.String(), Kind: store.KindDevice, Usage: "ds"})
			if err != nil || len(good) != 2 {
				t.Fatalf("%d good DS certificates, %v; want 2 (installed and in flight)", len(good), err)
			}
			if rk, _ := e.a.Batch(ctx, "RK"); rk.Issued != 1 {
				t.Errorf("the re-key batch counts %d issued, want 1", rk.Issued)
			}
			evs, err = db.AuditEvents(ctx, seq, store.MaxLimit)
			if err != nil {
				t.Fatal(err)
			}
			outcomes := map[string]int{}
			for _, ev := range evs {
				if ev.Action != "ca.issue.device-rekey" {
					continue
				}
				outcomes[ev.Outcome]++
				if ev.Outcome == store.OutcomeFailure && !strings.Contains(fmt.Sprint(ev.Details["error"]), "already in flight") {
					t.Errorf("failure audited without its reason: %+v", ev.Details)
				}
			}
			if outcomes[store.OutcomeAttempt] != racers || outcomes[store.OutcomeSuccess] != 1 || outcomes[store.OutcomeFailure] != racers-1 {
				t.Errorf("audited outcomes %v, want %d attempts, 1 success, %d failures", outcomes, racers, racers-1)
			}

			// Later, one at a time: refused while the re-key is in flight;
			// once it is settled (the installed certificate superseded),
			// the next one is issued.
			if _, err := e.a.IssueRekey(ctx, "RK", deviceEUI, deviceCSR(t, newKey(t), deviceEUI, x509.KeyUsageDigitalSignature)); !errors.Is(err, ErrRekey) {
				t.Errorf("a re-key while another is in flight: %v, want ErrRekey", err)
			}
			if err := db.SMKI().Revoke(ctx, old.CA, old.Serial, 4, e.clock.Now()); err != nil {
				t.Fatal(err)
			}
			if _, err := e.a.IssueRekey(ctx, "RK", deviceEUI, deviceCSR(t, newKey(t), deviceEUI, x509.KeyUsageDigitalSignature)); err != nil {
				t.Errorf("a re-key once the previous one is settled: %v", err)
			}
		})
	}
}
