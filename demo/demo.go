// Package demo tells the story of metertrust in one process, through the
// real paths: the SMKI ceremony and the parties' certificates, a batch of
// meters issued by a batch Device CA, a supplier's day over the router's
// mutual-TLS API (register and profile reads decrypted with the supplier's
// key-agreement key, disconnections and reconnections signed and executed),
// a third party's consented profile read encrypted to its own key, the
// common refusals, a compromised supplier's flood of signed disconnections
// stopped by anomaly detection and cleared by an operator through the
// operator API, a consumer's change of supplier (ownership moved on the
// meter's confirmation; the old supplier then refused by the router and by
// the meter), a stolen meter's keys opening that meter and no other, the
// batch CA key's destruction, and the audit chain.
//
// It follows the GB security model as the project's GBCS security notes
// summarise it: the DUIS two-step for critical commands (section 4), the
// access control broker's MAC (section 5), end-to-end encryption of
// sensitive payloads (section 6), anti-replay (section 7), unknown remote
// parties (section 8), threshold anomaly detection and quarantine
// (section 10) and consent (section 11). The whole system comes from
// package inproc.
package demo

import (
	"cmp"
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/metertrust/metertrust/anomaly"
	"github.com/metertrust/metertrust/ca"
	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/commands/dlms"
	"github.com/metertrust/metertrust/device"
	"github.com/metertrust/metertrust/inproc"
	"github.com/metertrust/metertrust/router"
	"github.com/metertrust/metertrust/smki"
)

// Defaults of Options.
const (
	DefaultMeters    = 1000
	DefaultAttack    = 500
	DefaultThreshold = 50
	// StoryMeters is how many meters the supplier reads, disconnects and
	// reconnects.
	StoryMeters = 3
)

// Options configure a run. The zero value runs the full demo in a
// temporary directory.
type Options struct {
	// DataDir keeps the data (store, keys, certificates); empty for a
	// temporary directory removed at the end.
	DataDir string
	// Meters is the size of the batch (default DefaultMeters); at least
	// StoryMeters.
	Meters int
	// Attack is the number of signed disconnections the compromised
	// supplier sends (default DefaultAttack).
	Attack int
	// Threshold is the DCC's threshold on disconnections (service request
	// 7.2) per user in 24 hours (default DefaultThreshold).
	Threshold int
	// Out receives the story; nil discards it.
	Out io.Writer
	// Logger receives the services' logs; nil discards them.
	Logger *slog.Logger
}

// Summary is what a run did, as "metertrust demo --json" prints it.
type Summary struct {
	DataDir string `json:"dataDir,omitempty"`
	Meters  int    `json:"meters"`
	// OrgCertificates are the serials of the parties' organisation
	// certificates; DeviceCerts counts the meters' device certificates.
	OrgCertificates []string `json:"orgCertificates"`
	DeviceCerts     int      `json:"deviceCertificates"`
	// RevokedSerial is the device certificate revoked in the first act,
	// CRLNumber and CRLEntries the batch CRL after it, OCSPRevoked and
	// OCSPGood what the repository's OCSP responder said of it and of a
	// good one.
	RevokedSerial string `json:"revokedSerial"`
	CRLNumber     int64  `json:"crlNumber"`
	CRLEntries    int    `json:"crlEntries"`
	OCSPRevoked   string `json:"ocspRevoked"`
	OCSPGood      string `json:"ocspGood"`
	// Verified counts certificates whose path validated; RefusedRevoked
	// says the revoked one was refused.
	Verified       int  `json:"verified"`
	RefusedRevoked bool `json:"refusedRevoked"`
	// Accepted counts commands the router accepted (durable, 202).
	Accepted int `json:"accepted"`
	// Forwarded counts accepted commands forwarded to a meter and
	// answered.
	Forwarded int `json:"forwarded"`
	// Failed counts accepted commands that ended in a failure delivery
	// instead of a response.
	Failed int `json:"failed"`
	// Executed counts commands the meters executed.
	Executed uint64 `json:"executed"`
	// Quarantined counts commands anomaly detection quarantined;
	// QuarantineDeleted those the operator deleted.
	Quarantined       int `json:"quarantined"`
	QuarantineDeleted int `json:"quarantineDeleted"`
	// Alerts counts the alert events the supplier's event stream received.
	Alerts int `json:"alerts"`
	// Refused counts the router's refusals by error code.
	Refused map[string]int `json:"refused"`
	// UseCases counts the device responses the users received by GBCS use
	// case and message code ("ECS17b 0x0027"): every one a real GB payload.
	UseCases map[string]int `json:"useCases"`
	// History is the third party's 13 months of half-hourly data.
	History HistorySummary `json:"thirdPartyHistory"`
	// Attack is the compromised supplier's flood.
	Attack AttackSummary `json:"attack"`
	// Switch is the consumer's change of supplier.
	Switch SwitchSummary `json:"switch"`
	// Stolen is the stolen meter's keys: they open that meter, no other.
	// Executed counts the forged read it executed, which the router
	// never saw.
	Stolen StolenSummary `json:"stolenMeter"`
	// Rotate is the supplier's rotation of its keys on a meter.
	Rotate RotateSummary `json:"rotation"`
	// BatchKey is the batch Device CA key's state at the end ("destroyed").
	BatchKey string `json:"batchKey"`
	// AuditEntries is the length of the verified audit chain.
	AuditEntries     int64 `json:"auditEntries"`
	AuditChainIntact bool  `json:"auditChainIntact"`
	// Seconds is the wall-clock time of the run.
	Seconds float64 `json:"seconds"`
}

