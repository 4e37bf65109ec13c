package router

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/metertrust/metertrust/ca"
	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/commands/asn"
	"github.com/metertrust/metertrust/device"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// rotationCerts issues the e2e supplier new DS, KA and prepayment KA
// certificates and returns the request naming them and the new DS key.
func (e *e2e) rotationCerts(t *testing.T, target smki.EUI) (RotationRequest, *ecdsa.PrivateKey) {
	t.Helper()
	ctx := context.Background()
	req := RotationRequest{Target: target}
	var ds *ecdsa.PrivateKey
	for _, u := range []struct {
		usage ca.Usage
		ku    x509.KeyUsage
		dst   *string
	}{{ca.UsageDS, x509.KeyUsageDigitalSignature, &req.DS}, {ca.UsageKA, x509.KeyUsageKeyAgreement, &req.KA},
		{ca.UsagePPKA, x509.KeyUsageKeyAgreement, &req.PrepaymentKA}} {
		k := mustKey(t)
		if u.usage == ca.UsageDS {
			ds = k
		}
		csr, err := smki.CreateCSR(rand.Reader, &smki.CSRTemplate{Kind: smki.KindOrganisation, Role: smki.RoleSupplier,
			EUI: e.supplier.eui, CommonName: "User " + e.supplier.eui.String(), KeyUsage: u.ku}, k)
		if err != nil {
			t.Fatal(err)
		}
		c, err := e.auth.IssueOrg(ctx, ca.OrgRequest{CSR: csr, Role: smki.RoleSupplier, EUI: e.supplier.eui, Usage: u.usage})
		if err != nil {
			t.Fatal(err)
		}
		*u.dst = fmt.Sprintf("%X", c.Serial)
	}
	return req, ds
}

// rotate asks for the rotation over the API, signs its CS02b with key
// (after edit, when given) and submits it; it returns the receipt, or the
// status and problem of the first step refused.
func (e *e2e) rotate(t *testing.T, req RotationRequest, key *ecdsa.PrivateKey, edit func(*asn.UpdateSecurityCredentialsCommand)) (Receipt, int, Problem) {
	t.Helper()
	body, _ := json.Marshal(req)
	var pc PreCommand
	if st, p := e.call(t, "POST", "/v1/key-rotations", "application/json", body, &pc); st != http.StatusOK {
		return Receipt{}, st, p
	}
	raw, _ := hex.DecodeString(pc.Message)
	m, err := commands.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		cmd, err := asn.Parse[asn.UpdateSecurityCredentialsCommand](m.Payload)
		if err != nil {
			t.Fatal(err)
		}
		edit(cmd)
		if m.Payload, err = cmd.Marshal(); err != nil {
			t.Fatal(err)
		}
	}
	if err := commands.SignPreCommand(rand.Reader, key, m); err != nil {
		t.Fatal(err)
	}
	if raw, err = m.Marshal(); err != nil {
		t.Fatal(err)
	}
	var rc Receipt
	st, p := e.call(t, "POST", "/v1/commands", "application/octet-stream", raw, &rc)
	return rc, st, p
}

