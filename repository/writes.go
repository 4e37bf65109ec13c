package repository

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/metertrust/metertrust/problem"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// Audit actions and outcomes written by the repository. Every write is
// audited before it is attempted and after it succeeds or fails, and every
// refused write request is audited once.
const (
	ActionPublish = "repository.publish"

	OutcomeAttempt = "attempt"
	OutcomeSuccess = "success"
	OutcomeFailure = "failure"
	OutcomeRefused = "refused"

	// ActorAnonymous is the audit actor of a request with no credential,
	// ActorUnknown of one whose credential matched no operator.
	ActorAnonymous = "anonymous"
	ActorUnknown   = "unknown-credential"
)

// PublishRequest is the JSON form of the body of POST /v1/certificates; the
// body may instead be the certificate itself as application/pkix-cert (DER)
// or application/x-pem-file (PEM).
type PublishRequest struct {
	// Certificate is the certificate as PEM or as base64 of its DER.
	Certificate string `json:"certificate"`
	// PrepaymentTopUp marks a supplier's key-agreement certificate as its
	// prepayment top-up certificate (usage pp-ka), which has the same shape
	// as its management key-agreement certificate (GBCS section 2).
	PrepaymentTopUp bool `json:"prepaymentTopUp,omitempty"`
}

// publication is a checked publish request.
type publication struct {
	der   []byte
	topUp bool
}

// parsePublishBody reads the body of POST /v1/certificates according to its
// media type. It does not parse the certificate itself.
func parsePublishBody(contentType string, body []byte) (publication, error) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return publication{}, problem.New(ErrUnsupportedMediaType, "Content-Type", "missing or malformed Content-Type: want %s, %s or %s", MediaPKIXCert, MediaPEM, MediaJSON)
	}
	if len(body) == 0 {
		return publication{}, problem.New(ErrBadRequest, "body", "empty request body: send the certificate")
	}
	switch mt {
	case MediaPKIXCert:
		return publication{der: body}, nil
	case MediaPEM, MediaPEMChain:
		der, err := onePEMCertificate(body, "body")
		if err != nil {
			return publication{}, err
		}
		return publication{der: der}, nil
	case MediaJSON:
		var r PublishRequest
		if err := decodeStrict(body, &r); err != nil {
			return publication{}, problem.Wrap(ErrBadRequest, err, "body", "not a publish request: want a JSON object {certificate, prepaymentTopUp} and nothing else (%v)", err)
		}
		if r.Certificate == "" {
			return publication{}, problem.New(ErrBadRequest, "certificate", "missing: give the certificate as PEM or base64 DER")
		}
		p := publication{topUp: r.PrepaymentTopUp}
		if strings.Contains(r.Certificate, "-----BEGIN") {
			der, err := onePEMCertificate([]byte(r.Certificate), "certificate")
			if err != nil {
				return publication{}, err
			}
			p.der = der
		} else {
			der, err := base64.StdEncoding.DecodeString(strings.TrimSpace(r.Certificate))
			if err != nil || len(der) == 0 {
				return publication{}, problem.New(ErrBadRequest, "certificate", "neither PEM nor base64 DER")
			}
			p.der = der
		}
		return p, nil
	}
	return publication{}, problem.New(ErrUnsupportedMediaType, "Content-Type", "%q: want %s, %s or %s", clip(mt), MediaPKIXCert, MediaPEM, MediaJSON)
}

// onePEMCertificate returns the DER of the single CERTIFICATE block in b.
func onePEMCertificate(b []byte, param string) ([]byte, error) {
	block, rest := pem.Decode(b)
	if block == nil {
		return nil, problem.New(ErrBadRequest, param, "no PEM block found")
	}
	if block.Type != "CERTIFICATE" {
		return nil, problem.New(ErrBadRequest, param, "PEM block is %q, want CERTIFICATE", clip(block.Type))
	}
	if len(block.Bytes) == 0 {
		return nil, problem.New(ErrBadRequest, param, "empty PEM CERTIFICATE block")
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, problem.New(ErrBadRequest, param, "more than one PEM block: publish one certificate per request")
	}
	return block.Bytes, nil
}

// operatorKey is the echo context key of the authenticated operator.
const operatorKey = "repository.operator"