// AttackSummary is the compromised supplier's flood of disconnections.
type AttackSummary struct {
	// Threshold is the DCC threshold (7.2 per user per 24 h); Before the
	// supplier's own disconnections already in the window.
	Threshold int `json:"threshold"`
	Before    int `json:"disconnectsBefore"`
	// Sent, Accepted and Quarantined count the flood's commands.
	Sent        int `json:"sent"`
	Accepted    int `json:"accepted"`
	Quarantined int `json:"quarantined"`
}

// run holds one run's state.
type run struct {
	opts     Options
	sys      *inproc.System
	sum      Summary
	w        io.Writer
	step     int
	supplier *userClient
	netop    *userClient
	third    *userClient
	repo     *http.Client
	ka       map[smki.EUI]meterKeys
	useCases useCaseCounter
	kaMu     sync.Mutex
	start    time.Time
}

// Run tells the story and returns its summary.
func Run(ctx context.Context, opts Options) (Summary, error) {
	if opts.Meters == 0 {
		opts.Meters = DefaultMeters
	}
	if opts.Attack == 0 {
		opts.Attack = DefaultAttack
	}
	if opts.Threshold == 0 {
		opts.Threshold = DefaultThreshold
	}
	switch {
	case opts.Meters < StoryMeters:
		return Summary{}, fmt.Errorf("%w: %d meters: the story needs at least %d", inproc.ErrConfig, opts.Meters, StoryMeters)
	case opts.Attack < 0 || opts.Threshold < StoryMeters:
		return Summary{}, fmt.Errorf("%w: attack %d, threshold %d: want a positive attack and a threshold of at least %d",
			inproc.ErrConfig, opts.Attack, opts.Threshold, StoryMeters)
	}
	r := &run{opts: opts, w: opts.Out, start: time.Now(), ka: map[smki.EUI]meterKeys{}, useCases: useCaseCounter{n: map[string]int{}},
		sum: Summary{Refused: map[string]int{}}}
	if r.w == nil {
		r.w = io.Discard
	}
	err := r.story(ctx)
	if r.sys != nil {
		if cerr := r.sys.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("stopping the system: %w", cerr)
		}
	}
	r.sum.Seconds = time.Since(r.start).Seconds()
	r.useCases.mu.Lock()
	r.sum.UseCases = maps.Clone(r.useCases.n)
	r.useCases.mu.Unlock()
	return r.sum, err
}

func (r *run) say(format string, args ...any) {
	r.step++
	fmt.Fprintf(r.w, "\n%2d. "+format+"\n", append([]any{r.step}, args...)...)
}

func (r *run) detail(format string, args ...any) {
	fmt.Fprintf(r.w, "    "+format+"\n", args...)
}

func (r *run) story(ctx context.Context) error {
	r.say("Starting metertrust in one process: store, CAs, %d meters, router, operator API, repository", r.opts.Meters)
	sys, err := inproc.Start(ctx, inproc.Config{DataDir: r.opts.DataDir, Meters: r.opts.Meters, Logger: r.opts.Logger,
		Thresholds: []anomaly.Threshold{{Scope: anomaly.ScopeUserService, ServiceRef: "7.2", Limit: int64(r.opts.Threshold), Window: 24 * time.Hour}},
		RouterAddr: "127.0.0.1:0", OperatorAddr: "127.0.0.1:0", RepositoryAddr: "127.0.0.1:0",
		Parties: append(inproc.DefaultParties(), SwitchSupplier)})
	if err != nil {
		return err
	}
	r.sys = sys
	if sys.Reused {
		return fmt.Errorf("%w: %s already holds a system; the demo needs a fresh directory", inproc.ErrConfig, sys.Dir)
	}
	if !sys.Temporary {
		r.sum.DataDir = sys.Dir
	}
	r.sum.Meters = len(sys.Meters)
	if err := r.clients(); err != nil {
		return err
	}
	if err := r.actCeremony(ctx); err != nil {
		return err
	}
	if err := r.actSupplier(ctx); err != nil {
		return err
	}
	if err := r.actRefusals(ctx); err != nil {
		return err
	}
	if err := r.actThirdParty(ctx); err != nil {
		return err
	}
	if err := r.actHistory(ctx); err != nil {
		return err
	}
	if err := r.actAttack(ctx); err != nil {
		return err
	}
	if err := r.actOperator(ctx); err != nil {
		return err
	}
	if err := r.actSwitch(ctx); err != nil {
		return err
	}
	if err := r.actStolen(ctx); err != nil {
		return err
	}
	if err := r.actRotate(ctx); err != nil {
		return err
	}
	return r.actClose(ctx)
}

