package router

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/smki"
)

// Defaults for Config's zero values.
const (
	DefaultMaxMessageBytes = 64 << 10
	DefaultZCacheSize      = 4096
	DefaultPathCacheSize   = 1024
	DefaultPathCacheTTL    = time.Minute
)

// Config configures a Router. Every dependency is required except Notify.
type Config struct {
	// ACB is the access control broker's EUI: the originator of commands
	// sent for unknown remote parties (other users, spec section 8).
	ACB smki.EUI
	// ACBKey is the access control broker's key-agreement key.
	ACBKey       KeyAgreement
	Catalogue    Catalogue
	Registry     Registry
	Certificates Certificates
	// DeviceCertificates finds device certificates in the SMKI
	// repository, to check the certificate of a CS02d; nil refuses every
	// CS02d as unavailable.
	DeviceCertificates DeviceCertificates
	// Ledger gives the last counters; Admitter decides the anomaly
	// thresholds and records what passes, MAC'd, in one step.
	Ledger   Ledger
	Admitter Admitter
	Auditor  Auditor
	// Notify, when set, is called after a command is recorded, to wake the
	// outbox worker. It must not block.
	Notify func()
	// Metrics receives per-stage counts and latencies; nil disables them.
	Metrics *Metrics
	// Logger is the structured logger; nil discards.
	Logger *slog.Logger
	// Clock returns the current time; nil means time.Now.
	Clock func() time.Time
	// Rand is the source of command identifiers; nil means crypto/rand.
	Rand io.Reader
	// MaxMessageBytes bounds submitted messages; zero means
	// DefaultMaxMessageBytes.
	MaxMessageBytes int
	// ZCacheSize bounds the per-device cache of ECDH shared secrets (held in
	// memory only); zero means DefaultZCacheSize.
	ZCacheSize int
	// PathCacheSize and PathCacheTTL bound the cache of verified
	// organisation certificate paths; zero means the defaults.
	PathCacheSize int
	PathCacheTTL  time.Duration
}

// Router runs the command pipeline. It is safe for concurrent use; it holds
// no state that must be shared between router instances (the counters live
// in the Ledger), only caches.
type Router struct {
	cfg    Config
	log    *slog.Logger
	now    func() time.Time
	zcache *lru[smki.EUI, zEntry]
	paths  *lru[[32]byte, pathEntry]
	// desk runs the owners' rotations submitted as commands; nil refuses
	// every CS02b (set by NewChangeDesk, before the router serves).
	desk *ChangeDesk
}

type zEntry struct {
	peer string // the device KA public key the secret was computed with
	z    []byte
}

type pathEntry struct {
	pub     *ecdsa.PublicKey
	expires time.Time
}

// ErrConfig is returned by New for a missing dependency.
var ErrConfig = errors.New("router: invalid configuration")

