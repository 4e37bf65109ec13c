package device

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/metertrust/metertrust/smki"
)

// ErrNoMeter is returned by Deliver for an EUI the fleet does not hold:
// nothing on the network answers to it.
var ErrNoMeter = errors.New("device: no such meter")

// ErrDuplicate is returned when a fleet already holds a meter's EUI.
var ErrDuplicate = errors.New("device: meter already in the fleet")

// Fleet is many meters in one process, for the router's in-process
// transport, the demo and load tests. It is safe for concurrent use:
// messages to different meters are handled in parallel, messages to one
// meter one at a time.
type Fleet struct {
	env    *env
	mu     sync.RWMutex
	meters map[smki.EUI]*Meter

	alertMu sync.Mutex
	alerts  []FleetAlert // the most recent, oldest first
	next    uint64       // index of the next alert
	// log names this fleet's alert log: indexes start again at 0 in a new
	// fleet (a restarted process), and a collector keeps its cursor per log.
	log string
}

// FleetAlertLog is how many alerts a fleet keeps: older ones are dropped
// first, and Alerts says where its list starts.
const FleetAlertLog = 1 << 16

// FleetAlert is an alert a fleet keeps: the alert and its index, which
// rises by one with every alert the fleet's meters raise.
type FleetAlert struct {
	Index uint64
	Alert
}

// NewFleet returns an empty fleet whose meters share cfg. The fleet keeps
// the alerts its meters raise (see Alerts) and also hands each to
// cfg.Alerts when set.
func NewFleet(cfg Config) *Fleet {
	f := &Fleet{meters: make(map[smki.EUI]*Meter), log: rand.Text()}
	sink := cfg.Alerts
	cfg.Alerts = func(ctx context.Context, a Alert) {
		f.keep(a)
		if sink != nil {
			sink(ctx, a)
		}
	}
	f.env = newEnv(cfg)
	return f
}

// keep adds an alert to the fleet's log.
func (f *Fleet) keep(a Alert) {
	f.alertMu.Lock()
	defer f.alertMu.Unlock()
	a.Message = bytes.Clone(a.Message)
	f.alerts = append(f.alerts, FleetAlert{Index: f.next, Alert: a})
	f.next++
	if len(f.alerts) > FleetAlertLog {
		f.alerts = slices.Clone(f.alerts[len(f.alerts)-FleetAlertLog:])
	}
}

// AlertLog names the fleet's alert log: a random text drawn when the fleet
// is made, so that a collector tells a new log (whose indexes start again
// at 0) from the one it was reading.
func (f *Fleet) AlertLog() string { return f.log }

// Alerts returns up to limit of the alerts the fleet keeps whose index is
// since or more, oldest first, and the index to ask from next time. When
// alerts from since on were dropped (the log holds FleetAlertLog), the list
// starts at the oldest kept. A limit of 0 or less means no limit.
func (f *Fleet) Alerts(since uint64, limit int) ([]FleetAlert, uint64) {
	f.alertMu.Lock()
	defer f.alertMu.Unlock()
	i, _ := slices.BinarySearchFunc(f.alerts, since, func(a FleetAlert, idx uint64) int { return cmp.Compare(a.Index, idx) })
	out := f.alerts[i:]
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	next := f.next
	if len(out) > 0 {
		next = out[len(out)-1].Index + 1
	}
	return slices.Clone(out), max(next, since)
}

// Run ticks the fleet (Tick) every interval until ctx ends, as the meters'
// own clocks would: a future-dated command executes, and its outcome alert
// is raised, at its time and not only when the meter next hears from the
// network.
func (f *Fleet) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f.Tick(ctx)
		}
	}
}

// Tick executes the future-dated commands that have fallen due on every
// meter (Meter.Tick), raising their alerts.
func (f *Fleet) Tick(ctx context.Context) {
	f.mu.RLock()
	ms := make([]*Meter, 0, len(f.meters))
	for _, m := range f.meters {
		ms = append(ms, m)
	}
	f.mu.RUnlock()
	for _, m := range ms {
		if ctx.Err() != nil {
			return
		}
		m.Tick(ctx)
	}
}

// Provision is one meter of a device CA batch: its identity and,
// optionally, its device certificates (DER). When certificates are given,
// they must be SMKI device certificates for the identity's EUI whose keys
// are the identity's keys.
type Provision struct {
	Identity
	DSCertificate []byte
	KACertificate []byte
}

// installedCerts are a meter's device certificates (DER): those it was
// provisioned with, or installed by CS02d.
type installedCerts struct {
	ds, ka []byte
}

// checkDeviceCert reads a device certificate and checks it names eui, has
// key usage ku and certifies pub (as an uncompressed point).
func checkDeviceCert(der []byte, eui smki.EUI, ku x509.KeyUsage, pub []byte) error {
	c, err := smki.ParseCertificate(der)
	if err != nil {
		return err
	}
	if c.Kind != smki.KindDevice {
		return fmt.Errorf("%s certificate is a %s certificate, not a device certificate", smki.KeyUsageString(ku), c.Kind)
	}
	if c.EUI != eui {
		return fmt.Errorf("%s certificate is for %s", smki.KeyUsageString(ku), c.EUI)
	}
	if c.KeyUsage != ku {
		return fmt.Errorf("certificate has key usage %s, want %s", smki.KeyUsageString(c.KeyUsage), smki.KeyUsageString(ku))
	}
	if !bytes.Equal(c.RawPublicKey, pub) {
		return fmt.Errorf("%s certificate does not certify the meter's key", smki.KeyUsageString(ku))
	}
	return nil
}

