package inproc

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/metertrust/metertrust/anomaly"
	"github.com/metertrust/metertrust/apiserver"
	"github.com/metertrust/metertrust/ca"
	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/custody"
	"github.com/metertrust/metertrust/device"
	"github.com/metertrust/metertrust/operator"
	"github.com/metertrust/metertrust/ra"
	"github.com/metertrust/metertrust/repository"
	"github.com/metertrust/metertrust/router"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
	"github.com/metertrust/metertrust/web"
	"github.com/prometheus/client_golang/prometheus"
)

// OperatorName is the name of the operator credential a System creates,
// holding every operator role.
const OperatorName = "dcc-operator"

// System is the whole of metertrust in one process.
type System struct {
	// metrics are the services' metrics when Config.Registry is set.
	metrics struct {
		ca              *ca.Metrics
		operator, caAPI *apiserver.HTTPMetrics
		repository      *repository.Metrics
	}
	// Dir is the data directory; Temporary says Close removes it.
	Dir       string
	Temporary bool
	// Reused says Dir held a system that was read back, not created.
	Reused bool

	// DB is the store every service shares, Keys the CA key store and
	// CA the certificate authorities.
	DB   *store.DB
	Keys *custody.Custody
	CA   *ca.Authority
	// Ceremony lists the CAs the init ceremony created; empty when the
	// ceremony had already run.
	Ceremony []ca.CAInfo

	// PartyList holds the parties in creation order; Party finds one by
	// name. ACB is the access control broker.
	PartyList []*Party
	ACB       *Party
	// ACBKeyURI names the ACB's key-agreement key in the key store Keys
	// (custody.Custody): what another router process on the same data directory
	// and store loads (package bench's router instances).
	ACBKeyURI string

	// Batch names the batch Device CA, Bulk reports its bulk issuance
	// (zero when reused), Fleet holds the meters and Meters their EUIs in
	// order.
	Batch  string
	Bulk   ca.BulkSummary
	Fleet  *device.Fleet
	Meters []smki.EUI

	// Detector is the anomaly detector; Router the router service (its
	// Router field takes in-process submissions); Operator the operator
	// API; Repository the certificate repository.
	Detector   *anomaly.Detector
	Router     *router.Service
	Operator   *operator.Server
	Repository *repository.Server
	// CAService is the CA service's API (serve ca): revocation, CRLs and
	// issuance for operators over mutual TLS.
	CAService *ra.Server

	// OperatorToken is the bearer token of the operator credential
	// OperatorName; OperatorTokenFile and CredentialsFile its files.
	OperatorToken     string
	OperatorTokenFile string
	CredentialsFile   string
	// OperatorPasswordFile holds the operator's dashboard password (mode
	// 0600), made with the credentials; "" for a directory set up before
	// the dashboard, whose operator has no password.
	OperatorPasswordFile string
	// Dashboard is the operators' dashboard, served on the operator
	// listener beside the API.
	Dashboard *web.Server

	// DCCKIRoots holds the DCCKI root the router's server certificate
	// chains to; DCCKIRootFile is it in PEM, for curl --cacert.
	DCCKIRoots    *x509.CertPool
	DCCKIRootFile string
	// RouterCertFile and RouterKeyFile are the router's DCCKI server
	// certificate chain and key (issued anew at each Start).
	RouterCertFile, RouterKeyFile string
	// OperatorClientCertFile and OperatorClientKeyFile are the DCCKI client
	// certificate (with its issuing CA) and key the DCC operator's tools
	// present to the CA service: the ACB's EUI-64, user role OU.
	OperatorClientCertFile, OperatorClientKeyFile string

	// RouterURL, OperatorURL, RepositoryURL and CAURL are the listeners'
	// base URLs; empty when not listening.
	RouterURL, OperatorURL, RepositoryURL, CAURL string

	dcckiIssuer []byte
	rand        io.Reader
	now         func() time.Time
	log         *slog.Logger
	cancel      context.CancelFunc
	wg          sync.WaitGroup
	errMu       sync.Mutex
	errs        []error
	closeOnce   sync.Once
	closeErr    error
}

