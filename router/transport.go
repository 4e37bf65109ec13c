package router

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/metertrust/metertrust/smki"
)

// Transport carries a MAC'd command to its target device. Send returns the
// device's response when the transport is synchronous, or nil when the
// response will arrive later (through Forwarder.Response). An error
// wrapping ErrDeviceRefused is final: the command is not retried.
type Transport interface {
	Send(ctx context.Context, target smki.EUI, msg []byte) ([]byte, error)
}

// ErrDeviceRefused is wrapped by transport errors that retrying cannot cure:
// the device (or the communications service provider) refused the command.
var ErrDeviceRefused = errors.New("router: device refused the command")

// ErrDeviceReplay is wrapped (with ErrDeviceRefused) when the device
// discarded the command as a replay: it had already accepted this
// originator's counter. The router forwards a pair's commands strictly in
// counter order, so for a command sent again after a crash or a lost
// answer this means the device executed it the first time.
var ErrDeviceReplay = errors.New("router: device reports a replay")

// ErrDeviceMAC is wrapped (with ErrDeviceRefused) when the device, or the
// communications service provider for it, reports that it discarded the
// command because the access control broker's MAC did not verify: the
// device holds another key-agreement key than the registry's. The
// forwarder then tries a pending re-key's key for a CS02e read-back
// (decision 017). A real meter discards in silence; an endpoint that
// reports the discard lets the router act on it.
var ErrDeviceMAC = errors.New("router: device reports a bad MAC")

// MaxResponseBytes bounds a device response read from an HTTP transport.
const MaxResponseBytes = 1 << 20

// HTTPTransport posts commands to a communications service provider's
// endpoint: POST {base}/v1/devices/{EUI}/commands with the GBCS bytes as
// application/octet-stream. 200 carries the device's response in the body;
// 202 means the response will come later; 4xx other than 408 and 429 are
// final refusals; anything else is retried.
type HTTPTransport struct {
	base   *url.URL
	client *http.Client
}

// NewHTTPTransport returns a transport to the endpoint at base, using
// client (which carries the router's TLS client certificate).
func NewHTTPTransport(base string, client *http.Client) (*HTTPTransport, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("%w: transport endpoint %q is not an http(s) URL", ErrConfig, base)
	}
	if client == nil {
		client = http.DefaultClient
	}
	return &HTTPTransport{base: u, client: client}, nil
}

// Send posts msg for target.
func (t *HTTPTransport) Send(ctx context.Context, target smki.EUI, msg []byte) ([]byte, error) {
	u := t.base.JoinPath("v1", "devices", target.String(), "commands")
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(msg))
	if err != nil {
		return nil, fmt.Errorf("building request to %s: %w", u.Redacted(), err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	res, err := t.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("posting to %s: %w", u.Redacted(), err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, MaxResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading response from %s: %w", u.Redacted(), err)
	}
	switch {
	case res.StatusCode == http.StatusOK:
		if len(body) > MaxResponseBytes {
			return nil, fmt.Errorf("%w: response from %s exceeds %d bytes", ErrDeviceRefused, u.Redacted(), MaxResponseBytes)
		}
		if len(body) == 0 {
			return nil, nil
		}
		return body, nil
	case res.StatusCode == http.StatusAccepted || res.StatusCode == http.StatusNoContent:
		return nil, nil
	case res.StatusCode == http.StatusUnprocessableEntity && problemCode(body) == "replay":
		return nil, fmt.Errorf("%w: %w: %s answered %s: %s", ErrDeviceRefused, ErrDeviceReplay, u.Redacted(), res.Status, snippet(body))
	case res.StatusCode == http.StatusUnprocessableEntity && problemCode(body) == "bad-mac":
		return nil, fmt.Errorf("%w: %w: %s answered %s: %s", ErrDeviceRefused, ErrDeviceMAC, u.Redacted(), res.Status, snippet(body))
	case res.StatusCode >= 400 && res.StatusCode < 500 && res.StatusCode != http.StatusRequestTimeout && res.StatusCode != http.StatusTooManyRequests:
		return nil, fmt.Errorf("%w: %s answered %s: %s", ErrDeviceRefused, u.Redacted(), res.Status, snippet(body))
	}
	return nil, fmt.Errorf("%s answered %s: %s", u.Redacted(), res.Status, snippet(body))
}

// problemCode reads the "code" member of an RFC 9457 problem body (the
// endpoint's error code, for a discard its reason), "" if none.
func problemCode(b []byte) string {
	var p struct {
		Code string `json:"code"`
	}
	if json.Unmarshal(b, &p) != nil {
		return ""
	}
	return p.Code
}

func snippet(b []byte) string {
	s := strings.ToValidUTF8(string(b), "?")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return strings.TrimSpace(s)
}

// NewCSPTransport returns the HTTP transport to a communications service
// provider's endpoint: its CA certificates (PEM file caFile; empty for the
// system pool) and the client certificate and key the router presents
// (PEM files, both or neither). Errors name the flag of serve router.
func NewCSPTransport(endpoint, caFile, certFile, keyFile string) (*HTTPTransport, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		b, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("--csp-ca: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("--csp-ca: %s holds no PEM certificate", caFile)
		}
	}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("--csp-cert and --csp-key go together")
	}
	if certFile != "" {
		kp, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("--csp-cert/--csp-key: %w", err)
		}
		tc.Certificates = []tls.Certificate{kp}
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tc, MaxIdleConnsPerHost: 64}}
	return NewHTTPTransport(endpoint, client)
}

