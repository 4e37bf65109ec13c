package repository

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"
	"golang.org/x/crypto/ocsp"

	"github.com/metertrust/metertrust/problem"
)

// maxOCSPRequestBytes bounds an OCSP request, GET or POST: a request for a
// handful of certificates is a few hundred bytes.
const maxOCSPRequestBytes = 8 << 10

// ocspPost answers POST /ocsp (RFC 6960 appendix A.1).
func (s *Server) ocspPost(c echo.Context) error {
	if s.deps.OCSP == nil {
		return problem.New(ErrUnavailable, "", "OCSP responder not configured")
	}
	mt, _, err := mime.ParseMediaType(c.Request().Header.Get(echo.HeaderContentType))
	if err != nil || mt != MediaOCSPRequest {
		return problem.New(ErrUnsupportedMediaType, "Content-Type", "OCSP requests must be sent as %s", MediaOCSPRequest)
	}
	body, err := s.readBody(c, min(s.cfg.MaxBodyBytes, maxOCSPRequestBytes))
	if err != nil {
		return err
	}
	return s.answerOCSP(c, body, false)
}

// ocspGet answers GET /ocsp/{base64 request} (RFC 6960 appendix A.1): the
// request is the URL-encoded base64 of its DER.
func (s *Server) ocspGet(c echo.Context) error {
	if s.deps.OCSP == nil {
		return problem.New(ErrUnavailable, "", "OCSP responder not configured")
	}
	der, ok := decodeOCSPPath(c.Request().URL)
	if !ok {
		s.deps.Metrics.ocspAnswer(ocspMalformed)
		return c.Blob(http.StatusOK, MediaOCSPResponse, ocsp.MalformedRequestErrorResponse)
	}
	return s.answerOCSP(c, der, true)
}

// decodeOCSPPath recovers the DER request from the path of a GET request.
// The base64 text may hold '/' and '+', percent-encoded or not.
func decodeOCSPPath(u *url.URL) ([]byte, bool) {
	raw, found := strings.CutPrefix(u.EscapedPath(), "/ocsp/")
	if !found || raw == "" || len(raw) > 4*maxOCSPRequestBytes {
		return nil, false
	}
	text, err := url.PathUnescape(raw)
	if err != nil {
		return nil, false
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if der, err := enc.DecodeString(text); err == nil && len(der) > 0 {
			return der, true
		}
	}
	return nil, false
}

// answerOCSP checks that der is an OCSP request and passes it to the
// responder. Per RFC 6960 section 2.3, a malformed request or a responder
// failure is answered 200 with an OCSP error status, not an HTTP error.
func (s *Server) answerOCSP(c echo.Context, der []byte, cacheable bool) error {
	ctx := c.Request().Context()
	if _, err := ocsp.ParseRequest(der); err != nil {
		s.log.DebugContext(ctx, "malformed OCSP request", "err", err)
		s.deps.Metrics.ocspAnswer(ocspMalformed)
		return c.Blob(http.StatusOK, MediaOCSPResponse, ocsp.MalformedRequestErrorResponse)
	}
	resp, err := s.deps.OCSP.Respond(ctx, der)
	if err != nil {
		// A responder that cannot answer hands back the OCSP error
		// response to send (unauthorized for an unknown or offline issuer);
		// without one, say internalError, or unauthorized when the cause is
		// an unknown CA or certificate.
		if len(resp) == 0 {
			resp = ocsp.InternalErrorErrorResponse
			if isNotFound(err) {
				resp = ocsp.UnauthorizedErrorResponse
			}
		}
		s.log.InfoContext(ctx, "OCSP request not answered", "err", err)
		if bytes.Equal(resp, ocsp.UnauthorizedErrorResponse) {
			s.deps.Metrics.ocspAnswer(ocspUnauthorized)
		} else {
			s.deps.Metrics.ocspAnswer(ocspError)
		}
		return c.Blob(http.StatusOK, MediaOCSPResponse, resp)
	}
	s.deps.Metrics.ocspAnswer(ocspAnswered)
	h := c.Response().Header()
	if cacheable {
		if parsed, err := ocsp.ParseResponse(resp, nil); err == nil {
			setCacheHeaders(h, s.now(), parsed.ThisUpdate, parsed.NextUpdate)
			sum := sha256.Sum256(resp)
			h.Set("ETag", `"`+hex.EncodeToString(sum[:16])+`"`)
		} else {
			h.Set("Cache-Control", "no-cache")
		}
	}
	return c.Blob(http.StatusOK, MediaOCSPResponse, resp)
}

// readBody reads the request body up to limit bytes; a longer body is a
// ErrTooLarge error.
func (s *Server) readBody(c echo.Context, limit int64) ([]byte, error) {
	r := c.Request()
	if r.ContentLength > limit {
		return nil, problem.New(ErrTooLarge, "body", "request body of %d bytes exceeds the limit of %d bytes", r.ContentLength, limit)
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, problem.Wrap(ErrTooLarge, err, "body", "request body exceeds the limit of %d bytes", limit)
		}
		return nil, problem.Wrap(ErrBadRequest, err, "body", "reading request body")
	}
	return body, nil
}