// actCeremony shows the first act: the SMKI ceremony and issuance.
func (r *run) actCeremony(ctx context.Context) error {
	s := r.sys
	r.say("Init ceremony: the SMKI root and Organisation CA, the DCCKI root and TLS CA (keys in %s)", s.Keys.Kind())
	for _, c := range s.Ceremony {
		r.detail("%-10s %s (serial %s)", c.Name, c.Subject, c.Serial)
	}
	r.say("The parties get organisation certificates from CSRs, one per key")
	for _, p := range s.PartyList {
		var us []string
		for _, u := range p.Usages {
			us = append(us, string(u))
		}
		who := fmt.Sprintf("role %s", p.Role)
		if p.UserRole != "" {
			who += fmt.Sprintf(", DCC user %s, DCCKI client certificate", p.UserRole)
		}
		r.detail("%-17s %-26s %s  %s (%s)", p.Name, p.Organisation, p.EUI, strings.Join(us, "+"), who)
	}
	if der, ok := s.Party(inproc.PartySupplier).Certificates[ca.UsageDS]; ok {
		_, stdErr := x509.ParseCertificate(der)
		c, err := smki.ParseCertificate(der)
		if err != nil {
			return fmt.Errorf("reading the supplier's certificate back: %w", err)
		}
		r.detail("crypto/x509 cannot read an SMKI organisation certificate (%v); metertrust's reader sees %s", stdErr, c.Profile)
	}
	for _, p := range s.PartyList {
		for _, u := range p.Usages {
			c, err := p.Certificate(u)
			if err != nil {
				return err
			}
			r.sum.OrgCertificates = append(r.sum.OrgCertificates, fmt.Sprintf("%X", c.SerialNumber))
		}
	}
	b := s.Bulk
	r.sum.DeviceCerts = b.Certificates
	r.say("Batch ceremony: Device CA %s issues %d meters (%d linted certificates in %s)",
		s.Batch, b.Devices, b.Certificates, b.Elapsed.Round(time.Millisecond))
	r.detail("each meter has a DS and a KA key, each with its device certificate")
	r.detail("meters %s to %s trust the ACB, the supplier, the network operator and the TCoS party", b.FirstEUI, b.LastEUI)
	return r.actRevocation(ctx)
}

func (r *run) clients() error {
	s := r.sys
	mk := func(name string) (*userClient, error) {
		p := s.Party(name)
		if p == nil {
			return nil, fmt.Errorf("%w: no party %s", inproc.ErrConfig, name)
		}
		c, err := s.Client(p)
		if err != nil {
			return nil, err
		}
		return &userClient{base: s.RouterURL, http: c, eui: p.EUI, signer: p.DS, rand: rand.Reader, seen: map[string]router.Delivery{},
			useCases: &r.useCases}, nil
	}
	var err error
	if r.supplier, err = mk(inproc.PartySupplier); err != nil {
		return err
	}
	if r.netop, err = mk(inproc.PartyNetworkOperator); err != nil {
		return err
	}
	if r.third, err = mk(inproc.PartyThirdParty); err != nil {
		return err
	}
	r.repo = &http.Client{Timeout: 30 * time.Second}
	return nil
}

// meterKeys are a meter's public keys as a user looks them up: its
// digital-signing key (for signed responses) and key-agreement key (for
// MACs and decryption).
type meterKeys struct {
	ds *ecdsa.PublicKey
	ka *ecdh.PublicKey
}

// keysOf looks a meter's certificates up in the certificate repository,
// as a user's system would.
func (r *run) keysOf(ctx context.Context, eui smki.EUI) (meterKeys, error) {
	r.kaMu.Lock()
	k, ok := r.ka[eui]
	r.kaMu.Unlock()
	if ok {
		return k, nil
	}
	ds, err := r.meterCert(ctx, eui, "ds", x509.KeyUsageDigitalSignature)
	if err != nil {
		return meterKeys{}, err
	}
	ka, err := r.meterCert(ctx, eui, "ka", x509.KeyUsageKeyAgreement)
	if err != nil {
		return meterKeys{}, err
	}
	k = meterKeys{ds: ds.PublicKey}
	if k.ka, err = commands.ECDHPublicKey(ka.PublicKey); err != nil {
		return meterKeys{}, err
	}
	r.kaMu.Lock()
	r.ka[eui] = k
	r.kaMu.Unlock()
	return k, nil
}