// manifest is DataDir/inproc.json: what a later Start needs to reuse the
// directory. It holds no secret.
type manifest struct {
	Version   int         `json:"version"`
	ACBKey    string      `json:"acbKey"`
	Batch     string      `json:"batch"`
	MeterKind device.Kind `json:"meterKind"`
	Parties   []PartySpec `json:"parties"`
	// ExternalStore says the store is not the embedded one: a reuse needs
	// its DSN again (never recorded here, as it may hold a password).
	ExternalStore bool `json:"externalStore,omitempty"`
}

const manifestFile = "inproc.json"

// Start assembles and starts a System. The services run until Close;
// ctx bounds only the assembly.
func Start(ctx context.Context, cfg Config) (_ *System, err error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &System{Dir: cfg.DataDir, Batch: cfg.Batch, rand: cfg.Rand, now: cfg.Now, log: cfg.Logger}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.Dir == "" {
		if s.Dir, err = os.MkdirTemp("", "metertrust-"); err != nil {
			return nil, fmt.Errorf("making a temporary data directory: %w", err)
		}
		s.Temporary = true
	} else if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("making data directory: %w", err)
	}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	svcCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel

	m, found, err := readManifest(s.Dir)
	if err != nil {
		return nil, err
	}
	if found && m.ExternalStore && cfg.StoreDSN == "" {
		return nil, fmt.Errorf("%w: %s was set up on an external store: give its DSN again", ErrConfig, s.Dir)
	}
	if cfg.StoreDSN != "" {
		s.DB, err = store.Open(ctx, cfg.StoreDSN)
	} else {
		s.DB, err = store.OpenDataDir(ctx, s.Dir)
	}
	if err != nil {
		return nil, fmt.Errorf("opening the store: %w", err)
	}
	if cfg.Registry != nil {
		if err := s.instrument(cfg.Registry); err != nil {
			return nil, fmt.Errorf("registering metrics: %w", err)
		}
	}
	if s.Keys, err = custody.Open(ctx, cfg.KMS, s.Dir, s.rand); err != nil {
		return nil, fmt.Errorf("opening the key store: %w", err)
	}
	if s.CA, err = ca.New(ca.Config{Store: s.DB.SMKI(), Keys: s.Keys, Now: s.now, Rand: s.rand,
		Logger: s.log, Actor: "ca", Metrics: s.metrics.ca}); err != nil {
		return nil, err
	}

	if found {
		if err := s.reuse(ctx, m); err != nil {
			return nil, err
		}
	} else if err := s.create(ctx, cfg); err != nil {
		return nil, err
	}
	if err := s.startServices(ctx, svcCtx, cfg); err != nil {
		return nil, err
	}
	return s, nil
}

// create runs the ceremony (unless it already ran on this store), creates
// the parties, the meters, the thresholds and the operator credential, and
// writes the manifest last.
func (s *System) create(ctx context.Context, cfg Config) error {
	cas, err := s.CA.Init(ctx, ca.InitRequest{})
	switch {
	case errors.Is(err, ca.ErrExists):
	case err != nil:
		return fmt.Errorf("init ceremony: %w", err)
	default:
		s.Ceremony = cas
	}
	if err := s.loadDCCKI(ctx); err != nil {
		return err
	}
	for _, d := range []string{s.partiesDir(), s.tlsDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("making %s: %w", d, err)
		}
	}
	m := manifest{Version: 1, Batch: s.Batch, MeterKind: cfg.MeterKind, Parties: cfg.Parties, ExternalStore: cfg.StoreDSN != ""}
	for _, spec := range cfg.Parties {
		p, acbURI, err := s.createParty(ctx, spec)
		if err != nil {
			return err
		}
		if acbURI != "" {
			m.ACBKey, s.ACBKeyURI = acbURI, acbURI
		}
		s.addParty(p)
	}
	s.Fleet = device.NewFleet(device.Config{Now: s.now, Rand: s.rand, Logger: s.log})
	if cfg.Meters > 0 && cfg.GenerateMeters {
		if err := s.generateMeters(ctx, cfg.Meters, cfg.FirstMeter, cfg.MeterKind); err != nil {
			return err
		}
	} else if cfg.Meters > 0 {
		if err := s.issueMeters(ctx, cfg.Meters, cfg.FirstMeter); err != nil {
			return err
		}
		ps, err := s.loadMeters(cfg.MeterKind)
		if err != nil {
			return err
		}
		if err := s.registerMeters(ctx, ps); err != nil {
			return err
		}
	}
	if err := s.newDetector(ctx); err != nil {
		return err
	}
	admin := anomaly.Actor{ID: OperatorName, Roles: []anomaly.Role{anomaly.RoleThresholdAdmin}}
	for _, t := range cfg.Thresholds {
		if _, err := s.Detector.SetThreshold(ctx, admin, t); err != nil {
			return fmt.Errorf("setting threshold %s: %w", t, err)
		}
	}
	if err := s.createOperator(); err != nil {
		return err
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the manifest: %w", err)
	}
	return ca.WriteNewFile(filepath.Join(s.Dir, manifestFile), append(b, '\n'), 0o644)
}