// New checks cfg and returns a Router.
func New(cfg Config) (*Router, error) {
	for name, dep := range map[string]any{
		"ACBKey": cfg.ACBKey, "Catalogue": cfg.Catalogue, "Registry": cfg.Registry,
		"Certificates": cfg.Certificates, "Ledger": cfg.Ledger, "Admitter": cfg.Admitter, "Auditor": cfg.Auditor,
	} {
		if isNil(dep) {
			return nil, fmt.Errorf("%w: %s is required", ErrConfig, name)
		}
	}
	if cfg.ACB.IsZero() {
		return nil, fmt.Errorf("%w: ACB EUI is required", ErrConfig)
	}
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if cfg.ZCacheSize <= 0 {
		cfg.ZCacheSize = DefaultZCacheSize
	}
	if cfg.PathCacheSize <= 0 {
		cfg.PathCacheSize = DefaultPathCacheSize
	}
	if cfg.PathCacheTTL <= 0 {
		cfg.PathCacheTTL = DefaultPathCacheTTL
	}
	r := &Router{cfg: cfg, now: cfg.Clock, log: cfg.Logger}
	if r.now == nil {
		r.now = time.Now
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	r.log = r.log.With("component", "router")
	r.zcache = newLRU[smki.EUI, zEntry](cfg.ZCacheSize)
	r.paths = newLRU[[32]byte, pathEntry](cfg.PathCacheSize)
	return r, nil
}

// isNil reports whether an interface dependency was left unset (a nil
// interface stored in an any is itself nil).
func isNil(v any) bool { return v == nil }

// The pipeline stages, in order, as named in metrics.
const (
	StageAuthenticate = "authenticate"
	StageParse        = "parse"
	StageOriginator   = "originator"
	StageEligibility  = "eligibility"
	StageOwnership    = "ownership"
	StageCertPath     = "certificate-path"
	StageSignature    = "signature"
	StageCounter      = "counter"
	// StageKeyAgreement computes Z with the device (the ECDH, the costly
	// half of the broker's MAC, kept out of the group commit).
	StageKeyAgreement = "key-agreement"
	// StageAdmit is the group commit: the anomaly thresholds, then for what
	// passes the MAC (KDF and GMAC) and the durable record.
	StageAdmit = "admit"
)

// Stages lists the pipeline stages in order.
var Stages = []string{StageAuthenticate, StageParse, StageOriginator, StageEligibility, StageOwnership,
	StageCertPath, StageSignature, StageCounter, StageKeyAgreement, StageAdmit}

// submission carries one command through the stages.
type submission struct {
	caller  Caller
	raw     []byte
	msg     *commands.Message
	sr      ServiceRequest
	device  Device
	origin  smki.EUI // business originator
	counter uint64   // the business originator's counter
	signer  *ecdsa.PublicKey
	// anchorKey is the key id of the caller's anchor on the device, nil
	// when unknown (certPath).
	anchorKey []byte
	z         []byte // Z with the device, for the broker's MAC
	record    Record
	attrs     map[string]int64
	received  time.Time
	id        string
	// skipAnomaly is set for a command released from quarantine: it was
	// screened (and counted) once already.
	skipAnomaly bool
	// cinRequest is set for the router's own SR 9.1 command of the consent
	// flow: the other user needs no consent for it.
	cinRequest bool
	// rotation is set for an owner's CS02b (rotate.go), changeID once its
	// change is recorded.
	rotation *rotation
	changeID string
}

// Submit puts one GBCS command through the pipeline. On success the command
// is durable, MAC'd and queued for forwarding, and the receipt says
// "accepted". On refusal the error wraps exactly one Kind, nothing is
// stored (no counter advanced), and an audit entry is written.
func (r *Router) Submit(ctx context.Context, caller Caller, msg []byte) (Receipt, error) {
	return r.run(ctx, &submission{caller: caller, raw: msg})
}

// SubmitReleased puts a command released from quarantine through the
// remaining pipeline: every check again except the anomaly thresholds (it
// was screened and counted when first submitted), then the MAC, the durable
// record and forwarding. A counter overtaken while it was held is refused
// as a replay.
func (r *Router) SubmitReleased(ctx context.Context, caller Caller, msg []byte) (Receipt, error) {
	return r.run(ctx, &submission{caller: caller, raw: msg, skipAnomaly: true})
}

func (r *Router) run(ctx context.Context, s *submission) (Receipt, error) {
	caller := s.caller
	s.received = r.now()
	id, err := r.newID()
	if err != nil {
		err = fmt.Errorf("%w: command id: %w", ErrUnavailable, err)
		r.refused(ctx, s, "id", err)
		return Receipt{}, err
	}
	s.id = id
	stages := []struct {
		name string
		run  func(context.Context, *submission) error
	}{
		{StageAuthenticate, r.authenticate},
		{StageParse, r.parse},
		{StageOriginator, r.originator},
		{StageEligibility, r.eligibility},
		{StageOwnership, r.ownership},
		{StageCertPath, r.certPath},
		{StageSignature, r.signature},
		{StageCounter, r.counterCheck},
		{StageKeyAgreement, r.keyAgreement},
		{StageAdmit, r.admit},
	}
	for i, st := range stages {
		if i == 2 && isCS02b(s.msg.Code) {
			// Decision 014: a CS02b never goes straight through the
			// pipeline; an owner's rotation goes through the change desk.
			stages[3].run, stages[4].run, stages[9].run = r.rotationEligibility, r.rotationOwnership, r.rotationAdmit
		}
		start := time.Now()
		err := st.run(ctx, s)
		r.cfg.Metrics.observeStage(st.name, err, time.Since(start))
		if err != nil {
			if KindOf(err) == ErrUnavailable && !errors.Is(err, ErrUnavailable) {
				err = fmt.Errorf("%w: %s: %w", ErrUnavailable, st.name, err)
			}
			r.refused(ctx, s, st.name, err)
			return Receipt{}, err
		}
	}
	if r.cfg.Notify != nil {
		r.cfg.Notify()
	}
	r.log.InfoContext(ctx, "command accepted", "id", s.record.ID, "caller", caller.String(),
		"target", s.record.Target.String(), "counter", s.counter, "ref", s.sr.Ref)
	return Receipt{ID: s.record.ID, Status: "accepted", Target: s.record.Target, Counter: s.counter,
		Ref: s.sr.Ref, Accepted: s.record.Accepted, Change: s.changeID}, nil
}

func (r *Router) refused(ctx context.Context, s *submission, stage string, err error) {
	k := KindOf(err)
	e := AuditEvent{Action: "command.refused", Caller: s.caller, Kind: k.Code(), Stage: stage, Detail: err.Error(), At: r.now()}
	if k == ErrQuarantined {
		e.Action = "command.quarantined"
	}
	if s.msg != nil {
		e.Target, e.Counter, e.Code = s.msg.Recipient, s.counter, s.msg.Code
	}
	r.audit(ctx, e)
	r.log.WarnContext(ctx, "command refused", "stage", stage, "kind", k.Code(), "caller", s.caller.String(), "err", err)
}

func (r *Router) audit(ctx context.Context, e AuditEvent) {
	if err := r.cfg.Auditor.Audit(ctx, e); err != nil {
		r.log.ErrorContext(ctx, "audit write failed", "action", e.Action, "err", err)
	}
}

func (r *Router) authenticate(_ context.Context, s *submission) error {
	if s.caller.EUI.IsZero() {
		return fmt.Errorf("%w: no caller EUI", ErrUnauthenticated)
	}
	if r, err := smki.ParseUserRole(string(s.caller.Role)); err != nil || r != s.caller.Role {
		return fmt.Errorf("%w: caller %s has no valid DCC user role", ErrUnauthenticated, s.caller.EUI)
	}
	return nil
}

func (r *Router) parse(_ context.Context, s *submission) error {
	if len(s.raw) > r.cfg.MaxMessageBytes {
		return fmt.Errorf("%w: %d bytes exceed the limit of %d", ErrMalformed, len(s.raw), r.cfg.MaxMessageBytes)
	}
	m, err := commands.Parse(s.raw)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	switch {
	case m.CRA != commands.Command:
		return fmt.Errorf("%w: CRA flag is %s, want command", ErrMalformed, m.CRA)
	case m.HasMAC():
		return fmt.Errorf("%w: command already carries a MAC header; the router adds the MAC", ErrMalformed)
	case m.Recipient.IsZero():
		return fmt.Errorf("%w: recipient EUI is zero", ErrMalformed)
	}
	if s.attrs, err = attributes(m); err != nil {
		return err
	}
	s.msg = m
	s.origin, s.counter = m.Originator, m.Counter
	return nil
}

// originator checks that the business originator is the caller: the
// originator field for suppliers and network operators; for an other user,
// the ACB as originator and the caller as the unknown remote party. The
// counter the router tracks stays the wire originator's (the ACB's for an
// other user), because that is what the device checks (spec section 7):
// nothing is forwarded that the device would discard as a replay.
func (r *Router) originator(_ context.Context, s *submission) error {
	m := s.msg
	if s.caller.Role == smki.UserOther {
		if m.Originator != r.cfg.ACB {
			return fmt.Errorf("%w: an other user's command must have the access control broker %s as originator, not %s", ErrOriginator, r.cfg.ACB, m.Originator)
		}
		if m.URP == nil {
			return fmt.Errorf("%w: an other user's command must carry its EUI as unknown remote party", ErrOriginator)
		}
		if m.URP.EUI != s.caller.EUI {
			return fmt.Errorf("%w: unknown remote party %s is not the caller %s", ErrOriginator, m.URP.EUI, s.caller.EUI)
		}
		return nil
	}
	if m.URP != nil {
		return fmt.Errorf("%w: unknown remote party fields are only for other users", ErrOriginator)
	}
	if m.Originator != s.caller.EUI {
		return fmt.Errorf("%w: originator %s is not the caller %s", ErrOriginator, m.Originator, s.caller.EUI)
	}
	return nil
}

func (r *Router) eligibility(_ context.Context, s *submission) error {
	srs, err := r.cfg.Catalogue.Lookup(s.msg.Code)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNotEligible, err)
	}
	var refs []string
	for _, sr := range srs {
		if slices.Contains(sr.Roles, s.caller.Role) {
			s.sr = sr
			return nil
		}
		refs = append(refs, sr.Ref)
	}
	return fmt.Errorf("%w: role %s may not send service request %s (message code %s)", ErrNotEligible, s.caller.Role, strings.Join(refs, ", "), s.msg.Code)
}

