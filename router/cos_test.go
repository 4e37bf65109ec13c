package router

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/metertrust/metertrust/ca"
	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/commands/asn"
	"github.com/metertrust/metertrust/custody"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// cosCommand returns a CS02b supplierByTransCoS replacing the supplier's
// DS and KA cells with new organisation certificates of supplier issued
// in db's repository, with authorising sequence number seq.
func cosCommand(t testing.TB, db *store.DB, supplier smki.EUI, seq int64) *asn.UpdateSecurityCredentialsCommand {
	t.Helper()
	ctx := context.Background()
	keys, err := custody.Open(ctx, "", t.TempDir(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { keys.Close() })
	auth, err := ca.New(ca.Config{Store: db.SMKI(), Keys: keys, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := auth.Init(ctx, ca.InitRequest{}); err != nil {
		t.Fatal(err)
	}
	cmd := &asn.UpdateSecurityCredentialsCommand{AuthorisingRemotePartyControl: asn.AuthorisingRemotePartyControl{
		CredentialsReplacementMode: asn.SupplierByTransCoS, AuthorisingRemotePartySeqNumber: asn.SeqNumber(seq)},
		CertificationPathCertificates: []asn.Certificate{}}
	for _, u := range []struct {
		ku    x509.KeyUsage
		usage ca.Usage
		bit   asn.KeyUsageBit
	}{{x509.KeyUsageDigitalSignature, ca.UsageDS, asn.DigitalSignature}, {x509.KeyUsageKeyAgreement, ca.UsageKA, asn.KeyAgreement}} {
		csr, err := smki.CreateCSR(rand.Reader, &smki.CSRTemplate{Kind: smki.KindOrganisation, Role: smki.RoleSupplier, EUI: supplier,
			CommonName: "New Energy", KeyUsage: u.ku}, mustKey(t))
		if err != nil {
			t.Fatal(err)
		}
		c, err := auth.IssueOrg(ctx, ca.OrgRequest{CSR: csr, Role: smki.RoleSupplier, EUI: supplier, Usage: u.usage})
		if err != nil {
			t.Fatal(err)
		}
		cmd.Replacements = append(cmd.Replacements, asn.TrustAnchorReplacement{ReplacementCertificate: asn.Certificate{Raw: c.DER},
			TargetTrustAnchorCell: asn.Cell(asn.RoleSupplier, u.bit, asn.CellManagement)})
	}
	return cmd
}

// cosResponse is the meter's response to cmd: applied, refused (each
// cell status badCertificate, as it was), partial (the first cell
// replaced only) or, for "", without execution outcome.
func cosResponse(t *testing.T, cmd *asn.UpdateSecurityCredentialsCommand, oldOwner smki.EUI, kind string) *asn.UpdateSecurityCredentialsResponse {
	t.Helper()
	r := &asn.UpdateSecurityCredentialsResponse{}
	if kind == "" {
		return r
	}
	o := cmd.NewExecutionOutcome()
	for i, rep := range cmd.Replacements {
		c, err := smki.ParseCertificate(rep.ReplacementCertificate.Raw)
		if err != nil {
			t.Fatal(err)
		}
		ro := asn.ReplacementOutcome{AffectedTrustAnchorCell: rep.TargetTrustAnchorCell, StatusCode: asn.StatusBadCertificate,
			ExistingSubjectUniqueID: asn.EntityID(oldOwner), ExistingSubjectKeyID: asn.KeyID{1, 2, 3, 4, 5, 6, 7, byte(i)}}
		ro.ReplacingSubjectUniqueID, ro.ReplacingSubjectKeyID = ro.ExistingSubjectUniqueID, ro.ExistingSubjectKeyID
		if kind == "applied" || kind == "partial" && i == 0 {
			ro.StatusCode, ro.ReplacingSubjectUniqueID = asn.StatusSuccess, asn.EntityID(c.EUI)
			copy(ro.ReplacingSubjectKeyID[:], c.SubjectKeyID)
		}
		o.ReplacementOutcomes = append(o.ReplacementOutcomes, ro)
	}
	r.ExecutionOutcome = &o
	return r
}

func TestClassifyOutcome(t *testing.T) {
	db := storeBackends(t)["sqlite"](t)(t)
	old, nw := smki.MustParseEUI("90B3D51F30010000"), smki.MustParseEUI("90B3D51F30040000")
	cmd := cosCommand(t, db, nw, 7)
	wrongSeq := cosResponse(t, cmd, old, "applied")
	wrongSeq.ExecutionOutcome.AuthorisingRemotePartySeqNumber = 6
	short := cosResponse(t, cmd, old, "applied")
	short.ExecutionOutcome.ReplacementOutcomes = short.ExecutionOutcome.ReplacementOutcomes[:1]
	tests := []struct {
		name string
		resp *asn.UpdateSecurityCredentialsResponse
		want string
	}{
		{"applied", cosResponse(t, cmd, old, "applied"), store.OutcomeApplied},
		{"refused", cosResponse(t, cmd, old, "refused"), store.OutcomeRefusedCoS},
		{"partial", cosResponse(t, cmd, old, "partial"), ""},
		{"no outcome (future-dated)", cosResponse(t, cmd, old, ""), ""},
		{"another command's outcome", wrongSeq, ""},
		{"outcomes missing", short, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, detail := classifyOutcome(cmd, tt.resp); got != tt.want {
				t.Errorf("classifyOutcome = %q (%s), want %q", got, detail, tt.want)
			}
		})
	}
}

// TestChangeDeskTransitions drives the change desk's state machine
// (decision 014) with answers and failures as the forwarder reports them:
// pending to applied, a late duplicate ignored, pending to refused,
// pending to unsettled to applied by a late answer, and an answer without
// outcome unsettling.
func TestChangeDeskTransitions(t *testing.T) {
	for name, fresh := range storeBackends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			db := fresh(t)(t)
			w := newWorld(t)
			tcos := smki.MustParseEUI("90B3D51F30000005")
			desk, err := NewChangeDesk(w.router(t), ChangeDeskConfig{Store: db.Router(), TCoS: tcos, TCoSKey: mustKey(t)})
			if err != nil {
				t.Fatal(err)
			}
			old, nw := w.supplier.eui, smki.MustParseEUI("90B3D51F30040000")
			dev := w.device
			if err := db.Router().PutRouterDevices(ctx, store.RouterDevice{EUI: dev.String(), KAPublic: w.deviceKA.PublicKey().Bytes(),
				Supplier: old.String(), UpdatedAt: w.now}); err != nil {
				t.Fatal(err)
			}
			seq := int64(10)
			deviceDS := mustKey(t)
			cmd := cosCommand(t, db, nw, seq)
			// open records a change from the device's current owner to
			// nw, with its CS02b; it returns the CS02b's record.
			open := func(id string) Record {
				t.Helper()
				d, err := db.Router().RouterDevice(ctx, dev)
				if err != nil {
					t.Fatal(err)
				}
				cmd.AuthorisingRemotePartyControl.AuthorisingRemotePartySeqNumber = asn.SeqNumber(seq)
				seq++
				payload, err := cmd.Marshal()
				if err != nil {
					t.Fatal(err)
				}
				m := &commands.Message{CRA: commands.Command, Counter: uint64(seq), Originator: tcos, Recipient: dev,
					Code: codeCS02bByTCoS, Payload: payload}
				raw, err := m.Marshal()
				if err != nil {
					t.Fatal(err)
				}
				if err := db.Router().OpenOwnershipChange(ctx, store.OwnershipChange{ID: id, Device: dev.String(), Kind: "supplierByTransCoS",
					Requester: nw.String(), OldOwner: d.Supplier, NewOwner: nw.String(), CommandID: "cmd-" + id, Counter: uint64(seq),
					Sequence: seq, CreatedAt: w.now}); err != nil {
					t.Fatal(err)
				}
				return Record{ID: "cmd-" + id, Caller: Caller{EUI: nw, Role: smki.UserImportSupplier}, Originator: tcos, Target: dev,
					Counter: uint64(seq), Code: codeCS02bByTCoS, Ref: refChangeSupply, Critical: true, Message: raw}
			}
			answer := func(rec Record, kind string, owner smki.EUI) []byte {
				t.Helper()
				c, _ := commands.Parse(rec.Message)
				cc, err := asn.Parse[asn.UpdateSecurityCredentialsCommand](c.Payload)
				if err != nil {
					t.Fatal(err)
				}
				p, err := cosResponse(t, cc, owner, kind).Marshal()
				if err != nil {
					t.Fatal(err)
				}
				return marshal(t, &commands.Message{CRA: commands.Response, Counter: rec.Counter, Originator: dev, Recipient: tcos,
					Code: codeCS02bByTCoS, Payload: p}, deviceDS, true)
			}
			check := func(id, state, supplier, deviceState string) {
				t.Helper()
				st, err := desk.Change(ctx, Caller{EUI: nw}, id)
				if err != nil || st.State != state {
					t.Fatalf("change %s: %+v, %v, want state %s", id, st, err, state)
				}
				d, err := db.Router().RouterDevice(ctx, dev)
				if err != nil || d.Supplier != supplier || d.ChangeState != deviceState {
					t.Fatalf("device after change %s: supplier %s, change state %q, %v; want %s, %q", id, d.Supplier, d.ChangeState, err, supplier, deviceState)
				}
			}

			// Pending, then the meter applies it: ownership moves.
			rec := open("c1")
			check("c1", "pending", old.String(), store.ChangePending)
			desk.CredentialsAnswered(ctx, rec, answer(rec, "applied", old))
			check("c1", "applied", nw.String(), "")
			// A late copy of the answer (or a refusal) changes nothing.
			desk.CredentialsAnswered(ctx, rec, answer(rec, "refused", old))
			check("c1", "applied", nw.String(), "")
			if e := w.audit.last(); e.Action != "change-of-supplier.stale-answer" {
				t.Errorf("stale answer audited as %+v", e)
			}

			// The meter refuses the next: the owner stays.
			rec = open("c2")
			desk.CredentialsAnswered(ctx, rec, answer(rec, "refused", nw))
			check("c2", "refused", nw.String(), "")

			// No answer (the transport gave up): unsettled, both suppliers
			// locked out; a late answer settles it.
			if err := db.Router().PutRouterDevices(ctx, store.RouterDevice{EUI: dev.String(), KAPublic: w.deviceKA.PublicKey().Bytes(),
				Supplier: old.String(), UpdatedAt: w.now}); err != nil {
				t.Fatal(err)
			}
			rec = open("c3")
			desk.CredentialsUnknown(ctx, rec, "forwarding failed after 20 attempts")
			check("c3", "unsettled", old.String(), store.ChangeUnsettled)
			desk.CredentialsAnswered(ctx, rec, answer(rec, "applied", old))
			check("c3", "applied", nw.String(), "")

			// An answer that proves nothing (no execution outcome, or a
			// partial one) unsettles.
			rec = open("c4")
			desk.CredentialsAnswered(ctx, rec, answer(rec, "partial", nw))
			check("c4", "unsettled", nw.String(), store.ChangeUnsettled)
			events, err := db.AuditEvents(ctx, 0, 100)
			if err != nil {
				t.Fatal(err)
			}
			var settled int
			for _, e := range events {
				if e.Action == changeAuditEvent && e.Outcome != store.OutcomeAttempt {
					settled++
					if e.Details["oldOwner"] == nil || e.Details["newOwner"] == nil {
						t.Errorf("settlement audited without the owners: %+v", e.Details)
					}
				}
			}
			if settled != 3 {
				t.Errorf("%d settlements audited, want 3", settled)
			}
		})
	}
}