func (p Provision) certs() (*installedCerts, error) {
	if p.DSCertificate == nil && p.KACertificate == nil {
		return nil, nil
	}
	if p.DSCertificate == nil || p.KACertificate == nil {
		return nil, fmt.Errorf("%w: meter %s: give both device certificates or neither", ErrConfig, p.EUI)
	}
	dsPub, err := p.Signer.Public().(*ecdsa.PublicKey).Bytes()
	if err != nil {
		return nil, fmt.Errorf("%w: meter %s: %v", ErrConfig, p.EUI, err)
	}
	if err := checkDeviceCert(p.DSCertificate, p.EUI, x509.KeyUsageDigitalSignature, dsPub); err != nil {
		return nil, fmt.Errorf("%w: meter %s: %v", ErrConfig, p.EUI, err)
	}
	if err := checkDeviceCert(p.KACertificate, p.EUI, x509.KeyUsageKeyAgreement, p.KeyAgreement.PublicKey().Bytes()); err != nil {
		return nil, fmt.Errorf("%w: meter %s: %v", ErrConfig, p.EUI, err)
	}
	return &installedCerts{ds: bytes.Clone(p.DSCertificate), ka: bytes.Clone(p.KACertificate)}, nil
}

// Add creates a meter from p with trust anchors anchors (shared, never
// modified) and adds it to the fleet.
func (f *Fleet) Add(p Provision, anchors *Anchors) (*Meter, error) {
	if err := p.Identity.validate(); err != nil {
		return nil, err
	}
	certs, err := p.certs()
	if err != nil {
		return nil, err
	}
	m, err := newMeter(p.Identity, anchors, f.env)
	if err != nil {
		return nil, err
	}
	m.certs = certs
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.meters[p.EUI]; ok {
		return nil, fmt.Errorf("%w: %s", ErrDuplicate, p.EUI)
	}
	f.meters[p.EUI] = m
	return m, nil
}

// AddBatch adds every meter of a device CA batch, all with the same trust
// anchors. It stops at the first meter it cannot add and says which; the
// meters before it stay in the fleet.
func (f *Fleet) AddBatch(ps []Provision, anchors *Anchors) error {
	for i, p := range ps {
		if _, err := f.Add(p, anchors); err != nil {
			return fmt.Errorf("batch entry %d: %w", i, err)
		}
	}
	return nil
}

// Generate creates n meters of the given kind with fresh keys from the
// fleet's KeyGenerator and consecutive EUIs from first (as an unsigned
// 64-bit number), all with trust anchors anchors, and returns their EUIs.
// It is for tests, the demo and load tests; real fleets come from device CA
// batches through AddBatch.
func (f *Fleet) Generate(ctx context.Context, n int, first smki.EUI, kind Kind, anchors *Anchors) ([]smki.EUI, error) {
	if n < 0 {
		return nil, fmt.Errorf("%w: generate %d meters", ErrConfig, n)
	}
	base := binary.BigEndian.Uint64(first[:])
	if base+uint64(n) < base {
		return nil, fmt.Errorf("%w: %d EUIs from %s overflow", ErrConfig, n, first)
	}
	euis := make([]smki.EUI, 0, n)
	for i := range n {
		var eui smki.EUI
		binary.BigEndian.PutUint64(eui[:], base+uint64(i))
		ds, err := f.env.keys.GenerateKey(ctx, UsageDigitalSignature)
		if err != nil {
			return euis, err
		}
		kaS, err := f.env.keys.GenerateKey(ctx, UsageKeyAgreement)
		if err != nil {
			return euis, err
		}
		ka, err := agreementKey(kaS)
		if err != nil {
			return euis, err
		}
		if _, err := f.Add(Provision{Identity: Identity{EUI: eui, Kind: kind, Signer: ds, KeyAgreement: ka}}, anchors); err != nil {
			return euis, err
		}
		euis = append(euis, eui)
	}
	return euis, nil
}

// Meter returns the fleet's meter eui.
func (f *Fleet) Meter(eui smki.EUI) (*Meter, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	m, ok := f.meters[eui]
	return m, ok
}

// Len returns the number of meters.
func (f *Fleet) Len() int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return len(f.meters)
}

// EUIs returns the fleet's EUIs in ascending order.
func (f *Fleet) EUIs() []smki.EUI {
	f.mu.RLock()
	out := make([]smki.EUI, 0, len(f.meters))
	for e := range f.meters {
		out = append(out, e)
	}
	f.mu.RUnlock()
	slices.SortFunc(out, func(a, b smki.EUI) int { return bytes.Compare(a[:], b[:]) })
	return out
}

// Deliver hands msg to meter eui and returns its response. It returns
// ErrNoMeter for an EUI the fleet does not hold, and the meter's
// *DiscardError for a message the meter refuses (a real meter would stay
// silent).
func (f *Fleet) Deliver(ctx context.Context, eui smki.EUI, msg []byte) ([]byte, error) {
	m, ok := f.Meter(eui)
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNoMeter, eui)
	}
	return m.Handle(ctx, msg)
}

// Stats adds up the statistics of every meter.
func (f *Fleet) Stats() Stats {
	f.mu.RLock()
	ms := make([]*Meter, 0, len(f.meters))
	for _, m := range f.meters {
		ms = append(ms, m)
	}
	f.mu.RUnlock()
	var s Stats
	for _, m := range ms {
		s.Add(m.Stats())
	}
	return s
}