func (r *Router) ownership(ctx context.Context, s *submission) error {
	d, err := r.cfg.Registry.Device(ctx, s.msg.Recipient)
	if err != nil {
		if errors.Is(err, ErrUnknownDevice) {
			return err
		}
		return fmt.Errorf("%w: looking up device %s: %w", ErrUnavailable, s.msg.Recipient, err)
	}
	s.device = d
	switch s.caller.Role.RemoteParty() {
	case smki.RoleSupplier:
		if d.ChangeState != "" && s.sr.Critical {
			// Decision 014: while the meter's supplier anchors may be
			// changing, no supplier's critical command goes to it.
			return fmt.Errorf("%w: device %s has a change of supplier %s; retry once it settles", ErrOwnershipUnsettled, d.EUI, d.ChangeState)
		}
		if d.Supplier != s.caller.EUI {
			return fmt.Errorf("%w: %s is not the supplier of device %s", ErrNotOwner, s.caller.EUI, d.EUI)
		}
	case smki.RoleNetworkOperator:
		if d.NetworkOperator != s.caller.EUI {
			return fmt.Errorf("%w: %s is not the network operator of device %s", ErrNotOwner, s.caller.EUI, d.EUI)
		}
	default:
		if s.caller.Role != smki.UserOther {
			return fmt.Errorf("%w: role %s holds no trust anchor on device %s", ErrNotOwner, s.caller.Role, d.EUI)
		}
		if s.cinRequest && s.sr.Ref == "9.1" {
			return nil // the first step towards consent (ConsentDesk.RequestCIN)
		}
		ok, err := r.cfg.Registry.LiveConsent(ctx, Consent{Device: d.EUI, User: s.caller.EUI, Ref: s.sr.Ref, At: s.received})
		if err != nil {
			return fmt.Errorf("%w: checking consent: %w", ErrUnavailable, err)
		}
		if !ok {
			return fmt.Errorf("%w: no live consent for %s to send %s to device %s", ErrNotOwner, s.caller.EUI, s.sr.Ref, d.EUI)
		}
		// The consented data period: read from the payload, no store
		// round trip (period.go).
		if err := checkDataPeriod(s.msg, s.received); err != nil {
			return err
		}
	}
	// A CS02d goes to its device only with that device's certificate from
	// the repository (decision 017).
	return r.checkDeviceCertificate(ctx, s)
}