// meterCert fetches the meter's device certificate of one usage from the
// repository and checks that it is the meter's.
func (r *run) meterCert(ctx context.Context, eui smki.EUI, usage string, ku x509.KeyUsage) (*smki.Certificate, error) {
	base := r.sys.RepositoryURL
	var list struct {
		Certificates []struct {
			Serial string `json:"serial"`
			CA     string `json:"ca"`
		} `json:"certificates"`
	}
	q := url.Values{"eui": {eui.String()}, "usage": {usage}, "kind": {"device"}}
	if err := call(ctx, r.repo, "GET", base+"/v1/certificates?"+q.Encode(), "", nil, nil, &list); err != nil {
		return nil, fmt.Errorf("looking up the %s certificate of %s: %w", usage, eui, err)
	}
	if len(list.Certificates) != 1 {
		return nil, fmt.Errorf("%w: %d %s certificates for meter %s in the repository, want 1", ErrAPI, len(list.Certificates), usage, eui)
	}
	c := list.Certificates[0]
	var der []byte
	if err := call(ctx, r.repo, "GET", base+"/v1/certificates/"+url.PathEscape(c.CA)+"/"+url.PathEscape(c.Serial), "",
		http.Header{"Accept": {"application/pkix-cert"}}, nil, &der); err != nil {
		return nil, fmt.Errorf("fetching the %s certificate of %s: %w", usage, eui, err)
	}
	cert, err := smki.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("reading the %s certificate of %s: %w", usage, eui, err)
	}
	if cert.EUI != eui || cert.KeyUsage != ku {
		return nil, fmt.Errorf("%w: the repository's %s certificate for %s names %s", ErrAPI, usage, eui, cert.EUI)
	}
	return cert, nil
}

// accepted records an accepted command.
func (r *run) accepted() { r.sum.Accepted++ }

// refused records an expected refusal and checks its code.
func (r *run) refused(err error, want string) error {
	var rf *refusal
	if !errors.As(err, &rf) || rf.problem.Code != want {
		return fmt.Errorf("%w: want a %q refusal, got %v", ErrAPI, want, err)
	}
	r.sum.Refused[want]++
	r.detail("refused: %d %s: %s", rf.status, rf.problem.Code, rf.problem.Detail)
	return nil
}

// exchange runs one command of u to target and waits for its response,
// which it opens with ka.
func (r *run) exchange(ctx context.Context, u *userClient, ka commands.KeyAgreement, ref string, target smki.EUI, params any) (*deviceResponse, error) {
	rc, _, err := u.request(ctx, ref, target, params)
	if err != nil {
		return nil, err
	}
	r.accepted()
	ds, err := u.await(ctx, 30*time.Second, rc.ID)
	if err != nil {
		return nil, err
	}
	if ds[0].Kind != router.DeliveryResponse {
		return nil, fmt.Errorf("%w: command %s (%s to %s) ended in %s: %s", ErrAPI, rc.ID, ref, target, ds[0].Kind, ds[0].Detail)
	}
	r.sum.Forwarded++
	keys, err := r.keysOf(ctx, target)
	if err != nil {
		return nil, err
	}
	return openResponse(ctx, u.eui, ka, keys, ds[0].Body)
}

