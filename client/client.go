package client

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/smki"
)

// Config says where the router is and with which keys the user acts.
type Config struct {
	// Router is the router's base URL, https://host:port. Required.
	Router string
	// TLS holds the user's DCCKI client certificate and, as RootCAs, the
	// DCCKI root the router's certificate chains to. Required.
	TLS *tls.Config
	// Repository is the SMKI repository's base URL, where Open finds the
	// devices' certificates; empty when the user does not open responses.
	Repository string
	// RepositoryTLS is the TLS configuration for an https repository; nil
	// for the system's roots.
	RepositoryTLS *tls.Config
	// SMKIRoot, when set, is the SMKI root the devices' issuing CAs must
	// be signed by (the user's trust anchor); nil trusts the repository's
	// CAs as they are.
	SMKIRoot *smki.Certificate
	// Signer is the user's digital-signing key, for critical commands;
	// nil when the user sends none.
	Signer crypto.Signer
	// KeyAgreement is the user's key-agreement key, for checking response
	// MACs and decrypting; nil when the user opens no responses.
	KeyAgreement commands.KeyAgreement
	// Timeout bounds each call (default 30 s); Watch's stream is not bound.
	Timeout time.Duration
}

// Client is a DCC user's client of the router. It is safe for concurrent
// use.
type Client struct {
	cfg    Config
	router *url.URL
	http   *http.Client // calls, with Timeout
	stream *http.Client // the event stream, no timeout
	repo   *http.Client
	eui    smki.EUI
	role   string

	mu      sync.Mutex
	devices map[smki.EUI]DeviceKeys
}

// New returns a client. It reads the user's EUI-64 and role from the DCCKI
// client certificate in cfg.TLS, and calls nothing: it fails, with a plain
// error, only on a Router that is not an https URL or a certificate that
// is missing, not parsed (Leaf nil) or names no DCC user. The router's
// opinion of the certificate comes with the first call (ErrUnauthenticated).
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.Router)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("client: router URL %q: want https://host:port", cfg.Router)
	}
	if cfg.TLS == nil || len(cfg.TLS.Certificates) == 0 {
		return nil, errors.New("client: Config.TLS must hold the user's DCCKI client certificate")
	}
	eui, role, err := userOf(cfg.TLS.Certificates[0])
	if err != nil {
		return nil, err
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	tr := &http.Transport{TLSClientConfig: cfg.TLS, MaxIdleConnsPerHost: 16, ForceAttemptHTTP2: true}
	c := &Client{cfg: cfg, router: u, eui: eui, role: role, devices: map[smki.EUI]DeviceKeys{},
		http:   &http.Client{Transport: tr, Timeout: cfg.Timeout},
		stream: &http.Client{Transport: tr},
		repo:   &http.Client{Timeout: cfg.Timeout, Transport: &http.Transport{TLSClientConfig: cfg.RepositoryTLS}}}
	return c, nil
}

// userOf reads the DCC user from a DCCKI client certificate: its URI SAN
// urn:metertrust:user:<EUI-64>:<user role>.
func userOf(c tls.Certificate) (smki.EUI, string, error) {
	leaf := c.Leaf
	if leaf == nil {
		return smki.EUI{}, "", errors.New("client: the DCCKI client certificate is not parsed (load it with tls.LoadX509KeyPair or X509KeyPair)")
	}
	for _, u := range leaf.URIs {
		rest, ok := strings.CutPrefix(u.String(), "urn:metertrust:user:")
		if !ok {
			continue
		}
		e, role, ok := strings.Cut(rest, ":")
		if !ok {
			break
		}
		eui, err := smki.ParseEUI(e)
		if err != nil {
			break
		}
		return eui, role, nil
	}
	return smki.EUI{}, "", errors.New("client: the client certificate names no DCC user (URI urn:metertrust:user:<EUI-64>:<role>): not a DCCKI user certificate")
}

// EUI returns the user's EUI-64, from its client certificate.
func (c *Client) EUI() smki.EUI { return c.eui }

// Role returns the user's DCC user role (IS, ES, GS, ED, GT, OU, RSA).
func (c *Client) Role() string { return c.role }

