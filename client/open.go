package client

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/commands/dlms"
	"github.com/metertrust/metertrust/smki"
)

// DeviceKeys are a device's public keys as its user finds them in the SMKI
// repository: digital signing (signed responses and alerts) and key
// agreement (MACs and encryption).
type DeviceKeys struct {
	EUI smki.EUI
	DS  *ecdsa.PublicKey
	KA  *ecdh.PublicKey

	fetched time.Time
}

// DeviceKeysTTL is how long DeviceKeys keeps a device's keys before it asks
// the repository again.
const DeviceKeysTTL = 10 * time.Minute

// DeviceKeys looks a device's certificates up in the repository (cached
// for DeviceKeysTTL, so that a revocation reaches the client within it):
// one unrevoked device certificate per usage,
// naming the device, signed by its issuing CA, whose certificate is signed
// by Config.SMKIRoot when one is given. A device without exactly one such
// certificate per usage, or one that does not check, is a plain error; a
// refusal by the repository is wrapped as an *Error.
func (c *Client) DeviceKeys(ctx context.Context, eui smki.EUI) (DeviceKeys, error) {
	c.mu.Lock()
	k, ok := c.devices[eui]
	c.mu.Unlock()
	if ok && time.Since(k.fetched) < DeviceKeysTTL {
		return k, nil
	}
	if c.cfg.Repository == "" {
		return DeviceKeys{}, errors.New("client: no Config.Repository: the devices' certificates are there")
	}
	ds, err := c.deviceCert(ctx, eui, "ds", x509.KeyUsageDigitalSignature)
	if err != nil {
		return DeviceKeys{}, err
	}
	ka, err := c.deviceCert(ctx, eui, "ka", x509.KeyUsageKeyAgreement)
	if err != nil {
		return DeviceKeys{}, err
	}
	k = DeviceKeys{EUI: eui, DS: ds.PublicKey, fetched: time.Now()}
	if k.KA, err = commands.ECDHPublicKey(ka.PublicKey); err != nil {
		return DeviceKeys{}, fmt.Errorf("client: the key-agreement key of %s: %w", eui, err)
	}
	c.mu.Lock()
	c.devices[eui] = k
	c.mu.Unlock()
	return k, nil
}

// deviceCert fetches and checks the device's certificate of one usage.
func (c *Client) deviceCert(ctx context.Context, eui smki.EUI, usage string, ku x509.KeyUsage) (*smki.Certificate, error) {
	var list struct {
		Certificates []struct {
			Serial string `json:"serial"`
			CA     string `json:"ca"`
		} `json:"certificates"`
	}
	q := url.Values{"eui": {eui.String()}, "usage": {usage}, "kind": {"device"}, "status": {"good"}}
	if err := c.repoGet(ctx, "/v1/certificates?"+q.Encode(), "application/json", &list); err != nil {
		return nil, fmt.Errorf("client: looking up the %s certificate of %s: %w", usage, eui, err)
	}
	if len(list.Certificates) != 1 {
		return nil, fmt.Errorf("client: %d unrevoked %s certificates of device %s in the repository, want 1", len(list.Certificates), usage, eui)
	}
	l := list.Certificates[0]
	var der, caDER []byte
	if err := c.repoGet(ctx, "/v1/certificates/"+url.PathEscape(l.CA)+"/"+url.PathEscape(l.Serial), "application/pkix-cert", &der); err != nil {
		return nil, fmt.Errorf("client: fetching the %s certificate of %s: %w", usage, eui, err)
	}
	if err := c.repoGet(ctx, "/v1/cas/"+url.PathEscape(l.CA)+"/certificate", "application/pkix-cert", &caDER); err != nil {
		return nil, fmt.Errorf("client: fetching CA %s's certificate: %w", l.CA, err)
	}
	cert, err := smki.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("client: the %s certificate of %s: %w", usage, eui, err)
	}
	issuer, err := smki.ParseCertificate(caDER)
	if err != nil {
		return nil, fmt.Errorf("client: CA %s's certificate: %w", l.CA, err)
	}
	switch {
	case cert.EUI != eui || cert.KeyUsage != ku:
		return nil, fmt.Errorf("client: the repository's %s certificate for %s names %s", usage, eui, cert.EUI)
	case cert.CheckSignatureFrom(issuer) != nil:
		return nil, fmt.Errorf("client: the %s certificate of %s is not signed by CA %s", usage, eui, l.CA)
	case c.cfg.SMKIRoot != nil && issuer.CheckSignatureFrom(c.cfg.SMKIRoot) != nil:
		return nil, fmt.Errorf("client: CA %s is not signed by the SMKI root given", l.CA)
	}
	return cert, nil
}