// actSupplier is the supplier's day.
func (r *run) actSupplier(ctx context.Context) error {
	s := r.sys
	sup := s.Party(inproc.PartySupplier)
	meters := s.Meters[:StoryMeters]
	r.say("The supplier reads %d meters' registers through the router's mutual-TLS API", len(meters))
	r.detail("router %s; the meters' KA certificates come from the repository %s", s.RouterURL, s.RepositoryURL)
	for _, m := range meters {
		p, err := r.exchange(ctx, r.supplier, sup.KA, "4.1.1", m, nil)
		if err != nil {
			return fmt.Errorf("register read of %s: %w", m, err)
		}
		rd, err := readImportEnergy(p)
		if err != nil {
			return fmt.Errorf("register read of %s: %w", m, err)
		}
		r.detail("meter %s: %s Wh active import (ECS17b; MAC checked, ciphered block decrypted with the supplier's KA key)",
			m, rd.ActiveImport.Scaled())
	}
	now := time.Now().UTC().Truncate(30 * time.Minute)
	profile := map[string]string{"from": now.Add(-6 * time.Hour).Format(time.RFC3339), "to": now.Format(time.RFC3339)}
	r.say("The supplier reads the half-hourly profile of meter %s", meters[0])
	p, err := r.exchange(ctx, r.supplier, sup.KA, "4.8.1", meters[0], profile)
	if err != nil {
		return fmt.Errorf("profile read: %w", err)
	}
	pl, err := readHalfHourProfile(p)
	if err != nil {
		return fmt.Errorf("profile read: %w", err)
	}
	var total uint64
	for _, v := range pl.Records {
		total += uint64(v.Value)
	}
	if len(pl.Records) == 0 {
		return fmt.Errorf("%w: profile read: no half hours", ErrAPI)
	}
	r.detail("%d half hours from %s, %d Wh in all (ECS22b), decrypted by the supplier alone", len(pl.Records), pl.Records[0].At().Format(time.TimeOnly), total)

	for _, step := range []struct {
		ref, verb string
		want      device.SupplyState
	}{{"7.2", "disconnects", device.SupplyDisabled}, {"7.1", "reconnects", device.SupplyEnabled}} {
		r.say("The supplier %s %d meters", step.verb, len(meters))
		r.detail("service request, pre-command from the router, signed with the supplier's DS key, submitted")
		for _, m := range meters {
			p, err := r.exchange(ctx, r.supplier, sup.KA, step.ref, m, nil)
			if err != nil {
				return fmt.Errorf("%s %s: %w", step.ref, m, err)
			}
			result, err := actionResult(p)
			if err != nil {
				return fmt.Errorf("%s %s: %w", step.ref, m, err)
			}
			meter, _ := s.Fleet.Meter(m)
			// An action's response carries its result, not the state: the
			// state is read off the meter.
			if result != dlms.ActionSuccess || meter.Supply() != step.want {
				return fmt.Errorf("%w: %s to %s: action result %s, meter supply %s", ErrAPI, step.ref, m, result, supplyName(meter.Supply()))
			}
			r.detail("meter %s: ACB MAC and supplier signature checked, executed, signed response: supply %s",
				m, supplyName(step.want))
		}
	}
	return nil
}

// readImportEnergy reads the decrypted plaintext of an ECS17b response.
func readImportEnergy(d *deviceResponse) (dlms.ImportEnergy, error) {
	v, err := d.plainData()
	if err != nil {
		return dlms.ImportEnergy{}, err
	}
	return dlms.ReadImportEnergy(v)
}

// readHalfHourProfile reads the decrypted plaintext of an ECS22b response.
func readHalfHourProfile(d *deviceResponse) (dlms.HalfHourProfile, error) {
	v, err := d.plainData()
	if err != nil {
		return dlms.HalfHourProfile{}, err
	}
	return dlms.ReadHalfHourProfile(v)
}

// actionResult reads the one action result of a DLMS response (the supply
// switch use cases).
func actionResult(d *deviceResponse) (dlms.ActionResult, error) {
	a, err := d.apdu()
	if err != nil {
		return 0, err
	}
	if a.AccessResponse == nil {
		return 0, fmt.Errorf("%w: a DLMS %s, want an ACCESS-Response", ErrAPI, a.Kind())
	}
	rs, err := dlms.ReadResults(a.AccessResponse, dlms.Action, 1)
	if err != nil {
		return 0, err
	}
	return dlms.ActionResult(rs[0]), nil
}

func supplyName(s device.SupplyState) string {
	if s == device.SupplyEnabled {
		return "enabled"
	}
	if s == device.SupplyDisabled {
		return "disabled"
	}
	return fmt.Sprintf("state %d", s)
}

// actRefusals shows one refusal of each common kind.
func (r *run) actRefusals(ctx context.Context) error {
	m := r.sys.Meters[0]
	r.say("Replay: an eavesdropper resubmits the supplier's last signed reconnection of %s", m)
	pc, raw, err := r.supplier.serviceRequest(ctx, "7.1", m, nil)
	if err != nil {
		return err
	}
	signed, err := r.supplier.sign(raw)
	if err != nil {
		return err
	}
	rc, err := r.supplier.submit(ctx, signed)
	if err != nil {
		return fmt.Errorf("reconnection %d: %w", pc.Counter, err)
	}
	r.accepted()
	if _, err := r.supplier.await(ctx, 30*time.Second, rc.ID); err != nil {
		return err
	}
	r.sum.Forwarded++
	_, err = r.supplier.submit(ctx, signed)
	if err := r.refused(err, router.ErrReplay.Code()); err != nil {
		return err
	}
	r.say("Wrong role: the network operator (an electricity distributor) asks to disconnect %s", m)
	_, err = r.netop.serviceRequestThenSubmit(ctx, "7.2", m)
	if err := r.refused(err, router.ErrNotEligible.Code()); err != nil {
		return err
	}
	r.say("Unsigned critical command: the supplier submits a disconnection pre-command without signing it")
	_, raw, err = r.supplier.serviceRequest(ctx, "7.2", m, nil)
	if err != nil {
		return err
	}
	_, err = r.supplier.submit(ctx, raw)
	return r.refused(err, router.ErrSignature.Code())
}

