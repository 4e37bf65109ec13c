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

	"github.com/metertrust/metertrust/smki"
)

// Audit actions and outcomes written by the repository. Every write is
// audited before it is attempted and after it succeeds or fails, and every
// refused write request is audited once.
const (
	ActionPublish = "repository.publish"
	ActionRevoke  = "repository.revoke"

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
	// UserRole is the DCC User Role of the organisation holding the
	// certificate (IS, ES, GS, ED, GT, OU, RSA); organisation certificates
	// only, and it must agree with the certificate's Remote Party Role.
	UserRole string `json:"userRole,omitempty"`
}

// publication is a checked publish request.
type publication struct {
	der      []byte
	userRole smki.UserRole
}

// parsePublishBody reads the body of POST /v1/certificates according to its
// media type. It does not parse the certificate itself.
func parsePublishBody(contentType string, body []byte) (publication, error) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return publication{}, newError(KindUnsupportedMediaType, "Content-Type", "missing or malformed Content-Type: want %s, %s or %s", MediaPKIXCert, MediaPEM, MediaJSON)
	}
	if len(body) == 0 {
		return publication{}, newError(KindBadRequest, "body", "empty request body: send the certificate")
	}
	switch mt {
	case MediaPKIXCert:
		return publication{der: body}, nil
	case MediaPEM, MediaPEMChain:
		der, err := onePEMCertificate(body)
		if err != nil {
			return publication{}, err
		}
		return publication{der: der}, nil
	case MediaJSON:
		var r PublishRequest
		if err := decodeStrict(body, &r); err != nil {
			return publication{}, wrapError(KindBadRequest, err, "body", "not a publish request: want a JSON object {certificate, userRole} and nothing else (%v)", err)
		}
		if r.Certificate == "" {
			return publication{}, newError(KindBadRequest, "certificate", "missing: give the certificate as PEM or base64 DER")
		}
		var p publication
		if strings.Contains(r.Certificate, "-----BEGIN") {
			der, err := onePEMCertificate([]byte(r.Certificate))
			if err != nil {
				err.(*Error).Param = "certificate"
				return publication{}, err
			}
			p.der = der
		} else {
			der, err := base64.StdEncoding.DecodeString(strings.TrimSpace(r.Certificate))
			if err != nil || len(der) == 0 {
				return publication{}, newError(KindBadRequest, "certificate", "neither PEM nor base64 DER")
			}
			p.der = der
		}
		if r.UserRole != "" {
			u, err := smki.ParseUserRole(r.UserRole)
			if err != nil {
				return publication{}, wrapError(KindBadRequest, err, "userRole", "%q is not a DCC User Role (IS, ES, GS, ED, GT, OU, RSA)", r.UserRole)
			}
			p.userRole = u
		}
		return p, nil
	}
	return publication{}, newError(KindUnsupportedMediaType, "Content-Type", "%q: want %s, %s or %s", mt, MediaPKIXCert, MediaPEM, MediaJSON)
}

// onePEMCertificate returns the DER of the single CERTIFICATE block in b.
func onePEMCertificate(b []byte) ([]byte, error) {
	block, rest := pem.Decode(b)
	if block == nil {
		return nil, newError(KindBadRequest, "body", "no PEM block found")
	}
	if block.Type != "CERTIFICATE" {
		return nil, newError(KindBadRequest, "body", "PEM block is %q, want CERTIFICATE", block.Type)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, newError(KindBadRequest, "body", "more than one PEM block: publish one certificate per request")
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
		s.audit(ctx, ActorAnonymous, action, object, OutcomeRefused, "no operator credential")
		return Operator{}, newError(KindUnauthenticated, "Authorization", "writes need an operator bearer token")
	}
	if !ok {
		s.audit(ctx, ActorUnknown, action, object, OutcomeRefused, "malformed Authorization header")
		return Operator{}, newError(KindUnauthenticated, "Authorization", "want \"Authorization: Bearer <token>\"")
	}
	op, found := s.auth.authenticate(token)
	if !found {
		s.audit(ctx, ActorUnknown, action, object, OutcomeRefused, "unknown operator credential")
		return Operator{}, newError(KindUnauthenticated, "Authorization", "operator token not recognised")
	}
	if !op.Can(perm) {
		s.audit(ctx, op.Name, action, object, OutcomeRefused, fmt.Sprintf("operator lacks the %s permission", perm))
		return Operator{}, newError(KindForbidden, "", "operator %q may not %s", op.Name, perm)
	}
	c.Set(operatorKey, op.Name)
	return op, nil
}

