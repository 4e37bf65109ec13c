package repository

import (
	"encoding/hex"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/metertrust/metertrust/internal/trunc"

	"github.com/metertrust/metertrust/problem"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// usageNames maps the key usages a search may name to the store's tokens:
// ds (digitalSignature), ka (keyAgreement), pp-ka (a supplier's prepayment
// top-up keyAgreement), ca (keyCertSign and cRLSign) and tls (DCCKI).
var usageNames = map[string]string{
	"ds":                     store.UsageDS,
	"digitalsignature":       store.UsageDS,
	"ka":                     store.UsageKA,
	"keyagreement":           store.UsageKA,
	"pp-ka":                  store.UsagePPKA,
	"prepaymentkeyagreement": store.UsagePPKA,
	"ca":                     store.UsageCA,
	"tls":                    store.UsageTLS,
	"ocsp":                   store.UsageOCSP,
}

// kindNames maps the certificate kinds a search may name to the store's
// tokens: org (SMKI organisation), device, ca, the DCCKI tls-client and
// tls-server, and ocsp-responder.
var kindNames = map[string]string{
	"org":          store.KindOrg,
	"organisation": store.KindOrg,
	"organization": store.KindOrg,
	"device":       store.KindDevice,
	"ca":           store.KindCA,
	"tls-client":   store.KindTLSClient,
	"tls-server":   store.KindTLSServer,
	// A closed batch's delegated OCSP responder (decision record 013).
	"ocsp-responder": store.KindOCSPResponder,
}

// Values of the status search parameter.
const (
	// StatusAll, the default, returns good and revoked certificates.
	StatusAll = "all"
)

// maxParamLen bounds every query parameter value; none valid is longer.
const maxParamLen = 128

// clip shortens caller input quoted in an error detail or audit record.
func clip(s string) string { return trunc.String(s, 64) }

// queryParams lists the parameters GET /v1/certificates accepts.
var queryParams = []string{"eui", "role", "userRole", "usage", "kind", "serial", "ca", "status", "after", "limit"}

// ParseCertQuery reads the query parameters of a certificate search:
// eui (16 hex digits, optionally hyphen-grouped), role (a Remote Party Role
// name or code), userRole (a DCC User Role), usage (ds, ka, pp-ka, ca, tls,
// ocsp, or digitalSignature, keyAgreement), kind (org, device, ca, tls-client,
// tls-server, ocsp-responder), serial (hex), ca (a CA name), status (all, the default, or
// good to leave revoked certificates out), after (a paging cursor) and limit
// (1 to maxLimit, defaultLimit when absent). Unknown or repeated
// parameters are errors. Every error is a *Error of ErrBadRequest naming the
// parameter.
func ParseCertQuery(v url.Values, defaultLimit, maxLimit int) (store.CertQuery, error) {
	q := store.CertQuery{Limit: defaultLimit, IncludeRevoked: true}
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !contains(queryParams, k) {
			param := k
			if param == "" {
				param = "query"
			}
			return store.CertQuery{}, problem.New(ErrBadRequest, clip(param), "unknown query parameter %q (known: %s)", clip(k), strings.Join(queryParams, ", "))
		}
		if len(v[k]) != 1 {
			return store.CertQuery{}, problem.New(ErrBadRequest, clip(k), "query parameter %q given %d times, want once", clip(k), len(v[k]))
		}
		if len(v[k][0]) > maxParamLen {
			return store.CertQuery{}, problem.New(ErrBadRequest, k, "value of %d bytes is longer than any valid %s (at most %d)", len(v[k][0]), k, maxParamLen)
		}
	}
	if s := v.Get("eui"); s != "" {
		e, err := smki.ParseEUI(s)
		if err != nil {
			return store.CertQuery{}, problem.Wrap(ErrBadRequest, err, "eui", "%q is not an EUI-64: want 16 hex digits, optionally grouped as 90-B3-D5-1F-30-01-00-00", s)
		}
		q.EUI = e.String()
	}
	if s := v.Get("role"); s != "" {
		r, err := smki.ParseRole(s)
		if err != nil {
			return store.CertQuery{}, problem.Wrap(ErrBadRequest, err, "role", "%q is not a Remote Party Role name or code", s)
		}
		code := int(r)
		q.Role = &code
	}
	if s := v.Get("userRole"); s != "" {
		u, err := smki.ParseUserRole(s)
		if err != nil {
			return store.CertQuery{}, problem.Wrap(ErrBadRequest, err, "userRole", "%q is not a DCC User Role (IS, ES, GS, ED, GT, OU, RSA)", s)
		}
		q.UserRole = string(u)
	}
	if s := v.Get("usage"); s != "" {
		u, ok := usageNames[strings.ToLower(s)]
		if !ok {
			return store.CertQuery{}, problem.New(ErrBadRequest, "usage", "%q is not a key usage (want ds, ka, pp-ka, ca, tls or ocsp)", s)
		}
		q.Usage = u
	}
	if s := v.Get("kind"); s != "" {
		k, ok := kindNames[strings.ToLower(s)]
		if !ok {
			return store.CertQuery{}, problem.New(ErrBadRequest, "kind", "%q is not a certificate kind (want org, device, ca, tls-client, tls-server or ocsp-responder)", s)
		}
		q.Kind = k
	}
	if s := v.Get("serial"); s != "" {
		b, err := ParseSerial(s)
		if err != nil {
			return store.CertQuery{}, problem.Wrap(ErrBadRequest, err, "serial", "%q is not a serial number: want hex digits, optionally colon-separated", s)
		}
		q.Serial = b
	}
	if s := v.Get("ca"); s != "" {
		if err := checkCAName(s); err != nil {
			return store.CertQuery{}, problem.Wrap(ErrBadRequest, err, "ca", "%q is not a CA name", s)
		}
		q.CA = s
	}
	switch s := v.Get("status"); s {
	case "", StatusAll:
	case StatusGood:
		q.IncludeRevoked = false
	default:
		return store.CertQuery{}, problem.New(ErrBadRequest, "status", "%q is not a status filter (want all or good)", s)
	}
	if s := v.Get("after"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return store.CertQuery{}, problem.New(ErrBadRequest, "after", "%q is not a paging cursor: want the non-negative integer from a previous page's next link", s)
		}
		q.AfterID = n
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxLimit {
			return store.CertQuery{}, problem.New(ErrBadRequest, "limit", "%q is not a page size: want an integer from 1 to %d", s, maxLimit)
		}
		q.Limit = n
	}
	return q, nil
}

// maxSerialBytes is the longest serial number RFC 5280 section 4.1.2.2 allows.
const maxSerialBytes = smki.MaxSerialBytes

// ParseSerial reads a certificate serial number written in hex, with or
// without colons between byte pairs and an optional 0x prefix, and returns
// its minimal big-endian magnitude (as big.Int.Bytes, one zero byte for
// zero). It refuses serials longer than the 20 octets of RFC 5280.
func ParseSerial(s string) ([]byte, error) {
	b, err := smki.ParseSerial(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	return b, nil
}

// FormatSerial prints a serial number as upper-case hex, the form used in
// repository URLs.
func FormatSerial(b []byte) string {
	if len(b) == 0 {
		return "00"
	}
	return strings.ToUpper(hex.EncodeToString(b))
}

// checkCAName accepts the CA names used in URLs: 1 to 64 letters, digits and
// ._- characters.
func checkCAName(s string) error {
	if len(s) == 0 || len(s) > 64 {
		return fmt.Errorf("%w: CA name must be 1 to 64 characters", ErrBadRequest)
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("%w: CA name may hold only letters, digits and ._-", ErrBadRequest)
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
