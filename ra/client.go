package ra

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/metertrust/metertrust/problem"
	"github.com/metertrust/metertrust/smki"
)

// Client calls the CA service's API: as an organisation (a DCCKI client
// certificate, no token) or as an operator (the certificate and an
// operator's bearer token).
type Client struct {
	base  *url.URL
	http  *http.Client
	token string
}

// NewClient returns a client of the service at baseURL (https://host:port),
// presenting tc's client certificate and trusting tc's roots; token is the
// operator's bearer token, empty for an organisation.
func NewClient(baseURL string, tc *tls.Config, token string) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("ra: CA service URL %q: want https://host:port", baseURL)
	}
	// An import may take minutes; every other call returns in seconds.
	return &Client{base: u, token: token, http: &http.Client{Timeout: importTime + time.Minute,
		Transport: &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: true}}}, nil
}

// Error is a refusal by the service: its status and problem document.
type Error struct {
	Status  int
	Problem problem.Details
}

func (e *Error) Error() string {
	d := e.Problem.Detail
	if e.Problem.Param != "" {
		d = e.Problem.Param + ": " + d
	}
	return fmt.Sprintf("CA service: %d %s: %s", e.Status, e.Problem.Title, d)
}

// do sends method path with body (JSON-encoded when not nil) and decodes a
// 2xx answer into out.
func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	return c.doQuery(ctx, method, path, nil, body, out)
}

// doQuery is do with a query string.
func (c *Client) doQuery(ctx context.Context, method, path string, query url.Values, body, out any) error {
	var r io.Reader
	header := map[string]string{}
	switch b := body.(type) {
	case nil:
	case rawBody:
		r, header = bytes.NewReader(b.data), b.header
	default:
		j, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r, header["Content-Type"] = bytes.NewReader(j), mediaJSON
	}
	u := c.base.JoinPath(path)
	u.RawQuery = query.Encode()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), r)
	if err != nil {
		return err
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("ra: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("ra: %s %s: reading the answer: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		e := &Error{Status: resp.StatusCode}
		if json.Unmarshal(b, &e.Problem) != nil || e.Problem.Title == "" {
			e.Problem.Title, e.Problem.Detail = resp.Status, strings.TrimSpace(string(b))
		}
		return e
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("ra: %s %s: decoding the answer: %w", method, path, err)
	}
	return nil
}

// RegisterOrganisation registers an organisation or changes its
// registration (an operator with the register role).
func (c *Client) RegisterOrganisation(ctx context.Context, eui smki.EUI, r OrganisationRecord) (OrganisationRecord, error) {
	var out OrganisationRecord
	err := c.do(ctx, http.MethodPut, "/v1/organisations/"+eui.String(), r, &out)
	return out, err
}

// Organisations lists the registered organisations (an operator).
func (c *Client) Organisations(ctx context.Context) ([]OrganisationRecord, error) {
	var out struct{ Organisations []OrganisationRecord }
	err := c.do(ctx, http.MethodGet, "/v1/organisations", nil, &out)
	return out.Organisations, err
}

// Submit submits the calling organisation's certificate request.
func (c *Client) Submit(ctx context.Context, r SubmitRequest) (RequestView, error) {
	var out RequestView
	err := c.do(ctx, http.MethodPost, "/v1/requests", r, &out)
	return out, err
}

// Request returns a request: to an operator, or to the organisation that
// submitted it.
func (c *Client) Request(ctx context.Context, id string) (RequestView, error) {
	var out RequestView
	err := c.do(ctx, http.MethodGet, "/v1/requests/"+url.PathEscape(id), nil, &out)
	return out, err
}

// Requests lists requests in state ("" for pending, "all" for any) of
// organisation (zero for all), for an operator.
func (c *Client) Requests(ctx context.Context, state string, organisation smki.EUI) ([]RequestView, error) {
	q := url.Values{}
	if state != "" {
		q.Set("state", state)
	}
	if !organisation.IsZero() {
		q.Set("organisation", organisation.String())
	}
	var out struct{ Requests []RequestView }
	err := c.doQuery(ctx, http.MethodGet, "/v1/requests", q, nil, &out)
	return out.Requests, err
}

// Approve approves a request (an operator with the issue role); the
// approval that completes the number needed issues the certificate.
func (c *Client) Approve(ctx context.Context, id, reason string) (RequestView, error) {
	var out RequestView
	err := c.do(ctx, http.MethodPost, "/v1/requests/"+url.PathEscape(id)+"/approve", Decision{Reason: reason}, &out)
	return out, err
}

// Reject rejects a request with a reason (an operator with the issue role).
func (c *Client) Reject(ctx context.Context, id, reason string) (RequestView, error) {
	var out RequestView
	err := c.do(ctx, http.MethodPost, "/v1/requests/"+url.PathEscape(id)+"/reject", Decision{Reason: reason}, &out)
	return out, err
}

// Revoke revokes a certificate (an operator with the revoke role); reason
// is an RFC 5280 CRLReason name or code.
func (c *Client) Revoke(ctx context.Context, caName, serial, reason string) (RevocationView, error) {
	var out RevocationView
	err := c.do(ctx, http.MethodPost, "/v1/revocations", map[string]string{"ca": caName, "serial": serial, "reason": reason}, &out)
	return out, err
}

// CRL has the CA sign a CRL now (an operator with the revoke role).
func (c *Client) CRL(ctx context.Context, caName string) (CRLView, error) {
	var out CRLView
	err := c.do(ctx, http.MethodPost, "/v1/crls/"+url.PathEscape(caName), nil, &out)
	return out, err
}

// IssueDevice issues a device certificate from a batch for a device CSR
// (PEM or base64 DER; an operator with the issue role).
func (c *Client) IssueDevice(ctx context.Context, batch, csr string) (CertificateView, error) {
	var out CertificateView
	err := c.do(ctx, http.MethodPost, "/v1/certificates/device", DeviceRequest{Batch: batch, CSR: csr}, &out)
	return out, err
}

// IsStatus reports whether err is the service's refusal with this status.
func IsStatus(err error, status int) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == status
}

// SubmitDevice has a device certificate issued at once from batch for a
// device CSR (PEM or base64 DER): the calling organisation must be a
// registered manufacturer.
func (c *Client) SubmitDevice(ctx context.Context, batch, csr string) (CertificateView, error) {
	var out CertificateView
	err := c.do(ctx, http.MethodPost, "/v1/requests/device", DeviceRequest{Batch: batch, CSR: csr}, &out)
	return out, err
}

// rawBody is a request body sent as it is, with its headers.
type rawBody struct {
	data   []byte
	header map[string]string
}

// Import sends the calling manufacturer's signed provisioning file (its
// exact bytes and detached signature) to be issued under batch; skipBad
// issues the good devices and lists the others.
func (c *Client) Import(ctx context.Context, batch string, file, sig []byte, skipBad bool) (ImportView, error) {
	var out ImportView
	q := url.Values{"batch": {batch}}
	if skipBad {
		q.Set("skipBad", "true")
	}
	err := c.doQuery(ctx, http.MethodPost, "/v1/imports", q, rawBody{data: file, header: map[string]string{
		"Content-Type": MediaProvisioning, SignatureHeader: base64.StdEncoding.EncodeToString(sig)}}, &out)
	return out, err
}
