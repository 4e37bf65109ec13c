package device

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"
	"time"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/commands/asn"
	"github.com/metertrust/metertrust/smki"
)

// party is a remote party of the tests: an EUI with a DS and a KA key.
type party struct {
	eui smki.EUI
	ds  *ecdsa.PrivateKey
	ka  *commands.ECDHKey
	kaS *ecdsa.PrivateKey // the KA key in ECDSA form, to sign its CSR or certificate
}

func newParty(t testing.TB, eui string) *party {
	t.Helper()
	ds, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	kaS, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ka, err := commands.NewECDHKeyFromECDSA(kaS)
	if err != nil {
		t.Fatal(err)
	}
	return &party{eui: smki.MustParseEUI(eui), ds: ds, ka: ka, kaS: kaS}
}

// cells returns the party's DS and KA management cells.
func (p *party) cells(t testing.TB) []*Cell {
	t.Helper()
	ds, err := NewCell(UsageDigitalSignature, asn.CellManagement, p.eui, &p.ds.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	ka, err := NewCell(UsageKeyAgreement, asn.CellManagement, p.eui, &p.kaS.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return []*Cell{ds, ka}
}

// world is a meter with the remote parties around it: the access control
// broker, a supplier, a network operator, the TCoS party, a would-be new
// supplier, a third party (other user) and an attacker.
type world struct {
	t        testing.TB
	ctx      context.Context
	now      time.Time
	acb      *party
	supplier *party
	netop    *party
	tcos     *party
	newSup   *party
	other    *party
	attacker *party
	anchors  *Anchors
	meter    *Meter
	dev      *party // the meter's own keys
	counter  uint64
}

var testNow = time.Date(2026, 11, 23, 18, 45, 10, 0, time.UTC)

func newWorld(t testing.TB, kind Kind) *world {
	t.Helper()
	w := &world{t: t, ctx: context.Background(), now: testNow,
		acb:      newParty(t, "90B3D51F30000004"),
		supplier: newParty(t, "90B3D51F30000002"),
		netop:    newParty(t, "90B3D51F30000003"),
		tcos:     newParty(t, "90B3D51F30000005"),
		newSup:   newParty(t, "90B3D51F30000022"),
		other:    newParty(t, "90B3D51F30000127"),
		attacker: newParty(t, "90B3D51F3000BAD0"),
		dev:      newParty(t, "0012A3FFFE000001"),
		counter:  1_700_000_000_000,
	}
	an := NewAnchors()
	for _, rp := range []struct {
		role smki.Role
		p    *party
	}{{smki.RoleAccessControlBroker, w.acb}, {smki.RoleSupplier, w.supplier}, {smki.RoleNetworkOperator, w.netop}, {smki.RoleTransitionalCoS, w.tcos}} {
		var err error
		if an, err = an.With(rp.role, 1, rp.p.cells(t)...); err != nil {
			t.Fatal(err)
		}
	}
	w.anchors = an
	m, err := New(Identity{EUI: w.dev.eui, Kind: kind, Signer: w.dev.ds, KeyAgreement: w.dev.ka}, an,
		Config{Now: func() time.Time { return w.now }})
	if err != nil {
		t.Fatal(err)
	}
	w.meter = m
	return w
}

// cmdOpts varies how a test command is built.
type cmdOpts struct {
	from    *party // originator; the supplier when nil
	signer  *party // signs critical commands; from when nil
	counter uint64 // next counter when zero
	macBy   *party // computes the MAC; the ACB when nil
	noSign  bool   // leave a critical command unsigned
	sign    bool   // sign a command that is not critical by its code
	noMAC   bool   // send without MAC header (the signed-command form)
	urp     *commands.UnknownRemoteParty
}

// command builds a command to the meter: signed when its code is critical
// (or o.sign), MAC'd by the ACB unless o.noMAC.
func (w *world) command(code uint16, payload []byte, o cmdOpts) ([]byte, *commands.Message) {
	w.t.Helper()
	if o.from == nil {
		o.from = w.supplier
	}
	if o.signer == nil {
		o.signer = o.from
	}
	if o.macBy == nil {
		o.macBy = w.acb
	}
	if o.counter == 0 {
		w.counter++
		o.counter = w.counter
	}
	m := &commands.Message{CRA: commands.Command, Counter: o.counter, Originator: o.from.eui,
		Recipient: w.meter.EUI(), Code: commands.MessageCode(code), Payload: payload, URP: o.urp}
	if (Critical(code) || o.sign) && !o.noSign {
		if err := commands.Sign(rand.Reader, o.signer.ds, m); err != nil {
			w.t.Fatal(err)
		}
	}
	if !o.noMAC {
		if err := commands.AddMAC(w.ctx, o.macBy.ka, w.meter.AgreementPublicKey(), m); err != nil {
			w.t.Fatal(err)
		}
	}
	b, err := m.Marshal()
	if err != nil {
		w.t.Fatal(err)
	}
	return b, m
}

// open checks a response the way its recipient does: it answers cmd, and
// is signed by the meter (signer, when not nil, else the meter's current DS
// key) with no MAC header when the catalogue says the response to cmd is
// signed, else MAC'd for recipient with signature length 00. It returns the
// parsed response.
func (w *world) open(resp []byte, cmd *commands.Message, recipient *party) *commands.Message {
	w.t.Helper()
	return openResponse(w.t, w.ctx, resp, cmd, w.meter, recipient.ka, nil)
}

// openResponse is world.open for any meter: ds, when not nil, is the key
// the response must be signed with.
func openResponse(t testing.TB, ctx context.Context, resp []byte, cmd *commands.Message, m *Meter, recipient commands.KeyAgreement, ds *ecdsa.PublicKey) *commands.Message {
	t.Helper()
	r, err := commands.Parse(resp)
	if err != nil {
		t.Fatalf("response does not parse: %v", err)
	}
	if r.CRA != commands.Response || r.Counter != cmd.Counter || r.Originator != m.EUI() || r.Recipient != cmd.Originator || r.Code != cmd.Code {
		t.Fatalf("response header %s %d %s->%s %s does not answer command %d from %s %s", r.CRA, r.Counter, r.Originator, r.Recipient, r.Code, cmd.Counter, cmd.Originator, cmd.Code)
	}
	if ds == nil {
		ds = m.SignaturePublicKey()
	}
	switch want := responseForm(uint16(cmd.Code), cmd.Form()); want {
	case commands.FormSigned:
		if r.Form() != commands.FormSigned {
			t.Fatalf("response in form %s, want %s", r.Form(), want)
		}
		if err := commands.VerifySignature(ds, r); err != nil {
			t.Fatalf("response signature: %v", err)
		}
	default:
		if r.Form() != commands.FormMAC {
			t.Fatalf("response in form %s, want %s", r.Form(), commands.FormMAC)
		}
		if err := commands.CheckMAC(ctx, recipient, m.AgreementPublicKey(), r); err != nil {
			t.Fatalf("response MAC with the recipient's key: %v", err)
		}
	}
	return r
}

// plaintexts decrypts the ciphered blocks of a response as reader, the
// user they are for.
func (w *world) plaintexts(r *commands.Message, reader *party) [][]byte {
	w.t.Helper()
	pts, err := commands.OpenPayload(w.ctx, reader.ka, w.meter.AgreementPublicKey(), r)
	if err != nil {
		w.t.Fatalf("decrypting the response as %s: %v", reader.eui, err)
	}
	return pts
}