// call sends a request to the router and decodes a 2xx JSON answer into
// out; a refusal comes back as an *Error.
func (c *Client) call(ctx context.Context, method, path string, query url.Values, ctype string, body []byte, out any) error {
	u := c.router.JoinPath(path)
	u.RawQuery = query.Encode()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("client: %s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, maxAnswer))
	if err != nil {
		return fmt.Errorf("client: %s %s: reading the answer: %w", method, path, err)
	}
	if res.StatusCode >= 300 {
		return errorOf(res.StatusCode, b)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("client: %s %s: decoding the answer: %w", method, path, err)
	}
	return nil
}

// maxAnswer bounds what the client reads of an answer.
const maxAnswer = 16 << 20

// PreCommand is a command the router built for a service request, to sign
// when Critical and submit.
type PreCommand struct {
	// Message is the GBCS command.
	Message []byte
	// Code is the GBCS message code, Ref the service reference variant.
	Code, Ref string
	// Critical says the user must sign it before submitting.
	Critical bool
	// Counter is the originator counter in it; Target its device.
	Counter uint64
	Target  smki.EUI

	// askedRef and askedTarget are what the user asked ServiceRequest
	// for, which Sign checks the command against (not the router's word).
	askedRef    string
	askedTarget smki.EUI
}

// Fuels of Request.Fuel: which of a service request's use cases the router
// builds, the electricity meter's (ESME, DLMS) or the gas meter's (GSME,
// GBZ). The router does not know a device's fuel: the user says it.
const (
	Electricity = "electricity"
	Gas         = "gas"
)

// Request is a service request: the service reference variant Ref (such
// as "4.8.1") for the device Target, with Params (a value that encodes to
// the JSON object the service request takes; nil for none).
type Request struct {
	Ref    string
	Target smki.EUI
	// Fuel is Electricity (or "") for an electricity meter, Gas for a gas
	// meter.
	Fuel   string
	Params any
}

// ServiceRequest asks the router to build the command of service request
// ref (such as "4.1.1") for the electricity meter target, with its
// parameters (a value that encodes to the JSON object the service request
// takes; nil for none): the first of the two steps. Prepare does it for
// either fuel. The router refuses, as an *Error, a service request it does
// not support or bad parameters (ErrBadRequest), one the user's role may
// not send (ErrNotEligible), and an other user's read reaching back more
// than 13 months (ErrConsentPeriod); ownership, consent and the rest are
// checked by Submit.
func (c *Client) ServiceRequest(ctx context.Context, ref string, target smki.EUI, params any) (*PreCommand, error) {
	return c.Prepare(ctx, Request{Ref: ref, Target: target, Params: params})
}

// Prepare asks the router to build the command of the service request q.
func (c *Client) Prepare(ctx context.Context, q Request) (*PreCommand, error) {
	ref, target := q.Ref, q.Target
	in := map[string]any{"serviceReference": ref, "target": target.String()}
	switch q.Fuel {
	case "", Electricity:
	case Gas:
		in["fuel"] = Gas
	default:
		return nil, fmt.Errorf("client: service request %s: fuel %q (want %s or %s)", ref, q.Fuel, Electricity, Gas)
	}
	if q.Params != nil {
		in["parameters"] = q.Params
	}
	body, err := json.Marshal(in)
	if err != nil {
		return nil, fmt.Errorf("client: service request %s: parameters: %w", ref, err)
	}
	var out struct {
		Message  string   `json:"message"`
		Code     string   `json:"messageCode"`
		Ref      string   `json:"serviceReference"`
		Critical bool     `json:"critical"`
		Counter  uint64   `json:"counter"`
		Target   smki.EUI `json:"target"`
	}
	if err := c.call(ctx, http.MethodPost, "/v1/service-requests", nil, "application/json", body, &out); err != nil {
		return nil, err
	}
	raw, err := hex.DecodeString(out.Message)
	if err != nil {
		return nil, fmt.Errorf("client: service request %s: the router's message is not hex: %w", ref, err)
	}
	return &PreCommand{Message: raw, Code: out.Code, Ref: out.Ref, Critical: out.Critical, Counter: out.Counter, Target: out.Target,
		askedRef: ref, askedTarget: target}, nil
}

// Sign signs a pre-command with the user's digital-signing key and returns
// the signed command. It signs only what the user asked ServiceRequest for,
// whatever the router says of it: the command must be from the user, to
// the target asked for, with the counter announced, and of a use case that
// serves the service request asked for. A compromised router cannot have
// the user sign another command. It calls nothing: its errors (no
// Config.Signer, a command it will not sign) are plain errors, not *Error.
func (c *Client) Sign(pc *PreCommand) ([]byte, error) {
	if c.cfg.Signer == nil {
		return nil, errors.New("client: no Config.Signer: critical commands need the user's digital-signing key (--signer)")
	}
	m, err := commands.Parse(pc.Message)
	if err != nil {
		return nil, fmt.Errorf("client: reading the pre-command: %w", err)
	}
	want := pc.askedTarget
	if want.IsZero() {
		return nil, errors.New("client: a pre-command not from ServiceRequest: nothing to check it against, not signed")
	}
	if m.Originator != c.eui || m.Recipient != want || m.Counter != pc.Counter {
		return nil, fmt.Errorf("client: the router's command is from %s to %s counter %d, not the user's %s to %s counter %d: not signed",
			m.Originator, m.Recipient, m.Counter, c.eui, want, pc.Counter)
	}
	if !serves(m.Code, pc.askedRef) {
		return nil, fmt.Errorf("client: the router's command is GBCS %04X, which does not serve service request %s: not signed", uint16(m.Code), pc.askedRef)
	}
	if err := commands.SignPreCommand(rand.Reader, c.cfg.Signer, m); err != nil {
		return nil, fmt.Errorf("client: signing: %w", err)
	}
	return m.Marshal()
}

// serves reports whether the use case of code serves service request ref.
func serves(code commands.MessageCode, ref string) bool {
	u, ok := commands.LookupCode(code)
	if !ok {
		return false
	}
	for _, s := range u.ServiceRequests() {
		if s.Variant == ref || strings.HasPrefix(s.Variant, ref+".") {
			return true
		}
	}
	return false
}

// Receipt is the router's acknowledgement of a command it accepted: it is
// durable and will be forwarded.
type Receipt struct {
	ID       string    `json:"id"`
	Status   string    `json:"status"`
	Target   smki.EUI  `json:"target"`
	Counter  uint64    `json:"counter"`
	Ref      string    `json:"serviceReference"`
	Accepted time.Time `json:"accepted"`
}

// Submit hands a GBCS command to the router, the second step, and returns
// its Receipt once the router has recorded it durably (it then forwards
// it; the response comes as a Delivery). A refusal is an *Error with the
// code of the pipeline stage that refused it: ErrUnauthenticated,
// ErrMalformed, ErrOriginator, ErrNotEligible, ErrUnknownDevice,
// ErrNotOwner, ErrOwnershipUnsettled, ErrConsentPeriod, ErrCertPath,
// ErrSignature, ErrReplay, ErrCounterAhead, ErrQuarantined or
// ErrUnavailable; nothing was forwarded.
func (c *Client) Submit(ctx context.Context, command []byte) (Receipt, error) {
	var r Receipt
	err := c.call(ctx, http.MethodPost, "/v1/commands", nil, "application/octet-stream", command, &r)
	return r, err
}

// Send runs the two steps for an electricity meter: the service request,
// the user's signature when the command is critical (with Config.Signer),
// the submission. It returns the refusals of ServiceRequest, Sign and
// Submit as they are. Do does it for either fuel.
func (c *Client) Send(ctx context.Context, ref string, target smki.EUI, params any) (Receipt, error) {
	return c.Do(ctx, Request{Ref: ref, Target: target, Params: params})
}

// Do runs the two steps for the service request q: the command built by
// the router, signed by the user when it is critical, submitted.
func (c *Client) Do(ctx context.Context, q Request) (Receipt, error) {
	pc, err := c.Prepare(ctx, q)
	if err != nil {
		return Receipt{}, err
	}
	msg := pc.Message
	if pc.Critical {
		if msg, err = c.Sign(pc); err != nil {
			return Receipt{}, err
		}
	}
	return c.Submit(ctx, msg)
}
