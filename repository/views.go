package repository

import (
	"encoding/pem"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// Media types the repository serves and reads.
const (
	MediaJSON         = "application/json"
	MediaProblem      = "application/problem+json"
	MediaPKIXCert     = "application/pkix-cert"
	MediaPEM          = "application/x-pem-file"
	MediaPEMChain     = "application/pem-certificate-chain"
	MediaPKIXCRL      = "application/pkix-crl"
	MediaOCSPRequest  = "application/ocsp-request"
	MediaOCSPResponse = "application/ocsp-response"
)

// Certificate statuses in CertificateView.Status.
const (
	StatusGood    = "good"
	StatusRevoked = "revoked"
)

// RoleView is a Remote Party Role as both its name and its GBCS code.
type RoleView struct {
	// Name is the role's name, for example "supplier".
	Name string `json:"name"`
	// Code is the GBCS Remote Party Role code, for example 2.
	Code int `json:"code"`
}

// CertificateLinks are the URLs of a certificate and what it relates to.
type CertificateLinks struct {
	// Self is the certificate's JSON view.
	Self string `json:"self"`
	// DER and PEM are the certificate itself.
	DER string `json:"der"`
	PEM string `json:"pem"`
	// CA is the issuing CA and CRL its latest CRL.
	CA  string `json:"ca"`
	CRL string `json:"crl"`
}

// CertificateView is the JSON form of a published certificate.
type CertificateView struct {
	// Serial is the serial number in upper-case hex.
	Serial string `json:"serial"`
	// CA names the issuing certificate authority.
	CA string `json:"ca"`
	// Kind is org, device or ca for SMKI certificates, tls-client or
	// tls-server for DCCKI ones, ocsp-responder for a closed batch's
	// delegated OCSP responder.
	Kind string `json:"kind"`
	// EUI is the subject's EUI-64 (16 upper-case hex digits), if it has one.
	EUI string `json:"eui,omitempty"`
	// Role is the subject's Remote Party Role, if it has one.
	Role *RoleView `json:"role,omitempty"`
	// UserRole is the DCC User Role of a DCCKI client certificate.
	UserRole string `json:"userRole,omitempty"`
	// Usage is the key usage: ds (digitalSignature), ka (keyAgreement),
	// pp-ka (a supplier's prepayment top-up keyAgreement), ca, tls or
	// ocsp (an OCSP responder).
	Usage string `json:"usage,omitempty"`
	// NotBefore and NotAfter bound the validity period.
	NotBefore time.Time `json:"notBefore"`
	NotAfter  time.Time `json:"notAfter"`
	// Status is good or revoked.
	Status string `json:"status"`
	// RevokedAt is when the certificate was revoked.
	RevokedAt *time.Time `json:"revokedAt,omitempty"`
	// RevocationReason is the RFC 5280 CRLReason name, when revoked.
	RevocationReason string `json:"revocationReason,omitempty"`
	// Links point at the certificate and its CA.
	Links CertificateLinks `json:"links"`
}

// CertificateList is one page of a certificate search.
type CertificateList struct {
	// Certificates are the matches on this page, in repository order.
	Certificates []CertificateView `json:"certificates"`
	// Next is the URL of the following page; absent on the last page.
	Next string `json:"next,omitempty"`
}

// CALinks are the URLs of a CA and what it publishes.
type CALinks struct {
	// Self is the CA's JSON view and Certificate its certificate (DER).
	Self        string `json:"self"`
	Certificate string `json:"certificate"`
	// CRL is the CA's latest CRL.
	CRL string `json:"crl"`
	// Certificates searches the certificates the CA issued.
	Certificates string `json:"certificates"`
	// Parent is the issuing CA's view; absent for a root.
	Parent string `json:"parent,omitempty"`
}

// CAView is the JSON form of a certificate authority. It never carries the
// CA's key URI.
type CAView struct {
	// Name is the CA's name in the repository ("root", "oca", a batch id).
	Name string `json:"name"`
	// Kind is root, oca, dca, dccki-root or dccki-tls.
	Kind string `json:"kind"`
	// Parent names the issuing CA; empty for a root.
	Parent string `json:"parent,omitempty"`
	// State is active, or closed once a batch's key is destroyed.
	State string `json:"state"`
	// Quota and Issued count a batch device CA's allowance and use.
	Quota  int64 `json:"quota,omitempty"`
	Issued int64 `json:"issued"`
	// CreatedAt and ClosedAt date the CA's ceremony and closure.
	CreatedAt time.Time  `json:"createdAt"`
	ClosedAt  *time.Time `json:"closedAt,omitempty"`
	// Links point at the CA's certificate, CRL and certificates.
	Links CALinks `json:"links"`
}

// CAList is the list of every certificate authority.
type CAList struct {
	// CAs lists the CAs in creation order.
	CAs []CAView `json:"cas"`
}

func (s *Server) url(path string) string { return s.cfg.BaseURL + path }

func (s *Server) certView(c store.Certificate) CertificateView {
	serial := FormatSerial(c.Serial)
	self := s.url("/v1/certificates/" + c.CA + "/" + serial)
	v := CertificateView{
		Serial:    serial,
		CA:        c.CA,
		Kind:      c.Kind,
		EUI:       c.EUI,
		UserRole:  c.UserRole,
		Usage:     c.Usage,
		NotBefore: c.NotBefore.UTC(),
		NotAfter:  c.NotAfter.UTC(),
		Status:    StatusGood,
		Links: CertificateLinks{
			Self: self,
			DER:  self + ".der",
			PEM:  self + ".pem",
			CA:   s.url("/v1/cas/" + c.CA),
			CRL:  s.url("/v1/crl/" + c.CA),
		},
	}
	if c.Role >= 0 && c.Role <= 255 {
		v.Role = &RoleView{Name: smki.Role(c.Role).String(), Code: c.Role}
	}
	if revokedAt, ok := revocationTime(c); ok {
		v.Status = StatusRevoked
		t := revokedAt.UTC()
		v.RevokedAt = &t
		v.RevocationReason = reasonName(c.Reason)
	}
	return v
}

func (s *Server) caView(ca store.CA) CAView {
	self := s.url("/v1/cas/" + ca.Name)
	v := CAView{
		Name:      ca.Name,
		Kind:      ca.Kind,
		Parent:    ca.Parent,
		State:     ca.State,
		Quota:     ca.Quota,
		Issued:    ca.Issued,
		CreatedAt: ca.CreatedAt.UTC(),
		Links: CALinks{
			Self:         self,
			Certificate:  self + "/certificate",
			CRL:          s.url("/v1/crl/" + ca.Name),
			Certificates: s.url("/v1/certificates?ca=" + ca.Name),
		},
	}
	if ca.Parent != "" && ca.Parent != ca.Name {
		v.Links.Parent = s.url("/v1/cas/" + ca.Parent)
	}
	if t, ok := caClosedAt(ca); ok {
		t = t.UTC()
		v.ClosedAt = &t
	}
	return v
}

// certFormat is how a certificate is served.
type certFormat int

const (
	formatJSON certFormat = iota
	formatDER
	formatPEM
)

// splitFormat strips a ".der" or ".pem" suffix from a path parameter.
func splitFormat(p string) (string, certFormat, bool) {
	switch {
	case strings.HasSuffix(p, ".der"):
		return strings.TrimSuffix(p, ".der"), formatDER, true
	case strings.HasSuffix(p, ".pem"):
		return strings.TrimSuffix(p, ".pem"), formatPEM, true
	}
	return p, formatJSON, false
}

// negotiate picks JSON, DER or PEM from an Accept header: the acceptable
// media range with the highest q wins, the first listed on a tie, and JSON
// when nothing matches.
func negotiate(accept string, allowJSON bool) certFormat {
	best, bestQ := formatJSON, -1.0
	if !allowJSON {
		best = formatDER
	}
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if v, ok := params["q"]; ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < 0 || f > 1 {
				continue
			}
			q = f
		}
		if q == 0 {
			continue
		}
		var f certFormat
		switch mt {
		case MediaPKIXCert:
			f = formatDER
		case MediaPEM, MediaPEMChain:
			f = formatPEM
		case MediaJSON:
			if !allowJSON {
				continue
			}
			f = formatJSON
		default:
			continue
		}
		if q > bestQ {
			best, bestQ = f, q
		}
	}
	return best
}

// writeCert serves a certificate's DER in the chosen form, or the JSON view.
func writeCert(c echo.Context, f certFormat, der []byte, view any) error {
	c.Response().Header().Add("Vary", "Accept")
	switch f {
	case formatDER:
		return c.Blob(http.StatusOK, MediaPKIXCert, der)
	case formatPEM:
		return c.Blob(http.StatusOK, MediaPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	}
	return c.JSON(http.StatusOK, view)
}
