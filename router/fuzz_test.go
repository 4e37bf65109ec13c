package router

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/commands/asn"
	"github.com/metertrust/metertrust/commands/gbz"
	"github.com/metertrust/metertrust/store"
)

// FuzzSubmit puts arbitrary bytes through the pipeline as the supplier: it
// never panics, a refusal wraps exactly one error kind and stores nothing,
// and whatever is accepted parses and carries a MAC.
func FuzzSubmit(f *testing.F) {
	w := newWorld(f)
	f.Add(command(f, w.supplier, w.device, codeDisable, 1, true))
	f.Add(command(f, w.supplier, w.device, codeRead, 2, false))
	f.Add(command(f, w.supplier, w.device2, codeDisable, 3, true))
	f.Add(w.urpCommand(f, w.other, w.device, codeProfile, 4))
	f.Add([]byte{0xDF, 0x09, 0x01})
	f.Add([]byte{0xE0})
	// The GBCS 18.4 vector's command, from the package's own testdata
	// (testdata/README.md): a seed that must be there, never skipped.
	raw, err := os.ReadFile("testdata/gbcs-18-4.json")
	if err != nil {
		f.Fatal(err)
	}
	var v struct {
		Message string `json:"message_hex"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		f.Fatalf("testdata/gbcs-18-4.json: %v", err)
	}
	b, err := hex.DecodeString(v.Message)
	if err != nil || len(b) == 0 {
		f.Fatalf("testdata/gbcs-18-4.json: message_hex %q: %v", v.Message, err)
	}
	f.Add(b)
	r := w.router(f)
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, msg []byte) {
		n0, _ := w.ledger.state()
		rc, err := r.Submit(ctx, w.supplier.caller(), msg)
		n, _ := w.ledger.state()
		if err != nil {
			matched := 0
			for _, k := range Kinds() {
				if errors.Is(err, k) {
					matched++
				}
			}
			if matched != 1 {
				t.Fatalf("error %v matches %d kinds", err, matched)
			}
			if n != n0 {
				t.Fatalf("refused command stored: %v", err)
			}
			return
		}
		if n != n0+1 || rc.ID == "" {
			t.Fatalf("accepted command not stored once: %d -> %d", n0, n)
		}
	})
}

// FuzzServiceRequest decodes arbitrary JSON as the API does and builds the
// command: it never panics and refuses with ErrBadRequest, ErrNotEligible,
// (an other user without a key-agreement certificate) ErrCertPath or (a
// counter given that the counter stage would refuse) ErrReplay or
// ErrCounterAhead only.
func FuzzServiceRequest(f *testing.F) {
	for _, s := range []string{
		`{"serviceReference":"7.2","target":"AAAAAAAAAAAAAAAA"}`,
		`{"serviceReference":"4.8.1","target":"AAAAAAAAAAAAAAAA","parameters":{"from":"2026-11-01T00:00:00Z","to":"2026-11-02T00:00:00Z"}}`,
		`{"serviceReference":"4.17","target":"AAAAAAAAAAAAAAAA","parameters":{"days":3}}`,
		`{"serviceReference":"4.17","target":"AAAAAAAAAAAAAAAA","fuel":"gas","parameters":{"from":"2026-11-01T00:00:00Z","to":"2026-11-05T00:00:00Z"}}`,
		`{"serviceReference":"4.17","target":"AAAAAAAAAAAAAAAA","parameters":{"from":"2026-11-01T06:00:00Z","to":"2026-11-05T00:00:00Z","days":0}}`,
		`{"serviceReference":"4.8.1","target":"AAAAAAAAAAAAAAAA","fuel":"gas","parameters":{"from":"2026-11-01T00:00:00Z","to":"2026-11-06T07:30:00Z"}}`,
		`{"serviceReference":"1.1.1","target":"AAAAAAAAAAAAAAAA","fuel":"gas","parameters":{"standingChargeMilliPence":1,"rates":[{"fromSlot":0,"priceMilliPence":2}]}}`,
		`{"serviceReference":"7.1","target":"AA-AA-AA-AA-AA-AA-AA-AA","counter":18446744073709551615}`,
		`{"serviceReference":"","target":""}`,
		`[]`,
	} {
		f.Add(s)
	}
	w := newWorld(f)
	r := w.router(f)
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, body string) {
		var in ServiceRequestInput
		d := json.NewDecoder(strings.NewReader(body))
		d.DisallowUnknownFields()
		if d.Decode(&in) != nil {
			return
		}
		for _, c := range []Caller{w.supplier.caller(), w.other.caller()} {
			pc, err := r.BuildServiceRequest(ctx, c, in)
			if err != nil {
				if !errors.Is(err, ErrBadRequest) && !errors.Is(err, ErrNotEligible) && !errors.Is(err, ErrCertPath) &&
					!errors.Is(err, ErrReplay) && !errors.Is(err, ErrCounterAhead) {
					t.Fatalf("BuildServiceRequest: %v", err)
				}
				continue
			}
			if _, err := hex.DecodeString(pc.Message); err != nil || pc.Message == "" {
				t.Fatalf("pre-command %+v", pc)
			}
		}
	})
}

// FuzzReadStart reads the data period of arbitrary payloads of the four
// read use cases an other user sends under consent: it never panics, and a
// refusal is malformed or consent-period.
func FuzzReadStart(f *testing.F) {
	w := newWorld(f)
	f.Add(uint8(0), profileRead(f, w.now.Add(-time.Hour), w.now))
	gas, err := gbz.NewReadProfile(gbz.GetProfile{Channel: gbz.ChannelConsumptionDelivered, Periods: 48}).Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(uint8(2), gas)
	f.Add(uint8(3), []byte{0x01, 0x09})
	codes := []uint16{codeECS22b, codeECS66, codeGCS17, codeGCS61}
	f.Fuzz(func(t *testing.T, which uint8, payload []byte) {
		m := &commands.Message{Code: commands.MessageCode(codes[int(which)%len(codes)]), Payload: payload}
		_, _, err := readStart(m, w.now)
		if err != nil && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrConsentPeriod) {
			t.Fatalf("readStart: %v, want malformed or consent-period", err)
		}
	})
}

// FuzzRotation submits CS02b supplierBySupplier commands with arbitrary
// payloads, signed by the device's supplier, through a router with a
// change desk: it never panics, a refusal wraps exactly one error kind
// and stores nothing, and nothing is accepted without a change recorded.
func FuzzRotation(f *testing.F) {
	w := newWorld(f)
	db, err := store.Open(context.Background(), "sqlite:"+filepath.Join(f.TempDir(), "router.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	cmd := cosCommand(f, db, w.supplier.eui, 7)
	cmd.AuthorisingRemotePartyControl.CredentialsReplacementMode = asn.SupplierBySupplier
	var valid []byte
	valid, err = cmd.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add([]byte{0x30, 0x00})
	f.Add([]byte{})
	r := w.router(f)
	if _, err := NewChangeDesk(r, ChangeDeskConfig{Store: db.Router()}); err != nil {
		f.Fatal(err)
	}
	ctx := context.Background()
	counter := uint64(0)
	f.Fuzz(func(t *testing.T, payload []byte) {
		counter++
		m := &commands.Message{CRA: commands.Command, Counter: counter, Originator: w.supplier.eui, Recipient: w.device,
			Code: codeCS02bBySupplier, Payload: payload}
		if _, err := m.Marshal(); err != nil {
			return // too long for a message
		}
		msg := marshal(t, m, w.supplier.ds, true)
		n0, _ := w.ledger.state()
		_, err = r.Submit(ctx, w.supplier.caller(), msg)
		n, _ := w.ledger.state()
		if err == nil {
			if chs, _ := db.Router().OpenOwnershipChanges(ctx); len(chs) == 0 {
				t.Fatal("a CS02b accepted without a change recorded")
			}
			return
		}
		matched := 0
		for _, k := range Kinds() {
			if errors.Is(err, k) {
				matched++
			}
		}
		if matched != 1 || n != n0 {
			t.Fatalf("refusal %v matches %d kinds, stored %d", err, matched, n-n0)
		}
	})
}