// audit appends one event, logging (not returning) a failure: it is used
// for refusals, which are answered whatever the audit log does.
func (s *Server) audit(ctx context.Context, actor, action, object, outcome, details string) {
	if err := s.auditStrict(ctx, actor, action, object, outcome, details); err != nil {
		s.log.ErrorContext(ctx, "audit log write failed", "action", action, "outcome", outcome, "err", err)
	}
}

// auditStrict appends one event and reports failure, for the events that
// must be durable before an action goes ahead.
func (s *Server) auditStrict(ctx context.Context, actor, action, object, outcome, details string) error {
	if s.deps.Audit == nil {
		return errors.New("repository: no audit log configured")
	}
	return s.deps.Audit.AppendAudit(ctx, AuditEvent{
		Time:    s.now().UTC(),
		Actor:   actor,
		Action:  action,
		Object:  object,
		Outcome: outcome,
		Details: details,
	})
}

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
	s.audit(ctx, op.Name, action, object, OutcomeRefused, detail)
	return err
}

// publishCertificate answers POST /v1/certificates: it reads a certificate
// issued elsewhere with smki.ParseCertificate, checks that it was signed by
// a CA the repository knows, and stores it.
func (s *Server) publishCertificate(c echo.Context) error {
	if s.deps.Publisher == nil || s.deps.Audit == nil || s.deps.CAs == nil {
		return newError(KindUnavailable, "", "publishing not configured")
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
	object = "certificate " + cert.CA + "/" + FormatSerial(cert.Serial)
	details := fmt.Sprintf("kind=%s eui=%s role=%d usage=%s", cert.Kind, cert.EUI, cert.Role, cert.Usage)
	if err := s.auditStrict(ctx, op.Name, ActionPublish, object, OutcomeAttempt, details); err != nil {
		return wrapError(KindInternal, err, "", "writing audit log")
	}
	stored, err := s.deps.Publisher.PutCertificate(ctx, cert)
	if err != nil {
		s.audit(ctx, op.Name, ActionPublish, object, OutcomeFailure, err.Error())
		if isStoreDuplicate(err) {
			return wrapError(KindConflict, err, "certificate", "CA %q already has a certificate with serial %s", cert.CA, FormatSerial(cert.Serial))
		}
		return wrapError(KindInternal, err, "", "storing certificate")
	}
	s.audit(ctx, op.Name, ActionPublish, object, OutcomeSuccess, details)
	s.log.InfoContext(ctx, "certificate published", "operator", op.Name, "ca", stored.CA, "serial", FormatSerial(stored.Serial))
	v := s.certView(stored)
	c.Response().Header().Set(echo.HeaderLocation, v.Links.Self)
	return c.JSON(http.StatusCreated, v)
}

// checkPublication parses the certificate and finds the known CA that
// signed it.
func (s *Server) checkPublication(ctx context.Context, pub publication) (Certificate, error) {
	sc, err := smki.ParseCertificate(pub.der)
	if err != nil {
		return Certificate{}, wrapError(KindBadRequest, err, "certificate", "not an SMKI certificate: %v", err)
	}
	if sc.Kind == smki.KindRoot {
		return Certificate{}, newError(KindBadRequest, "certificate", "a root certificate cannot be published here: roots are created by a key ceremony")
	}
	cas, err := s.deps.CAs.CAs(ctx)
	if err != nil {
		return Certificate{}, wrapError(KindInternal, err, "", "listing CAs")
	}
	issuer, err := findIssuer(sc, cas)
	if err != nil {
		return Certificate{}, err
	}
	if t, closed := caClosedAt(issuer); closed && sc.NotBefore.After(t) {
		return Certificate{}, newError(KindBadRequest, "certificate", "CA %q was closed at %s, before the certificate's notBefore %s", issuer.Name, t.UTC().Format("2006-01-02T15:04:05Z"), sc.NotBefore.UTC().Format("2006-01-02T15:04:05Z"))
	}
	cert := Certificate{
		CA:        issuer.Name,
		Serial:    sc.SerialNumber.Bytes(),
		Kind:      sc.Kind.String(),
		Role:      -1,
		Usage:     certUsage(sc),
		NotBefore: sc.NotBefore,
		NotAfter:  sc.NotAfter,
		DER:       sc.Raw,
	}
	if !sc.EUI.IsZero() {
		cert.EUI = sc.EUI.String()
	}
	switch sc.Kind {
	case smki.KindOrganisation, smki.KindOCA:
		cert.Role = int(sc.Role)
	}
	if pub.userRole != "" {
		if sc.Kind != smki.KindOrganisation {
			return Certificate{}, newError(KindBadRequest, "userRole", "only organisation certificates carry a DCC User Role, this is a %s certificate", sc.Kind)
		}
		if want := pub.userRole.RemoteParty(); want != sc.Role {
			return Certificate{}, newError(KindBadRequest, "userRole", "user role %s acts as remote party %s, but the certificate's role is %s", pub.userRole, want, sc.Role)
		}
		cert.UserRole = string(pub.userRole)
	}
	return cert, nil
}

// findIssuer returns the CA among cas whose certificate issued sc: the
// issuer name and authority key identifier match the CA's subject and
// subject key identifier, and the CA's key verifies the signature.
func findIssuer(sc *smki.Certificate, cas []CA) (CA, error) {
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
		return CA{}, wrapError(KindBadRequest, lastErr, "certificate", "issuer %q is known but its key did not sign this certificate", sc.Issuer.String())
	}
	return CA{}, newError(KindBadRequest, "certificate", "issuer %q is not a CA this repository knows", sc.Issuer.String())
}

