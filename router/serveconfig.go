package router

import (
	"errors"
	"fmt"
	"net/url"

	"github.com/metertrust/metertrust/internal/jsonconfig"
	"github.com/metertrust/metertrust/smki"
)

// Defaults of ServeConfig, which "metertrust serve router" also gives its
// flags.
const (
	DefaultListen   = "127.0.0.1:8443"
	DefaultLogLevel = "info"
)

// ErrServeConfig is wrapped by every error ServeConfig.Validate and
// LoadServeConfig return.
var ErrServeConfig = errors.New("router: invalid configuration")

// ServeConfig is the configuration of "metertrust serve router": one field
// per flag of the command, read from the file given by --config (strict
// JSON: unknown fields and trailing data are errors). A flag given on the
// command line overrides the file's field; a field neither gives takes the
// flag's default.
//
// In a file, relative paths (data, store when it is a SQLite path, acbKey
// when it is a plain file name, tlsCert, tlsKey, clientCA, cspCA, cspCert,
// cspKey, operators) are resolved against the directory holding the file,
// so a configuration may sit beside its certificates. A URI keeps its own
// rules: "softkms:path=FILE" is resolved against data, "pkcs11:..." and
// "postgres://..." name no local file.
type ServeConfig struct {
	// Data is the data directory: the SQLite store and key files.
	Data string `json:"data,omitempty" path:"file"`
	// Store is the store DSN (postgres://... or a SQLite path); empty means
	// the store in Data.
	Store string `json:"store,omitempty" path:"uri"`
	// Listen is the address to serve HTTPS on, host:port; empty means
	// DefaultListen.
	Listen string `json:"listen,omitempty"`
	// ACBKey names the access control broker's key-agreement key: a PEM
	// file, softkms:path=FILE, or a PKCS#11 URI (see custody.OpenAgreement).
	// Required.
	ACBKey string `json:"acbKey,omitempty" path:"uri"`
	// ACBEUI is the access control broker's EUI-64 (16 hex digits).
	// Required.
	ACBEUI string `json:"acbEUI,omitempty"`
	// TCoSKey names the transitional change-of-supplier party's
	// digital-signing key, which signs the CS02b of a change of supplier
	// (decision 014): a PEM file, softkms:path=FILE, or a PKCS#11 URI (see
	// custody.OpenKey). Optional; it goes with TCoSEUI. Without it the
	// router refuses changes of supplier.
	TCoSKey string `json:"tcosKey,omitempty" path:"uri"`
	// TCoSEUI is the transitional change-of-supplier party's EUI-64.
	TCoSEUI string `json:"tcosEUI,omitempty"`
	// TLSCert is the DCCKI server certificate chain (PEM). Required.
	TLSCert string `json:"tlsCert,omitempty" path:"file"`
	// TLSKey is the server certificate's private key (PEM). Required.
	TLSKey string `json:"tlsKey,omitempty" path:"file"`
	// ClientCA is the DCCKI root certificate (PEM) client certificates
	// must chain to; empty means the store's DCCKI root and TLS CA.
	ClientCA string `json:"clientCA,omitempty" path:"file"`
	// CSP is the communications service provider's endpoint, an absolute
	// http(s) URL. Required.
	CSP string `json:"csp,omitempty"`
	// CSPCA holds the CA certificates (PEM) for the CSP endpoint; empty
	// means the system pool.
	CSPCA string `json:"cspCA,omitempty" path:"file"`
	// CSPCert is the client certificate chain (PEM) presented to the CSP
	// endpoint; it goes with CSPKey.
	CSPCert string `json:"cspCert,omitempty" path:"file"`
	// CSPKey is CSPCert's private key (PEM).
	CSPKey string `json:"cspKey,omitempty" path:"file"`
	// LogLevel is debug, info, warn or error; empty means DefaultLogLevel.
	LogLevel string `json:"logLevel,omitempty"`
	// OperatorListen is the address to serve the operator API on (HTTPS,
	// bearer tokens); empty turns it off. It goes with Operators.
	OperatorListen string `json:"operatorListen,omitempty"`
	// Operators is the operator credentials file (package operator's
	// format, as "metertrust operator token" prints its entries).
	Operators string `json:"operators,omitempty" path:"file"`
}

// LoadServeConfig reads a ServeConfig from a JSON file, strictly, and
// resolves its relative paths against the file's directory. It does not
// validate: the caller applies its flags first, then calls Validate.
func LoadServeConfig(path string) (ServeConfig, error) {
	var c ServeConfig
	if _, err := jsonconfig.Read(path, &c); err != nil {
		return ServeConfig{}, fmt.Errorf("%w: %w", ErrServeConfig, err)
	}
	return c, nil
}

// WithDefaults returns c with empty Listen and LogLevel given their
// defaults.
func (c ServeConfig) WithDefaults() ServeConfig {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.LogLevel == "" {
		c.LogLevel = DefaultLogLevel
	}
	return c
}

// Validate reports the first thing wrong with c (after WithDefaults),
// naming the field and then its flag, wrapping ErrServeConfig. It opens no file:
// whether the files exist and hold what they should is found at start.
func (c ServeConfig) Validate() error {
	c = c.WithDefaults()
	bad := func(field, format string, a ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrServeConfig, field, fmt.Sprintf(format, a...))
	}
	switch {
	case c.ACBEUI == "":
		return bad("acbEUI", "--acb-eui is required")
	case c.ACBKey == "":
		return bad("acbKey", "--acb-key is required")
	case (c.TCoSKey == "") != (c.TCoSEUI == ""):
		return bad("tcosKey", "--tcos-key and --tcos-eui go together (tcosKey and tcosEUI in a file)")
	case c.TLSCert == "":
		return bad("tlsCert", "--tls-cert is required")
	case c.TLSKey == "":
		return bad("tlsKey", "--tls-key is required")
	case c.CSP == "":
		return bad("csp", "--csp is required (the in-process fleet runs under metertrust demo)")
	case (c.CSPCert == "") != (c.CSPKey == ""):
		return bad("cspCert", "--csp-cert and --csp-key go together (cspCert and cspKey in a file)")
	case (c.OperatorListen == "") != (c.Operators == ""):
		return bad("operatorListen", "--operator-listen and --operators go together (operatorListen and operators in a file)")
	case jsonconfig.CheckLogLevel(c.LogLevel) != nil:
		return bad("logLevel", "--log-level %v", jsonconfig.CheckLogLevel(c.LogLevel))
	}
	if _, err := smki.ParseEUI(c.ACBEUI); err != nil {
		return bad("acbEUI", "--acb-eui: %v", err)
	}
	if c.TCoSEUI != "" {
		if _, err := smki.ParseEUI(c.TCoSEUI); err != nil {
			return bad("tcosEUI", "--tcos-eui: %v", err)
		}
	}
	if err := jsonconfig.CheckListen(c.Listen); err != nil {
		return bad("listen", "--listen %v", err)
	}
	if c.OperatorListen != "" {
		if err := jsonconfig.CheckListen(c.OperatorListen); err != nil {
			return bad("operatorListen", "--operator-listen %v", err)
		}
	}
	if u, err := url.Parse(c.CSP); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return bad("csp", "--csp %q: want an absolute http(s) URL", c.CSP)
	}
	return nil
}
