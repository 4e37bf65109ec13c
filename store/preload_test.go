package store

import (
	"context"
	"crypto/ecdh"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/metertrust/metertrust/smki"
)

// TestPreload loads a small history on each backend after an existing
// audit entry and checks that the chain still verifies, that the rows read
// back through the store's own look-ups as the router's would, and that a
// second load of the same EUIs is refused.
func TestPreload(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		until := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
		for _, c := range []CA{
			{Name: "root", Kind: CAKindRoot, CertDER: []byte("cert:root"), CreatedAt: until},
			{Name: "oca", Kind: CAKindOCA, Parent: "root", CertDER: []byte("cert:oca"), CreatedAt: until},
			{Name: "dccki-tls", Kind: CAKindDCCKITLS, CertDER: []byte("cert:tls"), CreatedAt: until},
		} {
			if err := db.SMKI().CreateCA(ctx, c); err != nil {
				t.Fatalf("CreateCA(%s): %v", c.Name, err)
			}
		}
		before, err := db.AuditEvents(ctx, 0, MaxLimit)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.AppendAudit(ctx, AuditEvent{Time: until, Actor: "test", Action: "test.before", Outcome: OutcomeSuccess}); err != nil {
			t.Fatal(err)
		}
		spec := PreloadSpec{Devices: 30, Users: 12, Commands: 100, AuditEntries: 250, TLSCA: "dccki-tls", Until: until}
		st, err := db.Preload(ctx, spec)
		if err != nil {
			t.Fatalf("Preload: %v", err)
		}
		want := PreloadStats{Devices: 30, Users: 12, Certificates: 36, Commands: 100, Deliveries: 100, Counters: 30, AuditEntries: 250}
		got := st
		got.DevicesTook, got.UsersTook, got.CommandsTook, got.FinishTook = 0, 0, 0, 0
		if got != want || st.Took() <= 0 {
			t.Errorf("stats %+v, want %+v", st, want)
		}
		if _, err := db.AppendAudit(ctx, AuditEvent{Time: until, Actor: "test", Action: "test.after", Outcome: OutcomeSuccess}); err != nil {
			t.Fatal(err)
		}
		n, err := db.VerifyAudit(ctx)
		if err != nil || n != int64(len(before))+252 {
			t.Fatalf("VerifyAudit: %d entries, %v; want %d", n, err, len(before)+252)
		}
		es, err := db.AuditEvents(ctx, int64(len(before))+1, 3)
		if err != nil {
			t.Fatal(err)
		}
		// 250 entries for 100 commands: three for each of the first 50,
		// two for the others, in the router's order.
		for i, action := range []string{"router.command.accepted", "router.command.forwarded", "router.response.received"} {
			if es[i].Action != action || es[i].Actor != "90B3D51F31000000/IS" || es[i].Object != es[0].Object || es[i].Details["target"] != "0012A3FFFE800000" {
				t.Errorf("audit entry %d: %+v", i, es[i])
			}
		}

		// The registry: device 0's keys are points, its supplier user 0,
		// its network operator user 9 (the first distributor).
		d, err := db.Router().RouterDevice(ctx, smki.MustParseEUI("0012A3FFFE800000"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ecdh.P256().NewPublicKey(d.KAPublic); err != nil {
			t.Errorf("device key-agreement key: %v", err)
		}
		if d.Supplier != "90B3D51F31000000" || d.NetworkOperator != "90B3D51F31000009" || d.DSPublic == nil {
			t.Errorf("device %+v", d)
		}
		if _, err := db.Router().RouterDevice(ctx, smki.MustParseEUI("0012A3FFFE80001D")); err != nil {
			t.Errorf("last device: %v", err)
		}

		// The users' certificates, found as the router looks them up.
		role := 2
		certs, err := db.SMKI().FindCertificates(ctx, CertQuery{EUI: "90B3D51F31000000", Role: &role, Usage: UsageDS, Kind: KindOrg})
		if err != nil || len(certs) != 1 {
			t.Fatalf("user 0's signing certificate: %d, %v", len(certs), err)
		}
		c, err := x509.ParseCertificate(certs[0].DER)
		if err != nil || c.Subject.CommonName != "90B3D51F31000000" || !c.NotBefore.Equal(certs[0].NotBefore) {
			t.Errorf("certificate: %v, %+v", err, c)
		}
		role = 3
		if certs, err := db.SMKI().FindCertificates(ctx, CertQuery{EUI: "90B3D51F31000009", Role: &role, Usage: UsageKA}); err != nil || len(certs) != 1 {
			t.Errorf("distributor's key-agreement certificate: %d, %v", len(certs), err)
		}
		if certs, err := db.SMKI().FindCertificates(ctx, CertQuery{UserRole: "ED", Kind: KindTLSClient}); err != nil || len(certs) != 1 {
			t.Errorf("DCCKI client certificates of distributors: %d, %v", len(certs), err)
		}

		// Commands 0, 30, 60 and 90 went to device 0 from user 0, 10 ms
		// apart over the second before until.
		last, ok, err := db.Router().LastCounter(ctx, smki.MustParseEUI("90B3D51F31000000"), smki.MustParseEUI("0012A3FFFE800000"))
		wantLast := uint64(until.Add(-time.Second + 90*10*time.Millisecond).UnixMilli())
		if err != nil || !ok || last != wantLast {
			t.Errorf("counter %d, %v, %v; want %d", last, ok, err, wantLast)
		}
		cmd, err := db.Router().FindForwardedCommand(ctx, smki.MustParseEUI("0012A3FFFE800000"), smki.MustParseEUI("90B3D51F31000000"), wantLast)
		if err != nil || cmd.State != CommandResponded || len(cmd.Response) == 0 || cmd.ServiceRef != "7.2" || !cmd.Critical ||
			!cmd.AcceptedAt.Equal(until.Add(-100*time.Millisecond)) {
			t.Errorf("command %+v, %v", cmd, err)
		}
		// Of the 12 users 11 are suppliers: user 0 supplies devices 0, 11
		// and 22, which got 4 + 3 + 3 commands, numbered 1-10 in its
		// delivery queue, and the next delivery follows them.
		ds, err := db.Router().Deliveries(ctx, smki.MustParseEUI("90B3D51F31000000"), 0, 0)
		if err != nil || len(ds) != 10 || ds[0].Seq != 1 || ds[9].Seq != 10 || ds[0].Kind != DeliveryResponse {
			t.Fatalf("deliveries: %d, %v", len(ds), err)
		}
		next, err := db.Router().AddDelivery(ctx, Delivery{Caller: "90B3D51F31000000", Kind: DeliveryAlert, At: until})
		if err != nil || next.Seq != 11 {
			t.Errorf("next delivery: %+v, %v", next, err)
		}

		if _, err := db.Preload(ctx, spec); !errors.Is(err, ErrExists) {
			t.Errorf("second Preload of the same EUIs: %v, want ErrExists", err)
		}
		if _, err := db.VerifyAudit(ctx); err != nil {
			t.Errorf("VerifyAudit after the refused load: %v", err)
		}
	})
}

// TestPreloadRefused checks the specs Preload refuses before writing.
func TestPreloadRefused(t *testing.T) {
	db := sqliteOpener(t)(t)
	until := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		spec PreloadSpec
	}{
		{"no end time", PreloadSpec{Devices: 1}},
		{"negative count", PreloadSpec{Devices: -1, Until: until}},
		{"commands without devices", PreloadSpec{Users: 1, Commands: 1, Until: until}},
		{"commands without suppliers", PreloadSpec{Devices: 1, Commands: 1, Until: until}},
		{"audit entries without commands", PreloadSpec{AuditEntries: 1, Until: until}},
		{"bad first device", PreloadSpec{FirstDevice: "12", Until: until}},
		{"rate above a counter per millisecond", PreloadSpec{Devices: 1, Rate: 2000, Until: until}},
		{"EUIs overflow", PreloadSpec{Devices: 2, FirstDevice: "FFFFFFFFFFFFFFFF", Until: until}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := db.Preload(context.Background(), tc.spec); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Preload: %v, want ErrInvalid", err)
			}
		})
	}
}
