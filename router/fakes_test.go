package router

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/metertrust/metertrust/anomaly"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/commands/dlms"
	"github.com/metertrust/metertrust/device"
	"github.com/metertrust/metertrust/smki"
)

// Hand-written fakes of the router's dependencies.

type fakeCatalogue map[commands.MessageCode]ServiceRequest

func (c fakeCatalogue) Lookup(code commands.MessageCode) ([]ServiceRequest, error) {
	sr, ok := c[code]
	if !ok {
		return nil, fmt.Errorf("fake catalogue: %w", commands.ErrUnknownCode)
	}
	return []ServiceRequest{sr}, nil
}

type fakeRegistry struct {
	mu       sync.Mutex
	devices  map[smki.EUI]Device
	consents map[[2]smki.EUI]string // (device, user) -> ref
	err      error
}

func (f *fakeRegistry) Device(_ context.Context, eui smki.EUI) (Device, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return Device{}, f.err
	}
	d, ok := f.devices[eui]
	if !ok {
		return Device{}, fmt.Errorf("%w: %s", ErrUnknownDevice, eui)
	}
	return d, nil
}

func (f *fakeRegistry) LiveConsent(_ context.Context, q Consent) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.consents[[2]smki.EUI{q.Device, q.User}] == q.Ref, nil
}

// fakeCerts holds one DS certificate "DER" per EUI (any unique bytes do) and
// the key or error VerifyPath returns for it.
type fakeCerts struct {
	mu       sync.Mutex
	ders     map[smki.EUI][]byte
	keys     map[string]*ecdsa.PublicKey
	revoked  map[string]bool
	verifies int
}

func (f *fakeCerts) SigningCertificate(_ context.Context, eui smki.EUI, _ smki.Role, _ []byte) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.ders[eui]
	if !ok {
		return nil, errors.New("fake certs: no digital-signing certificate")
	}
	return d, nil
}

func (f *fakeCerts) KeyAgreementCertificate(_ context.Context, eui smki.EUI, _ smki.Role) ([]byte, error) {
	return nil, fmt.Errorf("fake certs: no key-agreement certificate for %s", eui)
}

func (f *fakeCerts) VerifyPath(_ context.Context, der []byte, _ time.Time) (*ecdsa.PublicKey, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.verifies++
	if f.revoked[string(der)] {
		return nil, errors.New("fake certs: certificate revoked")
	}
	k, ok := f.keys[string(der)]
	if !ok {
		return nil, errors.New("fake certs: no path to the root")
	}
	return k, nil
}

type fakeDetector struct {
	mu         sync.Mutex
	quarantine map[uint64]bool // by counter
	err        error
	seen       []Screening
}

func (f *fakeDetector) Check(_ context.Context, s Screening) (Verdict, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return Verdict{}, f.err
	}
	f.seen = append(f.seen, s)
	if f.quarantine[s.Counter] {
		return Verdict{Quarantined: true, Reference: fmt.Sprintf("Q-%d", s.Counter), Breach: "user threshold"}, nil
	}
	return Verdict{}, nil
}

// fakeAdmitter decides with a Check (the fake detector, or package
// anomaly's Detector over its in-memory store), then seals and records with
// the fake ledger: the GroupAdmitter's steps, without the store.
type fakeAdmitter struct {
	check  func(context.Context, Screening) (Verdict, error)
	ledger *fakeLedger
}

func (f fakeAdmitter) Admit(ctx context.Context, a Admission) (Verdict, error) {
	if !a.Released {
		v, err := f.check(ctx, a.Screening)
		if err != nil || v.Quarantined {
			return v, err
		}
	}
	msg, err := a.Seal()
	if err != nil {
		return Verdict{}, err
	}
	r := a.Record
	r.Message = msg
	return Verdict{}, f.ledger.Record(ctx, r, a.Audit)
}

// detectorCheck adapts package anomaly's Detector to fakeAdmitter.
func detectorCheck(d *anomaly.Detector) func(context.Context, Screening) (Verdict, error) {
	return func(ctx context.Context, s Screening) (Verdict, error) {
		dec, err := d.Check(ctx, anomaly.Request{ID: s.ID, User: s.Caller.EUI, UserRole: s.Caller.Role,
			ServiceRef: s.Ref, Target: s.Target, Attributes: s.Attributes, Command: s.Message, At: s.At})
		if err != nil || !dec.Quarantined {
			return Verdict{}, err
		}
		return Verdict{Quarantined: true, Reference: dec.Ref, Breach: fmt.Sprintf("%s: %s", dec.Kind, dec.Detail)}, nil
	}
}

type fakeKA struct {
	mu    sync.Mutex
	key   *ecdh.PrivateKey
	calls int
}

func (f *fakeKA) ECDH(_ context.Context, peer *ecdh.PublicKey) ([]byte, error) {
	f.mu.Lock()
	f.calls++
	f.mu.Unlock()
	return f.key.ECDH(peer)
}

type ledgerKey struct{ o, t smki.EUI }

type fakeLedger struct {
	mu       sync.Mutex
	counters map[ledgerKey]uint64
	records  []Record
	err      error
	audit    *fakeAuditor // receives the audit entry of each record
}

