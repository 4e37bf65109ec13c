package client

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/commands/asn"
	"github.com/metertrust/metertrust/smki"
)

// RekeyIssuer is the SMKI registration service as RekeyDevice needs it;
// the caller supplies it (*ra.Client through a small adapter, as
// metertrust user rekey-device does), so that package client imports no
// CA code.
type RekeyIssuer interface {
	// IssueRekey has the device's re-key certificate issued for the
	// device's signed CS02c response, which carries its certification
	// request, and returns the certificate (DER).
	IssueRekey(ctx context.Context, response []byte) ([]byte, error)
	// ConfirmRekey hands in the device's signed CS02e response, the
	// read-back of the certificate it holds now, so that the certificates
	// it superseded are revoked.
	ConfirmRekey(ctx context.Context, response []byte) error
}

// Rekey is the outcome of a device re-key.
type Rekey struct {
	Target smki.EUI `json:"target"`
	// Usage is "ds" or "ka".
	Usage string `json:"usage"`
	// CSR is the device's certification request (DER), Certificate the
	// certificate the meter installed (DER).
	CSR         []byte `json:"csr"`
	Certificate []byte `json:"certificate"`
	// Commands are the router's ids of the CS02c, CS02d and CS02e commands.
	Commands []string `json:"commands"`
}

// ErrRekeyRefused is wrapped by RekeyDevice's error when the meter answers
// a re-key command with a failure code.
var ErrRekeyRefused = errors.New("client: the device refused the re-key")

// RekeyDevice re-keys a device's digital-signing ("ds") or key-agreement
// ("ka") key pair (decision 017): it sends 6.17 (CS02c), checks the
// device's signed response and takes the certification request from it;
// has the registration service issue the certificate (issuer.IssueRekey);
// sends 6.15.2 (CS02d) with it and checks that the device answers success;
// reads the certificate back with 6.24.2 (CS02e) and checks it is the new
// one, signed with the device's current key; and hands that read-back to
// the registration service (issuer.ConfirmRekey), which revokes the
// superseded certificate. Each response is waited for on the user's
// deliveries until ctx ends. When the CS02d's answer is lost (ctx ends, or
// the command fails in transport), run RekeyDevice's last step alone with
// ReadBackDevice: the router and the registration service settle on what
// the device reports.
func (c *Client) RekeyDevice(ctx context.Context, target smki.EUI, usage string, issuer RekeyIssuer) (Rekey, error) {
	out := Rekey{Target: target, Usage: usage}
	var ku x509.KeyUsage
	switch usage {
	case "ds":
		ku = x509.KeyUsageDigitalSignature
	case "ka":
		ku = x509.KeyUsageKeyAgreement
	default:
		return out, fmt.Errorf("client: key usage %q: want ds or ka", usage)
	}
	keys, err := c.DeviceKeys(ctx, target)
	if err != nil {
		return out, err
	}
	params := map[string]string{"keyUsage": usage}

	// 1. CS02c: the device's new key pair and its request.
	resp, id, err := c.sendAndWait(ctx, "6.17", target, params, keys.DS)
	out.Commands = append(out.Commands, id)
	if err != nil {
		return out, fmt.Errorf("client: CS02c: %w", err)
	}
	issued, err := asn.Parse[asn.IssueSecurityCredentialsResponse](resp.msg.Payload)
	if err != nil {
		return out, fmt.Errorf("client: CS02c response: %w", err)
	}
	if issued.CertificationRequest == nil {
		return out, fmt.Errorf("%w: CS02c answered response code %d", ErrRekeyRefused, *issued.ResponseCode)
	}
	csr, err := smki.ParseCSR(issued.CertificationRequest.Raw)
	if err != nil {
		return out, fmt.Errorf("client: the device's certification request: %w", err)
	}
	if csr.Kind != smki.KindDevice || csr.EUI != target || csr.KeyUsage != ku {
		return out, fmt.Errorf("client: the device's certification request is for %s %s, want %s %s", csr.EUI, smki.KeyUsageString(csr.KeyUsage), target, usage)
	}
	out.CSR = csr.Raw

	// 2. The registration service issues the certificate.
	der, err := issuer.IssueRekey(ctx, resp.raw)
	if err != nil {
		return out, fmt.Errorf("client: issuing the re-key certificate: %w", err)
	}
	cert, err := smki.ParseCertificate(der)
	if err != nil {
		return out, fmt.Errorf("client: the re-key certificate: %w", err)
	}
	if cert.EUI != target || cert.KeyUsage != ku || !cert.PublicKey.Equal(csr.PublicKey) {
		return out, fmt.Errorf("client: the certificate issued does not certify the device's new key")
	}
	out.Certificate = der

	// 3. CS02d: the meter installs it; the answer is signed with the key
	// the user knows (the old one, for a digital-signing re-key).
	resp, id, err = c.sendAndWait(ctx, "6.15.2", target, map[string]string{"certificate": base64.StdEncoding.EncodeToString(der)}, keys.DS)
	out.Commands = append(out.Commands, id)
	if err != nil {
		return out, fmt.Errorf("client: CS02d: %w", err)
	}
	code, err := asn.Parse[asn.UpdateDeviceCertificateResponse](resp.msg.Payload)
	if err != nil {
		return out, fmt.Errorf("client: CS02d response: %w", err)
	}
	if *code != 0 {
		return out, fmt.Errorf("%w: CS02d answered %s", ErrRekeyRefused, code)
	}

	// 4. CS02e: the read-back, and the old certificate superseded.
	id, err = c.ReadBackDevice(ctx, target, usage, der, keys.DS, issuer)
	out.Commands = append(out.Commands, id)
	return out, err
}