// needsSignature reports whether the command's signature must be checked:
// every critical command, and any command that carries a signature.
func (s *submission) needsSignature() bool { return s.sr.Critical || s.msg.Signed() }

// certPath validates the caller's organisation certificates the command
// relies on: the digital-signing certificate that checks its signature, and
// the key-agreement certificate an other user's command carries for the
// device to encrypt the response to (the device holds no path to check it:
// the broker's MAC vouches for it, so the router must).
func (r *Router) certPath(ctx context.Context, s *submission) error {
	if s.needsSignature() {
		// The key the meter holds for the caller's role (decision 016):
		// after a rotation some meters hold the new one, others the old.
		role := s.caller.Role.RemoteParty()
		s.anchorKey = s.device.anchorKeyID(role)
		der, err := r.cfg.Certificates.SigningCertificate(ctx, s.caller.EUI, role, s.anchorKey)
		if err != nil {
			return fmt.Errorf("%w: digital-signing certificate of %s: %w", ErrCertPath, s.caller.EUI, err)
		}
		if s.signer, err = r.verifiedKey(ctx, der); err != nil {
			return fmt.Errorf("%w: digital-signing certificate of %s: %w", ErrCertPath, s.caller.EUI, err)
		}
	}
	if u := s.msg.URP; u != nil && u.KACertificate != nil {
		c, err := smki.ParseCertificate(u.KACertificate)
		if err != nil {
			return fmt.Errorf("%w: unknown remote party certificate: %w", ErrCertPath, err)
		}
		if c.EUI != s.caller.EUI || c.KeyUsage != x509.KeyUsageKeyAgreement || c.Role != smki.RoleOther {
			return fmt.Errorf("%w: unknown remote party certificate is a %s certificate of %s as %s, want the caller's key-agreement certificate as other user",
				ErrCertPath, smki.KeyUsageString(c.KeyUsage), c.EUI, c.Role)
		}
		if _, err := r.verifiedKey(ctx, u.KACertificate); err != nil {
			return fmt.Errorf("%w: key-agreement certificate of %s: %w", ErrCertPath, s.caller.EUI, err)
		}
	}
	return nil
}