// TestOwnershipWhileChanging: while a device's change of supplier is
// pending or unsettled, every supplier's critical command is refused
// ownership-unsettled; non-critical commands follow the settled owner.
func TestOwnershipWhileChanging(t *testing.T) {
	for _, state := range []string{"pending", "unsettled"} {
		t.Run(state, func(t *testing.T) {
			w := newWorld(t)
			d := w.reg.devices[w.device]
			d.ChangeState = state
			w.reg.devices[w.device] = d
			r := w.router(t)
			ctx := context.Background()
			for _, p := range []party{w.supplier, w.stranger} {
				_, err := r.Submit(ctx, p.caller(), command(t, p, w.device, codeDisable, 1, true))
				if !errors.Is(err, ErrOwnershipUnsettled) {
					t.Errorf("%s's critical command: %v, want ownership-unsettled", p.eui, err)
				}
			}
			if _, err := r.Submit(ctx, w.supplier.caller(), command(t, w.supplier, w.device, codeRead, 1, false)); err != nil {
				t.Errorf("settled owner's non-critical command: %v", err)
			}
			if _, err := r.Submit(ctx, w.stranger.caller(), command(t, w.stranger, w.device, codeRead, 1, false)); !errors.Is(err, ErrNotOwner) {
				t.Errorf("another supplier's non-critical command: %v, want not-owner", err)
			}
			if e := w.audit.events[0]; e.Kind != ErrOwnershipUnsettled.Code() {
				t.Errorf("refusal audited as %+v", e)
			}
		})
	}
}

