package device

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/custody"
	"github.com/metertrust/metertrust/smki"
)

// KeyAgreement is a meter's static ECDH key-agreement private key: a key in
// memory or an HSM object. ECDH returns the shared secret Z, which callers
// must neither log nor keep. *commands.ECDHKey satisfies it, and a
// KeyAgreement satisfies commands.KeyAgreement.
type KeyAgreement interface {
	ECDH(ctx context.Context, peer *ecdh.PublicKey) ([]byte, error)
	PublicKey() *ecdh.PublicKey
}

// ErrConfig is wrapped by errors about a meter's identity or configuration.
var ErrConfig = errors.New("device: invalid configuration")

// Identity is what makes one meter: its EUI-64, its kind and its two
// private keys, the digital-signature key (DS) that signs responses to
// critical commands and the key-agreement key (KA) behind every MAC and
// every encrypted payload.
type Identity struct {
	EUI  smki.EUI
	Kind Kind
	// Signer is the DS key: ECDSA P-256.
	Signer crypto.Signer
	// KeyAgreement is the KA key: ECDH P-256.
	KeyAgreement KeyAgreement
}

func (id Identity) validate() error {
	if id.EUI.IsZero() {
		return fmt.Errorf("%w: zero EUI", ErrConfig)
	}
	if id.Kind != Electricity && id.Kind != Gas {
		return fmt.Errorf("%w: meter %s: unknown kind %d", ErrConfig, id.EUI, id.Kind)
	}
	if id.Signer == nil {
		return fmt.Errorf("%w: meter %s: no digital-signature key", ErrConfig, id.EUI)
	}
	if pub, ok := id.Signer.Public().(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		return fmt.Errorf("%w: meter %s: digital-signature key must be ECDSA P-256, have %T", ErrConfig, id.EUI, id.Signer.Public())
	}
	if id.KeyAgreement == nil {
		return fmt.Errorf("%w: meter %s: no key-agreement key", ErrConfig, id.EUI)
	}
	if pub := id.KeyAgreement.PublicKey(); pub == nil || pub.Curve() != ecdh.P256() {
		return fmt.Errorf("%w: meter %s: key-agreement key must be P-256", ErrConfig, id.EUI)
	}
	return nil
}

// KeyGenerator makes the new P-256 key pairs a meter needs when CS02c asks
// it to re-key, and that Fleet.Generate gives new meters. The key signs its
// own certificate request, so it is a crypto.Signer even for key agreement;
// a key-agreement key must also implement KeyAgreement, unless it is an
// *ecdsa.PrivateKey (converted for ECDH). The default makes software keys;
// an HSM-backed meter supplies its own.
type KeyGenerator interface {
	GenerateKey(ctx context.Context, usage KeyUsage) (crypto.Signer, error)
}

// Config is what meters share: clock, randomness, logger and key
// generation. One Config serves a whole fleet; its zero value is usable.
type Config struct {
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Rand is passed to signing, key generation and CSR creation;
	// crypto/rand when nil. Since Go 1.26 crypto/ecdsa ignores it and always
	// uses a secure source (tests that need determinism use
	// testing/cryptotest.SetGlobalRandom); an HSM KeyGenerator may use it.
	Rand io.Reader
	// Logger receives one debug record per discarded message (EUI,
	// reason, message code) and info records for credential changes; no
	// key material is ever logged. Nothing is logged when nil.
	Logger *slog.Logger
	// Keys makes re-key key pairs; software P-256 keys from Rand when nil.
	Keys KeyGenerator
	// Alerts receives every alert a meter raises (see Alert). It is called
	// while the meter is locked, so it must not call the meter back; a Fleet
	// keeps its meters' alerts and then calls it too. Alerts are dropped
	// when nil (and the meter has no fleet).
	Alerts func(ctx context.Context, a Alert)
	// MaxMessage is the largest response the meter sends as one message;
	// a larger one goes as general block transfer segments (GBCS section
	// 4.3, tag E0) of at most MaxMessage bytes of the message each, back to
	// back, which the DCC reassembles. Zero means DefaultMaxMessage.
	MaxMessage int
}

// DefaultMaxMessage is the largest response a meter sends whole by
// default: the most a two-byte MAC header length (82 hh ll, the longest
// form in the DCC's reference data) can frame.
const DefaultMaxMessage = 0xFFFF