// verifiedKey validates der's path, through the bounded cache of recently
// verified certificates.
func (r *Router) verifiedKey(ctx context.Context, der []byte) (*ecdsa.PublicKey, error) {
	key := sha256.Sum256(der)
	now := r.now()
	if e, ok := r.paths.get(key); ok && now.Before(e.expires) {
		return e.pub, nil
	}
	pub, err := r.cfg.Certificates.VerifyPath(ctx, der, now)
	if err != nil {
		r.paths.remove(key)
		return nil, err
	}
	r.paths.put(key, pathEntry{pub: pub, expires: now.Add(r.cfg.PathCacheTTL)})
	return pub, nil
}

func (r *Router) signature(_ context.Context, s *submission) error {
	if !s.needsSignature() {
		return nil
	}
	if !s.msg.Signed() {
		return fmt.Errorf("%w: critical service request %s is unsigned (a pre-command): sign it and submit again", ErrSignature, s.sr.Ref)
	}
	data, err := s.msg.SignedData()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if err := commands.VerifyData(s.signer, data, s.msg.Signature); err != nil {
		if s.anchorKey != nil {
			return fmt.Errorf("%w: signature does not verify with the key device %s holds for %s (key id %X): %w",
				ErrSignature, s.msg.Recipient, s.caller.EUI, s.anchorKey, err)
		}
		return fmt.Errorf("%w: signature does not verify with the digital-signing certificate of %s: %w", ErrSignature, s.caller.EUI, err)
	}
	return nil
}