// certUsage names the single key usage of an end-entity certificate, or the
// CA usages of a CA certificate, in the store's vocabulary.
func certUsage(sc *smki.Certificate) string {
	return usageName(sc.KeyUsage)
}

// revoke answers POST /v1/revocations: after checking the certificate is
// known and not yet revoked, it asks the revoker to revoke it.
func (s *Server) revoke(c echo.Context) error {
	if s.deps.Revoker == nil || s.deps.Audit == nil || s.deps.Certs == nil {
		return newError(KindUnavailable, "", "revocation not configured")
	}
	op, err := s.authorize(c, PermRevoke, ActionRevoke)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	object := c.Request().URL.Path
	mt, _, err := mime.ParseMediaType(c.Request().Header.Get(echo.HeaderContentType))
	if err != nil || mt != MediaJSON {
		return s.refuse(ctx, op, ActionRevoke, object, newError(KindUnsupportedMediaType, "Content-Type", "revocation requests must be sent as %s", MediaJSON))
	}
	body, err := s.readBody(c, s.cfg.MaxBodyBytes)
	if err != nil {
		return s.refuse(ctx, op, ActionRevoke, object, err)
	}
	r, err := parseRevocation(body)
	if err != nil {
		return s.refuse(ctx, op, ActionRevoke, object, err)
	}
	object = "certificate " + r.ca + "/" + FormatSerial(r.serial)
	cert, err := s.deps.Certs.Certificate(ctx, r.ca, r.serial)
	if isStoreNotFound(err) {
		return s.refuse(ctx, op, ActionRevoke, object, wrapError(KindNotFound, err, "serial", "no certificate with serial %s from CA %q", FormatSerial(r.serial), r.ca))
	}
	if err != nil {
		return wrapError(KindInternal, err, "", "reading certificate")
	}
	if _, revoked := revocationTime(cert); revoked {
		return s.refuse(ctx, op, ActionRevoke, object, newError(KindConflict, "serial", "certificate %s from CA %q is already revoked", FormatSerial(r.serial), r.ca))
	}
	details := "reason=" + reasonName(r.reason)
	if err := s.auditStrict(ctx, op.Name, ActionRevoke, object, OutcomeAttempt, details); err != nil {
		return wrapError(KindInternal, err, "", "writing audit log")
	}
	if err := s.deps.Revoker.Revoke(ctx, r.ca, r.serial, r.reason); err != nil {
		s.audit(ctx, op.Name, ActionRevoke, object, OutcomeFailure, err.Error())
		switch {
		case isStoreNotFound(err):
			return wrapError(KindNotFound, err, "serial", "no certificate with serial %s from CA %q", FormatSerial(r.serial), r.ca)
		case isStoreConflict(err):
			return wrapError(KindConflict, err, "serial", "certificate %s from CA %q cannot be revoked in its current state", FormatSerial(r.serial), r.ca)
		}
		return wrapError(KindInternal, err, "", "revoking certificate")
	}
	s.audit(ctx, op.Name, ActionRevoke, object, OutcomeSuccess, details)
	s.log.InfoContext(ctx, "certificate revoked", "operator", op.Name, "ca", r.ca, "serial", FormatSerial(r.serial), "reason", reasonName(r.reason))
	updated, err := s.deps.Certs.Certificate(ctx, r.ca, r.serial)
	if err != nil {
		return wrapError(KindInternal, err, "", "reading revoked certificate")
	}
	return c.JSON(http.StatusOK, s.certView(updated))
}