// env is a Config with its defaults filled in, shared by pointer.
type env struct {
	now        func() time.Time
	rand       io.Reader
	log        *slog.Logger
	keys       KeyGenerator
	alerts     func(ctx context.Context, a Alert)
	maxMessage int
}

func newEnv(c Config) *env {
	e := &env{now: c.Now, rand: c.Rand, log: c.Logger, keys: c.Keys, alerts: c.Alerts, maxMessage: c.MaxMessage}
	if e.maxMessage <= 0 {
		e.maxMessage = DefaultMaxMessage
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.rand == nil {
		e.rand = rand.Reader
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	e.log = e.log.With("component", "device")
	if e.keys == nil {
		e.keys = softwareKeys{rand: e.rand}
	}
	return e
}

// originCounter is the last counter accepted from one originator.
type originCounter struct {
	eui  smki.EUI
	last uint64
}

// Meter is one reference meter. Its methods are safe for concurrent use;
// messages to one meter are handled one at a time.
//
// The state is kept small for fleets of many meters: the trust anchors are
// shared with other meters until a credential update gives this meter its
// own, and the consumption it reports is computed from the EUI on demand.
type Meter struct {
	mu       sync.Mutex
	env      *env
	eui      smki.EUI
	kind     Kind
	supply   SupplyState
	cin      []byte // nil until ECS50 or GCS36 sets it
	ds       crypto.Signer
	ka       KeyAgreement
	anchors  *Anchors
	counters []originCounter
	model    consumption // immutable once made
	balance  int64       // milli-pence
	tariff   *Tariff
	pending  *rekey
	certs    *installedCerts
	// own is the last counter of the meter's own: alerts (CRA 3) and the
	// supplementary originator counter of 26-byte responses.
	own uint64
	// scheduled holds the future-dated commands waiting for their time.
	scheduled []*scheduled
	accepted  uint32
	discards  [numReasons]uint32
}

// New returns a meter with identity id and trust anchors anchors (which it
// shares, never modifies), its supply enabled.
func New(id Identity, anchors *Anchors, cfg Config) (*Meter, error) {
	return newMeter(id, anchors, newEnv(cfg))
}

func newMeter(id Identity, anchors *Anchors, e *env) (*Meter, error) {
	if err := id.validate(); err != nil {
		return nil, err
	}
	if anchors == nil {
		return nil, fmt.Errorf("%w: meter %s: nil trust anchors", ErrConfig, id.EUI)
	}
	model := newConsumption(id.EUI)
	return &Meter{
		env:     e,
		eui:     id.EUI,
		kind:    id.Kind,
		supply:  SupplyEnabled,
		ds:      id.Signer,
		ka:      id.KeyAgreement,
		anchors: anchors,
		model:   model,
		balance: model.openingBalance,
	}, nil
}

// EUI returns the meter's EUI-64.
func (m *Meter) EUI() smki.EUI { return m.eui }

// Kind returns whether the meter is an ESME or a GSME.
func (m *Meter) Kind() Kind { return m.kind }

// Anchors returns the meter's current trust anchors (immutable).
func (m *Meter) Anchors() *Anchors {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.anchors
}

// Supply returns the state of the supply switch.
func (m *Meter) Supply() SupplyState {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.supply
}

// PressButton is the consumer pressing the meter's button: an armed supply
// closes; otherwise nothing changes. It reports whether the supply was
// restored.
func (m *Meter) PressButton() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.supply == SupplyArmed {
		m.supply = SupplyEnabled
		return true
	}
	return false
}

// CIN returns the customer identification number the meter displays (the
// octet string of ECS50 or GCS36, ASCII digits in GB use), and false if it
// has received none.
func (m *Meter) CIN() (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return string(m.cin), m.cin != nil
}

// Tariff returns the tariff in force, and false if no tariff was ever
// activated. A future-dated tariff comes into force when the meter runs
// what has fallen due (Handle, Tick); until then PendingTariff returns it.
func (m *Meter) Tariff() (Tariff, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.tariff == nil {
		return Tariff{}, false
	}
	return m.tariff.clone(), true
}

// PendingTariff returns the future-dated tariff waiting for its activation
// time, and false if there is none.
func (m *Meter) PendingTariff() (Tariff, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range m.scheduled {
		if s.tariff != nil {
			return s.tariff.clone(), true
		}
	}
	return Tariff{}, false
}

// Balance returns the meter balance.
func (m *Meter) Balance() Balance {
	m.mu.Lock()
	defer m.mu.Unlock()
	return Balance{MilliPence: m.balance}
}

// LastCounter returns the last counter the meter accepted from originator,
// and false if it has accepted none.
func (m *Meter) LastCounter(originator smki.EUI) (uint64, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range m.counters {
		if c.eui == originator {
			return c.last, true
		}
	}
	return 0, false
}

// Stats returns what the meter did with the messages it received.
func (m *Meter) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := Stats{Accepted: uint64(m.accepted)}
	for i, c := range m.discards {
		s.Discarded[i] = uint64(c)
	}
	return s
}