// serviceRequestThenSubmit asks for a command and submits it as it is
// (unsigned): what a party may try when the router refuses the service
// request itself, the refusal comes from there.
func (u *userClient) serviceRequestThenSubmit(ctx context.Context, ref string, target smki.EUI) (router.Receipt, error) {
	_, raw, err := u.serviceRequest(ctx, ref, target, nil)
	if err != nil {
		return router.Receipt{}, err
	}
	return u.submit(ctx, raw)
}

// actThirdParty is the consented read of an other user.
func (r *run) actThirdParty(ctx context.Context) error {
	s := r.sys
	third := s.Party(inproc.PartyThirdParty)
	m := s.Meters[1]
	now := time.Now().UTC().Truncate(30 * time.Minute)
	profile := map[string]string{"from": now.Add(-3 * time.Hour).Format(time.RFC3339), "to": now.Format(time.RFC3339)}
	r.say("A third party (%s, other user) asks for the profile of %s without the consumer's consent", third.Organisation, m)
	_, _, err := r.third.request(ctx, "4.8.1", m, profile)
	if err := r.refused(err, router.ErrNotOwner.Code()); err != nil {
		return err
	}
	r.say("The third party asks the router to have the meter display a customer identification number (CIN)")
	var cinRc router.Receipt
	body, err := json.Marshal(map[string]string{"target": m.String()})
	if err != nil {
		return err
	}
	if err := call(ctx, r.third.http, "POST", r.third.base+"/v1/cin", "application/json", nil, body, &cinRc); err != nil {
		return fmt.Errorf("CIN request: %w", err)
	}
	r.accepted()
	ds, err := r.third.await(ctx, 30*time.Second, cinRc.ID)
	if err != nil {
		return err
	}
	if ds[0].Kind != router.DeliveryResponse {
		return fmt.Errorf("%w: CIN request ended in %s: %s", ErrAPI, ds[0].Kind, ds[0].Detail)
	}
	r.sum.Forwarded++
	meter, _ := s.Fleet.Meter(m)
	cin, ok := meter.CIN()
	if !ok {
		return fmt.Errorf("%w: meter %s displays no CIN", ErrAPI, m)
	}
	r.detail("the router keeps only a hash of the CIN; the meter shows it to the consumer")
	r.say("The consumer reads the CIN back to the third party, which presents it: the router records the consent")
	body, err = json.Marshal(router.ConsentRequest{Device: m, CIN: cin, Scope: []string{"4.8.1"}, Days: 30})
	if err != nil {
		return err
	}
	var consent struct {
		ID      string    `json:"id"`
		Expires time.Time `json:"expires"`
	}
	if err := call(ctx, r.third.http, "POST", r.third.base+"/v1/consents", "application/json", nil, body, &consent); err != nil {
		return fmt.Errorf("consent: %w", err)
	}
	r.detail("consent %s for 4.8.1 until %s (audited)", consent.ID, consent.Expires.UTC().Format(time.DateOnly))
	r.say("The third party reads the profile under the consent")
	r.detail("the router sends it as the ACB, with the third party's KA certificate (unknown remote party)")
	rc, _, err := r.third.request(ctx, "4.8.1", m, profile)
	if err != nil {
		return err
	}
	r.accepted()
	ds, err = r.third.await(ctx, 30*time.Second, rc.ID)
	if err != nil {
		return err
	}
	if ds[0].Kind != router.DeliveryResponse {
		return fmt.Errorf("%w: consented read ended in %s: %s", ErrAPI, ds[0].Kind, ds[0].Detail)
	}
	r.sum.Forwarded++
	keys, err := r.keysOf(ctx, m)
	if err != nil {
		return err
	}
	resp, err := openResponse(ctx, r.third.eui, third.KA, keys, ds[0].Body)
	if err != nil {
		return fmt.Errorf("the third party reading its profile: %w", err)
	}
	pl, err := readHalfHourProfile(resp)
	if err != nil {
		return err
	}
	r.detail("the third party decrypted %d half hours with its own KA key (other-information form %d)", len(pl.Records), resp.msg.OtherInfoForm())
	msg := resp.msg
	if _, err := commands.OpenPayload(ctx, s.ACBKeyAgreement(), keys.ka, msg); err == nil {
		return fmt.Errorf("%w: the router's ACB key decrypted the third party's profile", ErrAPI)
	} else {
		r.detail("the router, holding only the ACB key, cannot read it: %v", err)
	}
	if _, err := commands.OpenPayload(ctx, s.Party(inproc.PartySupplier).KA, keys.ka, msg); err == nil {
		return fmt.Errorf("%w: the supplier decrypted the third party's profile", ErrAPI)
	}
	r.detail("nor can the supplier")
	return nil
}