// reuse reads back a system written by create.
func (s *System) reuse(ctx context.Context, m manifest) error {
	s.Reused, s.Batch, s.ACBKeyURI = true, m.Batch, m.ACBKey
	if err := s.loadDCCKI(ctx); err != nil {
		return err
	}
	for _, spec := range m.Parties {
		p, err := s.loadParty(ctx, spec, m.ACBKey)
		if err != nil {
			return err
		}
		s.addParty(p)
	}
	s.Fleet = device.NewFleet(device.Config{Now: s.now, Rand: s.rand, Logger: s.log})
	if _, err := os.Stat(s.devicesDir()); err == nil {
		if _, err := s.loadMeters(m.MeterKind); err != nil {
			return err
		}
	}
	if err := s.newDetector(ctx); err != nil {
		return err
	}
	s.CredentialsFile, s.OperatorTokenFile = filepath.Join(s.Dir, "operators.json"), filepath.Join(s.Dir, "operator.token")
	tok, err := os.ReadFile(s.OperatorTokenFile)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrManifest, err)
	}
	s.OperatorToken = string(tok)
	if pw := filepath.Join(s.Dir, operatorPasswordFile); fileExists(pw) {
		s.OperatorPasswordFile = pw
	}
	return nil
}

// operatorPasswordFile is the operator's dashboard password, beside its
// token.
const operatorPasswordFile = "operator.password"

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func readManifest(dir string) (manifest, bool, error) {
	var m manifest
	path := filepath.Join(dir, manifestFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return m, false, nil
	}
	if err != nil {
		return m, false, fmt.Errorf("%w: %w", ErrManifest, err)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&m); err != nil {
		return m, false, fmt.Errorf("%w: %s: %w", ErrManifest, path, err)
	}
	if m.Version != 1 {
		return m, false, fmt.Errorf("%w: %s: version %d, want 1", ErrManifest, path, m.Version)
	}
	if err := validateParties(m.Parties); err != nil {
		return m, false, fmt.Errorf("%w: %s: %w", ErrManifest, path, err)
	}
	if m.ACBKey == "" {
		return m, false, fmt.Errorf("%w: %s: no acbKey", ErrManifest, path)
	}
	return m, true, nil
}

func (s *System) addParty(p *Party) {
	s.PartyList = append(s.PartyList, p)
	if p.Role == smki.RoleAccessControlBroker {
		s.ACB = p
	}
}