// rotation polls the rotation of command id until its state is not
// pending or unsettled, or until settled is false and the CS02b has its
// response.
func (e *e2e) rotation(t *testing.T, id string, settled bool) ChangeStatus {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var st ChangeStatus
		if code, p := e.call(t, "GET", "/v1/key-rotations/"+id, "", nil, &st); code != http.StatusOK {
			t.Fatalf("GET rotation %s: %d %+v", id, code, p)
		}
		var cmd struct {
			State string `json:"state"`
		}
		e.call(t, "GET", "/v1/commands/"+id, "", nil, &cmd)
		done := st.State != store.ChangePending && st.State != store.ChangeUnsettled
		if settled && done || !settled && cmd.State == "responded" {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("rotation %+v (command %s) after 15s", st, cmd.State)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRotationWithMeter: the supplier rotates its keys (SR 6.15.1, CS02b
// supplierBySupplier signed with its current key) over the API with the
// reference meters: applied on one meter, whose key id the router then
// checks signatures with (the old key refused there, naming the new one,
// and still good on the others); refused by a meter that cannot chain the
// new certificates to its root (the meter's status codes told, the key
// unchanged); future-dated on a third, pending (critical commands and a
// second rotation refused) until the meter's alert 0x00CB settles it.
// And the refusals: wrong role, not-owner, certificate-path, a CS02b of
// another mode, signed with a key the meter does not hold.
func TestRotationWithMeter(t *testing.T) {
	for name, open := range storeBackends(t) {
		t.Run(name, func(t *testing.T) {
			e := newE2E(t, open(t)(t))
			ctx := context.Background()
			m0, m1, m2 := e.meters[0], e.meters[1], e.meters[2]
			req, newDS := e.rotationCerts(t, m0)

			// Refusals before any change is recorded.
			bad := req
			bad.DS = req.KA
			if _, st, p := e.rotate(t, bad, e.supplier.ds, nil); st != http.StatusForbidden || p.Code != "certificate-path" {
				t.Errorf("KA certificate for the DS cell: %d %+v", st, p)
			}
			body, _ := json.Marshal(req)
			if st, p := e.callAs(t, e.other, "POST", "/v1/key-rotations", "application/json", body, nil); st != http.StatusForbidden || p.Code != "role-not-eligible" {
				t.Errorf("other user rotating: %d %+v", st, p)
			}
			if _, err := e.svc.Changes.PrepareRotation(ctx, Caller{EUI: smki.MustParseEUI("90B3D51F30000009"), Role: smki.UserGasSupplier}, req); KindOf(err) != ErrNotOwner {
				t.Errorf("another supplier rotating: %v, want not-owner", err)
			}
			if _, st, p := e.rotate(t, req, newDS, nil); st != http.StatusForbidden || p.Code != "signature" {
				t.Errorf("rotation signed with the new key: %d %+v", st, p)
			}
			if _, st, p := e.rotate(t, req, e.supplier.ds, func(c *asn.UpdateSecurityCredentialsCommand) {
				c.Replacements = c.Replacements[:1]
			}); st != http.StatusForbidden || p.Code != "certificate-path" {
				t.Errorf("rotation of the DS cell alone: %d %+v", st, p)
			}

			// A rotation signed by the owner may not touch other roles'
			// floors: raising the TCoS's would refuse every later change
			// of supplier away from it.
			for name, edit := range map[string]func(*asn.UpdateSecurityCredentialsCommand){
				"[6] raising the TCoS's floor": func(c *asn.UpdateSecurityCredentialsCommand) {
					c.AuthorisingRemotePartyControl.OtherRemotePartySeqNumberChanges = []asn.RemotePartySeqNumberChange{
						{RemotePartyRole: asn.RoleTransitionalCoS, FloorSeqNumber: 1<<63 - 1}}
				},
				"[4] a floor of its own": func(c *asn.UpdateSecurityCredentialsCommand) {
					f := asn.SeqNumber(1 << 40)
					c.AuthorisingRemotePartyControl.NewRemotePartyFloorSeqNumber = &f
				},
			} {
				if _, st, p := e.rotate(t, req, e.supplier.ds, edit); st != http.StatusBadRequest || p.Code != "malformed" {
					t.Errorf("rotation with %s: %d %+v, want malformed", name, st, p)
				}
			}

			// Applied on m0.
			rc, st, p := e.rotate(t, req, e.supplier.ds, nil)
			if st != http.StatusAccepted || rc.Change == "" {
				t.Fatalf("rotation: %d %+v %+v", st, p, rc)
			}
			ch := e.rotation(t, rc.ID, true)
			if ch.State != store.OutcomeApplied || ch.Kind != "supplierBySupplier" {
				t.Fatalf("rotation %+v, want applied", ch)
			}
			mtr, _ := e.fleet.Meter(m0)
			if an, _ := mtr.Anchors().Role(smki.RoleSupplier); fmt.Sprintf("%X", an.Cells[0].SubjectKeyID) != ch.DSKeyID {
				t.Fatalf("meter's supplier DS cell %X, want %s", an.Cells[0].SubjectKeyID, ch.DSKeyID)
			}
			critical := func(target smki.EUI, key *ecdsa.PrivateKey) (int, Problem) {
				t.Helper()
				u := *e.supplier
				u.ds = key
				_, st, p := e.requestAs(t, &u, "7.1", target, "")
				return st, p
			}
			if st, p := critical(m0, newDS); st != http.StatusAccepted {
				t.Errorf("new key on the rotated meter: %d %+v", st, p)
			}
			if st, p := critical(m0, e.supplier.ds); st != http.StatusForbidden || p.Code != "signature" || !strings.Contains(p.Detail, ch.DSKeyID) {
				t.Errorf("old key on the rotated meter: %d %+v, want signature naming %s", st, p, ch.DSKeyID)
			}
			if st, p := critical(m1, e.supplier.ds); st != http.StatusAccepted {
				t.Errorf("old key on another meter: %d %+v", st, p)
			}

			// Refused by m1: the CS02b carries no certification path, and
			// the meter holds a root anchor.
			req1 := req
			req1.Target = m1
			rc, st, p = e.rotate(t, req1, e.supplier.ds, func(c *asn.UpdateSecurityCredentialsCommand) {
				c.CertificationPathCertificates = []asn.Certificate{}
			})
			if st != http.StatusAccepted {
				t.Fatalf("rotation of m1: %d %+v", st, p)
			}
			ch = e.rotation(t, rc.ID, true)
			if ch.State != store.OutcomeRefusedCoS || !strings.Contains(ch.Detail, "badCertificate") {
				t.Fatalf("rotation the meter refused: %+v, want refused with its status codes", ch)
			}
			if d, _ := e.svc.Storage.Device(ctx, m1); !bytes.Equal(d.SupplierKeyID, mustKeyID(t, e.supplier.dsCert.DER)) || d.ChangeState != "" {
				t.Fatalf("m1 after the refusal: %+v", d)
			}
			if st, p := critical(m1, e.supplier.ds); st != http.StatusAccepted {
				t.Errorf("old key on the meter that refused: %d %+v", st, p)
			}

			// Future-dated on m2: acknowledged, pending until the alert.
			at := time.Now().Add(time.Hour).Truncate(time.Second)
			req2 := req
			req2.Target, req2.ExecuteAt = m2, &at
			rc, st, p = e.rotate(t, req2, e.supplier.ds, nil)
			if st != http.StatusAccepted {
				t.Fatalf("future-dated rotation: %d %+v", st, p)
			}
			ch = e.rotation(t, rc.ID, false)
			if ch.State != store.ChangePending || ch.ExecuteAt == nil || !ch.ExecuteAt.Equal(at) {
				t.Fatalf("future-dated rotation once acknowledged: %+v, want pending", ch)
			}
			if st, p := critical(m2, e.supplier.ds); st != http.StatusConflict || p.Code != "ownership-unsettled" {
				t.Errorf("critical command while the rotation waits: %d %+v", st, p)
			}
			if _, st, p := e.rotate(t, req2, e.supplier.ds, nil); st != http.StatusConflict || p.Code != "change-pending" {
				t.Errorf("second rotation while one waits: %d %+v", st, p)
			}
			e.meterClock.Store(int64(2 * time.Hour))
			mtr2, _ := e.fleet.Meter(m2)
			mtr2.Tick(ctx)
			var alert device.Alert
			select {
			case alert = <-e.alerts:
			case <-time.After(5 * time.Second):
				t.Fatal("no alert from the meter")
			}
			am, err := commands.Parse(alert.Message)
			if err != nil || am.Code != CodeCS02bAlert {
				t.Fatalf("alert %+v: %v", alert, err)
			}
			if err := commands.VerifySignature(mtr2.SignaturePublicKey(), am); err != nil {
				t.Fatalf("alert signature: %v", err)
			}
			e.svc.Changes.CredentialsAlerted(ctx, m2, am)
			ch = e.rotation(t, rc.ID, true)
			if ch.State != store.OutcomeApplied {
				t.Fatalf("future-dated rotation after the alert: %+v", ch)
			}
			if d, _ := e.svc.Storage.Device(ctx, m2); fmt.Sprintf("%X", d.SupplierKeyID) != ch.DSKeyID {
				t.Fatalf("m2's key id %X, want %s", d.SupplierKeyID, ch.DSKeyID)
			}
			// The same alert again matches no open change: audited, ignored.
			e.svc.Changes.CredentialsAlerted(ctx, m2, am)
			events, err := e.db.AuditEvents(ctx, 0, 5000)
			if err != nil {
				t.Fatal(err)
			}
			counts := map[string]int{}
			for _, ev := range events {
				counts[ev.Action+"/"+ev.Outcome]++
			}
			if counts["router.change-of-supplier.stale-alert/"+store.OutcomeSuccess] != 1 ||
				counts["router.device.credentials.change/"+store.OutcomeAttempt] != 3 ||
				counts["router.device.credentials.change/"+store.OutcomeSuccess] != 2 ||
				counts["router.device.credentials.change/"+store.OutcomeRefused] != 1 {
				t.Errorf("audit log: %v", counts)
			}
		})
	}
}

func mustKeyID(t *testing.T, der []byte) []byte {
	t.Helper()
	c, err := smki.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c.SubjectKeyID
}

// TestOperatorAlert: a change that diverges, and one whose reads go
// unanswered ReadAlertAfter times, alert an operator: an audit entry
// (router.operator.alert, failure, naming the change), an ERROR log line
// and the metric.
func TestOperatorAlert(t *testing.T) {
	db := storeBackends(t)["sqlite"](t)(t)
	var logs bytes.Buffer
	reg := prometheus.NewRegistry()
	metrics, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(Config{ACB: smki.MustParseEUI("90B3D51F30000004"), ACBKey: &fakeKA{}, Catalogue: GBCSCatalogue{}, Registry: NewStorage(db.Router()),
		Certificates: &fakeCerts{}, Ledger: NewStorage(db.Router()), Admitter: fakeAdmitter{}, Auditor: NewStorage(db.Router()),
		Metrics: metrics, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewChangeDesk(r, ChangeDeskConfig{Store: db.Router(), ReadAlertAfter: 2})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ch := store.OwnershipChange{ID: "c1", Device: "0012A3FFFE000001", Kind: "supplierBySupplier", Requester: "90B3D51F30000002", Reads: 4}
	d.operatorAlert(ctx, ch, "reads", "4 reads unanswered")
	d.operatorAlert(ctx, ch, "diverged", "the meter's supplier cells hold someone else")
	events, err := db.AuditEvents(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range events {
		if e.Action == operatorAlertAction && e.Outcome == store.OutcomeFailure && e.Details["change"] == "c1" {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d operator alert audit entries naming the change, want 2: %+v", n, events)
	}
	if c := strings.Count(logs.String(), `"level":"ERROR"`); c != 2 || !strings.Contains(logs.String(), `"change":"c1"`) {
		t.Errorf("error log lines: %d, want 2 naming the change: %s", c, logs.String())
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "metertrust_router_operator_alerts_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			got[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	if got["diverged"] != 1 || got["reads"] != 1 {
		t.Errorf("operator alerts metric %v, want one of each", got)
	}
}

// TestCredentialChangeConfig checks the change desk's timing in the serve
// configuration.
func TestCredentialChangeConfig(t *testing.T) {
	tests := []struct {
		name    string
		c       CredentialChangeConfig
		want    ChangeDeskConfig
		wantErr string
	}{
		{"defaults", CredentialChangeConfig{}, ChangeDeskConfig{}, ""},
		{"all", CredentialChangeConfig{AnswerTimeout: "90s", ReadTimeout: "1m", ReadMaxWait: "30m", ReadAlertAfter: 3, Sweep: "5s"},
			ChangeDeskConfig{AnswerTimeout: 90 * time.Second, ReadTimeout: time.Minute, ReadMaxWait: 30 * time.Minute, ReadAlertAfter: 3, Sweep: 5 * time.Second}, ""},
		{"not a duration", CredentialChangeConfig{AnswerTimeout: "soon"}, ChangeDeskConfig{}, "credentialChange.answerTimeout"},
		{"too short", CredentialChangeConfig{Sweep: "1ms"}, ChangeDeskConfig{}, "credentialChange.sweep"},
		{"too long", CredentialChangeConfig{ReadTimeout: "48h"}, ChangeDeskConfig{}, "credentialChange.readTimeout"},
		{"max below timeout", CredentialChangeConfig{ReadTimeout: "10m", ReadMaxWait: "5m"}, ChangeDeskConfig{}, "credentialChange.readMaxWait"},
		{"alert after negative", CredentialChangeConfig{ReadAlertAfter: -1}, ChangeDeskConfig{}, "credentialChange.readAlertAfter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.c.Desk()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Desk() = %v, want an error naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Desk() = %+v, %v, want %+v", got, err, tt.want)
			}
		})
	}
}

// TestReadAlertAfter: the sweep alerts an operator when an unsettled
// change's reads reach ReadAlertAfter (and each such number more)
// without an answer, and not before.
func TestReadAlertAfter(t *testing.T) {
	ctx := context.Background()
	db := storeBackends(t)["sqlite"](t)(t)
	w := newWorld(t)
	start := w.now.Add(-48 * time.Hour)
	desk, err := NewChangeDesk(w.router(t), ChangeDeskConfig{Store: db.Router(), ReadAlertAfter: 3})
	if err != nil {
		t.Fatal(err)
	}
	dev := w.device.String()
	if err := db.Router().PutRouterDevices(ctx, store.RouterDevice{EUI: dev, KAPublic: w.deviceKA.PublicKey().Bytes(),
		Supplier: w.supplier.eui.String(), UpdatedAt: start}); err != nil {
		t.Fatal(err)
	}
	if err := db.Router().OpenOwnershipChange(ctx, store.OwnershipChange{ID: "c1", Device: dev, Kind: "supplierBySupplier",
		Requester: w.supplier.eui.String(), OldOwner: w.supplier.eui.String(), NewOwner: w.supplier.eui.String(), CommandID: "cmd-c1",
		Counter: 5, Sequence: 5, CreatedAt: start}); err != nil {
		t.Fatal(err)
	}
	if err := db.Router().UnsettleOwnershipChange(ctx, "c1", "test", start); err != nil {
		t.Fatal(err)
	}
	alerts := func() int {
		t.Helper()
		events, err := db.AuditEvents(ctx, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range events {
			if e.Action == operatorAlertAction && e.Details["change"] == "c1" && e.Details["reason"] == "reads" {
				n++
			}
		}
		return n
	}
	for reads := 1; reads <= 6; reads++ {
		if err := db.Router().RecordOwnershipRead(ctx, "c1", fmt.Sprintf("read-%d", reads), start); err != nil {
			t.Fatal(err)
		}
		if err := desk.Sweep(ctx, false); err != nil {
			t.Fatal(err)
		}
		if want := reads / 3; alerts() != want {
			t.Fatalf("after %d unanswered reads: %d operator alerts, want %d", reads, alerts(), want)
		}
	}
}

// TestCS02bThroughTheDesk: a CS02b submitted as a command never goes
// straight through the pipeline: refused role-not-eligible by a router
// without a change desk, and with one for every mode but an owner's own
// rotation (0x0107 is the TCoS's, 0x0100 a root replacement).
func TestCS02bThroughTheDesk(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		desk bool
		code commands.MessageCode
	}{{"no desk", false, codeCS02bBySupplier}, {"TCoS mode", true, codeCS02bByTCoS}, {"root mode", true, 0x0100}} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			r := w.router(t)
			if tt.desk {
				db := storeBackends(t)["sqlite"](t)(t)
				if _, err := NewChangeDesk(r, ChangeDeskConfig{Store: db.Router()}); err != nil {
					t.Fatal(err)
				}
			}
			_, err := r.Submit(ctx, w.supplier.caller(), command(t, w.supplier, w.device, tt.code, 1, true))
			if KindOf(err) != ErrNotEligible {
				t.Fatalf("CS02b %s: %v, want role-not-eligible", tt.code, err)
			}
			if len(w.ledger.records) != 0 {
				t.Fatalf("recorded %d commands", len(w.ledger.records))
			}
		})
	}
}
