package router

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"time"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// routerStore is what the router needs of *store.RouterStore for its own tables.
type routerStore interface {
	RouterDevice(ctx context.Context, eui smki.EUI) (store.RouterDevice, error)
	LiveConsent(ctx context.Context, device, user smki.EUI, ref string, at time.Time) (store.Consent, bool, error)
	LastCounter(ctx context.Context, originator, target smki.EUI) (uint64, bool, error)
	RouterCommand(ctx context.Context, id string) (store.RouterCommand, error)
	ClaimOutbox(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]store.OutboxItem, error)
	MarkForwarded(ctx context.Context, id string, at time.Time) error
	MarkForwardedAll(ctx context.Context, fs []store.ForwardedCommand) ([]error, error)
	RetryOutbox(ctx context.Context, id string, next time.Time, reason string) error
	Complete(ctx context.Context, c *store.Completion) error
	FindForwardedCommand(ctx context.Context, target, originator smki.EUI, counter uint64) (store.RouterCommand, error)
	OutboxDepth(ctx context.Context) (int64, error)
	Deliveries(ctx context.Context, caller smki.EUI, after int64, limit int) ([]store.Delivery, error)
	AddDelivery(ctx context.Context, d store.Delivery) (store.Delivery, error)
	AppendAudit(ctx context.Context, e store.AuditEvent) (store.AuditEvent, error)
}

// Storage adapts the store's router tables to the router's Ledger, Outbox,
// Registry, Auditor and command-reading interfaces.
type Storage struct {
	db routerStore
}

// NewStorage wraps db, normally a *store.RouterStore.
func NewStorage(db routerStore) *Storage { return &Storage{db: db} }

// Device implements Registry.
func (s *Storage) Device(ctx context.Context, eui smki.EUI) (Device, error) {
	d, err := s.db.RouterDevice(ctx, eui)
	if errors.Is(err, store.ErrNotFound) {
		return Device{}, fmt.Errorf("%w: %s is not in the device registry", ErrUnknownDevice, eui)
	}
	if err != nil {
		return Device{}, err
	}
	out := Device{EUI: eui, ChangeState: d.ChangeState}
	if out.SupplierKeyID, err = hex.DecodeString(d.SupplierDSKeyID); err != nil {
		return Device{}, fmt.Errorf("device %s: supplier anchor key id: %w", eui, err)
	}
	if out.NetworkOperatorKeyID, err = hex.DecodeString(d.NetworkOperatorDSKeyID); err != nil {
		return Device{}, fmt.Errorf("device %s: network operator anchor key id: %w", eui, err)
	}
	if len(out.SupplierKeyID) == 0 {
		out.SupplierKeyID = nil
	}
	if len(out.NetworkOperatorKeyID) == 0 {
		out.NetworkOperatorKeyID = nil
	}
	if out.KeyAgreement, err = ecdh.P256().NewPublicKey(d.KAPublic); err != nil {
		return Device{}, fmt.Errorf("device %s: stored key-agreement key: %w", eui, err)
	}
	if d.DSPublic != nil {
		pk, err := commands.ParseRawPublicKey(d.DSPublic)
		if err != nil {
			return Device{}, fmt.Errorf("device %s: stored digital-signing key: %w", eui, err)
		}
		out.Signing = pk
	}
	if d.Supplier != "" {
		if out.Supplier, err = smki.ParseEUI(d.Supplier); err != nil {
			return Device{}, fmt.Errorf("device %s: supplier: %w", eui, err)
		}
	}
	if d.NetworkOperator != "" {
		if out.NetworkOperator, err = smki.ParseEUI(d.NetworkOperator); err != nil {
			return Device{}, fmt.Errorf("device %s: network operator: %w", eui, err)
		}
	}
	return out, nil
}

// LiveConsent implements Registry.
func (s *Storage) LiveConsent(ctx context.Context, q Consent) (bool, error) {
	_, ok, err := s.db.LiveConsent(ctx, q.Device, q.User, q.Ref, q.At)
	return ok, err
}

// LastCounter implements Ledger.
func (s *Storage) LastCounter(ctx context.Context, originator, target smki.EUI) (uint64, bool, error) {
	return s.db.LastCounter(ctx, originator, target)
}