// Party returns the party of that name, or nil.
func (s *System) Party(name string) *Party {
	for _, p := range s.PartyList {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// loadDCCKI reads the DCCKI root and TLS issuing CA and writes the root to
// tls/ca.pem for curl.
func (s *System) loadDCCKI(ctx context.Context) error {
	root, err := s.DB.SMKI().CA(ctx, ca.NameDCCKIRoot)
	if err != nil {
		return fmt.Errorf("reading the DCCKI root: %w", err)
	}
	issuing, err := s.DB.SMKI().CA(ctx, ca.NameDCCKITLS)
	if err != nil {
		return fmt.Errorf("reading the DCCKI TLS CA: %w", err)
	}
	rc, err := x509.ParseCertificate(root.CertDER)
	if err != nil {
		return fmt.Errorf("reading the DCCKI root: %w", err)
	}
	s.DCCKIRoots = x509.NewCertPool()
	s.DCCKIRoots.AddCert(rc)
	s.dcckiIssuer = issuing.CertDER
	if err := os.MkdirAll(s.tlsDir(), 0o700); err != nil {
		return fmt.Errorf("making %s: %w", s.tlsDir(), err)
	}
	s.DCCKIRootFile = filepath.Join(s.tlsDir(), "ca.pem")
	if err := os.WriteFile(s.DCCKIRootFile, pemCert(root.CertDER), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", s.DCCKIRootFile, err)
	}
	return nil
}

func (s *System) newDetector(ctx context.Context) error {
	as := s.DB.Anomaly()
	det, err := anomaly.New(ctx, anomaly.Config{Store: as, Notifier: as.Notifier(), Now: s.now, Rand: s.rand,
		Logger: s.log})
	if err != nil {
		return fmt.Errorf("starting anomaly detection: %w", err)
	}
	s.Detector = det
	return nil
}

// createOperator mints the operator's bearer token and dashboard password
// and writes the shared credentials file (the token's digest and the
// password's argon2id hash only), the token file and the password file
// (mode 0600).
func (s *System) createOperator() error {
	tok, err := operator.NewToken(s.rand)
	if err != nil {
		return fmt.Errorf("minting the operator token: %w", err)
	}
	// 18 random bytes: 24 characters of base64url, within the password
	// rules of operator.CheckNewPassword.
	pwBytes := make([]byte, 18)
	if _, err := io.ReadFull(s.rand, pwBytes); err != nil {
		return fmt.Errorf("making the operator's password: %w", err)
	}
	pw := base64.RawURLEncoding.EncodeToString(pwBytes)
	hash, err := operator.HashPassword(s.rand, pw)
	if err != nil {
		return fmt.Errorf("hashing the operator's password: %w", err)
	}
	f := operator.File{Operators: []operator.Credential{{Name: OperatorName, TokenSHA256: operator.HashToken(tok),
		PasswordArgon2id: hash, Roles: operator.Roles}}}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the operator credentials: %w", err)
	}
	s.CredentialsFile, s.OperatorTokenFile = filepath.Join(s.Dir, "operators.json"), filepath.Join(s.Dir, "operator.token")
	if err := ca.WriteNewFile(s.CredentialsFile, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("writing the operator credentials: %w", err)
	}
	if err := ca.WriteNewFile(s.OperatorTokenFile, []byte(tok), 0o600); err != nil {
		return fmt.Errorf("writing the operator token: %w", err)
	}
	s.OperatorPasswordFile = filepath.Join(s.Dir, operatorPasswordFile)
	if err := ca.WriteNewFile(s.OperatorPasswordFile, []byte(pw), 0o600); err != nil {
		return fmt.Errorf("writing the operator's password: %w", err)
	}
	s.OperatorToken = tok
	return nil
}

// routerCertMinLife is how long a kept router server certificate must still
// be valid for a start to reuse it rather than issue a new one.
const routerCertMinLife = 7 * 24 * time.Hour

// routerCertificate returns the router's DCCKI server certificate: the one
// a previous start wrote into the data directory while it is issued by this
// system's DCCKI issuing CA, not revoked and valid for another week, else a
// new one for localhost and the loopback addresses, written there for
// "metertrust serve router --tls-cert --tls-key" on the same directory.
func (s *System) routerCertificate(ctx context.Context) (tls.Certificate, error) {
	if c, err := tls.LoadX509KeyPair(s.RouterCertFile, s.RouterKeyFile); err == nil && s.keepDCCKICert(ctx, c) {
		return c, nil
	}
	ips := []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	srvIss, err := s.CA.IssueTLSServer(ctx, []string{"localhost"}, ips)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("issuing the router's DCCKI server certificate: %w", err)
	}
	defer clear(srvIss.KeyPEM)
	chain := append(pemCert(srvIss.Record.DER), pemCert(s.dcckiIssuer)...)
	c, err := tls.X509KeyPair(chain, srvIss.KeyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("loading the router's DCCKI server certificate: %w", err)
	}
	if err := errors.Join(os.WriteFile(s.RouterCertFile, chain, 0o644), writePrivate(s.RouterKeyFile, srvIss.KeyPEM)); err != nil {
		return tls.Certificate{}, fmt.Errorf("writing the router's DCCKI server certificate: %w", err)
	}
	return c, nil
}