func TestChangeReadWait(t *testing.T) {
	d := &ChangeDesk{cfg: ChangeDeskConfig{ReadTimeout: 2 * time.Minute, ReadMaxWait: time.Hour}}
	for _, tt := range []struct {
		reads int
		want  time.Duration
	}{{1, 2 * time.Minute}, {2, 4 * time.Minute}, {5, 32 * time.Minute}, {6, time.Hour}, {1000, time.Hour}} {
		if got := d.readWait(tt.reads); got != tt.want {
			t.Errorf("readWait(%d) = %s, want %s", tt.reads, got, tt.want)
		}
	}
}

// TestCS02bNotSubmittable: a CS02b replacing supplier cells cannot be
// submitted as an ordinary command, which would change the meter's anchors
// without a change on record (decision 014, step 1).
func TestCS02bNotSubmittable(t *testing.T) {
	for _, code := range []commands.MessageCode{0x0102, codeCS02bByTCoS} {
		srs, err := (GBCSCatalogue{}).Lookup(code)
		for _, sr := range srs {
			if len(sr.Roles) > 0 {
				t.Errorf("message code %s is eligible for %v (%s)", code, sr.Roles, sr.Ref)
			}
		}
		if err == nil && len(srs) > 0 {
			t.Logf("message code %s serves %v with no eligible role", code, srs)
		}
	}
}