func newFakeLedger(a *fakeAuditor) *fakeLedger {
	return &fakeLedger{counters: map[ledgerKey]uint64{}, audit: a}
}

func (f *fakeLedger) LastCounter(_ context.Context, o, t smki.EUI) (uint64, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return 0, false, f.err
	}
	c, ok := f.counters[ledgerKey{o, t}]
	return c, ok, nil
}

func (f *fakeLedger) Record(ctx context.Context, r Record, e AuditEvent) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	k := ledgerKey{r.Originator, r.Target}
	if c, ok := f.counters[k]; ok && r.Counter <= c {
		return fmt.Errorf("%w: counter %d not above %d", ErrReplay, r.Counter, c)
	}
	f.counters[k] = r.Counter
	f.records = append(f.records, r)
	return f.audit.Audit(ctx, e)
}

func (f *fakeLedger) state() (int, map[ledgerKey]uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := map[ledgerKey]uint64{}
	for k, v := range f.counters {
		m[k] = v
	}
	return len(f.records), m
}

type fakeAuditor struct {
	mu     sync.Mutex
	events []AuditEvent
}

func (f *fakeAuditor) Audit(_ context.Context, e AuditEvent) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, e)
	return nil
}

func (f *fakeAuditor) last() AuditEvent {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.events) == 0 {
		return AuditEvent{}
	}
	return f.events[len(f.events)-1]
}

// party is a DCC user with a digital-signing key.
type party struct {
	eui  smki.EUI
	role smki.UserRole
	ds   *ecdsa.PrivateKey
}

func (p party) caller() Caller { return Caller{EUI: p.eui, Role: p.role} }

// world is a complete set of fakes with a few parties and devices.
type world struct {
	supplier, gasSupplier, distributor, other, stranger party
	acb                                                 smki.EUI
	acbKA                                               *fakeKA
	device, device2, device3                            smki.EUI
	deviceKA                                            *ecdh.PrivateKey
	cat                                                 fakeCatalogue
	reg                                                 *fakeRegistry
	certs                                               *fakeCerts
	det                                                 *fakeDetector
	ledger                                              *fakeLedger
	audit                                               *fakeAuditor
	now                                                 time.Time
}

const (
	codeDisable  commands.MessageCode = 0x0050 // 7.2 critical
	codeRead     commands.MessageCode = 0x0027 // 4.1.1 non-critical
	codeProfile  commands.MessageCode = 0x0037 // 4.8.1 non-critical, OU under consent
	codeUnlisted commands.MessageCode = 0x7777
)

func mustKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newWorld(t testing.TB) *world {
	t.Helper()
	w := &world{
		supplier:    party{smki.MustParseEUI("1111111111111111"), smki.UserImportSupplier, mustKey(t)},
		gasSupplier: party{smki.MustParseEUI("2222222222222222"), smki.UserGasSupplier, mustKey(t)},
		distributor: party{smki.MustParseEUI("3333333333333333"), smki.UserElectricityDistributor, mustKey(t)},
		other:       party{smki.MustParseEUI("4444444444444444"), smki.UserOther, mustKey(t)},
		stranger:    party{smki.MustParseEUI("5555555555555555"), smki.UserImportSupplier, mustKey(t)},
		acb:         smki.MustParseEUI("00DCC00000000004"),
		device:      smki.MustParseEUI("AAAAAAAAAAAAAAAA"),
		device2:     smki.MustParseEUI("BBBBBBBBBBBBBBBB"),
		device3:     smki.MustParseEUI("CCCCCCCCCCCCCCCC"),
		now:         time.Date(2026, 11, 23, 18, 0, 0, 0, time.UTC),
	}
	acbKey, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	w.acbKA = &fakeKA{key: acbKey}
	if w.deviceKA, err = ecdh.P256().GenerateKey(rand.Reader); err != nil {
		t.Fatal(err)
	}
	w.cat = fakeCatalogue{
		codeDisable: {Ref: "7.2", Critical: true, Roles: []smki.UserRole{"IS", "GS"}},
		codeRead:    {Ref: "4.1.1", Roles: []smki.UserRole{"IS", "GS", "ED", "GT"}},
		codeProfile: {Ref: "4.8.1", Roles: []smki.UserRole{"IS", "GS", "ED", "GT", "OU"}},
	}
	w.reg = &fakeRegistry{
		devices: map[smki.EUI]Device{
			w.device:  {EUI: w.device, KeyAgreement: w.deviceKA.PublicKey(), Supplier: w.supplier.eui, NetworkOperator: w.distributor.eui},
			w.device2: {EUI: w.device2, KeyAgreement: w.deviceKA.PublicKey(), Supplier: w.gasSupplier.eui, NetworkOperator: w.distributor.eui},
			w.device3: {EUI: w.device3, KeyAgreement: w.deviceKA.PublicKey(), Supplier: w.stranger.eui, NetworkOperator: w.distributor.eui},
		},
		consents: map[[2]smki.EUI]string{{w.device, w.other.eui}: "4.8.1"},
	}
	w.certs = &fakeCerts{ders: map[smki.EUI][]byte{}, keys: map[string]*ecdsa.PublicKey{}, revoked: map[string]bool{}}
	for _, p := range []party{w.supplier, w.gasSupplier, w.distributor, w.other, w.stranger} {
		der := sha256.Sum256(p.eui[:])
		w.certs.ders[p.eui] = der[:]
		w.certs.keys[string(der[:])] = &p.ds.PublicKey
	}
	w.det = &fakeDetector{quarantine: map[uint64]bool{}}
	w.audit = &fakeAuditor{}
	w.ledger = newFakeLedger(w.audit)
	return w
}