// operatorClientCertificate returns the DCC operator's DCCKI client
// certificate for the CA service, as routerCertificate does the router's:
// the one in the data directory while it is good for another week, else a
// new one written there.
func (s *System) operatorClientCertificate(ctx context.Context) (tls.Certificate, error) {
	if c, err := tls.LoadX509KeyPair(s.OperatorClientCertFile, s.OperatorClientKeyFile); err == nil && s.keepDCCKICert(ctx, c) {
		return c, nil
	}
	iss, err := s.CA.IssueTLSClient(ctx, EUIAccessControlBroker, smki.UserOther)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("issuing the operator's DCCKI client certificate: %w", err)
	}
	defer clear(iss.KeyPEM)
	chain := append(pemCert(iss.Record.DER), pemCert(s.dcckiIssuer)...)
	c, err := tls.X509KeyPair(chain, iss.KeyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("loading the operator's DCCKI client certificate: %w", err)
	}
	if err := errors.Join(os.WriteFile(s.OperatorClientCertFile, chain, 0o644), writePrivate(s.OperatorClientKeyFile, iss.KeyPEM)); err != nil {
		return tls.Certificate{}, fmt.Errorf("writing the operator's DCCKI client certificate: %w", err)
	}
	return c, nil
}

// keepDCCKICert reports whether a DCCKI certificate found in the data
// directory (the router's, the operator's client) may serve again.
func (s *System) keepDCCKICert(ctx context.Context, c tls.Certificate) bool {
	leaf := c.Leaf
	if leaf == nil || len(c.Certificate) < 2 || !bytes.Equal(c.Certificate[1], s.dcckiIssuer) {
		return false
	}
	issuer, err := x509.ParseCertificate(s.dcckiIssuer)
	if err != nil || leaf.CheckSignatureFrom(issuer) != nil || s.now().Add(routerCertMinLife).After(leaf.NotAfter) {
		return false
	}
	rec, err := s.DB.SMKI().Certificate(ctx, ca.NameDCCKITLS, leaf.SerialNumber.Bytes())
	return err == nil && bytes.Equal(rec.DER, leaf.Raw) && rec.RevokedAt.IsZero()
}