// authorize authenticates the request's bearer token and checks that its
// operator holds perm. Refusals are audited and returned as errors.
func (s *Server) authorize(c echo.Context, perm Permission, action string) (Operator, error) {
	ctx := c.Request().Context()
	object := c.Request().URL.Path
	token, present, ok := bearerToken(c.Request().Header.Get(echo.HeaderAuthorization))
	if !present {
		s.audit(ctx, ActorAnonymous, action, object, OutcomeRefused, map[string]any{"refusal": "no operator credential"})
		return Operator{}, problem.New(ErrUnauthenticated, "Authorization", "writes need an operator bearer token")
	}
	if !ok {
		s.audit(ctx, ActorUnknown, action, object, OutcomeRefused, map[string]any{"refusal": "malformed Authorization header"})
		return Operator{}, problem.New(ErrUnauthenticated, "Authorization", "want \"Authorization: Bearer <token>\"")
	}
	op, found := s.auth.authenticate(token)
	if !found {
		s.audit(ctx, ActorUnknown, action, object, OutcomeRefused, map[string]any{"refusal": "unknown operator credential"})
		return Operator{}, problem.New(ErrUnauthenticated, "Authorization", "operator token not recognised")
	}
	if !op.Can(perm) {
		s.audit(ctx, op.Name, action, object, OutcomeRefused, map[string]any{"refusal": fmt.Sprintf("operator lacks the %s permission", perm)})
		return Operator{}, problem.New(ErrForbidden, "", "operator %q may not %s", op.Name, perm)
	}
	c.Set(operatorKey, op.Name)
	return op, nil
}

// audit appends one event, logging (not returning) a failure: it is used
// for refusals, which are answered whatever the audit log does.
func (s *Server) audit(ctx context.Context, actor, action, object, outcome string, details map[string]any) {
	if err := s.auditStrict(ctx, actor, action, object, outcome, details); err != nil {
		s.log.ErrorContext(ctx, "audit log write failed", "action", action, "outcome", outcome, "err", err)
	}
}

// auditStrict appends one event and reports failure, for the events that
// must be durable before an action goes ahead.
func (s *Server) auditStrict(ctx context.Context, actor, action, object, outcome string, details map[string]any) error {
	if s.deps.Audit == nil {
		return errors.New("repository: no audit log configured")
	}
	_, err := s.deps.Audit.AppendAudit(ctx, store.AuditEvent{
		Time:    s.now().UTC(),
		Actor:   actor,
		Action:  action,
		Object:  object,
		Outcome: outcome,
		Details: details,
	})
	return err
}

// maxAuditDetail bounds the refusal text written to the audit log.
const maxAuditDetail = 512

// refuse audits a refusal of an authenticated operator's request and
// returns err.
func (s *Server) refuse(ctx context.Context, op Operator, action, object string, err error) error {
	detail := err.Error()
	var re *Error
	if errors.As(err, &re) {
		detail = re.Detail
		if re.Param != "" {
			detail = re.Param + ": " + detail
		}
	}
	if len(detail) > maxAuditDetail {
		detail = detail[:maxAuditDetail] + "..."
	}
	s.audit(ctx, op.Name, action, object, OutcomeRefused, map[string]any{"refusal": detail})
	return err
}

// publishCertificate answers POST /v1/certificates: it reads a certificate
// issued elsewhere with smki.ParseCertificate, checks that it was signed by
// a CA the repository knows, and stores it.
func (s *Server) publishCertificate(c echo.Context) error {
	if s.deps.Publisher == nil || s.deps.Audit == nil || s.deps.CAs == nil || s.deps.Certs == nil {
		return problem.New(ErrUnavailable, "", "publishing not configured")
	}
	op, err := s.authorize(c, PermPublish, ActionPublish)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	object := c.Request().URL.Path
	body, err := s.readBody(c, s.cfg.MaxBodyBytes)
	if err != nil {
		return s.refuse(ctx, op, ActionPublish, object, err)
	}
	pub, err := parsePublishBody(c.Request().Header.Get(echo.HeaderContentType), body)
	if err != nil {
		return s.refuse(ctx, op, ActionPublish, object, err)
	}
	cert, err := s.checkPublication(ctx, pub)
	if err != nil {
		return s.refuse(ctx, op, ActionPublish, object, err)
	}
	object = cert.CA + "/" + FormatSerial(cert.Serial)
	details := map[string]any{"kind": cert.Kind, "eui": cert.EUI, "role": cert.Role, "usage": cert.Usage}
	if err := s.auditStrict(ctx, op.Name, ActionPublish, object, OutcomeAttempt, details); err != nil {
		return problem.Wrap(ErrInternal, err, "", "writing audit log")
	}
	if err := s.deps.Publisher.PutCertificates(ctx, cert); err != nil {
		s.audit(ctx, op.Name, ActionPublish, object, OutcomeFailure, withError(details, err))
		switch {
		case isDuplicate(err):
			return problem.Wrap(ErrConflict, err, "certificate", "CA %q already has a certificate with serial %s", cert.CA, FormatSerial(cert.Serial))
		case isNotFound(err):
			return problem.Wrap(ErrConflict, err, "certificate", "CA %q is no longer in the repository", cert.CA)
		case isInvalid(err):
			return problem.Wrap(ErrBadRequest, err, "certificate", "the repository refuses this certificate: %v", err)
		}
		return problem.Wrap(ErrInternal, err, "", "storing certificate")
	}
	s.audit(ctx, op.Name, ActionPublish, object, OutcomeSuccess, details)
	s.log.InfoContext(ctx, "certificate published", "operator", op.Name, "ca", cert.CA, "serial", FormatSerial(cert.Serial))
	stored, err := s.deps.Certs.Certificate(ctx, cert.CA, cert.Serial)
	if err != nil {
		return problem.Wrap(ErrInternal, err, "", "reading the published certificate back")
	}
	v := s.certView(stored)
	c.Response().Header().Set(echo.HeaderLocation, v.Links.Self)
	return c.JSON(http.StatusCreated, v)
}