func (w *world) router(t testing.TB) *Router {
	t.Helper()
	r, err := New(Config{ACB: w.acb, ACBKey: w.acbKA, Catalogue: w.cat, Registry: w.reg, Certificates: w.certs,
		Ledger: w.ledger, Admitter: fakeAdmitter{w.det.Check, w.ledger}, Auditor: w.audit, Clock: func() time.Time { return w.now }})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// command builds a command from p to target; signed when sign is true.
func command(t testing.TB, p party, target smki.EUI, code commands.MessageCode, counter uint64, sign bool) []byte {
	t.Helper()
	m := &commands.Message{CRA: commands.Command, Counter: counter, Originator: p.eui, Recipient: target,
		Code: code, Payload: []byte{0xD9, 0x20, 0x00, 0x00, 0x01, 0x00}}
	return marshal(t, m, p.ds, sign)
}

func marshal(t testing.TB, m *commands.Message, key *ecdsa.PrivateKey, sign bool) []byte {
	t.Helper()
	if sign {
		data, err := m.SignedData()
		if err != nil {
			t.Fatal(err)
		}
		m.Signature = signRaw(t, key, data)
	} else if m.CRA != commands.Command && m.MAC == nil {
		// An unsigned, unMAC'd response: the older unprotected form, which
		// the router must refuse as unsigned.
		m.EmptySignatureField = true
	}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func signRaw(t testing.TB, key *ecdsa.PrivateKey, data []byte) []byte {
	t.Helper()
	d := sha256.Sum256(data)
	r, s, err := ecdsa.Sign(rand.Reader, key, d[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return sig
}

// urpCommand builds an other user's command: ACB as originator, the user
// as unknown remote party.
// A profile read (codeProfile) asks for the three hours before w.now.
func (w *world) urpCommand(t testing.TB, p party, target smki.EUI, code commands.MessageCode, counter uint64) []byte {
	payload := []byte{0x01}
	if code == codeProfile {
		payload = profileRead(t, w.now.Add(-3*time.Hour), w.now)
	}
	m := &commands.Message{CRA: commands.Command, Counter: counter, Originator: w.acb, Recipient: target, Code: code,
		URP: &commands.UnknownRemoteParty{EUI: p.eui, Counter: counter}, Payload: payload}
	return marshal(t, m, nil, false)
}

// urpRead is the other user's profile read of the entries from from to to.
func urpRead(t testing.TB, w *world, from, to time.Time, counter uint64) []byte {
	t.Helper()
	m := &commands.Message{CRA: commands.Command, Counter: counter, Originator: w.acb, Recipient: w.device, Code: codeProfile,
		URP: &commands.UnknownRemoteParty{EUI: w.other.eui, Counter: counter}, Payload: profileRead(t, from, to)}
	return marshal(t, m, nil, false)
}

// profileRead is the payload of an ECS22b half-hour profile read of the
// entries from from to to.
func profileRead(t testing.TB, from, to time.Time) []byte {
	t.Helper()
	f, err := dlms.NewDateTime(from)
	if err != nil {
		t.Fatal(err)
	}
	tt, err := dlms.NewDateTime(to)
	if err != nil {
		t.Fatal(err)
	}
	b, err := dlms.HalfHourProfileRequest(1, f, tt, dlms.NewProtectionParameters(1, smki.EUI{}, smki.EUI{})).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fleetTransport carries commands to an in-process device.Fleet in the
// router's own tests, mapping the meters' discards to final refusals as
// inproc.FleetTransport does (which the router cannot import in its tests:
// inproc imports the router).
type fleetTransport struct{ fleet *device.Fleet }

func (t fleetTransport) Send(ctx context.Context, target smki.EUI, msg []byte) ([]byte, error) {
	resp, err := t.fleet.Deliver(ctx, target, msg)
	var d *device.DiscardError
	switch {
	case err == nil:
		return resp, nil
	case errors.Is(err, device.ErrReplay):
		return nil, fmt.Errorf("%w: %w: %w", ErrDeviceRefused, ErrDeviceReplay, err)
	case errors.Is(err, device.ErrBadMAC):
		return nil, fmt.Errorf("%w: %w: %w", ErrDeviceRefused, ErrDeviceMAC, err)
	case errors.As(err, &d), errors.Is(err, device.ErrNoMeter):
		return nil, fmt.Errorf("%w: %w", ErrDeviceRefused, err)
	}
	return nil, err
}
