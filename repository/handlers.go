package repository

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/metertrust/metertrust/problem"
	"github.com/metertrust/metertrust/store"
)

// listCertificates answers GET /v1/certificates: one page of a search by
// EUI, role, user role, key usage, kind, serial and CA.
func (s *Server) listCertificates(c echo.Context) error {
	if s.deps.Certs == nil {
		return problem.New(ErrUnavailable, "", "certificate store not configured")
	}
	// Parse the raw query here: echo's QueryParams drops malformed pairs,
	// which would silently widen a search.
	values, err := url.ParseQuery(c.Request().URL.RawQuery)
	if err != nil {
		return problem.Wrap(ErrBadRequest, err, "query", "malformed query string: %v", err)
	}
	q, err := ParseCertQuery(values, s.cfg.DefaultLimit, s.cfg.MaxLimit)
	if err != nil {
		return err
	}
	limit := q.Limit
	q.Limit = limit + 1 // one more tells whether there is a next page
	certs, err := s.deps.Certs.FindCertificates(c.Request().Context(), q)
	if err != nil {
		return problem.Wrap(ErrInternal, err, "", "searching certificates")
	}
	list := CertificateList{Certificates: make([]CertificateView, 0, min(len(certs), limit))}
	for i, cert := range certs {
		if i == limit {
			list.Next = s.nextPage(values, certs[i-1].ID)
			break
		}
		list.Certificates = append(list.Certificates, s.certView(cert))
	}
	return c.JSON(http.StatusOK, list)
}

// nextPage is the URL of the page after the item with the given ID, keeping
// every other parameter of the search.
func (s *Server) nextPage(v url.Values, lastID int64) string {
	next := url.Values{}
	for k, vs := range v {
		next[k] = vs
	}
	next.Set("after", strconv.FormatInt(lastID, 10))
	return s.url("/v1/certificates?" + next.Encode())
}

// getCertificate answers GET /v1/certificates/{ca}/{serial}, as JSON or,
// by Accept header or a .der/.pem suffix, the certificate itself.
func (s *Server) getCertificate(c echo.Context) error {
	if s.deps.Certs == nil {
		return problem.New(ErrUnavailable, "", "certificate store not configured")
	}
	ca := c.Param("ca")
	if err := checkCAName(ca); err != nil {
		return problem.Wrap(ErrBadRequest, err, "ca", "%q is not a CA name", clip(ca))
	}
	serialText, format, suffixed := splitFormat(c.Param("serial"))
	if !suffixed {
		format = negotiate(c.Request().Header.Get("Accept"), true)
	}
	serial, err := ParseSerial(serialText)
	if err != nil {
		return problem.Wrap(ErrBadRequest, err, "serial", "%q is not a serial number: want hex digits", clip(serialText))
	}
	cert, err := s.deps.Certs.Certificate(c.Request().Context(), ca, serial)
	if isNotFound(err) {
		return problem.Wrap(ErrNotFound, err, "serial", "no certificate with serial %s from CA %q", FormatSerial(serial), ca)
	}
	if err != nil {
		return problem.Wrap(ErrInternal, err, "", "reading certificate")
	}
	return writeCert(c, format, cert.DER, s.certView(cert))
}

// listCAs answers GET /v1/cas.
func (s *Server) listCAs(c echo.Context) error {
	if s.deps.CAs == nil {
		return problem.New(ErrUnavailable, "", "CA store not configured")
	}
	cas, err := s.deps.CAs.CAs(c.Request().Context())
	if err != nil {
		return problem.Wrap(ErrInternal, err, "", "listing CAs")
	}
	list := CAList{CAs: make([]CAView, 0, len(cas))}
	for _, ca := range cas {
		list.CAs = append(list.CAs, s.caView(ca))
	}
	return c.JSON(http.StatusOK, list)
}

func (s *Server) findCA(c echo.Context, name string) (store.CA, error) {
	if s.deps.CAs == nil {
		return store.CA{}, problem.New(ErrUnavailable, "", "CA store not configured")
	}
	if err := checkCAName(name); err != nil {
		return store.CA{}, problem.Wrap(ErrBadRequest, err, "name", "%q is not a CA name", clip(name))
	}
	ca, err := s.deps.CAs.CA(c.Request().Context(), name)
	if isNotFound(err) {
		return store.CA{}, problem.Wrap(ErrNotFound, err, "name", "no CA named %q", name)
	}
	if err != nil {
		return store.CA{}, problem.Wrap(ErrInternal, err, "", "reading CA")
	}
	return ca, nil
}

// getCA answers GET /v1/cas/{name}: JSON, or the CA certificate by Accept
// header or a .der/.pem suffix.
func (s *Server) getCA(c echo.Context) error {
	name, format, suffixed := splitFormat(c.Param("name"))
	if !suffixed {
		format = negotiate(c.Request().Header.Get("Accept"), true)
	}
	ca, err := s.findCA(c, name)
	if err != nil {
		return err
	}
	return writeCert(c, format, ca.CertDER, s.caView(ca))
}

// getCACertificate answers GET /v1/cas/{name}/certificate: the CA's
// certificate, DER unless the Accept header asks for PEM.
func (s *Server) getCACertificate(c echo.Context) error {
	ca, err := s.findCA(c, c.Param("name"))
	if err != nil {
		return err
	}
	return writeCert(c, negotiate(c.Request().Header.Get("Accept"), false), ca.CertDER, nil)
}

// getCRL answers GET /v1/crl/{ca}: the CA's latest CRL, cacheable until its
// nextUpdate.
func (s *Server) getCRL(c echo.Context) error {
	if s.deps.CRLs == nil {
		return problem.New(ErrUnavailable, "", "CRL store not configured")
	}
	name := c.Param("ca")
	if err := checkCAName(name); err != nil {
		return problem.Wrap(ErrBadRequest, err, "ca", "%q is not a CA name", clip(name))
	}
	crl, err := s.deps.CRLs.LatestCRL(c.Request().Context(), name)
	if isNotFound(err) {
		return problem.Wrap(ErrNotFound, err, "ca", "no CRL published for CA %q", name)
	}
	if err != nil {
		return problem.Wrap(ErrInternal, err, "", "reading CRL")
	}
	h := c.Response().Header()
	setCacheHeaders(h, s.now(), crl.ThisUpdate, crl.NextUpdate)
	return c.Blob(http.StatusOK, MediaPKIXCRL, crl.DER)
}

// setCacheHeaders lets caches keep a CRL or OCSP response until its
// nextUpdate (RFC 5019 section 6.2): max-age is the time left, never
// negative; once past nextUpdate, or with no nextUpdate, caches must
// revalidate.
func setCacheHeaders(h http.Header, now, thisUpdate, nextUpdate time.Time) {
	if !thisUpdate.IsZero() {
		h.Set("Last-Modified", thisUpdate.UTC().Format(http.TimeFormat))
	}
	if nextUpdate.IsZero() || !nextUpdate.After(now) {
		h.Set("Cache-Control", "no-cache")
		return
	}
	maxAge := int64(nextUpdate.Sub(now) / time.Second)
	h.Set("Cache-Control", fmt.Sprintf("public, max-age=%d, no-transform, must-revalidate", maxAge))
	h.Set("Expires", nextUpdate.UTC().Format(http.TimeFormat))
}