// withError returns a copy of details with the error's text added.
func withError(details map[string]any, err error) map[string]any {
	d := make(map[string]any, len(details)+1)
	for k, v := range details {
		d[k] = v
	}
	d["error"] = err.Error()
	return d
}

// checkPublication parses the certificate and finds the known CA that
// signed it.
func (s *Server) checkPublication(ctx context.Context, pub publication) (store.Certificate, error) {
	sc, err := smki.ParseCertificate(pub.der)
	if err != nil {
		return store.Certificate{}, problem.Wrap(ErrBadRequest, err, "certificate", "not an SMKI certificate: %v", err)
	}
	if sc.Kind == smki.KindRoot {
		return store.Certificate{}, problem.New(ErrBadRequest, "certificate", "a root certificate cannot be published here: roots are created by a key ceremony")
	}
	cas, err := s.deps.CAs.CAs(ctx)
	if err != nil {
		return store.Certificate{}, problem.Wrap(ErrInternal, err, "", "listing CAs")
	}
	issuer, err := findIssuer(sc, cas)
	if err != nil {
		return store.Certificate{}, err
	}
	if t, closed := caClosedAt(issuer); closed && sc.NotBefore.After(t) {
		return store.Certificate{}, problem.New(ErrBadRequest, "certificate", "CA %q was closed at %s, before the certificate's notBefore %s", issuer.Name, t.UTC().Format("2006-01-02T15:04:05Z"), sc.NotBefore.UTC().Format("2006-01-02T15:04:05Z"))
	}
	cert := store.Certificate{
		CA:        issuer.Name,
		Serial:    sc.SerialNumber.Bytes(),
		Kind:      storeKind(sc.Kind),
		Role:      storeRole(sc),
		Usage:     storeUsage(sc),
		NotBefore: sc.NotBefore,
		NotAfter:  sc.NotAfter,
		DER:       sc.Raw,
	}
	if !sc.EUI.IsZero() {
		cert.EUI = sc.EUI.String()
	}
	if pub.topUp {
		if sc.Kind != smki.KindOrganisation || sc.Role != smki.RoleSupplier || cert.Usage != store.UsageKA {
			return store.Certificate{}, problem.New(ErrBadRequest, "prepaymentTopUp", "only a supplier's key-agreement organisation certificate can be its prepayment top-up certificate")
		}
		if err := smki.Profiles[smki.ProfileOrgPrepaymentKA].Check(sc); err != nil {
			return store.Certificate{}, problem.Wrap(ErrBadRequest, err, "prepaymentTopUp", "off the prepayment top-up profile: %v", err)
		}
		cert.Usage = store.UsagePPKA
	}
	return cert, nil
}

// findIssuer returns the CA among cas whose certificate issued sc: the
// issuer name and authority key identifier match the CA's subject and
// subject key identifier, and the CA's key verifies the signature.
func findIssuer(sc *smki.Certificate, cas []store.CA) (store.CA, error) {
	var lastErr error
	for _, ca := range cas {
		parent, err := smki.ParseCertificate(ca.CertDER)
		if err != nil || !parent.IsCA {
			continue
		}
		if !bytes.Equal(parent.RawSubject, sc.RawIssuer) {
			continue
		}
		if len(sc.AuthorityKeyID) > 0 && len(parent.SubjectKeyID) > 0 && !bytes.Equal(sc.AuthorityKeyID, parent.SubjectKeyID) {
			continue
		}
		if err := sc.CheckSignatureFrom(parent); err != nil {
			lastErr = err
			continue
		}
		return ca, nil
	}
	if lastErr != nil {
		return store.CA{}, problem.Wrap(ErrBadRequest, lastErr, "certificate", "issuer %q is known but its key did not sign this certificate", clip(sc.Issuer.String()))
	}
	return store.CA{}, problem.New(ErrBadRequest, "certificate", "issuer %q is not a CA this repository knows", clip(sc.Issuer.String()))
}