// startServices builds the router, operator API and repository and starts
// them (and their listeners, when asked) under svcCtx.
func (s *System) startServices(ctx, svcCtx context.Context, cfg Config) error {
	if s.ACB == nil || s.ACB.KA == nil {
		return fmt.Errorf("%w: no access control broker key-agreement key", ErrConfig)
	}
	acbKA, ok := s.ACB.KA.(router.KeyAgreement)
	if !ok {
		return fmt.Errorf("%w: the ACB key cannot do key agreement", ErrConfig)
	}
	s.RouterCertFile, s.RouterKeyFile = filepath.Join(s.tlsDir(), "router.pem"), filepath.Join(s.tlsDir(), "router.key")
	serverCert, err := s.routerCertificate(ctx)
	if err != nil {
		return err
	}
	s.OperatorClientCertFile, s.OperatorClientKeyFile = filepath.Join(s.tlsDir(), "dcc-operator.pem"), filepath.Join(s.tlsDir(), "dcc-operator.key")
	if _, err := s.operatorClientCertificate(ctx); err != nil {
		return err
	}
	clientCAs := s.DCCKIRoots.Clone()
	if ic, err := x509.ParseCertificate(s.dcckiIssuer); err == nil {
		clientCAs.AddCert(ic)
	}
	if cfg.WrapACBKey != nil {
		acbKA = cfg.WrapACBKey(acbKA)
	}
	var transport router.Transport = NewFleetTransport(s.Fleet)
	if cfg.Transport != nil {
		if transport, err = cfg.Transport(s.Fleet); err != nil {
			return fmt.Errorf("making the device transport: %w", err)
		}
	}
	// The transitional change-of-supplier party's signing key, when the
	// parties have one, signs the CS02b of changes of supplier.
	var tcos smki.EUI
	var tcosKey crypto.Signer
	for _, p := range s.PartyList {
		if p.Role == smki.RoleTransitionalCoS && p.DS != nil {
			tcos, tcosKey = p.EUI, p.DS
			break
		}
	}
	s.Router, err = router.NewService(router.ServiceConfig{DB: s.DB, Detector: s.Detector, ACB: s.ACB.EUI, ACBKey: acbKA,
		TCoS: tcos, TCoSKey: tcosKey, Transport: transport, ServerCertificate: serverCert, ClientCAs: clientCAs, Identify: ca.TLSUser,
		DCCKIIssuer: ca.NameDCCKITLS, Logger: s.log, Clock: s.now, Registry: cfg.Registry})
	if err != nil {
		return fmt.Errorf("building the router: %w", err)
	}
	creds, err := operator.Load(s.CredentialsFile)
	if err != nil {
		return fmt.Errorf("loading operator credentials: %w", err)
	}
	ui := &uiHandler{}
	s.Operator = operator.New(operator.Config{}, operator.Deps{Credentials: creds, Quarantine: s.Detector, Thresholds: s.Detector,
		Usage: s.Detector, Alerts: s.Detector, Releaser: operator.Forwarder(s.Router.Releases.Forward), Audit: s.DB,
		Proposals: s.DB.Proposals(), Logger: s.log, Now: s.now, Metrics: s.metrics.operator, UI: ui})
	if s.Dashboard, err = web.New(web.Config{}, web.Deps{Credentials: creds, Sessions: s.DB.Operator(), Quarantine: s.Detector,
		Thresholds: s.Detector, Usage: s.Detector, Decider: s.Operator, Audit: s.DB, PKI: s.DB.SMKI(), Rates: s.DB.Operator(),
		Logger: s.log, Now: s.now, Metrics: s.metrics.operator}); err != nil {
		return fmt.Errorf("building the dashboard: %w", err)
	}
	ui.Handler = s.Dashboard.Handler()
	credBytes, err := os.ReadFile(s.CredentialsFile)
	if err != nil {
		return fmt.Errorf("reading operator credentials: %w", err)
	}
	ops, err := repository.ParseOperators(credBytes)
	if err != nil {
		return fmt.Errorf("repository operators: %w", err)
	}
	s.Repository = repository.New(repository.Config{Operators: ops}, repository.Deps{Certs: s.DB.SMKI(), CAs: s.DB.SMKI(), CRLs: s.DB.SMKI(),
		Audit: s.DB, Publisher: s.DB.SMKI(), OCSP: repository.NewStoredOCSP(s.DB.SMKI(), s.log, s.now), Logger: s.log, Now: s.now,
		Metrics: s.metrics.repository})

	if s.CAService, err = ra.New(ra.Deps{Authority: s.CA, Store: s.DB.SMKI(), Registry: s.DB.SMKI(), Audit: s.DB, Credentials: creds,
		ClientIssuer: ca.NameDCCKITLS, Proposals: s.DB.Proposals(), Logger: s.log, Now: s.now, Metrics: s.metrics.caAPI}); err != nil {
		return err
	}

	listen := func(addr string) (net.Listener, error) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("listening on %s: %w", addr, err)
		}
		return ln, nil
	}
	var rln, oln, pln, cln net.Listener
	if cfg.RouterAddr != "" {
		if rln, err = listen(cfg.RouterAddr); err != nil {
			return err
		}
		s.RouterURL = "https://" + rln.Addr().String()
	}
	if cfg.OperatorAddr != "" {
		if oln, err = listen(cfg.OperatorAddr); err != nil {
			closeAll(rln)
			return err
		}
		s.OperatorURL = "http://" + oln.Addr().String()
	}
	if cfg.RepositoryAddr != "" {
		if pln, err = listen(cfg.RepositoryAddr); err != nil {
			closeAll(rln, oln)
			return err
		}
		s.RepositoryURL = "http://" + pln.Addr().String()
	}
	if cfg.CAAddr != "" {
		if cln, err = listen(cfg.CAAddr); err != nil {
			closeAll(rln, oln, pln)
			return err
		}
		s.CAURL = "https://" + cln.Addr().String()
	}
	if rln != nil {
		s.run("router", func() error { return s.Router.Run(svcCtx, rln) })
	} else {
		// No listener: the forwarder and the detector's background work
		// still run, for in-process submissions.
		s.run("forwarder", func() error { return s.Router.Forwarder.Run(svcCtx) })
		s.run("anomaly detector", func() error { return s.Detector.Run(svcCtx) })
		if s.Router.Changes != nil {
			s.run("change-of-supplier sweeper", func() error { return s.Router.Changes.Run(svcCtx) })
		}
		if s.Router.Alerts != nil {
			s.run("alert intake", func() error { return s.Router.Alerts.Run(svcCtx) })
		}
	}
	// The meters' clocks: future-dated commands execute at their time.
	s.run("meter clock", func() error { s.Fleet.Run(svcCtx, time.Second); return nil })
	if oln != nil {
		s.run("operator API", func() error { return s.Operator.Serve(svcCtx, oln) })
		s.run("dashboard", func() error { return s.Dashboard.Run(svcCtx) })
	}
	if pln != nil {
		s.run("repository", func() error { return s.Repository.Serve(svcCtx, pln) })
	}
	if cln != nil {
		tc := ra.TLSConfig(serverCert, clientCAs)
		s.run("CA API", func() error { return s.CAService.Serve(svcCtx, cln, tc) })
	}
	// The CA re-signs the OCSP responses and CRLs the repository serves
	// before they expire: every hour, those within half their validity.
	s.run("OCSP and CRL refresher", func() error { return s.CA.RunRefresher(svcCtx, ra.DefaultRefreshInterval) })
	return nil
}

