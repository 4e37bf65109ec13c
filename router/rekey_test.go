package router

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/commands/asn"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// fakeDeviceCerts is a repository of device certificates by DER.
type fakeDeviceCerts struct {
	certs  map[string]*smki.Certificate
	newest []byte // NewestDeviceCertificate's answer, when set
	err    error
}

func (f *fakeDeviceCerts) DeviceCertificate(_ context.Context, device smki.EUI, der []byte) (*smki.Certificate, error) {
	if f.err != nil {
		return nil, f.err
	}
	c, ok := f.certs[string(der)]
	if !ok || c.EUI != device {
		return nil, errors.New("not in the repository for the device")
	}
	return c, nil
}

func (f *fakeDeviceCerts) NewestDeviceCertificate(_ context.Context, device smki.EUI, usage string) ([]byte, error) {
	if f.err != nil {
		return nil, f.err
	}
	if f.newest != nil {
		return f.newest, nil
	}
	for der, c := range f.certs {
		if c.EUI == device && (usage == "ds") == (c.KeyUsage == x509.KeyUsageDigitalSignature) {
			return []byte(der), nil
		}
	}
	return nil, errors.New("none")
}

// deviceCertFor is a device certificate of eui for key (only the fields the
// router reads) and a DER stand-in naming it.
func deviceCertFor(eui smki.EUI, ku x509.KeyUsage, key *ecdsa.PublicKey, serial int64) ([]byte, *smki.Certificate) {
	der := []byte{0x30, 0x03, 0x02, 0x01, byte(serial)}
	return der, &smki.Certificate{Kind: smki.KindDevice, EUI: eui, KeyUsage: ku, PublicKey: key, SerialNumber: big.NewInt(serial)}
}

