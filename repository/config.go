package repository

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/metertrust/metertrust/internal/jsonconfig"
	"github.com/metertrust/metertrust/internal/serving"
)

// Limits that apply when the configuration leaves them zero, and the ceiling
// on the page size a caller may ask for.
const (
	DefaultPageSize     = 100
	MaxPageSize         = 1000
	DefaultMaxBodyBytes = 64 << 10
	DefaultShutdown     = 10 * time.Second
	maxConfigBytes      = 1 << 20
)

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("repository: invalid configuration")

// Config configures a repository server. The zero value is valid: default
// page sizes and body limit, relative links, no operators (so every write is
// refused).
type Config struct {
	// Listen is the TCP address the service listens on, host:port. It is
	// used by the command that runs the server, not by the handler.
	Listen string `json:"listen,omitempty"`

	// MetricsListen is the address of the plain-HTTP Prometheus listener
	// (GET /metrics only), host:port; "off" turns it off; empty means the
	// command's default (serving.DefaultRepositoryMetrics). Used by the
	// command, not by the handler (decision 024).
	MetricsListen string `json:"metricsListen,omitempty"`

	// BaseURL, if set, is the absolute URL under which the service is
	// reachable ("https://smki.example.org"); links in responses are then
	// absolute. Empty means links relative to the host.
	BaseURL string `json:"baseURL,omitempty"`

	// DefaultLimit is the page size of certificate searches when the caller
	// gives no limit; zero means DefaultPageSize, or MaxLimit if smaller.
	DefaultLimit int `json:"defaultLimit,omitempty"`

	// MaxLimit is the largest page size a caller may ask for; zero means
	// MaxPageSize, which is also its ceiling.
	MaxLimit int `json:"maxLimit,omitempty"`

	// MaxBodyBytes bounds request bodies (published certificates, OCSP
	// requests); larger bodies get 413. Zero means DefaultMaxBodyBytes.
	MaxBodyBytes int64 `json:"maxBodyBytes,omitempty"`

	// ShutdownTimeout bounds the graceful shutdown, as a Go duration
	// ("10s"); zero means DefaultShutdown.
	ShutdownTimeout Duration `json:"shutdownTimeout,omitempty"`

	// Operators are the credentials allowed to write. Tokens are held only
	// as SHA-256 digests.
	Operators []Operator `json:"operators,omitempty"`
}

// Duration is a time.Duration that reads and writes JSON as a Go duration
// string such as "10s".
type Duration time.Duration

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string such as \"10s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// withDefaults returns c with zero limits replaced by their defaults.
func (c Config) withDefaults() Config {
	if c.MaxLimit == 0 {
		c.MaxLimit = MaxPageSize
	}
	if c.DefaultLimit == 0 {
		c.DefaultLimit = min(DefaultPageSize, c.MaxLimit)
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = Duration(DefaultShutdown)
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	return c
}

// Validate reports the first thing wrong with c, wrapping ErrConfig.
func (c Config) Validate() error {
	if c.DefaultLimit < 0 || c.DefaultLimit > MaxPageSize {
		return fmt.Errorf("%w: defaultLimit %d not in 0..%d", ErrConfig, c.DefaultLimit, MaxPageSize)
	}
	if c.MaxLimit < 0 || c.MaxLimit > MaxPageSize {
		return fmt.Errorf("%w: maxLimit %d not in 0..%d", ErrConfig, c.MaxLimit, MaxPageSize)
	}
	d := c.withDefaults()
	if d.DefaultLimit > d.MaxLimit {
		return fmt.Errorf("%w: defaultLimit %d exceeds maxLimit %d", ErrConfig, d.DefaultLimit, d.MaxLimit)
	}
	if c.MaxBodyBytes < 0 {
		return fmt.Errorf("%w: maxBodyBytes %d is negative", ErrConfig, c.MaxBodyBytes)
	}
	if c.ShutdownTimeout < 0 {
		return fmt.Errorf("%w: shutdownTimeout %s is negative", ErrConfig, time.Duration(c.ShutdownTimeout))
	}
	if c.MetricsListen != "" && c.MetricsListen != serving.MetricsOff {
		if err := jsonconfig.CheckListen(c.MetricsListen); err != nil {
			return fmt.Errorf("%w: metricsListen %v (or \"off\")", ErrConfig, err)
		}
	}
	if c.BaseURL != "" {
		u, err := url.Parse(c.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("%w: baseURL %q must be an absolute http(s) URL without query or fragment", ErrConfig, c.BaseURL)
		}
	}
	seen := make(map[string]bool, len(c.Operators))
	for i, op := range c.Operators {
		if err := op.validate(); err != nil {
			return fmt.Errorf("%w: operators[%d]: %w", ErrConfig, i, err)
		}
		if seen[op.Name] {
			return fmt.Errorf("%w: operators[%d]: duplicate operator name %q", ErrConfig, i, op.Name)
		}
		seen[op.Name] = true
	}
	if _, err := credentials(c.Operators); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return nil
}

// LoadConfig reads a JSON configuration file strictly: unknown fields,
// trailing data and invalid values are errors.
func LoadConfig(path string) (Config, error) {
	var c Config
	if err := decodeFile(path, &c); err != nil {
		return Config{}, err
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// ParseConfig decodes a JSON configuration strictly, like LoadConfig.
func ParseConfig(data []byte) (Config, error) {
	var c Config
	if err := jsonconfig.Decode(data, &c); err != nil {
		return Config{}, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

func decodeFile(path string, v any) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigBytes+1))
	if err != nil {
		return fmt.Errorf("%w: reading %s: %w", ErrConfig, path, err)
	}
	if len(data) > maxConfigBytes {
		return fmt.Errorf("%w: %s is larger than %d bytes", ErrConfig, path, maxConfigBytes)
	}
	if err := jsonconfig.Decode(data, v); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrConfig, path, err)
	}
	return nil
}

// decodeStrict decodes exactly one JSON value, refusing unknown fields and
// trailing data: for request bodies. Configuration goes through
// jsonconfig.Decode, which also wants field names in their exact case.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}
