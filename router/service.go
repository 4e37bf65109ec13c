package router

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/metertrust/metertrust/anomaly"
	"github.com/metertrust/metertrust/apiserver"
	"github.com/metertrust/metertrust/internal/serving"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// ServiceConfig is everything "metertrust serve router" (and the demo, in
// one process) hands to NewService. Every field is required unless its
// comment says otherwise.
type ServiceConfig struct {
	// DB is the store: the router's tables, the SMKI repository, the audit
	// log.
	DB *store.DB
	// Detector is the anomaly detector on the same store.
	Detector *anomaly.Detector
	// ACB is the access control broker's EUI and ACBKey its key-agreement
	// key from the key store.
	ACB    smki.EUI
	ACBKey KeyAgreement
	// TCoS is the transitional change-of-supplier party's EUI and TCoSKey
	// its digital-signing key from the key store, which signs the CS02b of
	// every change of supplier (decision 014). Optional: without them the
	// router refuses changes of supplier.
	TCoS    smki.EUI
	TCoSKey crypto.Signer
	// Transport carries commands to devices.
	Transport Transport
	// ServerCertificate is the router's DCCKI server certificate chain and
	// key; ClientCAs holds the DCCKI root that client certificates must
	// chain to.
	ServerCertificate tls.Certificate
	ClientCAs         *x509.CertPool
	// Identify reads the caller from a client certificate (ca.TLSUser).
	Identify func(*x509.Certificate) (smki.EUI, smki.UserRole, error)
	// DCCKIIssuer is the name of the CA issuing client certificates, whose
	// revocations are honoured ("dccki-tls").
	DCCKIIssuer string
	// Logger is the service's logger; nil discards.
	Logger *slog.Logger
	// Clock is the clock; nil for time.Now.
	Clock func() time.Time
	// Registry receives the metrics; nil for a new registry with the Go and
	// process collectors.
	Registry *prometheus.Registry
	// ForwardLease bounds one forwarding attempt, and so how long the
	// commands a crashed instance was sending wait before another instance
	// (or the restarted one) sends them again; zero for the forwarder's
	// default (30s).
	ForwardLease time.Duration
	// ReleaseInterval is how often the release sweeper looks for released
	// quarantined commands to forward (those an operator process without
	// the key released); zero for DefaultReleaseInterval.
	ReleaseInterval time.Duration
	// ChangeDesk times the change desk (its AnswerTimeout, ReadTimeout,
	// ReadMaxWait, ReadAlertAfter and Sweep; the rest is set here).
	ChangeDesk ChangeDeskConfig
	// AlertSource names the device transport as an alert source, keying
	// the alert intake's cursor; "" for "devices". When Transport is an
	// AlertSource (HTTPTransport, the in-process fleet's), the service
	// collects the alerts devices raise from it (decision 018).
	AlertSource string
	// AlertObserver, when set, is told about the verified CS02b outcome
	// alerts (0x00CB) to the DCC's own parties. Optional: when nil, the
	// service's ChangeDesk is told, if it is an AlertObserver.
	AlertObserver AlertObserver
}

// Service is the router service: pipeline (recording through a group-commit
// ledger), forwarder and HTTP API. Run it once.
type Service struct {
	Router    *Router
	Forwarder *Forwarder
	// Releases forwards released quarantined commands, whichever process
	// released them.
	Releases *Releases
	Server   *Server
	Storage  *Storage
	Hub      *Hub
	Admitter *GroupAdmitter
	// Changes runs changes of supplier; nil without a TCoS key.
	Changes *ChangeDesk
	// Alerts collects device alerts from the transport; nil when the
	// transport is no AlertSource.
	Alerts  *AlertIntake
	cfg     ServiceConfig
	tls     *tls.Config
	metrics *Metrics
	log     *slog.Logger
}