// Command is an accepted command as the caller may see it.
type Command struct {
	ID       string    `json:"id"`
	Caller   Caller    `json:"-"`
	Target   smki.EUI  `json:"target"`
	Counter  uint64    `json:"counter"`
	Code     string    `json:"messageCode"`
	Ref      string    `json:"serviceReference"`
	State    string    `json:"state"`
	Accepted time.Time `json:"accepted"`
	Updated  time.Time `json:"updated"`
	Response []byte    `json:"response,omitempty"`
	Error    string    `json:"error,omitempty"`
	record   store.RouterCommand
}

// Command returns the command with the given ID, or an error wrapping
// ErrNotFound.
func (s *Storage) Command(ctx context.Context, id string) (Command, error) {
	c, err := s.db.RouterCommand(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return Command{}, fmt.Errorf("%w: command %q", ErrNotFound, id)
	}
	if err != nil {
		return Command{}, err
	}
	return commandOf(c)
}

// CommandByCounter returns the command to target from originator with the
// given counter, or an error wrapping ErrNotFound.
func (s *Storage) CommandByCounter(ctx context.Context, target, originator smki.EUI, counter uint64) (Command, error) {
	c, err := s.db.FindForwardedCommand(ctx, target, originator, counter)
	if errors.Is(err, store.ErrNotFound) {
		return Command{}, fmt.Errorf("%w: no command to %s with counter %d", ErrNotFound, target, counter)
	}
	if err != nil {
		return Command{}, err
	}
	return commandOf(c)
}

func commandOf(c store.RouterCommand) (Command, error) {
	rec, err := toRecord(c)
	if err != nil {
		return Command{}, err
	}
	return Command{ID: c.ID, Caller: rec.Caller, Target: rec.Target, Counter: c.Counter, Code: commands.MessageCode(c.Code).String(),
		Ref: c.ServiceRef, State: c.State, Accepted: c.AcceptedAt, Updated: c.UpdatedAt, Response: c.Response, Error: c.Error}, nil
}

func toRecord(c store.RouterCommand) (Record, error) {
	r := Record{ID: c.ID, Counter: c.Counter, Code: commands.MessageCode(c.Code), Ref: c.ServiceRef, Critical: c.Critical,
		Barrier: c.Barrier, Message: c.Message, Accepted: c.AcceptedAt, Caller: Caller{Role: smki.UserRole(c.CallerRole)}}
	var err error
	if r.Caller.EUI, err = smki.ParseEUI(c.Caller); err != nil {
		return Record{}, fmt.Errorf("stored command %s: %w", c.ID, err)
	}
	if r.Originator, err = smki.ParseEUI(c.Originator); err != nil {
		return Record{}, fmt.Errorf("stored command %s: %w", c.ID, err)
	}
	if r.Target, err = smki.ParseEUI(c.Target); err != nil {
		return Record{}, fmt.Errorf("stored command %s: %w", c.ID, err)
	}
	return r, nil
}

// Claim implements Outbox.
func (s *Storage) Claim(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]Pending, error) {
	items, err := s.db.ClaimOutbox(ctx, now, lease, limit)
	if err != nil {
		return nil, err
	}
	out := make([]Pending, 0, len(items))
	for _, it := range items {
		r, err := toRecord(it.Command)
		if err != nil {
			return nil, err
		}
		out = append(out, Pending{Record: r, Attempts: it.Attempts})
	}
	return out, nil
}

// Forwarded implements Outbox.
func (s *Storage) Forwarded(ctx context.Context, id string, at time.Time) error {
	return s.db.MarkForwarded(ctx, id, at)
}

// RecordForwarded implements ForwardRecorder: the audit entries and the
// marks commit in one transaction.
func (s *Storage) RecordForwarded(ctx context.Context, fs []Forward) ([]error, error) {
	cs := make([]store.ForwardedCommand, len(fs))
	for i, f := range fs {
		a := toStoreAudit(f.Audit)
		cs[i] = store.ForwardedCommand{ID: f.ID, At: f.At, Audit: &a, Scrub: f.Scrub}
	}
	return s.db.MarkForwardedAll(ctx, cs)
}

// Retry implements Outbox.
func (s *Storage) Retry(ctx context.Context, id string, next time.Time, reason string) error {
	return s.db.RetryOutbox(ctx, id, next, reason)
}