// actAttack is the compromised supplier's flood.
func (r *run) actAttack(ctx context.Context) error {
	s := r.sys
	a := &r.sum.Attack
	a.Threshold, a.Before, a.Sent = r.opts.Threshold, StoryMeters, r.opts.Attack
	r.say("The supplier's keys are stolen: the attacker fires %d signed disconnections", a.Sent)
	r.detail("signed with the supplier's DS key, sent with its DCCKI client certificate: every check passes but the threshold")
	r.detail("DCC threshold: %d disconnections per supplier per 24 h, %d already used today", a.Threshold, a.Before)

	// The supplier's own systems watch its event stream for alerts.
	ev := &eventCounter{counts: map[string]int{}, first: map[string]time.Time{}}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	ready := make(chan error, 1)
	go ev.watch(sctx, r.supplier.http, r.supplier.base+"/v1/events", nil, ready)
	if err := <-ready; err != nil {
		return fmt.Errorf("opening the supplier's event stream: %w", err)
	}

	const workers = 4
	n := len(s.Meters)
	var mu sync.Mutex
	var ids []string
	var firstErr error
	var refs []string
	start := time.Now()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			// Each target belongs to one worker, which waits for a meter's
			// answer before sending it the next command: forwarding is
			// concurrent, and a later counter reaching the meter first
			// would make it discard the earlier command as a replay.
			last := map[int]string{}
			for i := range a.Sent {
				t := (i + StoryMeters) % n
				if t%workers != w {
					continue
				}
				if id, ok := last[t]; ok {
					if _, err := r.supplier.await(ctx, 60*time.Second, id); err != nil {
						mu.Lock()
						firstErr = cmp.Or(firstErr, err)
						mu.Unlock()
						return
					}
				}
				rc, _, err := r.supplier.request(ctx, "7.2", s.Meters[t], nil)
				if err == nil {
					last[t] = rc.ID
				}
				mu.Lock()
				var rf *refusal
				switch {
				case err == nil:
					a.Accepted++
					ids = append(ids, rc.ID)
				case errors.As(err, &rf) && rf.problem.Code == router.ErrQuarantined.Code():
					a.Quarantined++
					if len(refs) < 1 {
						refs = append(refs, rf.problem.Detail)
					}
				case firstErr == nil:
					firstErr = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return fmt.Errorf("attack: %w", firstErr)
	}
	r.sum.Accepted += a.Accepted
	r.sum.Quarantined += a.Quarantined
	r.detail("%d accepted, MAC'd and forwarded (within the threshold), %d quarantined: not MAC'd, not forwarded (%s)",
		a.Accepted, a.Quarantined, time.Since(start).Round(time.Millisecond))
	if len(refs) > 0 {
		r.detail("first quarantine: %s", refs[0])
	}
	ds, err := r.supplier.await(ctx, 60*time.Second, ids...)
	if err != nil {
		return err
	}
	for _, d := range ds {
		if d.Kind == router.DeliveryResponse {
			r.sum.Forwarded++
		} else {
			r.sum.Failed++
			r.detail("command %s ended in %s: %s", d.CommandID, d.Kind, d.Detail)
		}
	}
	// Alerts reach the stream within a second (our rule).
	deadline := time.Now().Add(2 * time.Second)
	for ev.count("alert") < 1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	r.sum.Alerts = ev.count("alert")
	r.detail("the supplier's event stream received %d alerts", r.sum.Alerts)
	return nil
}

// actOperator is the DCC operator clearing the quarantine.
func (r *run) actOperator(ctx context.Context) error {
	s := r.sys
	op := &operatorClient{base: s.OperatorURL, http: &http.Client{Timeout: 30 * time.Second}, token: s.OperatorToken}
	r.say("A DCC operator lists the quarantine through the operator API (bearer token)")
	qs, err := op.quarantined(ctx)
	if err != nil {
		return err
	}
	if len(qs) != r.sum.Quarantined {
		return fmt.Errorf("%w: the operator sees %d quarantined commands, the attacker had %d quarantined", ErrAPI, len(qs), r.sum.Quarantined)
	}
	if len(qs) > 0 {
		q := qs[0]
		r.detail("%d records, e.g. %s: %s %s to %s, %s: %s", len(qs), q.Ref, q.User, q.ServiceRef, q.Target, q.Kind, q.Detail)
	}
	r.say("The supplier confirms the compromise; the operator deletes the %d quarantined commands", len(qs))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	work := make(chan string)
	for range 4 {
		wg.Go(func() {
			for ref := range work {
				err := op.delete(ctx, ref, "supplier key compromised: disconnections not sent by the supplier")
				mu.Lock()
				if err == nil {
					r.sum.QuarantineDeleted++
				} else if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		})
	}
	for _, q := range qs {
		work <- q.Ref
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	left, err := op.quarantined(ctx)
	if err != nil {
		return err
	}
	r.detail("%d deleted, each audited with who and why; %d left in quarantine", r.sum.QuarantineDeleted, len(left))
	return nil
}

// actClose closes the batch and verifies the audit chain.
func (r *run) actClose(ctx context.Context) error {
	s := r.sys
	r.say("Batch %s is closed: its Device CA key is destroyed, its certificate stays published", s.Batch)
	if err := s.CA.CloseBatch(ctx, s.Batch, "demo complete"); err != nil {
		return fmt.Errorf("closing batch %s: %w", s.Batch, err)
	}
	b, err := s.CA.Batch(ctx, s.Batch)
	if err != nil {
		return err
	}
	r.sum.BatchKey = b.Key
	_, err = s.CA.IssueDevices(ctx, ca.BulkRequest{Batch: s.Batch, Count: 1})
	if !errors.Is(err, ca.ErrBatchClosed) {
		return fmt.Errorf("%w: issuing from a closed batch: got %v, want ca.ErrBatchClosed", ErrAPI, err)
	}
	r.detail("key %s; issuing again fails: %v", b.Key, err)

	// Let the forwarder settle, then count what the meters executed.
	st := s.Fleet.Stats()
	r.sum.Executed = st.Accepted
	n, err := s.DB.VerifyAudit(ctx)
	if err != nil {
		return fmt.Errorf("audit chain: %w", err)
	}
	r.sum.AuditEntries, r.sum.AuditChainIntact = n, true
	r.say("Audit log: %d hash-chained entries, chain verified", n)
	return nil
}

// WriteTable writes the summary as an aligned table: names on the left,
// values right-aligned.
func WriteTable(w io.Writer, s Summary) error {
	type row struct{ k, v string }
	var rows []row
	add := func(k string, v any) { rows = append(rows, row{k, fmt.Sprint(v)}) }
	add("meters", s.Meters)
	add("organisation certificates", len(s.OrgCertificates))
	add("device certificates", s.DeviceCerts)
	add("certificate paths valid", s.Verified)
	add("commands accepted", s.Accepted)
	add("forwarded and answered", s.Forwarded)
	add("failed", s.Failed)
	add("executed by meters", s.Executed)
	add("quarantined", s.Quarantined)
	add("deleted by the operator", s.QuarantineDeleted)
	add("alerts to the supplier", s.Alerts)
	ucs := slices.Sorted(maps.Keys(s.UseCases))
	add("GBCS use cases answered", len(ucs))
	for _, u := range ucs {
		add("  "+u, s.UseCases[u])
	}
	codes := slices.Sorted(maps.Keys(s.Refused))
	total := 0
	for _, c := range codes {
		total += s.Refused[c]
	}
	add("refused", total)
	for _, c := range codes {
		add("  "+c, s.Refused[c])
	}
	add("third party's 13 months: reads, half hours", fmt.Sprintf("%d, %d", s.History.Requests, s.History.Intervals))
	add("attack: sent", s.Attack.Sent)
	add("attack: threshold (already used)", fmt.Sprintf("%d (%d)", s.Attack.Threshold, s.Attack.Before))
	add("attack: accepted", s.Attack.Accepted)
	add("attack: quarantined", s.Attack.Quarantined)
	add("change of supplier", fmt.Sprintf("%s, %s -> %s", s.Switch.Outcome, s.Switch.From, s.Switch.To))
	add("  old supplier refused by router, meter", fmt.Sprintf("%v, %v", s.Switch.RefusedByRouter, s.Switch.RefusedByMeter))
	add("stolen meter's key opens it, not another", fmt.Sprintf("%v, %v", s.Stolen.OpenedOwn, s.Stolen.RefusedOther))
	add("key rotation; new key executed, old refused", fmt.Sprintf("%s, %v, %v", s.Rotate.Outcome, s.Rotate.NewKeyExecuted, s.Rotate.OldKeyRefused))
	add("batch CA key", s.BatchKey)
	add("audit entries, chain verified", fmt.Sprintf("%d, %v", s.AuditEntries, s.AuditChainIntact))
	add("seconds", fmt.Sprintf("%.1f", s.Seconds))
	if s.DataDir != "" {
		add("data", s.DataDir)
	}
	kw, vw := 0, 0
	for _, r := range rows {
		kw, vw = max(kw, len(r.k)), max(vw, len(r.v))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\nSummary\n%s\n", strings.Repeat("-", kw+2+vw))
	for _, r := range rows {
		fmt.Fprintf(&b, "%-*s  %*s\n", kw, r.k, vw, r.v)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON writes the summary as indented JSON.
func WriteJSON(w io.Writer, s Summary) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(s)
}