// NewService wires the router service from cfg.
func NewService(cfg ServiceConfig) (*Service, error) {
	switch {
	case cfg.DB == nil || cfg.Detector == nil || cfg.ACBKey == nil || cfg.Transport == nil || cfg.Identify == nil || cfg.ClientCAs == nil:
		return nil, fmt.Errorf("%w: service needs DB, Detector, ACBKey, Transport, Identify and ClientCAs", ErrConfig)
	case len(cfg.ServerCertificate.Certificate) == 0:
		return nil, fmt.Errorf("%w: service needs a server certificate", ErrConfig)
	case cfg.DCCKIIssuer == "":
		return nil, fmt.Errorf("%w: service needs the DCCKI issuing CA's name", ErrConfig)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Registry == nil {
		cfg.Registry = serving.NewRegistry()
	}
	m, err := NewMetrics(cfg.Registry)
	if err != nil {
		return nil, fmt.Errorf("registering metrics: %w", err)
	}
	st := NewStorage(cfg.DB.Router())
	leaders := 1 // SQLite has one writer; on PostgreSQL two, leaving pool connections for reads
	if cfg.DB.Dialect() == store.DialectPostgres {
		leaders = 2
	}
	if cfg.ForwardLease <= 0 {
		cfg.ForwardLease = DefaultForwardLease
	}
	admitter := NewGroupAdmitter(cfg.DB.Router(), cfg.Detector, leaders, cfg.ForwardLease, cfg.Clock)
	hub := NewHub()
	fwd, err := NewForwarder(ForwarderConfig{Outbox: st, Transport: cfg.Transport, Registry: st, ACB: cfg.ACB, Auditor: st,
		Publisher: hub, Recorder: admitter, Completer: admitter, Metrics: m, Logger: cfg.Logger, Clock: cfg.Clock, Lease: cfg.ForwardLease})
	if err != nil {
		return nil, err
	}
	admitter.SetForwarder(fwd.Dispatch, fwd.Notify)
	admitter.group.Observe = m.observeGroup(groupAdmit)
	depths := map[string]func() int{"admit": admitter.group.Queued, "forward_attempts": func() int { return len(fwd.sem) }}
	if fwd.fwds != nil {
		fwd.fwds.group.Observe = m.observeGroup(groupForward)
		depths["forward"] = fwd.fwds.group.Queued
	}
	if err := m.watchQueues(depths); err != nil {
		return nil, fmt.Errorf("registering metrics: %w", err)
	}
	certs := NewStoreCertificates(cfg.DB.SMKI(), time.Minute, cfg.Clock)
	fwd.SetRekeyDesk(NewRekeyDesk(cfg.DB.Router(), st, certs, cfg.ACBKey, cfg.Logger, cfg.Clock))
	r, err := New(Config{ACB: cfg.ACB, ACBKey: cfg.ACBKey, Catalogue: GBCSCatalogue{}, Registry: st,
		Certificates: certs, DeviceCertificates: certs, Ledger: st, Admitter: admitter,
		Auditor: st, Metrics: m, Logger: cfg.Logger, Clock: cfg.Clock})
	if err != nil {
		return nil, err
	}
	rel, err := NewReleases(ReleasesConfig{Queue: cfg.DB.Anomaly(), Forward: r.ForwardReleased, Interval: cfg.ReleaseInterval,
		Lease: cfg.ForwardLease, Logger: cfg.Logger, Clock: cfg.Clock})
	if err != nil {
		return nil, err
	}
	var changes *ChangeDesk
	{
		// Without a TCoS key the desk runs owners' rotations only.
		dc := cfg.ChangeDesk
		dc.Store, dc.CAs, dc.TCoS, dc.TCoSKey = cfg.DB.Router(), cfg.DB.SMKI(), cfg.TCoS, cfg.TCoSKey
		if changes, err = NewChangeDesk(r, dc); err != nil {
			return nil, err
		}
		fwd.SetCredentialsObserver(changes)
	}
	var intake *AlertIntake
	observer := cfg.AlertObserver
	if observer == nil && changes != nil {
		observer = changes
	}
	if src, ok := cfg.Transport.(AlertSource); ok {
		name := cfg.AlertSource
		if name == "" {
			name = "devices"
		}
		if intake, err = NewAlertIntake(IntakeConfig{Sources: map[string]AlertSource{name: src}, Store: cfg.DB.Router(), Registry: st,
			ACB: cfg.ACB, ACBKey: cfg.ACBKey, TCoS: cfg.TCoS, Observer: observer, Publisher: hub, Metrics: m,
			Logger: cfg.Logger, Clock: cfg.Clock}); err != nil {
			return nil, err
		}
	}
	rev := NewStoreRevocations(cfg.DB.SMKI(), cfg.DCCKIIssuer, 10*time.Second, cfg.Clock)
	srv, err := NewServer(ServerConfig{Router: r, Commands: st, Hub: hub, Alerts: cfg.Detector.Broker(), Quarantine: cfg.Detector, Thresholds: cfg.Detector, Release: rel.Forward, Consents: NewConsentDesk(r, cfg.DB.Router(), nil), Changes: changes, Identify: cfg.Identify,
		Revocations: rev, Gatherer: cfg.Registry, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	return &Service{Router: r, Forwarder: fwd, Releases: rel, Server: srv, Storage: st, Hub: hub, Admitter: admitter, Changes: changes, Alerts: intake, cfg: cfg, metrics: m,
		tls: TLSConfig(cfg.ClientCAs, cfg.ServerCertificate, rev), log: cfg.Logger.With("component", "router.service")}, nil
}

// Run serves the API on ln with mutual TLS (apiserver.Serve, with its fixed
// timeouts and header limit) and runs the forwarder, the release sweeper,
// the change-of-supplier sweeper, the alert intake and the anomaly detector's background work until ctx ends, then shuts the
// server down gracefully.
func (s *Service) Run(ctx context.Context, ln net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 7)
	run := func(name string, fn func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, http.ErrServerClosed) {
				errs <- fmt.Errorf("%s: %w", name, err)
				cancel()
			}
		}()
	}
	run("forwarder", func() error { return s.Forwarder.Run(ctx) })
	run("release sweeper", func() error { return s.Releases.Run(ctx) })
	run("anomaly detector", func() error { return s.cfg.Detector.Run(ctx) })
	run("quarantine gauge", func() error { return s.watchQuarantine(ctx) })
	if s.Changes != nil {
		run("change-of-supplier sweeper", func() error { return s.Changes.Run(ctx) })
	}
	if s.Alerts != nil {
		run("alert intake", func() error { return s.Alerts.Run(ctx) })
	}
	// The API on the shared server set-up: the timeouts and header limit
	// of the operator and repository APIs, with the router's mutual TLS. It
	// shuts down gracefully once ctx ends, ending the event streams first.
	run("https", func() error {
		return apiserver.Serve(ctx, ln, s.Server.Handler(), apiserver.Options{Service: "router", Name: "router",
			Logger: s.log, ShutdownTimeout: 10 * time.Second, TLS: s.tls, BeforeShutdown: s.Server.EndStreams})
	})
	<-ctx.Done()
	wg.Wait() // every command told "accepted" is committed by now
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

// watchQuarantine keeps the quarantine-size gauge current.
func (s *Service) watchQuarantine(ctx context.Context) error {
	viewer := anomaly.Actor{ID: "router", Roles: []anomaly.Role{anomaly.RoleViewer}}
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		qs, err := s.cfg.Detector.List(ctx, viewer, anomaly.Filter{State: anomaly.StateQuarantined, Limit: anomaly.MaxList})
		if err == nil {
			s.metrics.SetQuarantineSize(len(qs))
		} else if ctx.Err() == nil {
			s.log.WarnContext(ctx, "counting quarantine", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