// SignaturePublicKey returns the public half of the meter's current DS key.
func (m *Meter) SignaturePublicKey() *ecdsa.PublicKey {
	m.mu.Lock()
	defer m.mu.Unlock()
	pub, _ := m.ds.Public().(*ecdsa.PublicKey)
	return pub
}

// AgreementPublicKey returns the public half of the meter's current KA key.
func (m *Meter) AgreementPublicKey() *ecdh.PublicKey {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ka.PublicKey()
}

// Register returns the active import register at time t (Wh). It is the
// same value a register read at t answers.
func (m *Meter) Register(t time.Time) uint64 { return m.model.registerAt(t) }

// Profile returns the consumption of the half-hour slots starting in
// [from, to) that the meter's 13-month log holds at time now: the same
// values a profile read answers.
func (m *Meter) Profile(now, from, to time.Time) ProfileLog {
	return m.model.profile(now, from, to)
}

// lastCounter and accept keep the per-originator counters; the caller holds
// m.mu.
func (m *Meter) lastCounter(o smki.EUI) (uint64, bool) {
	for _, c := range m.counters {
		if c.eui == o {
			return c.last, true
		}
	}
	return 0, false
}

// nextCounter returns a new counter of the meter's own, strictly greater
// than the last: the clock in milliseconds, as DCC tools set counters
// (gbcs-security.md 7), or one more than the last when the clock has not
// moved past it. The caller holds m.mu.
func (m *Meter) nextCounter(now time.Time) uint64 {
	c := m.own + 1
	if ms := now.UnixMilli(); ms > 0 && uint64(ms) > c {
		c = uint64(ms)
	}
	m.own = c
	return c
}

func (m *Meter) recordCounter(o smki.EUI, n uint64) {
	for i := range m.counters {
		if m.counters[i].eui == o {
			m.counters[i].last = n
			return
		}
	}
	m.counters = append(m.counters, originCounter{eui: o, last: n})
}

// softwareKeys is the default KeyGenerator: P-256 keys in memory, from the
// software backend of the key custody (package keys).
type softwareKeys struct{ rand io.Reader }

// GenerateKey implements KeyGenerator with a fresh in-memory P-256 key,
// which signs and, being a custody.Agreement, does ECDH.
func (s softwareKeys) GenerateKey(ctx context.Context, usage KeyUsage) (crypto.Signer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	k, err := custody.Generate(s.rand)
	if err != nil {
		return nil, fmt.Errorf("device: generating %s key: %w", usage, err)
	}
	return k, nil
}

// agreementKey returns the KeyAgreement form of a generated key.
func agreementKey(s crypto.Signer) (KeyAgreement, error) {
	switch k := s.(type) {
	case KeyAgreement:
		return k, nil
	case *ecdsa.PrivateKey:
		ka, err := commands.NewECDHKeyFromECDSA(k)
		if err != nil {
			return nil, fmt.Errorf("device: key-agreement key: %w", err)
		}
		return ka, nil
	}
	return nil, fmt.Errorf("%w: generated key-agreement key %T can do no ECDH", ErrConfig, s)
}

// Certificates returns the meter's device certificates (DER), digital
// signature then key agreement, and false if it holds none (a meter made
// without them that CS02d has not given any).
func (m *Meter) Certificates() (ds, ka []byte, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.certs == nil {
		return nil, nil, false
	}
	return bytes.Clone(m.certs.ds), bytes.Clone(m.certs.ka), true
}
