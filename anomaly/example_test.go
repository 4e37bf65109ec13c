package anomaly_test

import (
	"context"
	"fmt"
	"time"

	"github.com/metertrust/metertrust/anomaly"
	"github.com/metertrust/metertrust/anomaly/anomalytest"
	"github.com/metertrust/metertrust/smki"
)

// The router calls Check after the signature and counter checks and before
// the MAC; a quarantined command goes no further until it is released.
func ExampleDetector_Check() {
	ctx := context.Background()
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	d, err := anomaly.New(ctx, anomaly.Config{
		Store:  &anomalytest.Store{}, // store.DB.Anomaly() in production
		Now:    func() time.Time { return now },
		Logger: quietLogger(),
	})
	if err != nil {
		panic(err)
	}
	admin := anomaly.Actor{ID: "ada", Roles: []anomaly.Role{anomaly.RoleThresholdAdmin}}
	// The DCC allows each user two Disable Supply (7.2) commands an hour.
	if _, err := d.SetThreshold(ctx, admin, anomaly.Threshold{ID: "dcc-disable",
		Scope: anomaly.ScopeUserService, ServiceRef: "7.2", Limit: 2, Window: time.Hour}); err != nil {
		panic(err)
	}
	supplier := smki.MustParseEUI("90-B3-D5-1F-30-01-00-0A")
	var last anomaly.Decision
	for i := range 3 {
		last, err = d.Check(ctx, anomaly.Request{ID: fmt.Sprint("cmd-", i), User: supplier,
			UserRole: smki.UserImportSupplier, ServiceRef: "7.2",
			Target: smki.MustParseEUI("00-DB-12-34-56-78-90-A0"), Command: []byte{0xDD}})
		if err != nil {
			panic(err)
		}
		fmt.Println(i, "pass:", last.Pass())
	}
	fmt.Println("kind:", last.Kind, "threshold:", last.Threshold.ID, "count:", last.Count, "limit:", last.Limit)

	// The owning supplier confirms the command and releases it; the router
	// then MACs and forwards the returned command.
	owner := anomaly.Actor{ID: supplier.String(), Roles: []anomaly.Role{anomaly.RoleUser}, User: supplier}
	q, err := d.Release(ctx, last.Ref, owner, "planned disconnection, confirmed")
	if err != nil {
		panic(err)
	}
	fmt.Println("released:", q.CommandID, q.State)
	// Output:
	// 0 pass: true
	// 1 pass: true
	// 2 pass: false
	// kind: dcc-threshold threshold: dcc-disable count: 2 limit: 2
	// released: cmd-2 released
}