// MaxAlertPageBytes bounds one page of alerts read from an HTTP transport.
const MaxAlertPageBytes = 8 << 20

// Alerts implements AlertSource: GET {base}/v1/alerts?since=N&limit=M of
// the endpoint (docs/device.md), the alerts its devices raised with the
// whole GBCS messages in hex.
func (t *HTTPTransport) Alerts(ctx context.Context, since uint64, limit int) (AlertPage, error) {
	u := t.base.JoinPath("v1", "alerts")
	u.RawQuery = url.Values{"since": {strconv.FormatUint(since, 10)}, "limit": {strconv.Itoa(limit)}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return AlertPage{}, fmt.Errorf("building request to %s: %w", u.Redacted(), err)
	}
	req.Header.Set("Accept", "application/json")
	res, err := t.client.Do(req)
	if err != nil {
		return AlertPage{}, fmt.Errorf("reading %s: %w", u.Redacted(), err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, MaxAlertPageBytes+1))
	if err != nil {
		return AlertPage{}, fmt.Errorf("reading %s: %w", u.Redacted(), err)
	}
	if res.StatusCode != http.StatusOK {
		return AlertPage{}, fmt.Errorf("%s answered %s: %s", u.Redacted(), res.Status, snippet(body))
	}
	if len(body) > MaxAlertPageBytes {
		return AlertPage{}, fmt.Errorf("%s: a page of alerts over %d bytes", u.Redacted(), MaxAlertPageBytes)
	}
	return parseAlertPage(body)
}

// parseAlertPage reads the body of GET /v1/alerts.
func parseAlertPage(body []byte) (AlertPage, error) {
	var list struct {
		Log    string `json:"log"`
		Next   uint64 `json:"next"`
		Alerts []struct {
			Index   uint64    `json:"index"`
			Device  string    `json:"device"`
			At      time.Time `json:"at"`
			Message string    `json:"message"`
		} `json:"alerts"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return AlertPage{}, fmt.Errorf("%w: alert list: %w", ErrMalformed, err)
	}
	p := AlertPage{Log: list.Log, Next: list.Next, Alerts: make([]RawAlert, 0, len(list.Alerts))}
	for _, a := range list.Alerts {
		dev, err := smki.ParseEUI(a.Device)
		if err != nil {
			return AlertPage{}, fmt.Errorf("%w: alert %d: device: %w", ErrMalformed, a.Index, err)
		}
		msg, err := hex.DecodeString(a.Message)
		if err != nil {
			return AlertPage{}, fmt.Errorf("%w: alert %d: message: %w", ErrMalformed, a.Index, err)
		}
		p.Alerts = append(p.Alerts, RawAlert{Index: a.Index, Device: dev, At: a.At, Message: msg})
	}
	return p, nil
}