func (r *Router) counterCheck(ctx context.Context, s *submission) error {
	last, ok, err := r.cfg.Ledger.LastCounter(ctx, s.origin, s.msg.Recipient)
	if err != nil {
		return fmt.Errorf("%w: reading counter: %w", ErrUnavailable, err)
	}
	return checkCounter(s.origin, s.msg.Recipient, last, ok, s.counter, s.received)
}

func (r *Router) keyAgreement(ctx context.Context, s *submission) error {
	if s.device.KeyAgreement == nil {
		return fmt.Errorf("%w: device %s has no key-agreement key in the registry", ErrUnknownDevice, s.device.EUI)
	}
	z, err := r.sharedSecret(ctx, s.device)
	if err != nil {
		return fmt.Errorf("%w: key agreement with device %s: %w", ErrUnavailable, s.device.EUI, err)
	}
	s.z = z
	return nil
}

// seal returns the command with the broker's MAC under Z.
func (r *Router) seal(s *submission) ([]byte, error) {
	m := *s.msg
	tag, err := acbMAC(&m, s.z)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	m.MAC = tag
	out, err := m.Marshal()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return out, nil
}

// sharedSecret returns Z for the ACB key and the device's KA key, from the
// bounded in-memory cache when the device key is unchanged. Z is never
// logged or stored.
func (r *Router) sharedSecret(ctx context.Context, d Device) ([]byte, error) {
	peer := string(d.KeyAgreement.Bytes())
	if e, ok := r.zcache.get(d.EUI); ok && e.peer == peer {
		return e.z, nil
	}
	z, err := r.cfg.ACBKey.ECDH(ctx, d.KeyAgreement)
	if err != nil {
		return nil, err
	}
	r.zcache.put(d.EUI, zEntry{peer: peer, z: z})
	return z, nil
}

// admit offers the command to the Admitter: the anomaly thresholds, then,
// only if they let it through, the MAC and the durable record, in one group
// commit.
func (r *Router) admit(ctx context.Context, s *submission) error {
	s.record = Record{ID: s.id, Caller: s.caller, Originator: s.origin, Target: s.msg.Recipient, Counter: s.counter,
		Code: s.msg.Code, Ref: s.sr.Ref, Critical: s.sr.Critical, Accepted: r.now()}
	accepted := AuditEvent{Action: "command.accepted", Caller: s.caller, Target: s.record.Target, Counter: s.counter,
		Code: s.msg.Code, CommandID: s.record.ID, Detail: "service request " + s.sr.Ref, At: s.record.Accepted}
	if s.skipAnomaly {
		accepted.Detail += ", released from quarantine"
	}
	screened := s.raw
	if s.cinRequest {
		// A quarantined CIN request keeps its header alone: its payload is
		// the consumer's CIN (decision 015). Released, it is refused: the
		// challenge was never recorded, so the other user asks again.
		screened = headerOnly(s.raw)
	}
	v, err := r.cfg.Admitter.Admit(ctx, Admission{
		Screening: Screening{ID: s.id, Caller: s.caller, Target: s.msg.Recipient, Ref: s.sr.Ref, Code: s.msg.Code,
			Counter: s.counter, Attributes: s.attrs, Message: screened, At: s.received},
		Released: s.skipAnomaly, Record: s.record, Audit: accepted,
		Seal: func() ([]byte, error) { return r.seal(s) },
	})
	switch {
	case err != nil && (errors.Is(err, ErrReplay) || errors.Is(err, ErrMalformed)):
		return err
	case err != nil:
		return fmt.Errorf("%w: admitting command: %w", ErrUnavailable, err)
	case v.Quarantined:
		return fmt.Errorf("%w: %s breach, quarantine event %s", ErrQuarantined, v.Breach, v.Reference)
	}
	return nil
}

func (r *Router) newID() (string, error) {
	var b [16]byte
	if r.cfg.Rand == nil {
		return newRandomID()
	}
	if _, err := io.ReadFull(r.cfg.Rand, b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}
