package client_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/metertrust/metertrust/client"
	"github.com/metertrust/metertrust/device"
	"github.com/metertrust/metertrust/inproc"
)

// TestGasReads runs a third party's consented reads of a gas meter: the
// CIN on the GSME, a half-hourly profile read longer than one GCS17
// response carries split into spans and decrypted interval by interval, a
// daily log read by from and to (GCS61); the electricity use case sent to
// the gas meter fails at the meter, and a gas read reaching back more than
// 13 months is refused by the router.
func TestGasReads(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sys, err := inproc.Start(ctx, inproc.Config{Meters: 1, MeterKind: device.Gas, RouterAddr: "127.0.0.1:0", RepositoryAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sys.Close() })
	c := thirdParty(t, sys)
	meter := sys.Meters[0]
	rc, err := c.RequestCIN(ctx, meter, client.Gas)
	if err != nil {
		t.Fatal(err)
	}
	if d, err := c.Wait(ctx, rc.ID, 0); err != nil || d.Kind != client.KindResponse {
		t.Fatalf("the CIN command: %+v, %v", d, err)
	}
	m, _ := sys.Fleet.Meter(meter)
	cin, ok := m.CIN()
	if !ok {
		t.Fatal("the gas meter displays no CIN")
	}
	if _, err := c.ClaimConsent(ctx, meter, cin, []string{"4.8.1", "4.17"}, 30); err != nil {
		t.Fatal(err)
	}
	read := func(q client.Request) (client.Readings, error) {
		t.Helper()
		rc, err := c.Do(ctx, q)
		if err != nil {
			return client.Readings{}, err
		}
		d, err := c.Wait(ctx, rc.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		if d.Kind != client.KindResponse {
			return client.Readings{}, errors.New(d.Kind + ": " + d.Detail)
		}
		r, err := c.Open(ctx, d.Body)
		if err != nil {
			t.Fatal(err)
		}
		if !r.OnBehalf || len(r.Plaintexts) != 1 {
			t.Fatalf("opened %+v: want one block encrypted to the third party, MAC'd for the broker", r)
		}
		return r.Readings()
	}

	// 300 half hours: two GCS17 reads (255 and 45), back to back.
	to := time.Now().UTC().Truncate(30 * time.Minute)
	from := to.Add(-300 * 30 * time.Minute)
	spans := client.ProfileSpans(client.Gas, from, to)
	if len(spans) != 2 || !spans[0].To.Equal(spans[1].From) {
		t.Fatalf("spans %v, want 2 back to back", spans)
	}
	next := from
	for _, s := range spans {
		rd, err := read(client.Request{Ref: "4.8.1", Target: meter, Fuel: client.Gas, Params: s.ProfileParams(client.Gas)})
		if err != nil {
			t.Fatalf("span %v: %v", s, err)
		}
		if rd.UseCase != "GCS17" || rd.Period != 30*time.Minute {
			t.Fatalf("readings %s of %s", rd.UseCase, rd.Period)
		}
		for _, iv := range rd.Intervals {
			if !iv.Start.Equal(next) {
				t.Fatalf("interval at %s, want %s", iv.Start, next)
			}
			next = next.Add(30 * time.Minute)
		}
	}
	if !next.Equal(to) {
		t.Fatalf("intervals end at %s, want %s", next, to)
	}

	// The daily log by from and to: three completed days.
	today := time.Now().UTC().Truncate(24 * time.Hour)
	rd, err := read(client.Request{Ref: "4.17", Target: meter, Fuel: client.Gas,
		Params: map[string]string{"from": today.AddDate(0, 0, -3).Format(time.RFC3339), "to": today.Format(time.RFC3339)}})
	if err != nil {
		t.Fatal(err)
	}
	if rd.UseCase != "GCS61" || len(rd.Intervals) != 3 || !rd.Intervals[0].Start.Equal(today.AddDate(0, 0, -3)) {
		t.Fatalf("daily log %+v, want the 3 days before today", rd)
	}

	// Without the fuel the router builds the ESME's ECS22b, which the gas
	// meter does not execute.
	if _, err := read(client.Request{Ref: "4.8.1", Target: meter, Params: spans[1].ProfileParams("")}); err == nil {
		t.Fatal("an electricity profile read executed by a gas meter")
	}
	// 13 months and a day back: refused by the router.
	old := client.Span{From: time.Now().UTC().AddDate(0, -13, -1).Truncate(30 * time.Minute)}
	old.To = old.From.Add(2 * time.Hour)
	if _, err := c.Do(ctx, client.Request{Ref: "4.8.1", Target: meter, Fuel: client.Gas, Params: old.ProfileParams(client.Gas)}); !errors.Is(err, client.ErrConsentPeriod) {
		t.Fatalf("a gas read before the data period: %v", err)
	}
}