// TestRekeyServiceRequests builds the re-key service requests: 6.17 (CS02c)
// and 6.24.2 (CS02e) with a key usage, 6.15.2 (CS02d) with a certificate,
// all critical and for suppliers only.
func TestRekeyServiceRequests(t *testing.T) {
	w := newWorld(t)
	w.cat = nil
	r, err := New(Config{ACB: w.acb, ACBKey: w.acbKA, Catalogue: GBCSCatalogue{}, Registry: w.reg, Certificates: w.certs,
		Ledger: w.ledger, Admitter: fakeAdmitter{w.det.Check, w.ledger}, Auditor: w.audit, Clock: func() time.Time { return w.now }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cert := []byte{0x30, 0x03, 0x02, 0x01, 0x07}
	for _, tt := range []struct {
		ref, params string
		code        commands.MessageCode
		payload     string
	}{
		{"6.17", `{"keyUsage":"ds"}`, 0x000A, "3004030207" + "80"},
		{"6.17", `{"keyUsage":"ka"}`, 0x000A, "3004030203" + "08"},
		{"6.24.2", `{"keyUsage":"ka"}`, 0x000C, "3004030203" + "08"},
		{"6.15.2", `{"certificate":"` + base64.StdEncoding.EncodeToString(cert) + `"}`, 0x000B, hex.EncodeToString(cert)},
	} {
		pc, err := r.BuildServiceRequest(ctx, w.supplier.caller(), ServiceRequestInput{Ref: tt.ref, Target: w.device, Parameters: []byte(tt.params)})
		if err != nil {
			t.Fatalf("%s %s: %v", tt.ref, tt.params, err)
		}
		raw, _ := hex.DecodeString(pc.Message)
		m, err := commands.Parse(raw)
		if err != nil || !pc.Critical || m.Code != tt.code || hex.EncodeToString(m.Payload) != tt.payload {
			t.Errorf("%s %s: %+v, payload %x, %v", tt.ref, tt.params, pc, m.Payload, err)
		}
	}
	for _, tt := range []struct {
		name   string
		caller party
		in     ServiceRequestInput
		want   error
	}{
		{"usage pp-ka", w.supplier, ServiceRequestInput{Ref: "6.17", Target: w.device, Parameters: []byte(`{"keyUsage":"pp-ka"}`)}, ErrBadRequest},
		{"no usage", w.supplier, ServiceRequestInput{Ref: "6.24.2", Target: w.device}, ErrBadRequest},
		{"certificate not base64", w.supplier, ServiceRequestInput{Ref: "6.15.2", Target: w.device, Parameters: []byte(`{"certificate":"%%"}`)}, ErrBadRequest},
		{"a distributor", w.distributor, ServiceRequestInput{Ref: "6.17", Target: w.device, Parameters: []byte(`{"keyUsage":"ds"}`)}, ErrNotEligible},
	} {
		if _, err := r.BuildServiceRequest(ctx, tt.caller.caller(), tt.in); !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
}

// TestCS02dCertificateChecked refuses, before anything is recorded, a CS02d
// whose certificate the repository does not hold for its device.
func TestCS02dCertificateChecked(t *testing.T) {
	w := newWorld(t)
	w.cat[codeCS02d] = ServiceRequest{Ref: "6.15.2", Critical: true, Roles: []smki.UserRole{"IS", "GS"}}
	ctx := context.Background()
	good, gc := deviceCertFor(w.device, x509.KeyUsageDigitalSignature, &mustKey(t).PublicKey, 1)
	other, oc := deviceCertFor(w.device2, x509.KeyUsageDigitalSignature, &mustKey(t).PublicKey, 2)
	repo := &fakeDeviceCerts{certs: map[string]*smki.Certificate{string(good): gc, string(other): oc}}
	cs02d := func(der []byte, counter uint64) []byte {
		m := &commands.Message{CRA: commands.Command, Counter: counter, Originator: w.supplier.eui, Recipient: w.device, Code: codeCS02d, Payload: der}
		return marshal(t, m, w.supplier.ds, true)
	}
	for _, tt := range []struct {
		name  string
		certs DeviceCertificates
		der   []byte
		want  error
	}{
		{"no repository", nil, good, ErrUnavailable},
		{"repository down", &fakeDeviceCerts{err: ErrUnavailable}, good, ErrUnavailable},
		{"certificate of another device", repo, other, ErrDeviceCertificate},
		{"certificate not in the repository", repo, []byte{0x30, 0x03, 0x02, 0x01, 0x09}, ErrDeviceCertificate},
		{"not a certificate", repo, []byte{0x04, 0x00}, ErrMalformed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, err := New(Config{ACB: w.acb, ACBKey: w.acbKA, Catalogue: w.cat, Registry: w.reg, Certificates: w.certs, DeviceCertificates: tt.certs,
				Ledger: w.ledger, Admitter: fakeAdmitter{w.det.Check, w.ledger}, Auditor: w.audit, Clock: func() time.Time { return w.now }})
			if err != nil {
				t.Fatal(err)
			}
			n, _ := w.ledger.state()
			if _, err := r.Submit(ctx, w.supplier.caller(), cs02d(tt.der, 100)); !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
			if m, _ := w.ledger.state(); m != n {
				t.Error("a refused CS02d was recorded")
			}
			if e := w.audit.last(); e.Action != "command.refused" {
				t.Errorf("last audit entry %+v, want the refusal", e)
			}
		})
	}
	r, err := New(Config{ACB: w.acb, ACBKey: w.acbKA, Catalogue: w.cat, Registry: w.reg, Certificates: w.certs, DeviceCertificates: repo,
		Ledger: w.ledger, Admitter: fakeAdmitter{w.det.Check, w.ledger}, Auditor: w.audit, Clock: func() time.Time { return w.now }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Submit(ctx, w.supplier.caller(), cs02d(good, 101)); err != nil {
		t.Errorf("the device's own certificate: %v", err)
	}
}

// fakeRekeyStore records the switches asked of it, and keeps a pending
// key.
type fakeRekeyStore struct {
	calls   []rekeyCall
	err     error
	pending []byte
	audits  []store.AuditEvent
}

type rekeyCall struct {
	usage     string
	old, next []byte
	audit     []store.AuditEvent
}

func (f *fakeRekeyStore) SetRouterDeviceKAPending(_ context.Context, _ smki.EUI, key []byte, es ...store.AuditEvent) (bool, error) {
	if string(f.pending) == string(key) {
		return false, nil
	}
	f.pending = key
	f.audits = append(f.audits, es...)
	return true, nil
}

func (f *fakeRekeyStore) ClearRouterDeviceKAPending(_ context.Context, _ smki.EUI, key []byte, es ...store.AuditEvent) (bool, error) {
	if f.pending == nil || string(f.pending) != string(key) {
		return false, nil
	}
	f.pending = nil
	f.audits = append(f.audits, es...)
	return true, nil
}

func (f *fakeRekeyStore) RouterDeviceKAPending(context.Context, smki.EUI) ([]byte, error) {
	return f.pending, nil
}

func (f *fakeRekeyStore) RekeyRouterDevice(_ context.Context, _ smki.EUI, usage string, old, next []byte, _ time.Time, es ...store.AuditEvent) (bool, error) {
	f.calls = append(f.calls, rekeyCall{usage, old, next, es})
	if f.err == nil && usage == store.RekeyKA {
		f.pending = nil
	}
	return f.err == nil, f.err
}

// TestRekeyDesk switches the registry on a CS02d answered success and on
// a CS02e read-back, not on a CS02d answered with a failure code, and
// lets a CS02e read-back signed with the new digital-signing key through.
func TestRekeyDesk(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	oldDS, newDS, newKA := mustKey(t), mustKey(t), mustKey(t)
	d := w.reg.devices[w.device]
	d.Signing = &oldDS.PublicKey
	w.reg.devices[w.device] = d
	dsDER, dsCert := deviceCertFor(w.device, x509.KeyUsageDigitalSignature, &newDS.PublicKey, 1)
	kaDER, kaCert := deviceCertFor(w.device, x509.KeyUsageKeyAgreement, &newKA.PublicKey, 2)
	repo := &fakeDeviceCerts{certs: map[string]*smki.Certificate{string(dsDER): dsCert, string(kaDER): kaCert}}
	st := &fakeRekeyStore{}
	k := NewRekeyDesk(st, w.reg, repo, nil, nil, func() time.Time { return w.now })

	record := func(code commands.MessageCode, payload []byte) Record {
		m := &commands.Message{CRA: commands.Command, Counter: 7, Originator: w.supplier.eui, Recipient: w.device, Code: code, Payload: payload}
		return Record{ID: "c1", Caller: w.supplier.caller(), Target: w.device, Counter: 7, Code: code, Critical: true, Message: marshal(t, m, w.supplier.ds, true)}
	}
	response := func(code commands.MessageCode, payload []byte, key *ecdsa.PrivateKey) []byte {
		m := &commands.Message{CRA: commands.Response, Counter: 7, Originator: w.device, Recipient: w.supplier.eui, Code: code, Payload: payload}
		return marshal(t, m, key, true)
	}
	result := func(v int64) []byte {
		r := asn.UpdateDeviceCertificateResponse(v)
		b, _ := r.Marshal()
		return b
	}

	// CS02d answered wrongPublicKey (5): nothing switches.
	k.Answered(ctx, record(codeCS02d, dsDER), response(codeCS02d, result(5), oldDS))
	if len(st.calls) != 0 {
		t.Fatalf("a CS02d answered 5 switched the registry: %+v", st.calls)
	}
	// CS02d answered success: the DS key switches from the registry's.
	k.Answered(ctx, record(codeCS02d, dsDER), response(codeCS02d, result(0), oldDS))
	oldRaw, _ := oldDS.PublicKey.Bytes()
	newRaw, _ := newDS.PublicKey.Bytes()
	if len(st.calls) != 1 || st.calls[0].usage != store.RekeyDS || string(st.calls[0].old) != string(oldRaw) ||
		string(st.calls[0].next) != string(newRaw) || len(st.calls[0].audit) != 1 || st.calls[0].audit[0].Action != "router.device.rekeyed" {
		t.Fatalf("after CS02d success: %+v", st.calls)
	}
	// A CS02e read-back of the KA certificate switches the KA key.
	p, _ := (&asn.ProvideDeviceCertificateResponse{Certificate: &asn.Certificate{Raw: kaDER}}).Marshal()
	k.Answered(ctx, record(codeCS02e, []byte{0x30, 0x04, 0x03, 0x02, 0x03, 0x08}), response(codeCS02e, p, oldDS))
	if len(st.calls) != 2 || st.calls[1].usage != store.RekeyKA || string(st.calls[1].old) != string(w.deviceKA.PublicKey().Bytes()) {
		t.Fatalf("after the CS02e read-back: %+v", st.calls)
	}
	// A certificate the repository does not hold switches nothing.
	p, _ = (&asn.ProvideDeviceCertificateResponse{Certificate: &asn.Certificate{Raw: []byte{0x30, 0x03, 0x02, 0x01, 0x09}}}).Marshal()
	k.Answered(ctx, record(codeCS02e, nil), response(codeCS02e, p, oldDS))
	if len(st.calls) != 2 {
		t.Errorf("an unknown certificate switched the registry: %+v", st.calls)
	}

	// The forwarder: a CS02e read-back signed with the new DS key (the
	// answer to its CS02d lost) verifies with the certificate it carries;
	// a response to another command signed so does not.
	f, err := NewForwarder(ForwarderConfig{Outbox: &Storage{}, Transport: &scriptedTransport{}, Registry: w.reg, Auditor: w.audit})
	if err != nil {
		t.Fatal(err)
	}
	f.SetRekeyDesk(k)
	p, _ = (&asn.ProvideDeviceCertificateResponse{Certificate: &asn.Certificate{Raw: dsDER}}).Marshal()
	rec := record(codeCS02e, []byte{0x30, 0x04, 0x03, 0x02, 0x07, 0x80})
	if err := f.checkResponse(ctx, rec, response(codeCS02e, p, newDS)); err != nil {
		t.Errorf("a CS02e read-back signed with the new key: %v", err)
	}
	if err := f.checkResponse(ctx, rec, response(codeCS02e, p, mustKey(t))); !errors.Is(err, ErrSignature) {
		t.Errorf("a CS02e read-back signed with another key: %v", err)
	}
	// A read-back carrying an older certificate, still unrevoked, signed
	// with its key (whoever holds the old key, answering for the meter)
	// is not taken: the registry would go back to the old key.
	repo.newest = kaDER // stands for "a newer DS certificate exists"
	if err := f.checkResponse(ctx, rec, response(codeCS02e, p, newDS)); !errors.Is(err, ErrSignature) {
		t.Errorf("a read-back of a DS certificate that is not the newest: %v", err)
	}
	repo.newest = nil
	rec = record(codeDisable, []byte{0xD9, 0x20, 0x00, 0x00, 0x01, 0x00})
	if err := f.checkResponse(ctx, rec, response(codeDisable, p, newDS)); !errors.Is(err, ErrSignature) {
		t.Errorf("another command's response signed with the new key before the switch: %v", err)
	}
}

// TestRekeyDeskPending: a CS02d carrying a key-agreement certificate makes
// its key the device's pending key (audited), one carrying a
// digital-signing certificate does not; a CS02d the meter answered with a
// failure code clears it; Reseal MACs a CS02e, and only a CS02e, with the
// pending key; SettlePending switches the registry to it.
func TestRekeyDeskPending(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	newDS, newKA := mustKey(t), mustKey(t)
	dsDER, dsCert := deviceCertFor(w.device, x509.KeyUsageDigitalSignature, &newDS.PublicKey, 1)
	kaDER, kaCert := deviceCertFor(w.device, x509.KeyUsageKeyAgreement, &newKA.PublicKey, 2)
	repo := &fakeDeviceCerts{certs: map[string]*smki.Certificate{string(dsDER): dsCert, string(kaDER): kaCert}}
	st := &fakeRekeyStore{}
	k := NewRekeyDesk(st, w.reg, repo, w.acbKA, nil, func() time.Time { return w.now })
	record := func(code commands.MessageCode, payload []byte) Record {
		m := &commands.Message{CRA: commands.Command, Counter: 7, Originator: w.supplier.eui, Recipient: w.device, Code: code, Payload: payload,
			MAC: make([]byte, 12)}
		return Record{ID: "c1", Caller: w.supplier.caller(), Target: w.device, Counter: 7, Code: code, Critical: true, Message: marshal(t, m, w.supplier.ds, true)}
	}
	newKAECDH, err := newKA.PublicKey.ECDH()
	if err != nil {
		t.Fatal(err)
	}

	k.Installing(ctx, record(codeCS02d, dsDER))
	if st.pending != nil {
		t.Fatal("a DS certificate became a pending key-agreement key")
	}
	k.Installing(ctx, record(codeCS02d, kaDER))
	if string(st.pending) != string(newKAECDH.Bytes()) || len(st.audits) != 1 || st.audits[0].Action != "router.device.rekey-pending" {
		t.Fatalf("after Installing: pending %x, audits %+v", st.pending, st.audits)
	}
	k.Installing(ctx, record(codeCS02d, kaDER))
	if len(st.audits) != 1 {
		t.Errorf("the same CS02d again audited again: %+v", st.audits)
	}

	// Reseal: a CS02e only, MAC'd under Z with the pending key.
	if msg, _ := k.Reseal(ctx, record(codeDisable, []byte{0xD9, 0x20, 0x00, 0x00, 0x01, 0x00})); msg != nil {
		t.Error("Reseal resealed a command that is no CS02e")
	}
	cs02e := record(codeCS02e, []byte{0x30, 0x04, 0x03, 0x02, 0x03, 0x08})
	msg, key := k.Reseal(ctx, cs02e)
	if msg == nil || !key.Equal(newKAECDH) {
		t.Fatalf("Reseal: %x, %v", msg, key)
	}
	m, err := commands.Parse(msg)
	if err != nil {
		t.Fatal(err)
	}
	z, err := w.acbKA.key.ECDH(newKAECDH)
	if err != nil {
		t.Fatal(err)
	}
	if err := commands.VerifyMAC(commands.DeriveKey(z, m.MACInfo()), m); err != nil {
		t.Errorf("the resealed MAC does not verify under the pending key: %v", err)
	}
	if zOld, _ := w.acbKA.key.ECDH(w.deviceKA.PublicKey()); commands.VerifyMAC(commands.DeriveKey(zOld, m.MACInfo()), m) == nil {
		t.Error("the resealed MAC verifies under the registry's key")
	}

	// SettlePending switches the registry's KA key to the pending key.
	k.SettlePending(ctx, cs02e, key)
	if len(st.calls) != 1 || st.calls[0].usage != store.RekeyKA || string(st.calls[0].next) != string(newKAECDH.Bytes()) ||
		string(st.calls[0].old) != string(w.deviceKA.PublicKey().Bytes()) || st.pending != nil {
		t.Fatalf("after SettlePending: %+v, pending %x", st.calls, st.pending)
	}
	if msg, _ := k.Reseal(ctx, cs02e); msg != nil {
		t.Error("Reseal without a pending key")
	}

	// A CS02d answered wrongPublicKey (5): the meter keeps its key.
	k.Installing(ctx, record(codeCS02d, kaDER))
	r := asn.UpdateDeviceCertificateResponse(5)
	p, _ := r.Marshal()
	resp := marshal(t, &commands.Message{CRA: commands.Response, Counter: 7, Originator: w.device, Recipient: w.supplier.eui, Code: codeCS02d, Payload: p}, w.supplier.ds, true)
	k.Answered(ctx, record(codeCS02d, kaDER), resp)
	if st.pending != nil {
		t.Errorf("pending key %x after the meter refused the CS02d", st.pending)
	}
}