// repoGet fetches a repository path; out is *[]byte for a raw answer.
func (c *Client) repoGet(ctx context.Context, path, accept string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.cfg.Repository+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", accept)
	res, err := c.repo.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, maxAnswer))
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK {
		return errorOf(res.StatusCode, b)
	}
	if raw, ok := out.(*[]byte); ok {
		*raw = b
		return nil
	}
	return json.Unmarshal(b, out)
}

// Response is a device response or alert, checked and read.
type Response struct {
	// Message is the GBCS message.
	Message *commands.Message
	// Payload is its payload read by structure (DLMS for electricity
	// meters, GBZ for gas), with its use case.
	Payload commands.Payload
	// Plaintexts are the decrypted blocks of a sensitive payload,
	// encrypted end to end to the user: the router cannot read them.
	Plaintexts [][]byte
	// OnBehalf says the message was MAC'd for the access control broker,
	// which sent the command on the user's behalf: the user cannot check
	// that MAC, so Message and Payload are as received, unauthenticated;
	// only Plaintexts are, by the AES-GCM tag under the user's own key.
	// Open refuses such a message when nothing in it is encrypted to the
	// user.
	OnBehalf bool
}

// Open checks a device response or alert as its user must: the device's
// signature when it is signed, else the MAC under the user's key-agreement
// key and the device's; it reads the payload, and decrypts its ciphered
// blocks when the use case is sensitive. A message that does not check (a
// bad signature or MAC, a message for another user, one on the user's
// behalf with nothing encrypted to it, a payload that does not read or
// decrypt) is refused with a plain error and no Response: the client's
// verdict, not the router's.
func (c *Client) Open(ctx context.Context, body []byte) (*Response, error) {
	m, err := commands.Parse(body)
	if err != nil {
		return nil, fmt.Errorf("client: reading the message: %w", err)
	}
	return c.open(ctx, m, false)
}

// ErrNotAlert is returned by OpenAlert for a delivery that is not a device
// alert.
var ErrNotAlert = errors.New("client: not a device alert")

// Alert is a device alert, checked and read.
type Alert struct {
	*Response
	// Rerouted is set when the alert was addressed to another user, the
	// device's supplier before the user: the router delivered it to the
	// user, the device's current supplier, instead (decision 018). Its
	// signature is the device's all the same.
	Rerouted bool
	// UseCase is the alert's typed reading where its layout is GB's: for
	// 0x00CC a dlms.FutureDatedAlert, for 0x00CD a *gbz.Alert with its
	// FutureDated outcome, for 0x00CB the *asn.UpdateSecurityCredentialsAlert
	// (the codecs of packages dlms, gbz and asn); nil otherwise.
	UseCase any
}

// OpenAlert checks and reads a device alert delivered to the user (a
// Delivery of kind KindAlert), as Open does a response: the device's
// signature (or the MAC under the user's key) over the alert, a CRA flag
// of alert, and the router's account of it (Delivery.Alert) matching the
// bytes. A signed alert rerouted to the user (addressed to the device's
// former supplier) is accepted when the router says so; a MAC'd one never
// is.
func (c *Client) OpenAlert(ctx context.Context, d Delivery) (*Alert, error) {
	if d.Kind != KindAlert {
		return nil, fmt.Errorf("%w: a delivery of kind %q", ErrNotAlert, d.Kind)
	}
	m, err := commands.Parse(d.Body)
	if err != nil {
		return nil, fmt.Errorf("client: reading the alert: %w", err)
	}
	if m.CRA != commands.Alert {
		return nil, fmt.Errorf("%w: CRA flag %s", ErrNotAlert, m.CRA)
	}
	if i := d.Alert; i != nil && (i.Device != m.Originator || i.Counter != m.Counter || i.Recipient != m.Recipient || i.Code != m.Code.String()) {
		return nil, fmt.Errorf("client: the router's account of alert %d does not match its bytes", d.Seq)
	}
	rerouted := m.Recipient != c.eui
	if rerouted && (d.Alert == nil || !d.Alert.Rerouted) {
		return nil, fmt.Errorf("client: an alert to %s, not to %s, and not rerouted", m.Recipient, c.eui)
	}
	r, err := c.open(ctx, m, rerouted)
	if err != nil {
		return nil, err
	}
	return &Alert{Response: r, Rerouted: rerouted, UseCase: alertUseCase(r.Payload)}, nil
}