// writePrivate writes a private file (mode 0600), replacing any.
func writePrivate(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	_, err = f.Write(data)
	return errors.Join(err, f.Close())
}

func closeAll(ls ...net.Listener) {
	for _, l := range ls {
		if l != nil {
			l.Close()
		}
	}
}

func (s *System) run(name string, fn func() error) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := fn(); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("service stopped", "service", name, "err", err)
			s.errMu.Lock()
			s.errs = append(s.errs, fmt.Errorf("%s: %w", name, err))
			s.errMu.Unlock()
		}
	}()
}

// Err returns the errors of services that stopped on their own, if any.
func (s *System) Err() error {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return errors.Join(s.errs...)
}

// Client returns an HTTP client that calls the router as p, with p's DCCKI
// client certificate, trusting the DCCKI root.
func (s *System) Client(p *Party) (*http.Client, error) {
	if p == nil || p.TLS == nil {
		return nil, fmt.Errorf("%w: party has no DCCKI client certificate", ErrConfig)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.DCCKIRoots, Certificates: []tls.Certificate{*p.TLS},
		ServerName: "localhost", MinVersion: tls.VersionTLS12}, MaxIdleConnsPerHost: 16}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}, nil
}

// ACBKeyAgreement is the access control broker's key-agreement key: what
// the router holds. The demo uses it to show that the router cannot read a
// payload encrypted end to end.
func (s *System) ACBKeyAgreement() commands.KeyAgreement { return s.ACB.KA }

// Close stops every service, closes the store and the key store, and
// removes a temporary data directory. It returns the errors of services
// that failed.
func (s *System) Close() error {
	s.closeOnce.Do(func() {
		if s.cancel != nil {
			s.cancel()
		}
		s.wg.Wait()
		errs := []error{s.Err()}
		if s.DB != nil {
			errs = append(errs, s.DB.Close())
		}
		if s.Keys != nil {
			errs = append(errs, s.Keys.Close())
		}
		if s.Temporary {
			errs = append(errs, os.RemoveAll(s.Dir))
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// instrument registers the store's, the CA's and the APIs' metrics with
// reg (the router registers its own when it starts): one registry for the
// whole process, each service under its own metric names.
func (s *System) instrument(reg *prometheus.Registry) error {
	if err := s.DB.Instrument(reg); err != nil {
		return err
	}
	var err error
	if s.metrics.ca, err = ca.NewMetrics(reg); err != nil {
		return err
	}
	if s.metrics.operator, err = apiserver.NewHTTPMetrics(reg, "operator"); err != nil {
		return err
	}
	if s.metrics.caAPI, err = apiserver.NewHTTPMetrics(reg, "ca"); err != nil {
		return err
	}
	s.metrics.repository, err = repository.NewMetrics(reg)
	return err
}

// uiHandler is the dashboard, set once built: the dashboard needs the
// operator API (its releases) and the API serves the dashboard.
type uiHandler struct{ http.Handler }