// Complete implements Outbox.
func (s *Storage) Complete(ctx context.Context, e Ending, es ...AuditEvent) (Delivery, error) {
	c := completion(e, es)
	s.db.Complete(ctx, c) //nolint:errcheck // in c.Err
	return completed(c)
}

// completion is the store's form of a command's end.
func completion(e Ending, es []AuditEvent) *store.Completion {
	id, failed, response, reason, d := e.ID, e.Failed, e.Response, e.Reason, e.Delivery
	state := store.CommandResponded
	if failed {
		state = store.CommandFailed
	}
	as := make([]store.AuditEvent, len(es))
	for i, e := range es {
		as[i] = toStoreAudit(e)
	}
	return &store.Completion{ID: id, State: state, Response: response, Error: reason, Audits: as, Scrub: e.Scrub,
		Delivery: store.Delivery{Caller: d.Caller.String(), Kind: d.Kind, Body: d.Body, Detail: d.Detail, At: d.At}}
}

// completed is the router's form of a completion's outcome.
func completed(c *store.Completion) (Delivery, error) {
	if errors.Is(c.Err, store.ErrConflict) {
		return Delivery{}, fmt.Errorf("%w: %w", ErrAlreadyComplete, c.Err)
	}
	if c.Err != nil {
		return Delivery{}, c.Err
	}
	return fromStoreDelivery(c.Delivery)
}

func fromStoreDelivery(sd store.Delivery) (Delivery, error) {
	c, err := smki.ParseEUI(sd.Caller)
	if err != nil {
		return Delivery{}, fmt.Errorf("stored delivery: %w", err)
	}
	return Delivery{Caller: c, Seq: sd.Seq, CommandID: sd.CommandID, Kind: sd.Kind, Body: sd.Body, Detail: sd.Detail, At: sd.At}, nil
}

// Correlate implements Outbox.
func (s *Storage) Correlate(ctx context.Context, target, originator smki.EUI, counter uint64) (Record, error) {
	c, err := s.db.FindForwardedCommand(ctx, target, originator, counter)
	if err != nil {
		return Record{}, err
	}
	return toRecord(c)
}

// Depth implements Outbox.
func (s *Storage) Depth(ctx context.Context) (int64, error) { return s.db.OutboxDepth(ctx) }