// alertUseCase is the typed reading of an alert's payload: the DLMS use
// case's typed value (dlms.FutureDatedAlert, dlms.BillingDataLogAlert, ...),
// the GBZ alert (*gbz.Alert, with its FutureDated outcome for 0x00CD), or
// the ASN.1 value (for 0x00CB the asn.UpdateSecurityCredentialsAlert).
func alertUseCase(p commands.Payload) any {
	switch {
	case p.Structure == commands.StructureDLMS:
		if d, ok := p.UseCase.(dlms.Description); ok {
			return d.Value
		}
		return nil
	case p.Structure == commands.StructureGBZAlert || p.Structure == commands.StructureASN1:
		return p.Tree
	}
	return p.UseCase
}

// open checks and reads m; rerouted accepts a signed message to another
// recipient.
func (c *Client) open(ctx context.Context, m *commands.Message, rerouted bool) (*Response, error) {
	keys, err := c.DeviceKeys(ctx, m.Originator)
	if err != nil {
		return nil, err
	}
	r := &Response{Message: m}
	u, _ := commands.LookupCode(m.Code)
	switch {
	case m.Signed():
		if m.Recipient != c.eui && !rerouted {
			return nil, fmt.Errorf("client: a message to %s, not to %s", m.Recipient, c.eui)
		}
		if err := commands.VerifySignature(keys.DS, m); err != nil {
			return nil, fmt.Errorf("client: the device's signature: %w", err)
		}
	case m.HasMAC() && m.Recipient != c.eui && rerouted:
		return nil, fmt.Errorf("client: a MAC'd alert to %s rerouted to %s: the user cannot check it", m.Recipient, c.eui)
	case m.HasMAC() && m.Recipient != c.eui:
		if m.URP == nil || m.URP.EUI != c.eui {
			return nil, fmt.Errorf("client: a message MAC'd for %s, neither to nor on behalf of %s", m.Recipient, c.eui)
		}
		if !u.Sensitive {
			// Nothing in it is the user's to check: the MAC is the ACB's
			// and nothing is encrypted to the user.
			return nil, fmt.Errorf("client: a message MAC'd for %s on behalf of %s with nothing encrypted to it: the user cannot authenticate it", m.Recipient, c.eui)
		}
		r.OnBehalf = true
	case m.HasMAC():
		if c.cfg.KeyAgreement == nil {
			return nil, errors.New("client: no Config.KeyAgreement: checking a MAC needs the user's key-agreement key")
		}
		if err := commands.CheckMAC(ctx, c.cfg.KeyAgreement, keys.KA, m); err != nil {
			return nil, fmt.Errorf("client: the MAC: %w", err)
		}
	default:
		return nil, errors.New("client: the message is neither signed nor MAC'd")
	}
	r.Payload = commands.ReadPayload(m)
	if !r.Payload.Decoded {
		return nil, fmt.Errorf("client: reading the payload (%s): %s", r.Payload.Structure, r.Payload.Error)
	}
	if u.Sensitive {
		if c.cfg.KeyAgreement == nil {
			return nil, errors.New("client: no Config.KeyAgreement: a sensitive payload is encrypted to the user's key")
		}
		if r.Plaintexts, err = commands.OpenPayload(ctx, c.cfg.KeyAgreement, keys.KA, m); err != nil {
			return nil, fmt.Errorf("client: decrypting the payload: %w", err)
		}
	}
	return r, nil
}