// ReadBackDevice reads the device's certificate of usage back with 6.24.2
// (CS02e), checks that it is want (DER), with the device's signature
// verified by the old digital-signing key old or, when want is a
// digital-signing certificate, by want's key; and hands the read-back to
// issuer.ConfirmRekey. It is RekeyDevice's last step, and what settles a
// re-key whose CS02d answer was lost. It returns the CS02e command's id.
func (c *Client) ReadBackDevice(ctx context.Context, target smki.EUI, usage string, want []byte, old *ecdsa.PublicKey, issuer RekeyIssuer) (string, error) {
	cert, err := smki.ParseCertificate(want)
	if err != nil {
		return "", fmt.Errorf("client: the expected certificate: %w", err)
	}
	keys := []*ecdsa.PublicKey{old}
	if cert.KeyUsage == x509.KeyUsageDigitalSignature {
		keys = append([]*ecdsa.PublicKey{cert.PublicKey}, keys...)
	}
	resp, id, err := c.sendAndWait(ctx, "6.24.2", target, map[string]string{"keyUsage": usage}, keys...)
	if err != nil {
		return id, fmt.Errorf("client: CS02e: %w", err)
	}
	p, err := asn.Parse[asn.ProvideDeviceCertificateResponse](resp.msg.Payload)
	if err != nil {
		return id, fmt.Errorf("client: CS02e response: %w", err)
	}
	if p.Certificate == nil {
		return id, fmt.Errorf("%w: CS02e answered response code %d", ErrRekeyRefused, *p.ResponseCode)
	}
	if !bytes.Equal(p.Certificate.Raw, want) {
		return id, fmt.Errorf("%w: the device holds another %s certificate than the one sent", ErrRekeyRefused, usage)
	}
	if err := issuer.ConfirmRekey(ctx, resp.raw); err != nil {
		return id, fmt.Errorf("client: confirming the re-key: %w", err)
	}
	c.mu.Lock()
	delete(c.devices, target) // the repository now holds the new certificate alone
	c.mu.Unlock()
	return id, nil
}

// signedResponse is a device response whose signature was checked.
type signedResponse struct {
	raw []byte
	msg *commands.Message
}

// sendAndWait sends a critical service request, waits for its delivery and
// checks that it is the device's response to the user, signed with one of
// keys.
func (c *Client) sendAndWait(ctx context.Context, ref string, target smki.EUI, params any, keys ...*ecdsa.PublicKey) (signedResponse, string, error) {
	rc, err := c.Send(ctx, ref, target, params)
	if err != nil {
		return signedResponse{}, "", err
	}
	d, err := c.Wait(ctx, rc.ID, 0)
	if err != nil {
		return signedResponse{}, rc.ID, err
	}
	if d.Kind != KindResponse {
		return signedResponse{}, rc.ID, fmt.Errorf("command %s %s: %s", rc.ID, d.Kind, d.Detail)
	}
	m, err := commands.Parse(d.Body)
	if err != nil {
		return signedResponse{}, rc.ID, fmt.Errorf("reading the response: %w", err)
	}
	if !m.Signed() || m.Recipient != c.eui || m.Originator != target {
		return signedResponse{}, rc.ID, fmt.Errorf("the response is not the device's signed response to %s", c.eui)
	}
	for _, k := range keys {
		if k != nil && commands.VerifySignature(k, m) == nil {
			return signedResponse{raw: d.Body, msg: m}, rc.ID, nil
		}
	}
	return signedResponse{}, rc.ID, errors.New("the device's signature does not verify")
}