// Deliveries returns the caller's deliveries after seq.
func (s *Storage) Deliveries(ctx context.Context, caller smki.EUI, after int64, limit int) ([]Delivery, error) {
	ds, err := s.db.Deliveries(ctx, caller, after, limit)
	if err != nil {
		return nil, err
	}
	out := make([]Delivery, 0, len(ds))
	for _, sd := range ds {
		d, err := fromStoreDelivery(sd)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// AddDelivery queues an alert or other delivery for its caller.
func (s *Storage) AddDelivery(ctx context.Context, d Delivery) (Delivery, error) {
	sd, err := s.db.AddDelivery(ctx, store.Delivery{Caller: d.Caller.String(), CommandID: d.CommandID, Kind: d.Kind,
		Body: d.Body, Detail: d.Detail, At: d.At})
	if err != nil {
		return Delivery{}, err
	}
	return fromStoreDelivery(sd)
}

// Audit implements Auditor on the store's hash-chained audit log.
func (s *Storage) Audit(ctx context.Context, e AuditEvent) error {
	_, err := s.db.AppendAudit(ctx, toStoreAudit(e))
	return err
}

// toStoreAudit maps a router audit event to the store's log entry: actor
// the caller, object the command (or target), details without secrets.
func toStoreAudit(e AuditEvent) store.AuditEvent {
	outcome := store.OutcomeSuccess
	if e.Kind != "" {
		outcome = store.OutcomeRefused
	}
	if e.Action == "command.failed" {
		outcome = store.OutcomeFailure
	}
	actor := "router"
	if !e.Caller.EUI.IsZero() {
		actor = e.Caller.String()
	}
	obj := e.CommandID
	if obj == "" && !e.Target.IsZero() {
		obj = e.Target.String()
	}
	details := map[string]any{}
	if !e.Target.IsZero() {
		details["target"] = e.Target.String()
	}
	if e.Counter != 0 {
		details["counter"] = e.Counter
	}
	if e.Code != 0 {
		details["messageCode"] = e.Code.String()
	}
	if e.Kind != "" {
		details["kind"] = e.Kind
	}
	if e.Stage != "" {
		details["stage"] = e.Stage
	}
	if e.Detail != "" {
		details["detail"] = truncate(e.Detail, 2000)
	}
	return store.AuditEvent{Time: e.At, Actor: actor, Action: "router." + e.Action, Object: obj, Outcome: outcome, Details: details}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// certStore is what StoreCertificates needs of *store.SMKIStore.
type certStore interface {
	FindCertificates(ctx context.Context, q store.CertQuery) ([]store.Certificate, error)
	CAs(ctx context.Context) ([]store.CA, error)
	LatestCRL(ctx context.Context, ca string) (store.CRL, error)
}

// StoreCertificates implements Certificates over the SMKI repository in
// the store: organisation certificates looked up by EUI, role and usage
// (revoked ones excluded at once: the look-up is made for every command, so
// a revocation stored by any process takes effect on every instance with
// the next command), paths validated with smki.Verify against the stored
// root and organisation CA and their latest CRLs. The trust material is
// reloaded every Refresh.
type StoreCertificates struct {
	db      certStore
	refresh time.Duration
	now     func() time.Time

	mu     sync.Mutex
	loaded time.Time
	opts   smki.VerifyOptions
	// skis caches certificates' subject key identifiers by CA and serial
	// (certificates do not change), so that picking a device's anchor key
	// parses each certificate once.
	skis sync.Map
}

// NewStoreCertificates returns a Certificates over db, reloading roots,
// CAs and CRLs every refresh (default one minute).
func NewStoreCertificates(db certStore, refresh time.Duration, now func() time.Time) *StoreCertificates {
	if refresh <= 0 {
		refresh = time.Minute
	}
	if now == nil {
		now = time.Now
	}
	return &StoreCertificates{db: db, refresh: refresh, now: now}
}

// SigningCertificate implements Certificates: the unrevoked, current
// digital-signing organisation certificate of eui in role whose subject key
// identifier is keyID, or the newest when keyID is nil. It is the same one
// look-up either way (revocation takes effect with the next command).
func (c *StoreCertificates) SigningCertificate(ctx context.Context, eui smki.EUI, role smki.Role, keyID []byte) ([]byte, error) {
	if keyID == nil {
		return c.current(ctx, eui, role, "ds")
	}
	r := int(role)
	certs, err := c.db.FindCertificates(ctx, store.CertQuery{EUI: eui.String(), Role: &r, Usage: "ds", Kind: store.KindOrg})
	if err != nil {
		return nil, fmt.Errorf("looking up certificates: %w", err)
	}
	now := c.now()
	for i := range certs {
		ct := &certs[i]
		if now.Before(ct.NotBefore) || !now.Before(ct.NotAfter) || !bytes.Equal(c.subjectKeyID(ct), keyID) {
			continue
		}
		return ct.DER, nil
	}
	return nil, fmt.Errorf("no current unrevoked ds certificate for %s as %s with key id %X", eui, role, keyID)
}

func (c *StoreCertificates) subjectKeyID(ct *store.Certificate) []byte {
	k := ct.CA + "/" + string(ct.Serial)
	if v, ok := c.skis.Load(k); ok {
		return v.([]byte)
	}
	p, err := smki.ParseCertificate(ct.DER)
	if err != nil {
		return nil
	}
	c.skis.Store(k, p.SubjectKeyID)
	return p.SubjectKeyID
}

// KeyAgreementCertificate implements Certificates: the newest unrevoked,
// current key-agreement organisation certificate of eui in role.
func (c *StoreCertificates) KeyAgreementCertificate(ctx context.Context, eui smki.EUI, role smki.Role) ([]byte, error) {
	return c.current(ctx, eui, role, "ka")
}

func (c *StoreCertificates) current(ctx context.Context, eui smki.EUI, role smki.Role, usage string) ([]byte, error) {
	r := int(role)
	certs, err := c.db.FindCertificates(ctx, store.CertQuery{EUI: eui.String(), Role: &r, Usage: usage, Kind: store.KindOrg})
	if err != nil {
		return nil, fmt.Errorf("looking up certificates: %w", err)
	}
	now := c.now()
	var best *store.Certificate
	for i := range certs {
		ct := &certs[i]
		if now.Before(ct.NotBefore) || !now.Before(ct.NotAfter) {
			continue
		}
		if best == nil || ct.NotBefore.After(best.NotBefore) {
			best = ct
		}
	}
	if best == nil {
		return nil, fmt.Errorf("no current unrevoked %s certificate for %s as %s", usage, eui, role)
	}
	return best.DER, nil
}

// VerifyPath implements Certificates.
func (c *StoreCertificates) VerifyPath(ctx context.Context, der []byte, at time.Time) (*ecdsa.PublicKey, error) {
	cert, err := smki.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	opts, err := c.trust(ctx)
	if err != nil {
		return nil, err
	}
	opts.At = at
	if _, err := smki.Verify(cert, opts); err != nil {
		return nil, err
	}
	return cert.PublicKey, nil
}

func (c *StoreCertificates) trust(ctx context.Context) (smki.VerifyOptions, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if !c.loaded.IsZero() && now.Sub(c.loaded) < c.refresh {
		return c.opts, nil
	}
	cas, err := c.db.CAs(ctx)
	if err != nil {
		return smki.VerifyOptions{}, fmt.Errorf("loading CAs: %w", err)
	}
	var opts smki.VerifyOptions
	for _, ca := range cas {
		if ca.Kind != store.CAKindRoot && ca.Kind != store.CAKindOCA {
			continue
		}
		cert, err := smki.ParseCertificate(ca.CertDER)
		if err != nil {
			return smki.VerifyOptions{}, fmt.Errorf("CA %s: %w", ca.Name, err)
		}
		if ca.Kind == store.CAKindRoot {
			opts.Roots = append(opts.Roots, cert)
		} else {
			opts.Intermediates = append(opts.Intermediates, cert)
		}
		crl, err := c.db.LatestCRL(ctx, ca.Name)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return smki.VerifyOptions{}, fmt.Errorf("CRL of %s: %w", ca.Name, err)
		}
		rl, err := x509.ParseRevocationList(crl.DER)
		if err != nil {
			return smki.VerifyOptions{}, fmt.Errorf("CRL of %s: %w", ca.Name, err)
		}
		opts.CRLs = append(opts.CRLs, rl)
	}
	if len(opts.Roots) == 0 {
		return smki.VerifyOptions{}, errors.New("no SMKI root in the store")
	}
	c.opts, c.loaded = opts, now
	return opts, nil
}

// revokedLister is what StoreRevocations needs of *store.SMKIStore.
type revokedLister interface {
	Revoked(ctx context.Context, ca string) ([]store.Certificate, error)
}

// StoreRevocations implements RevocationChecker over the certificates the
// DCCKI TLS issuing CA has revoked in the store, re-read at most every TTL.
type StoreRevocations struct {
	db  revokedLister
	ca  string
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	loaded  time.Time
	serials map[string]bool
}

// NewStoreRevocations returns a checker for certificates issued by the CA
// named ca (store.CAKindDCCKITLS's CA, "dccki-tls"), caching the revoked
// set for ttl (default 10s).
func NewStoreRevocations(db revokedLister, ca string, ttl time.Duration, now func() time.Time) *StoreRevocations {
	if ttl <= 0 {
		ttl = 10 * time.Second
	}
	if now == nil {
		now = time.Now
	}
	return &StoreRevocations{db: db, ca: ca, ttl: ttl, now: now}
}

// Revoked implements RevocationChecker.
func (r *StoreRevocations) Revoked(ctx context.Context, cert *x509.Certificate) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := r.now(); r.serials == nil || now.Sub(r.loaded) >= r.ttl {
		certs, err := r.db.Revoked(ctx, r.ca)
		if err != nil {
			return false, fmt.Errorf("loading revoked certificates of %s: %w", r.ca, err)
		}
		m := make(map[string]bool, len(certs))
		for _, c := range certs {
			m[new(big.Int).SetBytes(c.Serial).String()] = true
		}
		r.serials, r.loaded = m, now
	}
	return r.serials[cert.SerialNumber.String()], nil
}

func toStoreCommand(r Record) store.RouterCommand {
	return store.RouterCommand{ID: r.ID, Caller: r.Caller.EUI.String(), CallerRole: string(r.Caller.Role),
		Originator: r.Originator.String(), Target: r.Target.String(), Counter: r.Counter, Code: uint16(r.Code),
		ServiceRef: r.Ref, Critical: r.Critical, Barrier: r.Barrier, Message: r.Message, AcceptedAt: r.Accepted}
}
